"""How much fine detail an image has: its radially averaged power spectrum.

A x``s`` LR image cannot hold frequencies above its Nyquist limit, 1 / (2 s) cycles per HR
pixel: whatever an SR method puts above it is invented. Comparing the energy there with
the HR image's says how much high-frequency detail a method recovers (MSE-trained networks
too little, a GAN about as much as the HR image, not necessarily the right detail).
:func:`periodic_energy_ratio` measures one kind of invented detail: a grid, the pattern that
repeats every few pixels which sub-pixel convolution makes when the loss does not forbid it;
:func:`streak_ratio` another: stripes that run parallel to the edges, beside them, which the
HR image does not have.

Chapter: SRGAN (notebook 04).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.feature import canny

from .data.image import to_y
from .errors import SRError

__all__ = ["power_spectrum", "radial_power_spectrum", "band_energy", "high_frequency_ratio", "periodic_energy",
           "periodic_energy_ratio", "streak_map", "streak_ratio"]


def _gray(image: np.ndarray) -> np.ndarray:
    """Y of an RGB image, or the image itself, as float64 on the [0, 1] scale (uint8 divided by 255)."""
    a = np.asarray(image)
    y = to_y(a) if a.ndim == 3 else a
    if y.ndim != 2:
        raise SRError(f"expected an (H, W) or (H, W, 3) image, got shape {a.shape}")
    return y.astype(np.float64) / (255.0 if y.dtype == np.uint8 else 1.0)


def power_spectrum(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(radius, power)``: the 2-D power spectrum of Y (mean removed, Hann-windowed so the
    image borders add no false detail) and the radius of every frequency in cycles/pixel."""
    y = _gray(image)
    h, w = y.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f = np.fft.fft2((y - y.mean()) * win)
    power = np.abs(f) ** 2 / (win ** 2).sum()
    return _radius(y.shape), power


def _radius(shape: tuple[int, int]) -> np.ndarray:
    """The radius of every frequency of an FFT of that shape, in cycles/pixel."""
    return np.hypot(*np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij"))


def radial_power_spectrum(image: np.ndarray, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(frequency, power)``: the mean power in ``bins`` rings from 0 to 0.5 cycles/pixel
    (ring centres in cycles/pixel)."""
    radius, power = power_spectrum(image)
    edges = np.linspace(0, 0.5, bins + 1)
    idx = np.digitize(radius.ravel(), edges) - 1
    keep = (idx >= 0) & (idx < bins)
    total = np.bincount(idx[keep], power.ravel()[keep], minlength=bins)
    count = np.bincount(idx[keep], minlength=bins)
    return 0.5 * (edges[1:] + edges[:-1]), total / np.maximum(count, 1)


def band_energy(image: np.ndarray, low: float, high: float = 0.5) -> float:
    """Total power at radii in (``low``, ``high``] cycles/pixel."""
    radius, power = power_spectrum(image)
    return float(power[(radius > low) & (radius <= high)].sum())


def high_frequency_ratio(image: np.ndarray, reference: np.ndarray, scale: float) -> float:
    """Energy above the LR Nyquist frequency 1 / (2 ``scale``), of ``image`` over ``reference``'s.

    1 means as much invented fine detail as the HR ``reference`` has; bicubic and
    MSE-trained networks stay well below 1.
    """
    if np.asarray(image).shape[:2] != np.asarray(reference).shape[:2]:
        raise SRError(f"image {np.asarray(image).shape} and reference {np.asarray(reference).shape} differ in size")
    cut = 0.5 / scale
    return band_energy(image, cut) / band_energy(reference, cut)


def periodic_energy(image: np.ndarray, period: int) -> float:
    """Energy of Y (per pixel) at the frequencies of the patterns that repeat every ``period``
    pixels: ``k / period`` cycles per pixel along each axis, ``k = 0 .. period - 1``, the zero
    frequency excluded. The image is cropped to a multiple of ``period`` and not windowed, so
    that such a pattern falls exactly on these frequencies."""
    y = _gray(image)
    h, w = y.shape[0] - y.shape[0] % period, y.shape[1] - y.shape[1] % period
    if h == 0 or w == 0:
        raise SRError(f"an image of shape {y.shape} holds no whole period of {period} pixels")
    y = y[:h, :w]
    power = np.abs(np.fft.fft2(y - y.mean())) ** 2 / (h * w)
    rows, cols = np.arange(period) * h // period, np.arange(period) * w // period
    return float(power[np.ix_(rows, cols)].sum() - power[0, 0])


def periodic_energy_ratio(image: np.ndarray, reference: np.ndarray, period: int) -> float:
    """:func:`periodic_energy` of ``image`` over that of ``reference`` (the HR image): about 1 or
    less for a faithful or smooth output, far above 1 for an output with a grid of that period."""
    return periodic_energy(image, period) / max(periodic_energy(reference, period), 1e-20)


NEAR_EDGES = (3, 12)  # streak_ratio looks this many HR pixels away from an edge (the edge itself excluded)


def _above_nyquist(y: np.ndarray, scale: float) -> np.ndarray:
    """The part of ``y`` above the LR Nyquist frequency 1 / (2 ``scale``): what the LR image cannot hold.
    Mirror-padded first, so that the FFT's wrap-around adds no false edge at the borders."""
    pad = 16
    big = np.pad(y, pad, mode="symmetric")
    f = np.fft.fft2(big - big.mean()) * (_radius(big.shape) > 0.5 / scale)
    return np.real(np.fft.ifft2(f))[pad:-pad, pad:-pad]


def streak_map(image: np.ndarray, reference: np.ndarray, scale: float) -> np.ndarray:
    """Where :func:`streak_ratio` looks, what it finds: per pixel, the invented detail's energy
    across the edges minus along them, over the reference's mean detail energy at those pixels;
    NaN at the pixels it does not look at. ``np.nanmean`` of it is the streak ratio."""
    y, ref = _gray(image), _gray(reference)
    if y.shape != ref.shape:
        raise SRError(f"image {y.shape} and reference {ref.shape} differ in size")
    if min(y.shape) < 32:
        raise SRError(f"streak_ratio needs an image of at least 32 x 32 pixels, got {y.shape}")
    out, hr = _above_nyquist(y, scale), _above_nyquist(ref, scale)
    # the share of the output's detail that is the reference's, fitted locally (a gain from 0 to 1)
    gain = ndimage.gaussian_filter(out * hr, 3) / np.maximum(ndimage.gaussian_filter(hr * hr, 3), 1e-12)
    invented = out - np.clip(gain, 0, 1) * hr
    # the edges' normal direction: the structure tensor of the reference, smoothed
    gy, gx = (ndimage.gaussian_filter(ref, 2, order=o) for o in ((1, 0), (0, 1)))
    jxx, jyy, jxy = (ndimage.gaussian_filter(a, 3) for a in (gx * gx, gy * gy, gx * gy))
    normal = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    coherence = np.hypot(jxx - jyy, 2 * jxy) / np.maximum(jxx + jyy, 1e-12)
    distance = ndimage.distance_transform_edt(~canny(ref, sigma=2, low_threshold=0.05, high_threshold=0.1))
    near = (distance >= NEAR_EDGES[0]) & (distance <= NEAR_EDGES[1]) & (coherence > 0.5)
    near[:8], near[-8:], near[:, :8], near[:, -8:] = False, False, False, False  # the borders: no neighbours
    if not near.any():
        raise SRError("streak_ratio: the reference has no edge with one direction to look beside")
    nx, ny = np.cos(normal), np.sin(normal)
    iy, ix = np.gradient(invented)
    hy, hx = np.gradient(hr)
    excess = ((ix * nx + iy * ny) ** 2 - (iy * nx - ix * ny) ** 2) / max((hx ** 2 + hy ** 2)[near].mean(), 1e-20)
    return np.where(near, excess, np.nan)


def streak_ratio(image: np.ndarray, reference: np.ndarray, scale: float) -> float:
    """Invented detail that runs parallel to the edges, beside them: stripes and ringing.

    Of ``image``'s detail above the LR Nyquist frequency, the part the HR ``reference`` does not
    have (what is left after removing, in each neighbourhood of a few pixels, the share that
    matches the reference's own detail) is measured at the pixels 3 to 12 pixels from the
    reference's edges (Canny) where the edges have one direction. There, its energy across the
    edges minus its energy along them, over the reference's detail energy at those pixels. A
    stripe parallel to an edge varies only across it and counts fully; invented texture or noise
    without a direction counts about zero; stripes at right angles to the edges count negative,
    and so can a strong grid, which can hide streaks (read it beside :func:`periodic_energy_ratio`);
    detail that matches the reference counts nothing. Bicubic's ringing gives a few hundredths on
    natural images. :func:`streak_map` shows where.
    """
    return float(np.nanmean(streak_map(image, reference, scale)))
