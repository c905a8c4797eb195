"""Reading and writing images, and MATLAB's colour conversions (ITU-R BT.601)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import SRError

__all__ = ["quantize", "read_image", "save_image", "rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_y", "to_y"]

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

    Palette images become RGB, alpha channels are
    dropped, 16-bit files are scaled to 8 bits (v / 257, rounded). Any failure raises
    :class:`SRError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise SRError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                return _to_uint8_array(im)
    except UnidentifiedImageError:
        raise SRError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as e:
        raise SRError(f"{path}: cannot read image ({e})") from None


def _to_uint8_array(im: Image.Image) -> np.ndarray:
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
