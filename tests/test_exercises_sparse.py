"""The sparse-coding checkers accept a right answer and say what is wrong with a wrong one."""

import numpy as np
import torch

from srlib.exercises.sparse import check_mean_filters, check_overlap_count, check_soft_threshold


def test_mean_filters_checker():
    assert check_mean_filters(lambda a: a - a.mean((1, 2), keepdim=True)).passed
    r = check_mean_filters(lambda a: a)  # forgets the mean removal
    assert len(r.failures) == 4 and r.failures[0].startswith("one 3x3 atom: expected")
    r = check_mean_filters(lambda a: a - a.mean())  # one mean over all atoms, not per atom
    assert not r.passed and r.failures[0].startswith("four 5x5 atoms")


def test_soft_threshold_checker():
    assert check_soft_threshold(lambda u, t: torch.relu(u - t) - torch.relu(-u - t)).passed
    # relu(x) = x + relu(-x): another right answer
    assert check_soft_threshold(lambda u, t: (u - t) + torch.relu(t - u) - torch.relu(-u - t)).passed
    r = check_soft_threshold(lambda u, t: torch.relu(u - t))  # a plain shifted ReLU drops the negatives
    assert len(r.failures) == 5 and "theta = 0.5" in r.failures[0] and "theta = 0 is" in r.failures[1]
    # The right values without the lesson: refused, naming what was used.
    for wrong, used in [(lambda u, t: torch.nn.functional.softshrink(u, t), "softshrink"),
                        (lambda u, t: torch.sign(u) * (u.abs() - t).clamp_min(0), "abs, clamp_min, sign"),
                        (lambda u, t: torch.where(u.abs() > t, u - t * torch.sign(u), 0 * u), "abs")]:
        r = check_soft_threshold(wrong)
        assert r.total == 6 and len(r.failures) == 1 and "with ReLUs" in r.failures[0] and used in r.failures[0], r
    # Near the threshold: a strict and a non-strict comparison both give 0 at |u| = theta, but an off-by-one
    # threshold (|u| - theta > 1e-6 counted as zero) does not pass.
    r = check_soft_threshold(lambda u, t: torch.relu(u - t - 1e-6) - torch.relu(-u - t - 1e-6))
    assert len(r.failures) >= 1 and any("just inside" in f or "theta = 0" in f for f in r.failures)


def test_overlap_count_checker():
    def right(shape, p):
        h, w = shape
        rows = [sum(1 for a in range(h - p + 1) if a <= i < a + p) for i in range(h)]
        cols = [sum(1 for b in range(w - p + 1) if b <= j < b + p) for j in range(w)]
        return np.outer(rows, cols)

    assert check_overlap_count(right).passed
    r = check_overlap_count(lambda shape, p: np.full(shape, p * p))
    assert len(r.failures) == 4 and "6x6 image, p = 3: expected" in r.failures[0]

    def stub(shape, p):
        raise NotImplementedError

    assert "not implemented yet" in check_overlap_count(stub).failures[0]
