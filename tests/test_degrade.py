import numpy as np
import pytest

from srlib import SRError
from srlib.data import bicubic_degrade, bicubic_restore, builtin_images, gaussian_degrade, modcrop, to_y
from srlib.data.degrade import gaussian_kernel
from srlib.metrics import psnr


def test_modcrop():
    a = np.zeros((101, 77, 3))
    assert modcrop(a, 4).shape == (100, 76, 3) and modcrop(a, 3).shape == (99, 75, 3)
    assert modcrop(a, 2.5).shape == (100, 75, 3)  # 2.5 = 5/2: multiples of 5, the LR is 40 x 30 exactly
    assert modcrop(a, 1.5).shape == (99, 75, 3)
    with pytest.raises(SRError, match="smaller than the scale"):
        modcrop(np.zeros((2, 2)), 3)


def test_bicubic_degrade_and_restore_shapes():
    y = np.random.default_rng(0).random((99, 75))
    lr = bicubic_degrade(y, 3)
    assert lr.shape == (33, 25) and bicubic_restore(lr, y.shape).shape == y.shape
    assert bicubic_degrade(y, 2.5).shape == (40, 30)  # MATLAB: ceil(size / scale)


def test_gaussian_degradation():
    k = gaussian_kernel(1.2)
    assert k.shape == (9, 9) and abs(k.sum() - 1) < 1e-12 and k[4, 4] == k.max()
    y = to_y(modcrop(builtin_images()[0][1], 3)) / 255.0
    soft = gaussian_degrade(y, 3, sigma=0.5)
    blur = gaussian_degrade(y, 3, sigma=2.0)
    assert soft.shape == blur.shape == y.shape
    # More blur before subsampling loses more detail; a flat image loses nothing, a smooth one little.
    assert 20 < psnr(blur, y, 3) < psnr(soft, y, 3) < 40
    flat = np.full((60, 45), 0.4)
    np.testing.assert_allclose(gaussian_degrade(flat, 3, sigma=2.0), flat, atol=1e-12)
    rr, cc = np.mgrid[0:60, 0:45]
    smooth = 0.5 + 0.3 * np.sin(rr / 9.0) * np.cos(cc / 11.0)
    assert psnr(gaussian_degrade(smooth, 3, sigma=0.5), smooth, 3) > psnr(soft, y, 3) + 5
    rgb = gaussian_degrade(modcrop(builtin_images()[3][1], 3) / 255.0, 3)
    assert rgb.ndim == 3 and rgb.shape[-1] == 3
    with pytest.raises(SRError, match="positive integer"):
        gaussian_degrade(y, 2.5)
