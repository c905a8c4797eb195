import numpy as np
import pytest
import torch

from srlib import SRError
from srlib.data import (
    SRCNNPatches,
    SRGANPatches,
    VDSRPatches,
    builtin_images,
    grid_patches,
    imresize,
    modcrop,
    rgb_to_ycbcr,
    to_y,
)
from srlib.data.patches import dihedral


def test_grid_patches_match_a_loop(rng):
    img = rng.random((50, 37, 3))
    p = grid_patches(img, 11, 7)
    loop = [img[i:i + 11, j:j + 11] for i in range(0, 40, 7) for j in range(0, 27, 7)]
    np.testing.assert_array_equal(p, np.stack(loop))
    assert grid_patches(img[:5], 11, 7).shape == (0, 11, 11, 3)


def test_dihedral_gives_eight_distinct_symmetries():
    x = torch.arange(9.0).view(1, 3, 3)
    outs = {tuple(dihedral(x, k).flatten().tolist()) for k in range(8)}
    assert len(outs) == 8


def test_srcnn_patches():
    ds = SRCNNPatches("builtin", scale=3)
    x, y = ds[0]
    assert x.shape == (1, 33, 33) and y.shape == (1, 21, 21) and x.dtype == torch.float32
    # Counts: a 33x33 window at stride 14 over each modcropped image.
    expected = sum(((h - 33) // 14 + 1) * ((w - 33) // 14 + 1)
                   for h, w in (modcrop(im, 3).shape[:2] for _, im in builtin_images()))
    assert len(ds) == expected
    # The first patch: the bicubic-restored Y and the central 21x21 of the HR Y.
    hr = to_y(modcrop(builtin_images()[0][1], 3)) / 255.0
    lr_up = imresize(imresize(hr, 1 / 3), size=hr.shape)
    np.testing.assert_allclose(x[0].numpy(), lr_up[:33, :33], atol=1e-6)
    np.testing.assert_allclose(y[0].numpy(), hr[6:27, 6:27], atol=1e-6)
    full = SRCNNPatches("builtin", scale=3, label_size=None)  # same cache, full-size labels
    assert full[0][1].shape == (1, 33, 33)
    with pytest.raises(SRError, match="label_size"):
        SRCNNPatches("builtin", label_size=20)


def test_srcnn_colour_patches():
    """Section 4.4's training sets: the three channels of RGB or YCbCr, each degraded as Y is."""
    im = modcrop(builtin_images()[0][1], 3)
    rgb = im / 255.0
    for colour, hr in (("rgb", rgb), ("ycbcr", rgb_to_ycbcr(rgb))):
        ds = SRCNNPatches("builtin", scale=3, label_size=None, colour=colour)
        x, y = ds[0]
        assert x.shape == y.shape == (3, 33, 33)
        lr_up = imresize(imresize(hr, 1 / 3), size=hr.shape[:2])
        np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), lr_up[:33, :33], atol=1e-6)
        np.testing.assert_allclose(y.permute(1, 2, 0).numpy(), hr[:33, :33], atol=1e-6)
        assert len(ds) == len(SRCNNPatches("builtin", scale=3))
    # YCbCr's first channel is the Y set itself (the same degradation, the same numbers)
    y_set = SRCNNPatches("builtin", scale=3, label_size=None)
    ycc = SRCNNPatches("builtin", scale=3, label_size=None, colour="ycbcr")
    torch.testing.assert_close(ycc.inputs[:50, :1], y_set.inputs[:50], atol=3e-3, rtol=0)  # Y of 8-bit RGB is rounded
    with pytest.raises(SRError, match="colour"):
        SRCNNPatches("builtin", colour="hsv")


def test_srcnn_patches_augment_with_the_eight_symmetries():
    plain = SRCNNPatches("builtin", scale=3)
    aug = SRCNNPatches("builtin", scale=3, augment=True)
    assert len(aug) == 8 * len(plain)
    x, y = plain[2]
    for k in range(8):  # input and (cropped) label turned together
        xa, ya = aug[8 * 2 + k]
        assert torch.equal(xa, dihedral(x, k)) and torch.equal(ya, dihedral(y, k))


def test_vdsr_patches_mix_scales_and_augment():
    ds = VDSRPatches("builtin", scales=(2, 3, 4))
    assert len(ds) % 8 == 0
    scales = {float(ds[i][2]) for i in range(0, len(ds), 97)}
    assert scales == {2.0, 3.0, 4.0}
    x0, y0, _ = ds[0]
    x5, y5, _ = ds[5]
    assert x0.shape == (1, 41, 41)
    assert torch.equal(dihedral(x0, 5), x5) and torch.equal(dihedral(y0, 5), y5)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    _, _, s = next(iter(loader))
    assert len(set(s.tolist())) == 3  # scales mixed within a batch


def test_srgan_patches_are_in_register():
    ds = SRGANPatches("builtin", scale=4, augment=False)
    lr, hr = ds[0]
    assert lr.shape == (3, 24, 24) and hr.shape == (3, 96, 96)
    # Downscaling the HR crop alone differs only near its borders from cropping the LR.
    down = np.clip(imresize(hr.permute(1, 2, 0).double().numpy(), 0.25), 0, 1)  # LR is clipped to [0, 1]
    assert np.abs(down[3:-3, 3:-3] - lr.permute(1, 2, 0).numpy()[3:-3, 3:-3]).max() < 1e-5
    assert len(SRGANPatches("builtin", scale=4)) == 8 * len(ds)


def test_patch_cache_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path))
    a = SRCNNPatches("builtin", scale=2, stride=33)
    files = list((tmp_path / "patches").glob("srcnn-*.npz"))
    assert len(files) == 1
    b = SRCNNPatches("builtin", scale=2, stride=33)
    assert torch.equal(a.inputs, b.inputs)
    SRCNNPatches("builtin", scale=2, stride=40)
    assert len(list((tmp_path / "patches").glob("srcnn-*.npz"))) == 2


def test_the_cache_follows_a_change_of_the_builtin_images(monkeypatch, tmp_path):
    """The builtin images are not files: the cache key names the set (names and crop size), so a
    change of the set (as when it became 256x256 crops) cannot serve the old set's patches."""
    import srlib.data.datasets as ds
    import srlib.data.patches as patches

    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path))
    n = len(patches.SRCNNPatches("builtin", 3))
    monkeypatch.setattr(ds, "BUILTIN_SIZE", 128)
    monkeypatch.setattr(patches, "BUILTIN_SIZE", 128)
    assert 0 < len(patches.SRCNNPatches("builtin", 3)) < n / 2
    assert len(list((tmp_path / "patches").glob("srcnn-*.npz"))) == 2
