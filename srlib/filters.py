"""What "edge-like" means for a learned filter, measured rather than seen.

The SRCNN paper's Figure 5 reads the first-layer filters of a trained SRCNN as edge detectors
of different orientations, Laplacian/Gaussian-like filters and texture extractors. Looking at
81 numbers is easy to fool; three measures make the reading checkable, and random filters of
the same size give the values that mean nothing. Chapter: SRCNN (notebook 01, "Looking inside").

- :func:`dc_fraction`: the share of a filter's energy at zero frequency (1 for a box or a
  Gaussian blur, 0 for any filter whose weights sum to zero, such as an edge detector);
- :func:`orientation_selectivity`: how much of its spectral energy lies along one orientation
  (0: the same in every direction, like a Laplacian or noise; 1: one orientation, like an edge);
- :func:`best_match`: the largest absolute cosine similarity with a bank of the classical
  kernels (Gaussian derivatives, Laplacians of Gaussians, Gabor filters; :func:`template_bank`),
  and which one.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import SRError

__all__ = ["dc_fraction", "orientation_selectivity", "template_bank", "best_match", "describe"]


def _as_filters(filters) -> np.ndarray:
    f = np.asarray(filters, dtype=np.float64)
    f = f[None] if f.ndim == 2 else f
    if f.ndim != 3 or f.shape[1] != f.shape[2]:
        raise SRError(f"filters: expected (k, k) or (n, k, k) square filters, got shape {np.shape(filters)}")
    return f


def dc_fraction(filters) -> np.ndarray:
    """``(sum w)^2 / (k^2 sum w^2)`` per filter: the energy at zero frequency over the total (Parseval)."""
    f = _as_filters(filters)
    k2 = f.shape[1] * f.shape[2]
    return f.sum((1, 2)) ** 2 / (k2 * np.maximum((f**2).sum((1, 2)), 1e-30))


def orientation_selectivity(filters, size: int = 32) -> np.ndarray:
    """``|sum P(w) e^{2i theta(w)}| / sum P(w)`` over the non-zero frequencies ``w`` of the power
    spectrum ``P`` (zero-padded to ``size``): the circular concentration of its orientations."""
    f = _as_filters(filters)
    p = np.abs(np.fft.fft2(f, s=(size, size))) ** 2
    u = np.fft.fftfreq(size)
    uy, ux = np.meshgrid(u, u, indexing="ij")
    phase = np.exp(2j * np.arctan2(uy, ux))
    phase[0, 0] = 0  # the DC term has no orientation
    p[:, 0, 0] = 0
    return np.abs((p * phase).sum((1, 2))) / np.maximum(p.sum((1, 2)), 1e-30)


def template_bank(k: int) -> dict[str, np.ndarray]:
    """Classical ``k x k`` kernels, each of zero mean (but the Gaussians) and unit norm: Gaussians,
    first and second Gaussian derivatives in 8 orientations, Laplacians of Gaussians, and even and
    odd Gabor filters in 8 orientations at 3 wavelengths, for a few widths."""
    r = np.arange(k) - (k - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    bank = {}
    for sigma in (0.75, 1.0, 1.5, 2.0, 3.0):
        g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        bank[f"Gaussian s={sigma:g}"] = g
        bank[f"Laplacian of Gaussian s={sigma:g}"] = (xx**2 + yy**2 - 2 * sigma**2) * g
        for a in range(8):
            t = math.pi * a / 8
            u = xx * math.cos(t) + yy * math.sin(t)
            bank[f"1st derivative {22.5 * a:g} deg s={sigma:g}"] = u * g
            bank[f"2nd derivative {22.5 * a:g} deg s={sigma:g}"] = (u**2 - sigma**2) * g
            for lam in (3.0, 5.0, 8.0):
                if sigma >= 1.0:
                    bank[f"Gabor even {22.5 * a:g} deg l={lam:g} s={sigma:g}"] = np.cos(2 * math.pi * u / lam) * g
                    bank[f"Gabor odd {22.5 * a:g} deg l={lam:g} s={sigma:g}"] = np.sin(2 * math.pi * u / lam) * g
    out = {}
    for name, t in bank.items():
        t = t if name.startswith("Gaussian") else t - t.mean()
        n = np.linalg.norm(t)
        if n > 1e-12:
            out[name] = t / n
    return out


def best_match(filters) -> tuple[np.ndarray, list[str]]:
    """``(score, name)`` per filter: the largest ``|<w, t>| / (|w| |t|)`` over :func:`template_bank`
    (aligned on the centre), and the kernel that gives it."""
    f = _as_filters(filters)
    bank = template_bank(f.shape[1])
    names = list(bank)
    t = np.stack([bank[n] for n in names]).reshape(len(names), -1)
    w = f.reshape(len(f), -1)
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)
    c = np.abs(w @ t.T)
    best = c.argmax(1)
    return c[np.arange(len(f)), best], [names[i] for i in best]


def describe(filters) -> dict[str, np.ndarray]:
    """The three measures of every filter: ``dc``, ``orientation``, ``match`` (and ``kernel``, the best one's name)."""
    score, names = best_match(filters)
    return {"dc": dc_fraction(filters), "orientation": orientation_selectivity(filters), "match": score,
            "kernel": np.array(names)}
