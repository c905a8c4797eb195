"""Reading and writing images, and MATLAB's colour conversions (ITU-R BT.601).

Chapter: the SR problem (book/sr_problem.md).
"""

from __future__ import annotations

import io
import os
import re
import secrets
import struct
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import SRError

__all__ = [
    "Photo", "check_photo_path", "read_photo", "save_photo",
    "quantize", "read_image", "save_image", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y", "to_y"]

# MATLAB rgb2ycbcr: [Y Cb Cr] = OFFSET + MATRIX @ [R G B] with R, G, B in [0, 1], output on 0-255.
MATRIX = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
)
OFFSET = np.array([16.0, 128.0, 128.0])
INVERSE = np.linalg.inv(MATRIX)


def quantize(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``uint8(x)`` on 0-255 values: round half away from zero, clip to [0, 255].

    (numpy's ``round`` rounds halves to even, which changes about one pixel in a hundred of
    a x2 bicubic image.)
    """
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8: ``(H, W)`` for grayscale files, ``(H, W, 3)`` otherwise.

    The EXIF orientation is applied, palette images become RGB, alpha channels are
    dropped, 16-bit gray is scaled to 8 bits (v / 257, rounded; Pillow keeps the high byte
    of 16-bit colour). Any failure raises
    :class:`SRError` naming the file. (:func:`read_photo` keeps depth and alpha.)
    """
    return _open(path, _to_uint8_array)


def _to_uint8_array(im: Image.Image, path: Path) -> np.ndarray:
    ImageOps.exif_transpose(im, in_place=True)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        # 16-bit data (the common case for mode I from PNG); 8-bit data stored as I stays.
        a = a / 257.0 if a.max(initial=0) > 255 or mode.startswith("I;16") else a
        return quantize(a)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a
        return quantize(a)
    if mode in ("1", "L", "LA"):
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array (floats in [0, 1] are scaled, rounded)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = quantize(a.astype(np.float64) * 255.0)
    path = Path(path)
    try:
        Image.fromarray(a).save(path)
    except (OSError, ValueError, KeyError) as e:
        raise SRError(f"{path}: cannot write image ({e})") from None


# ---------------------------------------------------------------------------------------------
# Photos: pixels as the file stores them (8 or 16 bits, float, alpha), for `srlib upscale`.

PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}
DEEP_FORMATS = ("PNG", "TIFF")  # formats that keep 16 bits; float32 needs TIFF
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP", "TGA", "JPEG2000")
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}  # Pillow's defaults (75, 80) blur SR output
ORIENTATION = 0x0112  # the EXIF tag
# EXIF orientation -> the numpy op that shows the image upright (what Pillow's exif_transpose does).
ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a),
}


@dataclass
class Photo:
    """An image file's pixels as stored: what `srlib upscale` reads and writes."""

    pixels: np.ndarray  # (H, W) or (H, W, 3); uint8, uint16, or float32, as the file stores them
    alpha: np.ndarray | None = None  # (H, W), same dtype as pixels, or None

    @property
    def peak(self) -> float:
        """The value of white: 255.0 (uint8), 65535.0 (uint16), 1.0 (float32; values beyond it are kept)."""
        return PEAKS[np.dtype(self.pixels.dtype)]


def read_photo(path: str | Path) -> Photo:
    """Read an image file keeping what it stores: 8 or 16 bits, float, grayscale or RGB, alpha.

    The EXIF orientation is applied; palette images become RGB (+ alpha if transparent);
    CMYK, YCbCr and LAB become RGB. Pillow reads 16-bit colour PNG and TIFF as 8 bits, so
    those go through imagecodecs (PNG) and tifffile (TIFF). Any failure raises one-line
    :class:`SRError` naming the file.
    """
    return _open(path, _to_photo, fallback=_read_tiff)


def save_photo(path: str | Path, photo: Photo) -> None:
    """Write ``photo`` in the format its extension names, keeping depth and alpha, atomically.

    The file is written to a temporary name in the same folder and renamed over ``path``,
    so a crash never leaves half an image. Raises :class:`SRError` when the format cannot
    hold the photo (see :func:`check_photo_path`) or the write fails.
    """
    path = Path(path)
    data = _encode(photo, _format_for(path, photo), path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise SRError(f"{path}: cannot write image ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)


def check_photo_path(path: str | Path, photo_or_kind: Photo | str | np.dtype) -> None:
    """Raise :class:`SRError` if ``save_photo(path, photo)`` would fail for a reason known now.

    Call it before a long computation so its result is not lost at the end: it checks the
    extension, the folder (exists, writable), that ``path`` is not a folder, and that the
    format holds the photo's depth and alpha. A kind (``"uint8"``, ``"uint16"``, ``"float32"``)
    stands for a colour photo of that depth without alpha.
    """
    _format_for(Path(path), photo_or_kind)


def _open(path: str | Path, convert, fallback=None):
    """Open ``path`` with Pillow and return ``convert(image, path)``; ``fallback(path)`` reads
    the TIFFs Pillow cannot identify (float colour, 16-bit gray + alpha)."""
    path = Path(path)
    if not path.is_file():
        raise SRError(f"{path}: no such file")
    with _reading(path):
        try:
            with Image.open(path) as im:
                return convert(im, path)
        except UnidentifiedImageError:
            with open(path, "rb") as f:
                if fallback is None or f.read(4) not in (b"II*\0", b"MM\0*"):  # not a TIFF
                    raise
        return fallback(path)


@contextmanager
def _reading(path: Path):
    """Turn every failure while reading ``path`` into one SRError line naming the file."""
    try:
        with warnings.catch_warnings():  # Pillow only warns between 1x and 2x its pixel limit
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UnidentifiedImageError:
        raise SRError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        n = re.search(r"\((\d+) pixels\)", str(e))  # Pillow's message is the only place that says
        _check_pixels(path, int(n[1]) if n else 0)
        raise SRError(f"{path}: too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error, *_png_errors()) as e:
        raise SRError(f"{path}: cannot read image ({e})") from None  # what decoders of damaged files raise


def _png_errors() -> tuple:
    """imagecodecs' PNG error where it was imported: srlib loads it for 16-bit colour PNG only, so
    that it imports and reads every other image without it (and faster)."""
    codecs = sys.modules.get("imagecodecs")
    return (codecs.PngError,) if codecs else ()


def _check_pixels(path: Path, n: int) -> None:
    """Refuse more pixels than Pillow's limit (a small file can claim a huge image: a decompression bomb)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and n > limit:
        raise SRError(f"{path}: too many pixels ({n:,}; the limit is {limit:,}, PIL.Image.MAX_IMAGE_PIXELS)")


def _to_photo(im: Image.Image, path: Path) -> Photo:
    """A Pillow image as a Photo; 16-bit colour is re-read by a library that keeps 16 bits."""
    rawmode = str(im.tile[0].args) if im.tile else ""  # before loading: loading clears the tile
    if im.format == "PNG" and ";16" in rawmode and not im.mode.startswith("I"):
        import imagecodecs  # Pillow reads 16-bit colour PNG as 8 bits

        return _photo(imagecodecs.png_decode(path.read_bytes()), im.getexif().get(ORIENTATION, 1), path)
    bits = np.atleast_1d(im.tag_v2.get(258, 8)) if im.format == "TIFF" else [8]
    if max(bits) > 8 and im.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _read_tiff(path)
    ImageOps.exif_transpose(im, in_place=True)
    if im.mode.startswith("I") or im.mode == "F":
        return _photo(np.asarray(im), 1, path)
    base = "L" if im.mode in ("1", "L", "LA", "La") else "RGB"  # P, PA, CMYK, YCbCr, LAB, HSV: RGB
    return _photo(np.asarray(im.convert(base + "A" if im.has_transparency_data else base)), 1, path)


def _read_tiff(path: Path) -> Photo:
    """Read a TIFF's first image with tifffile: 16-bit colour, float colour, gray + alpha."""
    with tifffile.TiffFile(path) as tif:
        if not len(tif.pages):
            raise SRError(f"{path}: cannot read image (a TIFF without images)")
        page = tif.pages[0]
        _check_pixels(path, page.imagewidth * page.imagelength)
        if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
            raise SRError(f"{path}: unsupported TIFF colour space {page.photometric.name}")
        a = page.asarray()
        if page.samplesperpixel > 1 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
            a = np.moveaxis(a, 0, -1)
        return _photo(a, page.tags.valueof(ORIENTATION, 1), path)


def _photo(a: np.ndarray, orientation: int, path: Path) -> Photo:
    """Split (H, W, C) samples into pixels and alpha, upright, in a dtype a Photo holds."""
    if a.dtype.kind == "f":
        a = a.astype(np.float32)
    elif a.dtype.kind == "u" and a.dtype.itemsize <= 2:
        a = a.astype(a.dtype.newbyteorder("="))
    elif a.dtype.kind in "iu" and (a.size == 0 or (a.min() >= 0 and a.max() <= 65535)):
        a = a.astype(np.uint16)  # 32-bit integers that fit in 16 bits
    else:
        raise SRError(f"{path}: unsupported pixels ({a.dtype}: 8 or 16 bits, 32-bit integers below 65536, or float)")
    a = ORIENT.get(orientation, lambda a: a)(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3):
        return Photo(np.ascontiguousarray(a))
    if a.ndim == 3 and a.shape[2] in (2, 4):  # gray + alpha, RGB + alpha
        pixels = a[..., 0] if a.shape[2] == 2 else a[..., :3]
        return Photo(np.ascontiguousarray(pixels), np.ascontiguousarray(a[..., -1]))
    raise SRError(f"{path}: unsupported image shape {a.shape}")


def _format_for(path: Path, photo: Photo | str | np.dtype) -> str:
    """The Pillow format name for saving ``photo`` at ``path``, or SRError saying why it cannot be."""
    if not isinstance(photo, Photo):
        photo = Photo(np.zeros((1, 1, 3), np.dtype(photo)))
    px, alpha = photo.pixels, photo.alpha
    if np.dtype(px.dtype) not in PEAKS or not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)):
        raise SRError(f"{path}: cannot save {px.dtype} pixels of shape {px.shape} (uint8, uint16 or float32, "
                      "(H, W) or (H, W, 3))")
    if alpha is not None and (alpha.shape != px.shape[:2] or alpha.dtype != px.dtype):
        raise SRError(f"{path}: alpha {alpha.dtype} {alpha.shape} does not match pixels {px.dtype} {px.shape}")
    if path.is_dir():
        raise SRError(f"{path}: is a folder")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise SRError(f"{path}: unknown image extension {path.suffix!r} (use .png, .tif or .jpg)")
    parent = path.parent
    if not parent.is_dir():
        raise SRError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SRError(f"{path}: folder {parent} is not writable")
    if px.dtype == np.uint16 and fmt not in DEEP_FORMATS:
        raise SRError(f"{path}: {fmt} cannot hold 16-bit pixels (use .png or .tif)")
    if px.dtype == np.float32 and fmt != "TIFF":
        raise SRError(f"{path}: {fmt} cannot hold float pixels (use .tif)")
    if alpha is not None and fmt not in ALPHA_FORMATS:
        raise SRError(f"{path}: {fmt} cannot hold an alpha channel (use .png)")
    tiny = Photo(np.zeros((8, 8) + px.shape[2:], px.dtype), None if alpha is None else np.zeros((8, 8), px.dtype))
    _encode(tiny, fmt, path)  # a trial in memory: catches formats Pillow cannot write in this mode
    return fmt


def _encode(photo: Photo, fmt: str, path: Path) -> bytes:
    """The file's bytes: Pillow for 8 bits, imagecodecs (PNG) or tifffile (TIFF) for 16 bits and float."""
    a = photo.pixels if photo.alpha is None else np.dstack([photo.pixels, photo.alpha])
    buf = io.BytesIO()
    try:
        if a.dtype == np.uint8:
            Image.fromarray(a).save(buf, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
        elif fmt == "PNG":
            import imagecodecs  # 16-bit PNG (Pillow cannot write it in colour)

            return imagecodecs.png_encode(a.copy())  # a copy: imagecodecs refuses odd strides
        else:
            photometric = "rgb" if photo.pixels.ndim == 3 else "minisblack"
            alpha = {"extrasamples": ["unassalpha"], "planarconfig": "contig"} if photo.alpha is not None else {}
            tifffile.imwrite(buf, a, photometric=photometric, compression="zlib", **alpha)
    except (OSError, ValueError, KeyError, TypeError, *_png_errors()) as e:
        raise SRError(f"{path}: cannot write {fmt} image ({e})") from None
    return buf.getvalue()


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB's ``rgb2ycbcr``: uint8 in, uint8 out (rounded); float in [0, 1] in, float out."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise SRError(f"rgb_to_ycbcr: expected an (H, W, 3) image, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        return quantize(rgb.astype(np.float64) / 255.0 @ MATRIX.T + OFFSET)
    return (rgb.astype(np.float64) @ MATRIX.T + OFFSET) / 255.0


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """MATLAB's ``ycbcr2rgb``, the inverse of :func:`rgb_to_ycbcr` (same dtype rules)."""
    ycc = np.asarray(ycc)
    if ycc.ndim != 3 or ycc.shape[-1] != 3:
        raise SRError(f"ycbcr_to_rgb: expected an (H, W, 3) image, got shape {ycc.shape}")
    if ycc.dtype == np.uint8:
        return quantize((ycc.astype(np.float64) - OFFSET) @ INVERSE.T * 255.0)
    return (ycc.astype(np.float64) * 255.0 - OFFSET) @ INVERSE.T


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of :func:`rgb_to_ycbcr` (same dtype rules)."""
    return rgb_to_ycbcr(rgb)[..., 0]


def to_y(image: np.ndarray) -> np.ndarray:
    """Y of a colour image; a grayscale ``(H, W)`` image is its own Y (as the benchmarks treat it)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    return rgb_to_y(image)
