import numpy as np
import pytest
from PIL import Image

from srlib import SRError
from srlib.data.image import quantize, read_image, rgb_to_ycbcr, save_image, to_y, ycbcr_to_rgb


def test_quantize_rounds_half_away_from_zero_like_matlab():
    np.testing.assert_array_equal(quantize([0.5, 1.5, 2.5, 254.5, -3, 300, 1.49]), [1, 2, 3, 255, 0, 255, 1])


def test_ycbcr_formula_and_rounding():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [10, 200, 30]]], np.uint8)
    ycc = rgb_to_ycbcr(rgb)
    r, g, b = rgb[0].T / 255.0
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    np.testing.assert_array_equal(ycc[0, :, 0], np.floor(y + 0.5))
    # Studio swing: white is 235, black 16, pure colours in the BT.601 corners.
    assert ycc[0, 3].tolist() == [235, 128, 128] and ycc[0, 4].tolist() == [16, 128, 128]
    assert ycc[0, 0].tolist() == [81, 90, 240]


def test_ycbcr_round_trip(rng):
    rgb = rng.random((20, 30, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)
    u8 = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    back = ycbcr_to_rgb(rgb_to_ycbcr(u8))
    assert back.dtype == np.uint8 and np.abs(back.astype(int) - u8).max() <= 2  # 8-bit rounding twice


def test_grayscale_is_its_own_y():
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert to_y(g) is g or np.array_equal(to_y(g), g)
    # Expanding to RGB first would change it (studio swing): the benchmark must not do that.
    assert not np.array_equal(to_y(np.repeat(g[..., None], 3, -1)), g)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "I;16", "1"])
def test_read_modes(tmp_path, mode):
    rgb = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(12, 10, 3)
    base = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray((np.arange(120).reshape(12, 10) * 500).astype(np.uint16))
    elif mode == "P":
        im = base.quantize(16)
    else:
        im = base.convert(mode)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    im.save(path)
    a = read_image(path)
    assert a.dtype == np.uint8 and a.shape[:2] == (12, 10)
    assert a.ndim == (3 if mode in ("RGB", "RGBA", "P") else 2)
    if mode in ("RGB", "RGBA"):
        np.testing.assert_array_equal(a, rgb)
    if mode == "P":
        np.testing.assert_array_equal(a, np.asarray(im.convert("RGB")))
    if mode == "I;16":  # 16-bit scaled to 8 bits: v / 257, rounded
        np.testing.assert_array_equal(a, quantize(np.arange(120).reshape(12, 10) * 500 / 257))


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(SRError, match="missing.png: no such file"):
        read_image(tmp_path / "missing.png")
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(SRError, match="notes.png: not an image"):
        read_image(txt)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(SRError, match="cut.png: cannot read image"):
        read_image(cut)


def test_save_and_read_back(tmp_path):
    a = (np.arange(300).reshape(10, 10, 3) % 256).astype(np.uint8)
    save_image(tmp_path / "a.png", a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), a)
    save_image(tmp_path / "f.png", np.full((4, 4), 0.5))
    assert read_image(tmp_path / "f.png")[0, 0] == 128  # 127.5 rounds up, as MATLAB's uint8
