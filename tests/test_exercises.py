"""The exercise checkers' common machinery gives specific feedback and never raises."""

import numpy as np
import torch

from srlib.exercises import Case, check, compare


def test_right_answer_passes():
    r = check("double", lambda x: 2 * x, [Case("ones", (np.ones(3),), np.full(3, 2.0)), Case("int", (2,), 4)])
    assert r.passed and str(r) == "✓ double: all 2 cases passed"


def test_wrong_answer_names_case_expected_and_got():
    r = check("double", lambda x: x + 1, [Case("ones", (np.ones(3),), np.full(3, 2.0)),
                                           Case("threes", (np.full(2, 3.0),), np.full(2, 6.0))])
    assert not r.passed and len(r.failures) == 1
    assert r.failures[0].startswith("threes: expected [6., 6.], got [4., 4.]")


def test_unfinished_and_crashing_answers_are_reported():
    def stub(x):
        raise NotImplementedError

    r = check("stub", stub, [Case("a", (1,), 1)])
    assert "not implemented yet" in r.failures[0]
    r = check("crash", lambda x: x[5], [Case("a", ([1, 2],), 1)])
    assert "raised IndexError" in r.failures[0]


def test_compare_shapes_tensors_and_nan():
    assert compare(torch.ones(2, 2), np.ones((2, 2))) is None
    assert "expected shape (2, 2), got shape (4,)" in compare(torch.ones(4), np.ones((2, 2)))
    assert "NaN" in compare(np.array([np.nan, 1.0]), np.ones(2))
    assert compare(3.00001, 3.0) is None and compare("a", "b") == "expected 'b', got 'a'"
