"""Checkers for the exercises of the residual-learning notebook (VDSR, Kim et al. 2016).

* :func:`check_adjustable_clipping`: clip a gradient as VDSR's training section prescribes;
* :func:`check_divergence`: predict whether SGD with momentum diverges on a quadratic.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import Case, Report, check

__all__ = ["adjustable_clip", "sgd_diverges", "check_adjustable_clipping", "check_divergence"]


def adjustable_clip(grad: torch.Tensor, theta: float, lr: float) -> torch.Tensor:
    """The reference answer: each element clipped to [-theta/lr, theta/lr] (VDSR's adjustable clipping)."""
    return grad.clamp(-theta / lr, theta / lr)


def sgd_diverges(lr: float, curvature: float, momentum: float = 0.0, theta: float | None = None,
                 steps: int = 2000) -> bool:
    """Run SGD with momentum on f(w) = curvature / 2 * w^2 from w = 1 and say whether it blows up.

    ``theta``: adjustable clipping of the gradient to [-theta/lr, theta/lr] (None: no clipping).
    The update is Caffe's and PyTorch's: v <- momentum * v + g; w <- w - lr * v.
    """
    w, v = 1.0, 0.0
    for _ in range(steps):
        g = curvature * w
        if theta is not None:
            g = max(-theta / lr, min(theta / lr, g))
        v = momentum * v + g
        w -= lr * v
        if not abs(w) < 1e6:
            return True
    return False


def check_adjustable_clipping(fn: Callable) -> Report:
    """``fn(grad, theta, lr)`` must return ``grad`` clipped to [-theta/lr, theta/lr]."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for name, theta, lr, spread in [("lr 0.1, theta 0.01", 0.01, 0.1, 1.0), ("lr 0.001 (wide bound)", 0.01, 1e-3, 30.0),
                                    ("lr 1, theta 0.05", 0.05, 1.0, 0.2), ("small gradient untouched", 0.01, 0.01, 0.1),
                                    ("after two decays, lr 0.001, theta 0.001", 1e-3, 1e-3, 3.0)]:
        grad = torch.randn(4, 5, generator=g) * spread
        cases.append(Case(name, (grad.clone(), theta, lr), adjustable_clip(grad, theta, lr), atol=1e-6))
    return check("adjustable gradient clipping", fn, cases)


# (lr, curvature, momentum, theta): settings on both sides of the stability limit lr * curvature = 2 (1 + momentum)
SETTINGS = [(0.1, 10.0, 0.0, None), (0.1, 25.0, 0.0, None), (0.1, 15.0, 0.0, None), (0.1, 30.0, 0.9, None),
            (0.1, 45.0, 0.9, None), (0.01, 300.0, 0.9, None), (0.01, 400.0, 0.9, None), (0.1, 45.0, 0.9, 0.01),
            (0.1, 1000.0, 0.9, 0.01), (1.0, 50.0, 0.0, 0.001), (0.001, 100.0, 0.9, None), (0.5, 3.0, 0.5, None)]


def check_divergence(fn: Callable) -> Report:
    """``fn(lr, curvature, momentum, theta)`` must say (True/False) whether SGD diverges.

    The truth is measured by :func:`sgd_diverges` (2,000 steps on the quadratic).
    """
    cases = [Case(f"lr {lr:g}, curvature {c:g}, momentum {m:g}, " + (f"theta {t:g}" if t else "no clipping"),
                  (lr, c, m, t), sgd_diverges(lr, c, m, t)) for lr, c, m, t in SETTINGS]
    return check("does it diverge?", lambda *a: bool(fn(*a)), cases)
