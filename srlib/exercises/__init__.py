"""Checkers for the exercises at the end of each notebook.

A checker runs a learner's function on a few cases and returns a :class:`Report` that
says which case failed, with what was expected and what came back. It never raises, so a
notebook with an unfinished exercise still runs to the end.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Case:
    """One test of a learner's function: call it with ``args`` and compare with ``expected``."""

    name: str
    args: tuple
    expected: Any
    atol: float = 1e-5
    rtol: float = 1e-4
    kwargs: dict = field(default_factory=dict)


@dataclass
class Report:
    """The outcome of a checker: how many cases passed, and what went wrong in the others."""

    title: str
    total: int
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        if self.passed:
            return f"✓ {self.title}: all {self.total} cases passed"
        lines = [f"✗ {self.title}: {len(self.failures)} of {self.total} cases failed"]
        return "\n".join(lines + [f"  - {f}" for f in self.failures])

    __repr__ = __str__


def as_array(x: Any) -> np.ndarray | Any:
    """Tensors and sequences as float64 arrays; anything else unchanged."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    if isinstance(x, (list, tuple, np.ndarray, int, float, np.number)) and not isinstance(x, bool):
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            return x
    return x


def _short(x: Any) -> str:
    if isinstance(x, np.ndarray):
        if x.size <= 8:
            return np.array2string(x.ravel() if x.ndim > 1 else x, precision=4, separator=", ")
        return f"array of shape {x.shape} (mean {x.mean():.4g}, min {x.min():.4g}, max {x.max():.4g})"
    return repr(x)


def compare(got: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """``None`` when ``got`` matches ``expected``, else a sentence saying how it differs."""
    g, e = as_array(got), as_array(expected)
    if isinstance(e, np.ndarray):
        if not isinstance(g, np.ndarray):
            return f"expected an array or tensor, got {type(got).__name__}: {_short(got)}"
        if g.shape != e.shape:
            return f"expected shape {e.shape}, got shape {g.shape}"
        if not np.all(np.isfinite(g)):
            return "the result contains NaN or infinite values"
        if not np.allclose(g, e, atol=atol, rtol=rtol):
            i = np.unravel_index(np.argmax(np.abs(g - e)), e.shape) if e.ndim else ()
            where = f" at index {tuple(int(k) for k in i)}" if e.ndim else ""
            return (f"expected {_short(e)}, got {_short(g)} "
                    f"(largest difference {np.abs(g - e).max():.3g}{where})")
        return None
    if isinstance(e, float) and isinstance(g, (int, float)) and math.isclose(g, e, abs_tol=atol, rel_tol=rtol):
        return None
    return None if g == e else f"expected {e!r}, got {g!r}"


def check(title: str, fn: Callable, cases: list[Case]) -> Report:
    """Run ``fn`` on every case and report; exceptions are reported, not raised."""
    failures = []
    for case in cases:
        try:
            got = fn(*case.args, **case.kwargs)
        except NotImplementedError:
            failures.append(f"{case.name}: not implemented yet (the function raised NotImplementedError)")
            continue
        except Exception as err:  # the learner's code: report what it raised and where
            where = traceback.extract_tb(err.__traceback__)[-1]
            failures.append(f"{case.name}: raised {type(err).__name__}: {err} (line {where.lineno})")
            continue
        problem = compare(got, case.expected, case.atol, case.rtol)
        if problem:
            failures.append(f"{case.name}: {problem}")
    return Report(title, len(cases), failures)
