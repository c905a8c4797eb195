"""Sparse-coding SR and its network form compute the same numbers (SRCNN paper, section 3.2)."""

import numpy as np
import pytest
import torch

from srlib.errors import SRError
from srlib.receptive import input_gradient, support
from srlib.sparse import (
    GRADIENTS,
    Dictionaries,
    SparseCodingNet,
    back_project,
    fista,
    gradient_features,
    interpolated,
    ista,
    learn_dictionaries,
    overlap_count,
    soft,
    sparse_code_sr,
    srcnn_from_dictionaries,
    training_pairs,
)


def _dicts(p=5, n=24, lam=0.02, seed=0) -> Dictionaries:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(2 * p * p, n, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=0)
    return Dictionaries(d[:p * p].contiguous(), 0.3 * d[p * p:].contiguous(), lam)


def _image(h=23, w=19, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w))


def test_soft_threshold():
    u = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5])
    assert torch.equal(soft(u, 0.5), torch.tensor([-1.5, 0.0, 0.0, 0.0, 1.0]))


def test_ista_on_an_orthonormal_dictionary_is_one_soft_threshold():
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = soft(q.T @ x, 0.1)  # the exact lasso solution when D^T D = I
    assert torch.allclose(ista(q, x, 0.1, 1), expected, atol=1e-12)
    assert torch.allclose(ista(q, x, 0.1, 5), expected, atol=1e-12)


def test_fista_converges_faster_than_ista_to_the_same_minimiser():
    d = _dicts().dl[:, :12]  # fewer atoms than pixels: a strictly convex problem, one minimiser
    x = torch.randn(25, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = ista(d, x, 0.05, 3000)

    def obj(z):
        return float(0.5 * ((x - d @ z) ** 2).sum() + 0.05 * z.abs().sum())

    assert obj(fista(d, x, 0.05, 50)) - obj(ref) < 0.1 * (obj(ista(d, x, 0.05, 50)) - obj(ref))
    assert torch.allclose(fista(d, x, 0.05, 1000), ref, atol=1e-8)


def test_learned_dictionaries_have_unit_norm_atoms_and_decreasing_objective():
    x, y = training_pairs("builtin", 3, p=5, count=600, seed=0)
    assert x.shape == y.shape == (25, 600)
    assert torch.allclose(x.mean(0), torch.zeros(600, dtype=x.dtype), atol=1e-12)  # mean removed
    hist = []
    d = learn_dictionaries(x, y, n_atoms=32, lam=0.002, rounds=6, code_steps=20, history=hist)
    norms = torch.cat([d.dl, d.dh]).norm(dim=0)
    assert torch.allclose(norms, torch.ones(32, dtype=norms.dtype), atol=1e-10)
    assert hist[-1] < 0.8 * hist[0] and d.p == 5 and d.n == 32


def test_overlap_count():
    c = overlap_count((6, 8), 3)
    assert c[0, 0] == 1 and c[2, 3] == 9 and c[5, 7] == 1 and c[1, 2] == 6
    assert c.sum() == 9 * (6 - 2) * (8 - 2)  # every patch counted p*p times


def test_network_equals_pipeline_on_a_whole_image():
    d, lr = _dicts(), _image()
    for steps in (1, 4):
        ref = sparse_code_sr(lr, d, steps, chunk=100)  # chunking does not matter
        net = SparseCodingNet.from_dictionaries(d, steps)
        out = net(torch.from_numpy(lr)[None, None])[0, 0].detach().numpy()
        assert np.abs(out - ref).max() < 1e-12
    assert np.abs(sparse_code_sr(lr, d, 4) - sparse_code_sr(lr, d, 1)).max() > 1e-3  # the steps matter


def test_codes_along_the_steps_are_each_steps_own_codes_in_one_pass():
    net = SparseCodingNet.from_dictionaries(_dicts(), steps=3)
    x = torch.from_numpy(_image())[None, None]
    with torch.no_grad():
        along = net.codes_along(x, [5, 1, 3])
        assert sorted(along) == [1, 3, 5]
        for k, z in along.items():
            assert torch.equal(z, net.codes(x, k))  # the same operations in the same order: bit for bit
        assert not torch.equal(along[1], along[5])
        assert torch.equal(net.reconstruct(x, along[3]), net(x))  # the net's own 3 steps
    with pytest.raises(SRError, match="at least 1"):
        net.codes_along(x, [0, 2])


def test_a_flat_image_comes_back_unchanged():
    lr = np.full((15, 15), 0.4)
    assert np.allclose(sparse_code_sr(lr, _dicts(), 3), lr, atol=1e-12)


def test_srcnn_from_dictionaries_is_one_ista_step_inside_the_image():
    d, lr = _dicts(), _image(seed=3)
    ref = sparse_code_sr(lr, d, 1)
    srcnn = srcnn_from_dictionaries(d).double()
    out = srcnn(torch.from_numpy(lr)[None, None])[0, 0].detach().numpy()
    m = d.p - 1  # border pixels are covered by fewer patches: only the interior matches
    assert np.abs(out - ref)[m:-m, m:-m].max() < 1e-6  # its weights are float32
    assert np.abs(out - ref).max() > 1e-4


def test_pixel_support_of_the_pipeline_is_2p_minus_1():
    net = SparseCodingNet.from_dictionaries(_dicts(p=5, lam=0.0), steps=2)
    x = torch.rand(1, 1, 31, 31, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert support(input_gradient(net, x, (15, 15))) == (9, 9)


def test_back_projection_makes_the_result_consistent_with_its_low_resolution_image():
    """Yang et al.'s reconstruction constraint: after back-projection the SR image degrades to the LR
    image it came from (the residual shrinks a hundredfold), and here it also moves closer to the HR."""
    from srlib.data import bicubic_degrade, builtin_images
    from srlib.metrics import psnr

    hr, up = interpolated(builtin_images()[1][1], 3)
    low = bicubic_degrade(hr, 3)
    bp = back_project(up, low, 3)
    before, after = (np.abs(bicubic_degrade(x, 3) - low).mean() for x in (up, bp))
    assert after < before / 100
    assert psnr(bp, hr, 3) > psnr(up, hr, 3) + 0.2


def test_gradient_features_are_the_derivatives_of_the_image():
    """Yang et al.'s four features: on a quadratic surface a*i^2 + b*j, away from the borders, the
    first derivative across is 2b, down 4a*i; the second across is 0, down 8a (the filters' taps
    two pixels apart)."""
    i, j = np.mgrid[0:12, 0:15].astype(np.float64)
    a, b = 0.01, 0.03
    f = gradient_features(a * i ** 2 + b * j)
    inner = (slice(2, -2), slice(2, -2))
    assert f.shape == (4, 12, 15) and len(GRADIENTS) == 4
    assert np.allclose(f[0][inner], 2 * b) and np.allclose(f[1][inner], 4 * a * i[inner])
    assert np.allclose(f[2][inner], 0) and np.allclose(f[3][inner], 8 * a)


def _gradient_dicts() -> Dictionaries:
    x, y = training_pairs("builtin", 3, p=5, count=800, seed=0, features="gradients")
    assert x.shape == (100, 800) and y.shape == (25, 800)
    assert torch.allclose(x.norm(dim=0), torch.ones(800, dtype=x.dtype))  # coded at unit norm
    return learn_dictionaries(x, y, n_atoms=32, lam=0.1, rounds=6, code_steps=20, features="gradients")


def test_gradient_features_code_detail_that_scales_with_the_contrast():
    """With features coded at unit norm, the detail scales with the patch: twice the contrast,
    twice the detail added to the interpolated image; and the detail beats bicubic."""
    from srlib.data import builtin_images
    from srlib.metrics import psnr

    d = _gradient_dicts()
    assert d.features == "gradients" and d.p == 5 and d.dl.shape == (100, 32)
    hr, up = interpolated(builtin_images()[0][1], 3)
    detail = sparse_code_sr(up, d) - up
    assert np.allclose(sparse_code_sr(2 * up, d) - 2 * up, 2 * detail, atol=1e-9)
    assert psnr(detail + up, hr, 3) > psnr(up, hr, 3) + 0.1


def test_dictionaries_save_and_load(tmp_path):
    d = _dicts()
    d.save(tmp_path / "d.npz")
    back = Dictionaries.load(tmp_path / "d.npz")
    assert torch.equal(back.dl, d.dl) and torch.equal(back.dh, d.dh) and (back.lam, back.features) == (d.lam, "pixels")


def test_the_network_form_refuses_gradient_features():
    d = _dicts()
    with pytest.raises(SRError, match="raw pixels"):
        SparseCodingNet.from_dictionaries(Dictionaries(d.dl.repeat(4, 1), d.dh, d.lam, "gradients"))
    with pytest.raises(SRError, match="features"):
        training_pairs("builtin", 3, p=5, count=10, features="edges")
