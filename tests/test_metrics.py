import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from srlib import SRError
from srlib.data import builtin_images, imresize, rgb_to_ycbcr, to_y
from srlib.metrics import channel_psnr, gaussian_window, psnr, psnr_torch, ssim, ssim_torch


def test_psnr_known_values():
    a = np.full((20, 20), 100, np.uint8)
    b = a + 1
    assert psnr(b, a) == pytest.approx(10 * math.log10(255**2 / 1))  # 48.13 dB
    assert psnr(a, a) == math.inf
    c = a.copy()
    c[:2] = 110  # only the shaved rows differ
    assert psnr(c, a, shave=2) == math.inf


def test_float_input_is_quantised_to_8_bits():
    a = np.full((16, 16), 100, np.uint8)
    f = a / 255.0 + 0.4 / 255  # rounds back to 100
    assert psnr(f, a) == math.inf
    assert psnr(a / 255.0 + 0.5 / 255, a) == pytest.approx(48.1308, abs=1e-4)  # 100.5 rounds up


def test_colour_images_are_measured_on_y(rng):
    rgb = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    noisy = np.clip(rgb.astype(int) + rng.integers(-5, 6, rgb.shape), 0, 255).astype(np.uint8)
    assert psnr(noisy, rgb) == pytest.approx(psnr(to_y(noisy), to_y(rgb)))


def _ssim_reference(a, b):
    """ssim_index.m written out: filter2 'valid' with the normalised 11x11 Gaussian."""
    w = np.rot90(gaussian_window(), 2)
    f = lambda x: convolve2d(x, w, mode="valid")  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s11, s22, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return m.mean()


def test_ssim_matches_wangs_reference_and_torch():
    imgs = builtin_images()[:3]
    for name, hr in imgs:
        y = to_y(hr)[:120, :150].astype(np.float64)
        up = imresize(imresize(y / 255, 1 / 3), size=y.shape)
        sr = np.clip(np.floor(up * 255 + 0.5), 0, 255)
        ref = _ssim_reference(sr[3:-3, 3:-3], y[3:-3, 3:-3])
        assert ssim(up, y.astype(np.uint8), shave=3) == pytest.approx(ref, abs=1e-10), name
        t = ssim_torch(torch.tensor(up)[None, None], torch.tensor(y / 255)[None, None], shave=3)
        assert abs(t.item() - ref) < 1e-4
    assert ssim(y.astype(np.uint8), y.astype(np.uint8)) == pytest.approx(1.0)


def test_torch_metrics_agree_with_numpy_on_a_batch(rng):
    hr = rng.random((4, 3, 40, 44))
    sr = np.clip(hr + rng.normal(0, 0.03, hr.shape), 0, 1)
    p = psnr_torch(torch.tensor(sr, dtype=torch.float32), torch.tensor(hr, dtype=torch.float32), shave=4)
    s = ssim_torch(torch.tensor(sr), torch.tensor(hr), shave=4)
    for i in range(4):
        a, b = sr[i].transpose(1, 2, 0), hr[i].transpose(1, 2, 0)
        assert abs(p[i].item() - psnr(a, b, 4)) < 1e-4
        assert abs(s[i].item() - ssim(a, b, 4)) < 1e-4


def test_bad_input():
    with pytest.raises(SRError, match="reference"):
        psnr(np.zeros((10, 10)), np.zeros((10, 12)))
    with pytest.raises(SRError, match="shave"):
        psnr(np.zeros((10, 10)), np.zeros((10, 10)), shave=5)
    with pytest.raises(SRError, match="window"):
        ssim(np.zeros((14, 14)), np.zeros((14, 14)), shave=2)


def test_channel_psnr_measures_each_channel(rng):
    """The SRCNN paper's Table 5 columns: Y, Cb, Cr of MATLAB's rgb2ycbcr, and RGB over all channels."""
    ref = rng.integers(0, 256, (40, 30, 3)).astype(np.uint8)
    img = ref.copy()
    img[..., 2] = np.clip(img[..., 2].astype(int) + rng.integers(-9, 10, (40, 30)), 0, 255).astype(np.uint8)
    got = channel_psnr(img, ref, 4)
    a, b = img[4:-4, 4:-4].astype(float), ref[4:-4, 4:-4].astype(float)
    assert got["RGB"] == pytest.approx(10 * np.log10(255**2 / np.mean((a - b) ** 2)), abs=1e-9)
    ya, yb = rgb_to_ycbcr(img)[4:-4, 4:-4].astype(float), rgb_to_ycbcr(ref)[4:-4, 4:-4].astype(float)
    for k, name in enumerate(("Y", "Cb", "Cr")):
        assert got[name] == pytest.approx(10 * np.log10(255**2 / np.mean((ya[..., k] - yb[..., k]) ** 2)), abs=1e-9)
    assert got["Y"] == pytest.approx(psnr(img, ref, 4), abs=1e-9)  # the Y column is the usual PSNR
    assert got["Cb"] < got["Cr"]  # blue errors weigh most in Cb (0.439 x 255/255 B, 0.071 in Cr)
    assert channel_psnr(ref, ref)["RGB"] == np.inf
    with pytest.raises(SRError, match="channel_psnr"):
        channel_psnr(ref[..., 0], ref[..., 0])
