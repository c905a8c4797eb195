"""PSNR and SSIM exactly as the papers' MATLAB code computes them.

Both take the result and the ground truth as images, bring them to what the published
tables measured, and compare:

1. quantise to 8 bits (floats are read as [0, 1] and rounded like MATLAB's ``uint8``);
2. take the luminance Y (MATLAB's ``rgb2ycbcr``); a grayscale image is its own Y;
3. shave ``shave`` pixels (the scale factor, by convention) from every border;
4. PSNR = 10 log10(255^2 / MSE); SSIM as Wang et al.'s ``ssim_index.m``: 11x11 Gaussian
   window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, the mean of
   the SSIM map.

The numpy functions measure one image; the torch ones measure a batch on any device.

Chapter: the SR problem (book/sr_problem.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from .data.degrade import gaussian_kernel
from .data.image import MATRIX, OFFSET, quantize, rgb_to_ycbcr, to_y
from .errors import SRError

__all__ = ["psnr", "ssim", "channel_psnr", "psnr_torch", "ssim_torch", "prepare", "quantize_torch", "y_torch"]


def prepare(image: np.ndarray, shave: int = 0) -> np.ndarray:
    """8-bit Y of ``image`` (uint8, or float in [0, 1]), shaved, as float64 on 0-255."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = quantize(a.astype(np.float64) * 255.0)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise SRError(f"metrics: expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    y = to_y(a).astype(np.float64)
    if shave:
        y = y[shave:-shave, shave:-shave]
    return y


def _prepared(img: np.ndarray, ref: np.ndarray, shave: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(img), np.asarray(ref)
    if a.shape[:2] != b.shape[:2]:
        raise SRError(f"metrics: image is {a.shape[:2]} but reference is {b.shape[:2]}")
    shave = int(shave)
    if shave < 0 or 2 * shave >= min(a.shape[:2]):
        raise SRError(f"metrics: cannot shave {shave} pixels from a {a.shape[:2]} image")
    return prepare(a, shave), prepare(b, shave)


def psnr(img: np.ndarray, ref: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB on 8-bit Y with ``shave`` border pixels removed (inf for identical images)."""
    a, b = _prepared(img, ref, shave)
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def channel_psnr(img: np.ndarray, ref: np.ndarray, shave: int = 0) -> dict[str, float]:
    """PSNR of each channel of two colour images, as the SRCNN paper's Table 5 (section 4.4):
    ``Y``, ``Cb``, ``Cr`` (MATLAB's ``rgb2ycbcr`` of the 8-bit images) and ``RGB`` (all three
    RGB channels at once), after quantising to 8 bits and shaving ``shave`` pixels."""
    a, b = np.asarray(img), np.asarray(ref)
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 3:
        raise SRError(f"channel_psnr: expected two (H, W, 3) images of one shape, got {a.shape} and {b.shape}")
    a8, b8 = (x if x.dtype == np.uint8 else quantize(x.astype(np.float64) * 255.0) for x in (a, b))
    crop = np.s_[shave:a.shape[0] - shave, shave:a.shape[1] - shave]

    def db(u: np.ndarray, v: np.ndarray) -> float:
        mse = np.mean((u[crop].astype(np.float64) - v[crop].astype(np.float64)) ** 2)
        return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)

    ya, yb = rgb_to_ycbcr(a8), rgb_to_ycbcr(b8)
    return {"Y": db(ya[..., 0], yb[..., 0]), "Cb": db(ya[..., 1], yb[..., 1]), "Cr": db(ya[..., 2], yb[..., 2]),
            "RGB": db(a8, b8)}


def ssim(img: np.ndarray, ref: np.ndarray, shave: int = 0) -> float:
    """SSIM on 8-bit Y as Wang et al.'s ``ssim_index.m`` (scikit-image, matching settings)."""
    a, b = _prepared(img, ref, shave)
    if min(a.shape) < 11:
        raise SRError(f"ssim: image of {a.shape} after shaving is smaller than the 11x11 window")
    # gaussian_weights with sigma 1.5 gives the 11x11 window; the map is cropped by 5 pixels
    # per side before the mean, which is 'valid' filtering; population statistics.
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, K1=0.01, K2=0.03))


# ----- torch versions, for batches ------------------------------------------------------


def quantize_torch(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's ``uint8(255 x)`` for x in [0, 1], kept as a float tensor on 0-255."""
    return torch.clamp(torch.floor(x * 255.0 + 0.5), 0, 255)


def y_torch(x: torch.Tensor) -> torch.Tensor:
    """8-bit Y of a batch ``(N, 1 or 3, H, W)`` of 0-255 integer-valued floats, as MATLAB."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise SRError(f"metrics: expected a (N, 1 or 3, H, W) batch, got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x
    w = torch.tensor(MATRIX[0] / 255.0, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return torch.clamp(torch.floor((x * w).sum(1, keepdim=True) + OFFSET[0] + 0.5), 0, 255)


def _prepare_torch(x: torch.Tensor, ref: torch.Tensor, shave: int) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape != ref.shape:
        raise SRError(f"metrics: batch is {tuple(x.shape)} but reference is {tuple(ref.shape)}")
    a = y_torch(quantize_torch(x.double()))
    b = y_torch(quantize_torch(ref.double()))
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    return a, b


def psnr_torch(x: torch.Tensor, ref: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """Per-image PSNR (N,) of a batch in [0, 1] against its reference, as :func:`psnr`."""
    a, b = _prepare_torch(x, ref, shave)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: a normalised 2-D Gaussian."""
    return gaussian_kernel(sigma, size)


def ssim_torch(x: torch.Tensor, ref: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """Per-image SSIM (N,) of a batch in [0, 1] against its reference, as :func:`ssim`."""
    a, b = _prepare_torch(x, ref, shave)
    w = torch.tensor(gaussian_window(), dtype=a.dtype, device=a.device)[None, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)  # 'valid' filtering
    saa = F.conv2d(a * a, w) - mu_a**2
    sbb = F.conv2d(b * b, w) - mu_b**2
    sab = F.conv2d(a * b, w) - mu_a * mu_b
    smap = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return smap.mean(dim=(1, 2, 3))
