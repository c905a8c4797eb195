"""Crops and degradations: how the papers make a low-resolution image from a high one.

Chapter: the SR problem (book/sr_problem.md).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import SRError
from .resize import imresize

__all__ = ["modcrop", "bicubic_degrade", "bicubic_restore", "gaussian_degrade"]


def modcrop(image: np.ndarray, scale: float) -> np.ndarray:
    """Crop at the top-left so that height and width are multiples of ``scale``.

    For a fractional scale p/q (2.5 = 5/2) the sides become multiples of p, so that the LR
    image, q/p of the HR size, is a whole number of pixels and its grid lines up with the HR one.
    """
    a = np.asarray(image)
    s = Fraction(scale).limit_denominator(1000).numerator
    h, w = a.shape[0] - a.shape[0] % s, a.shape[1] - a.shape[1] % s
    if h == 0 or w == 0:
        raise SRError(f"modcrop: a {a.shape[:2]} image is smaller than the scale {s}")
    return a[:h, :w]


def bicubic_degrade(hr: np.ndarray, scale: float) -> np.ndarray:
    """LR = MATLAB ``imresize(hr, 1/scale, 'bicubic')`` (float in, float out, no rounding)."""
    return imresize(hr, 1.0 / scale)


def bicubic_restore(low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic upscaling of ``low`` to ``shape`` (H, W): the baseline and the models' input."""
    return imresize(low, size=tuple(shape[:2]))


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """A normalised 2-D Gaussian (size defaults to 2 ceil(3 sigma) + 1)."""
    size = size or 2 * math.ceil(3 * sigma) + 1
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return np.outer(g, g) / np.outer(g, g).sum()


def gaussian_degrade(hr: np.ndarray, scale: int, sigma: float = 1.0) -> np.ndarray:
    """SRCNN's degradation (section 4): Gaussian blur, subsample by ``scale``, bicubic up.

    Returns the interpolated image, the same size as ``hr`` (after :func:`modcrop`).
    Borders are mirrored symmetrically, as in the resize.
    """
    from scipy.ndimage import convolve

    if scale != int(scale) or scale < 1:
        raise SRError(f"gaussian_degrade: scale must be a positive integer, got {scale}")
    a = modcrop(np.asarray(hr, dtype=np.float64), scale)
    k = gaussian_kernel(sigma)
    if a.ndim == 3:
        k = k[..., None]
    blurred = convolve(a, k, mode="reflect")  # scipy's reflect repeats the edge: symmetric
    low = blurred[:: int(scale), :: int(scale)]
    return imresize(low, size=a.shape[:2])
