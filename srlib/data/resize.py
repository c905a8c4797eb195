"""MATLAB-compatible bicubic ``imresize``, in numpy and in (batched, differentiable) torch.

The published SR tables were computed with MATLAB's ``imresize(img, s, 'bicubic')``;
PIL's and OpenCV's bicubic differ from it (no antialiasing, other kernel or borders), and
that alone moves PSNR by tenths of a dB. This module reproduces MATLAB's algorithm:

* the cubic kernel of Keys with a = -0.5;
* when downscaling, the kernel stretched by 1/s so that it spans 4/s input pixels
  (antialiasing);
* output pixel x (1-based) taken at input coordinate u = x/s + (1 - 1/s)/2;
* weights normalised to sum to one per output pixel;
* indices outside the image mirrored symmetrically (..., 2, 1, 1, 2, ...);
* separable: one 1-D resize per axis.

Each 1-D resize is a matrix (out x in) applied along an axis, so both versions share
:func:`resize_matrix`, and the torch one is a pair of matrix products: differentiable and
on any device.

Chapter: the SR problem (book/sr_problem.md).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..errors import SRError
from .image import quantize

__all__ = ["cubic", "resize_matrix", "resize_sparse", "output_shape", "imresize", "imresize_torch"]


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (MATLAB's uses a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=256)
def _taps(in_len: int, out_len: int, scale: float, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """The input index (0-based, mirrored) and weight of every tap of every output pixel: ``(out, taps)``."""
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda x: scale * cubic(scale * x)  # noqa: E731  (stretched kernel)
        width = width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # input coordinate of each output pixel (1-based)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # (out, taps), 1-based
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # symmetric padding
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    idx.setflags(write=False)
    w.setflags(write=False)
    return idx, w


@lru_cache(maxsize=256)
def _matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    idx, w = _taps(in_len, out_len, scale, antialias)
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), idx.shape[1]), idx.ravel()), w.ravel())
    m.setflags(write=False)
    return m


def resize_matrix(in_len: int, out_len: int, scale: float | None = None, antialias: bool = True) -> np.ndarray:
    """The ``(out_len, in_len)`` matrix of MATLAB's 1-D bicubic resize (float64, read-only).

    ``scale`` defaults to ``out_len / in_len``; MATLAB uses the scale factor it was given,
    which matters for fractional scales where the sizes were rounded up.
    """
    if in_len < 1 or out_len < 1:
        raise SRError(f"imresize: lengths must be positive, got {in_len} -> {out_len}")
    return _matrix(int(in_len), int(out_len), float(scale if scale is not None else out_len / in_len), bool(antialias))


def resize_sparse(in_len: int, out_len: int, scale: float | None = None, antialias: bool = True):
    """:func:`resize_matrix` as a sparse CSR matrix (``scipy.sparse.csr_array``).

    For large images (the dense matrix of an 8000-pixel side is 256 MB) and for resizing in
    tiles: a product with any block of its rows and columns computes each output pixel from
    its own few taps in one fixed order, so a tile gets exactly the numbers of the whole image.
    """
    from scipy.sparse import csr_array

    if in_len < 1 or out_len < 1:
        raise SRError(f"imresize: lengths must be positive, got {in_len} -> {out_len}")
    idx, w = _taps(int(in_len), int(out_len), float(scale if scale is not None else out_len / in_len),
                   bool(antialias))
    rows = np.repeat(np.arange(out_len), idx.shape[1])
    m = csr_array((w.ravel(), (rows, idx.ravel())), shape=(out_len, in_len))
    m.sum_duplicates()  # mirrored taps that hit the same pixel are added, as in the dense matrix
    return m


def _check_scale(scale: float) -> float:
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise SRError(f"imresize: scale must be a number, got {scale!r}") from None
    if not math.isfinite(scale) or scale <= 0:
        raise SRError(f"imresize: scale must be a positive number, got {scale}")
    return scale


def output_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ``ceil(scale * size)`` per axis."""
    scale = _check_scale(scale)
    # The small tolerance keeps 255 * (1/3) at 85, not 86, as in exact arithmetic.
    return tuple(max(1, math.ceil(scale * n - 1e-9)) for n in shape)  # type: ignore[return-value]


def _plan(shape: tuple[int, int], scale: float | None, size: tuple[int, int] | None):
    if (scale is None) == (size is None):
        raise SRError("imresize: give exactly one of scale and size")
    if size is not None:
        size = tuple(int(n) for n in size)
        if len(size) != 2 or min(size) < 1:
            raise SRError(f"imresize: size must be two positive integers, got {size}")
        return size, (size[0] / shape[0], size[1] / shape[1])
    scale = _check_scale(scale)
    return output_shape(shape, scale), (scale, scale)


def imresize(image: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """MATLAB's ``imresize(image, scale, 'bicubic')`` (or ``imresize(image, size, ...)``).

    ``image`` is ``(H, W)`` or ``(H, W, C)``. A float image is resized in float64 and not
    rounded; a uint8 image is rounded back to uint8 after each 1-D pass, as MATLAB does.
    """
    a = np.asarray(image)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 1:
        raise SRError(f"imresize: expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    (oh, ow), (sh, sw) = _plan(a.shape[:2], scale, size)
    mh = resize_matrix(a.shape[0], oh, sh, antialias)
    mw = resize_matrix(a.shape[1], ow, sw, antialias)
    x = a.astype(np.float64)
    # MATLAB resizes the axis with the smaller scale first (rows first on a tie), and on
    # uint8 input each pass returns uint8: the intermediate image is rounded too.
    for axis in ((1, 0) if sw < sh else (0, 1)):
        x = np.moveaxis(np.tensordot(mh if axis == 0 else mw, x, axes=([1], [axis])), 0, axis)
        if a.dtype == np.uint8:
            x = quantize(x).astype(np.float64)
    return x.astype(np.uint8) if a.dtype == np.uint8 else x


def imresize_torch(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
                   antialias: bool = True) -> torch.Tensor:
    """Batched, differentiable MATLAB bicubic on ``(..., H, W)`` float tensors, any device.

    Same numbers as :func:`imresize` on float input (to float precision); no rounding.
    """
    if not torch.is_tensor(x) or x.ndim < 2 or not x.is_floating_point():
        raise SRError("imresize_torch: expected a floating-point tensor of shape (..., H, W)")
    (oh, ow), (sh, sw) = _plan(tuple(x.shape[-2:]), scale, size)
    mh = torch.tensor(resize_matrix(x.shape[-2], oh, sh, antialias), dtype=x.dtype, device=x.device)
    mw = torch.tensor(resize_matrix(x.shape[-1], ow, sw, antialias), dtype=x.dtype, device=x.device)
    return mh @ x @ mw.T
