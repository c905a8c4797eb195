"""The measures of srlib.filters on kernels whose answer is known."""

import numpy as np
import pytest
import torch

from srlib import SRError
from srlib.filters import best_match, dc_fraction, describe, orientation_selectivity, template_bank


def test_the_measures_on_known_kernels():
    r = np.arange(9) - 4
    yy, xx = np.meshgrid(r, r, indexing="ij")
    g = np.exp(-(xx**2 + yy**2) / 4.5)
    edge = xx * g  # a vertical-edge detector: a first Gaussian derivative, s = 1.5
    box = np.ones((9, 9))
    log = (xx**2 + yy**2 - 4.5) * g
    log -= log.mean()
    assert dc_fraction(box)[0] == pytest.approx(1) and dc_fraction(edge)[0] == pytest.approx(0, abs=1e-12)
    assert dc_fraction(np.stack([box, edge])).shape == (2,)
    sel = orientation_selectivity(np.stack([edge, log, edge.T]))
    assert sel[0] > 0.5 and sel[1] < 0.05 and sel[2] == pytest.approx(sel[0])
    score, names = best_match(np.stack([edge, -3 * edge.T, log]))
    assert score == pytest.approx([1, 1, 1]) and names[0] == "1st derivative 0 deg s=1.5"
    assert names[1] == "1st derivative 90 deg s=1.5" and names[2].startswith("Laplacian of Gaussian")
    bank = template_bank(9)
    assert all(np.linalg.norm(t) == pytest.approx(1) for t in bank.values()) and len(bank) > 200


def test_random_filters_match_no_kernel_well():
    """What noise scores: the baseline the learned filters of the chapter are read against."""
    w = torch.randn(200, 9, 9, generator=torch.Generator().manual_seed(0)).numpy()
    d = describe(w)
    assert np.median(d["match"]) < 0.4 and np.median(d["orientation"]) < 0.2 and np.median(d["dc"]) < 0.05
    assert set(d) == {"dc", "orientation", "match", "kernel"} and len(d["kernel"]) == 200
    with pytest.raises(SRError, match="square"):
        dc_fraction(np.ones((3, 4, 5)))
