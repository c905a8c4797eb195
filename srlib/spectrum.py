"""How much fine detail an image has: its radially averaged power spectrum.

A x``s`` LR image cannot hold frequencies above its Nyquist limit, 1 / (2 s) cycles per HR
pixel: whatever an SR method puts above it is invented. Comparing the energy there with
the HR image's says how much high-frequency detail a method recovers (MSE-trained networks
too little, a GAN about as much as the HR image, not necessarily the right detail).
:func:`periodic_energy_ratio` measures one kind of invented detail: a grid, the pattern that
repeats every few pixels which sub-pixel convolution makes when the loss does not forbid it.

Chapter: SRGAN (notebook 04).
"""

from __future__ import annotations

import numpy as np

from .data.image import to_y
from .errors import SRError

__all__ = ["power_spectrum", "radial_power_spectrum", "band_energy", "high_frequency_ratio", "periodic_energy",
           "periodic_energy_ratio"]


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
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    return radius, power


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
