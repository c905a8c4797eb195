"""Checkers for the exercises of the notebook "SRCNN is sparse coding, shown numerically"."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..sparse import overlap_count
from . import Case, Report, check


def _atoms(n: int, p: int, seed: int) -> torch.Tensor:
    return torch.randn(n, p, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def check_mean_filters(fn: Callable) -> Report:
    """``fn(atoms) -> filters``: given LR atoms (n, p, p), the filters (n, p, p) whose
    convolution with an image gives <atom, patch - mean(patch)> for every patch."""
    cases = []
    for name, n, p, seed in [("one 3x3 atom", 1, 3, 1), ("four 5x5 atoms", 4, 5, 2), ("sixteen 7x7 atoms", 16, 7, 3)]:
        a = _atoms(n, p, seed)
        cases.append(Case(name, (a.clone(),), a - a.mean((1, 2), keepdim=True), atol=1e-10))
    const = torch.ones(2, 3, 3, dtype=torch.float64)
    cases.append(Case("constant atoms see nothing of a mean-free patch", (const,), torch.zeros(2, 3, 3)))
    return check("mean removal folded into the filters", fn, cases)


# What "with ReLUs only" allows: the ReLU, sums, differences, negation and products with numbers.
RELU_AND_ARITHMETIC = {"relu", "relu_", "add", "sub", "rsub", "neg", "mul", "__add__", "__radd__", "__sub__",
                       "__rsub__", "__neg__", "__mul__", "__rmul__", "__iadd__", "__isub__", "__imul__", "clone"}


class _Operations(torch.overrides.TorchFunctionMode):
    """Records the name of every torch function called while it is active."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _relus_only(fn: Callable) -> Callable:
    """``fn``, but it raises if it calls a torch function other than the ReLU and arithmetic."""

    def traced(*args):
        with _Operations() as ops:
            out = fn(*args)
        other = sorted(n for n in ops.names - RELU_AND_ARITHMETIC if not n.startswith("__get"))
        if other:
            raise ValueError(f"uses {', '.join(other)}: write it with torch.relu, +, - and * only")
        return out

    return traced


def check_soft_threshold(fn: Callable) -> Report:
    """``fn(u, theta) -> tensor``: soft-thresholding sign(u) max(|u| - theta, 0), written with
    ReLUs only: its values are checked, and the torch functions it calls (ReLU, +, -, x only;
    ``softshrink``, ``sign``, ``abs``, ``clamp`` or ``where`` give the values but not the lesson)."""
    u = torch.linspace(-2, 2, 17, dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    r = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    near = torch.tensor([-0.5 - 1e-9, -0.5, -0.5 + 1e-9, 0.5 - 1e-9, 0.5, 0.5 + 1e-9], dtype=torch.float64)
    cases = [Case("theta = 0.5 on [-2, 2]", (u.clone(), 0.5), torch.sign(u) * (u.abs() - 0.5).clamp_min(0)),
             Case("theta = 0 is the identity", (u.clone(), 0.0), u.clone()),
             Case("a 3-D tensor, theta = 0.3", (r.clone(), 0.3), torch.sign(r) * (r.abs() - 0.3).clamp_min(0)),
             Case("theta above every |u|", (u.clone(), 3.0), torch.zeros(17)),
             Case("just inside and outside +-theta", (near.clone(), 0.5),
                  torch.tensor([-1e-9, 0, 0, 0, 0, 1e-9], dtype=torch.float64), atol=1e-12, rtol=0)]
    report = check("soft threshold from ReLUs", fn, cases)
    ops = check("soft threshold from ReLUs", _relus_only(fn), [Case("with ReLUs, +, - and x only", (u.clone(), 0.5),
                                                                    cases[0].expected)])
    return Report(report.title, report.total + 1, report.failures + ops.failures)


def check_overlap_count(fn: Callable) -> Report:
    """``fn(shape, p) -> (H, W)``: how many p x p patches, among all positions inside an image
    of ``shape``, cover each pixel (the divisor of the overlap averaging)."""
    cases = [Case(f"{h}x{w} image, p = {p}", ((h, w), p), overlap_count((h, w), p))
             for h, w, p in [(5, 5, 1), (6, 6, 3), (9, 12, 5), (7, 20, 7), (11, 4, 3)]]
    return check("overlap count", fn, cases)
