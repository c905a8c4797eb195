import os
import struct
import subprocess
import sys
import zlib

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from srlib import SRError
from srlib.data import image
from srlib.data.image import (
    Photo,
    check_photo_path,
    quantize,
    read_image,
    read_photo,
    rgb_to_ycbcr,
    save_image,
    save_photo,
    to_y,
    ycbcr_to_rgb,
)


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


# --- Photos: what `srlib upscale` reads and writes, depth and alpha kept -------------------------


def _chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, tag, data, CRC."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _grad(h=12, w=10, peak=255, dtype=np.uint8):
    """A colour image whose every pixel differs, so flips and rotations show."""
    a = np.arange(h * w * 3, dtype=np.float64).reshape(h, w, 3)
    return (a * peak / a.max()).astype(dtype)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_table_matches_pillow(orientation):
    im = Image.fromarray(_grad())
    im.getexif()[0x0112] = orientation
    want = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(image.ORIENT.get(orientation, lambda a: a)(_grad()), want)


@pytest.mark.parametrize("orientation, turns", [(6, -1), (8, 1)])
def test_exif_rotated_jpeg_is_read_upright(tmp_path, orientation, turns):
    path = tmp_path / "phone.jpg"
    Image.fromarray(_grad()).save(path, exif=_exif(orientation))
    with Image.open(path) as im:
        stored = np.asarray(im)  # as the camera stored it, on its side
    upright = np.rot90(stored, turns)
    assert upright.shape == (10, 12, 3)
    np.testing.assert_array_equal(read_image(path), upright)
    photo = read_photo(path)
    np.testing.assert_array_equal(photo.pixels, upright)
    assert photo.alpha is None and photo.peak == 255.0


def test_16bit_tiff_and_png_orientation(tmp_path):
    a = _grad(peak=65535, dtype=np.uint16)
    tifffile.imwrite(tmp_path / "r.tif", a, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_photo(tmp_path / "r.tif").pixels, np.rot90(a, -1))
    png = imagecodecs.png_encode(a)  # 48-bit PNG with an eXIf chunk before IDAT
    exif = _exif(8).tobytes()[6:]  # PNG's eXIf holds the TIFF part, without "Exif\0\0"
    (tmp_path / "r.png").write_bytes(png[:33] + _chunk(b"eXIf", exif) + png[33:])
    np.testing.assert_array_equal(read_photo(tmp_path / "r.png").pixels, np.rot90(a, 1))


def test_modes_as_photos(tmp_path):
    rgb = _grad()
    alpha = (np.arange(120, dtype=np.uint8) * 2).reshape(12, 10)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    p = read_photo(tmp_path / "rgba.png")
    np.testing.assert_array_equal(p.pixels, rgb)
    np.testing.assert_array_equal(p.alpha, alpha)
    Image.fromarray(np.dstack([rgb[..., 0], alpha])).save(tmp_path / "la.png")
    p = read_photo(tmp_path / "la.png")
    assert p.pixels.shape == (12, 10) and np.array_equal(p.alpha, alpha) and np.array_equal(p.pixels, rgb[..., 0])
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "pt.png", transparency=3)
    p = read_photo(tmp_path / "p.png")
    assert p.alpha is None and np.array_equal(p.pixels, np.asarray(pal.convert("RGB")))
    p = read_photo(tmp_path / "pt.png")
    np.testing.assert_array_equal(p.pixels, np.asarray(pal.convert("RGB")))
    np.testing.assert_array_equal(p.alpha, np.where(np.asarray(pal) == 3, 0, 255))
    Image.fromarray(rgb).convert("1").save(tmp_path / "1.png")
    p = read_photo(tmp_path / "1.png")
    assert p.pixels.dtype == np.uint8 and p.pixels.shape == (12, 10) and set(np.unique(p.pixels)) <= {0, 255}
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    p = read_photo(tmp_path / "cmyk.jpg")
    assert p.pixels.dtype == np.uint8 and p.pixels.shape == (12, 10, 3)


def test_16bit_files_read_bit_exact(tmp_path):
    a = _grad(peak=65535, dtype=np.uint16)
    Image.fromarray(a[..., 1]).save(tmp_path / "g.png")  # Pillow writes 16-bit gray itself
    (tmp_path / "rgb.png").write_bytes(imagecodecs.png_encode(a))  # Pillow would read this as 8 bits
    tifffile.imwrite(tmp_path / "rgb.tif", a, photometric="rgb")
    for name, want in [("g.png", a[..., 1]), ("rgb.png", a), ("rgb.tif", a)]:
        p = read_photo(tmp_path / name)
        assert p.pixels.dtype == np.uint16 and p.peak == 65535.0 and p.pixels.max() > 255
        np.testing.assert_array_equal(p.pixels, want)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), a >> 8)  # read_image: Pillow's 8 bits


def test_float_tiff_is_not_clipped(tmp_path):
    f = np.linspace(-0.5, 3.0, 120, dtype=np.float32).reshape(12, 10)
    Image.fromarray(f).save(tmp_path / "f.tif")  # mode F
    p = read_photo(tmp_path / "f.tif")
    assert p.pixels.dtype == np.float32 and p.peak == 1.0
    np.testing.assert_array_equal(p.pixels, f)
    save_photo(tmp_path / "g.tif", p)
    with Image.open(tmp_path / "g.tif") as im:
        assert im.mode == "F" and np.array_equal(np.asarray(im), f)


def test_int32_tiff(tmp_path):
    Image.fromarray(np.arange(120, dtype=np.int32).reshape(12, 10) * 500).save(tmp_path / "i.tif")
    p = read_photo(tmp_path / "i.tif")
    assert p.pixels.dtype == np.uint16 and p.pixels.max() == 119 * 500
    Image.fromarray(np.arange(120, dtype=np.int32).reshape(12, 10) * 1000).save(tmp_path / "big.tif")
    with pytest.raises(SRError, match="big.tif: unsupported pixels"):
        read_photo(tmp_path / "big.tif")


@pytest.mark.parametrize("dtype, peak, ext", [
    (np.uint8, 255, ".png"), (np.uint8, 255, ".tif"), (np.uint16, 65535, ".png"), (np.uint16, 65535, ".tif"),
    (np.float32, 4.0, ".tif"),  # PNG holds no floats
])
@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("alpha", [False, True])
def test_photo_round_trip_is_exact(tmp_path, dtype, peak, ext, colour, alpha):
    a = _grad(peak=peak, dtype=dtype)
    photo = Photo(a if colour else a[..., 0].copy(), a[..., 2].copy() if alpha else None)
    save_photo(tmp_path / f"x{ext}", photo)
    back = read_photo(tmp_path / f"x{ext}")
    assert back.pixels.dtype == dtype and back.pixels.shape == photo.pixels.shape
    np.testing.assert_array_equal(back.pixels, photo.pixels)
    assert (back.alpha is None) == (not alpha) and (not alpha or np.array_equal(back.alpha, photo.alpha))
    assert [f.name for f in tmp_path.iterdir()] == [f"x{ext}"]  # no temporary file left


@pytest.mark.parametrize("read", [read_image, read_photo])
def test_huge_header_is_refused(tmp_path, read, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(path)
    b = bytearray(path.read_bytes())  # signature, then IHDR: length, tag, width, height, ..., CRC
    b[8:33] = _chunk(b"IHDR", struct.pack(">II", 30000, 30000) + bytes(b[24:29]))
    path.write_bytes(bytes(b))
    with pytest.raises(SRError, match=r"huge.png: too many pixels \(900,000,000; the limit is"):
        read(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # between 1x and 2x the limit Pillow only warns
    Image.fromarray(_grad()).save(tmp_path / "warn.png")
    with pytest.raises(SRError, match=r"warn.png: too many pixels \(120; the limit is 100"):
        read(tmp_path / "warn.png")
    tifffile.imwrite(tmp_path / "f.tif", _grad(peak=1.0, dtype=np.float32), photometric="rgb")  # tifffile's path
    with pytest.raises(SRError, match=r"f.tif: too many pixels \(120; the limit is 100"):
        read_photo(tmp_path / "f.tif")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
def test_read_photo_errors_name_the_file(tmp_path):
    with pytest.raises(SRError, match="missing.png: no such file"):
        read_photo(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(SRError, match="notes.png: not an image"):
        read_photo(tmp_path / "notes.png")
    (tmp_path / "notes.tif").write_bytes(b"II*\0 not really a TIFF")
    with pytest.raises(SRError, match="notes.tif: cannot read image"):
        read_photo(tmp_path / "notes.tif")
    for name, data in [("cut.png", _grad()), ("cut16.png", _grad(peak=65535, dtype=np.uint16))]:
        (tmp_path / name).write_bytes(imagecodecs.png_encode(data)[:-40])
        with pytest.raises(SRError, match=f"{name}: cannot read image"):
            read_photo(tmp_path / name)


@pytest.mark.parametrize("name, photo, why", [
    ("nowhere/x.png", Photo(_grad()), "folder .*nowhere does not exist"),
    ("x.xyz", Photo(_grad()), "unknown image extension '.xyz'"),
    ("x", Photo(_grad()), "unknown image extension ''"),
    ("x.jpg", Photo(_grad(peak=65535, dtype=np.uint16)), r"JPEG cannot hold 16-bit pixels \(use .png or .tif\)"),
    ("x.jpg", Photo(_grad(), _grad()[..., 0].copy()), r"JPEG cannot hold an alpha channel \(use .png\)"),
    ("x.png", Photo(_grad(peak=1.0, dtype=np.float32)), r"PNG cannot hold float pixels \(use .tif\)"),
    ("sub", Photo(_grad()), "sub: is a folder"),
    ("x.png", Photo(_grad().astype(np.int64)), "cannot save int64 pixels"),
    ("x.jpg", "uint16", "JPEG cannot hold 16-bit"),
])
def test_unsavable_paths_are_refused_before_and_at_save(tmp_path, name, photo, why):
    (tmp_path / "sub").mkdir()
    with pytest.raises(SRError, match=why):
        check_photo_path(tmp_path / name, photo)
    if isinstance(photo, Photo):
        with pytest.raises(SRError, match=why):
            save_photo(tmp_path / name, photo)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["sub"]


def test_check_accepts_what_save_writes(tmp_path):
    for name, kind in [("a.png", "uint16"), ("a.tif", "float32"), ("a.jpg", "uint8"), ("a.webp", Photo(_grad()))]:
        check_photo_path(tmp_path / name, kind)


def test_failed_save_leaves_no_temporary_file_and_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    save_photo(path, Photo(_grad()))
    old = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SRError, match="out.png: cannot write image .*disk full"):
        save_photo(path, Photo(_grad(peak=65535, dtype=np.uint16)))
    assert [f.name for f in tmp_path.iterdir()] == ["out.png"] and path.read_bytes() == old


def test_srlib_imports_and_reads_8_bit_images_without_imagecodecs(tmp_path):
    """imagecodecs is loaded for 16-bit colour PNG only: srlib and its notebooks' modules import, and
    8-bit images read and write, where it is missing (a GPU machine without it, say)."""
    Image.fromarray(_grad()).save(tmp_path / "a.png")
    code = ("import sys; sys.modules['imagecodecs'] = None\n"  # any import of it fails
            "import srlib, srlib.notebook, srlib.train, srlib.pretrained, srlib.perceptual, srlib.sparse\n"
            "from srlib.data import read_image, save_image\n"
            f"p = read_image({str(tmp_path / 'a.png')!r}); save_image({str(tmp_path / 'b.png')!r}, p)\n"
            "assert 'imagecodecs' not in [m for m, v in sys.modules.items() if v is not None]; print('ok')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr[-2000:]
