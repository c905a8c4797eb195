"""The residual-learning notebook's checkers pass right answers and name the failing case of
wrong ones; the engine's clipping modes do what they say."""

import torch

from srlib.exercises.residual import check_adjustable_clipping, check_divergence, sgd_diverges
from srlib.train import clip_gradients


def test_adjustable_clipping_right_and_wrong():
    assert check_adjustable_clipping(lambda g, theta, lr: g.clamp(-theta / lr, theta / lr)).passed
    fixed = check_adjustable_clipping(lambda g, theta, lr: g.clamp(-theta, theta))  # forgets the learning rate
    assert not fixed.passed and fixed.failures[0].startswith("lr 0.1, theta 0.01: expected")
    times = check_adjustable_clipping(lambda g, theta, lr: g.clamp(-theta * lr, theta * lr))
    assert not times.passed and len(times.failures) == 4  # at lr 1 the two coincide


def test_adjustable_clipping_in_place_answer_passes():
    def in_place(g, theta, lr):
        for_engine = torch.nn.Parameter(torch.zeros_like(g))
        for_engine.grad = g
        clip_gradients([for_engine], "adjustable", theta, lr)
        return g

    assert check_adjustable_clipping(in_place).passed


def test_divergence_right_and_wrong():
    def right(lr, curvature, momentum, theta):
        return theta is None and lr * curvature > 2 * (1 + momentum)

    assert check_divergence(right).passed
    no_momentum = check_divergence(lambda lr, c, m, t: t is None and lr * c > 2)
    assert not no_momentum.passed and "momentum 0.9" in no_momentum.failures[0]
    no_clip = check_divergence(lambda lr, c, m, t: lr * c > 2 * (1 + m))
    assert not no_clip.passed and all("theta" in f for f in no_clip.failures)


def test_sgd_diverges_matches_the_stability_limit():
    assert sgd_diverges(0.1, 21.0) and not sgd_diverges(0.1, 19.0)
    assert sgd_diverges(0.1, 39.0, 0.9) and not sgd_diverges(0.1, 37.0, 0.9)
    assert not sgd_diverges(0.1, 1e4, 0.9, theta=0.01)  # adjustable clipping bounds every step


def test_clip_modes_value_adjustable_norm():
    def grads(mode, theta, lr):
        p = torch.nn.Parameter(torch.zeros(3))
        p.grad = torch.tensor([3.0, -0.05, 4.0])
        norm = clip_gradients([p], mode, theta, lr)
        return norm, p.grad.tolist()

    norm, g = grads("value", 0.1, 0.01)
    assert abs(norm - 5.00025) < 1e-4 and torch.allclose(torch.tensor(g), torch.tensor([0.1, -0.05, 0.1]))
    _, g = grads("adjustable", 0.01, 0.01)  # bound theta / lr = 1
    assert torch.allclose(torch.tensor(g), torch.tensor([1.0, -0.05, 1.0]))
    _, g = grads("norm", 1.0, 0.01)
    assert abs(torch.tensor(g).norm().item() - 1.0) < 1e-5


def test_shipped_single_scale_weights_fail_elsewhere_multi_scale_holds(tmp_path):
    from srlib.data import builtin_images, save_image
    from srlib.evaluate import bicubic, evaluate
    from srlib.inference import as_method
    from srlib.pretrained import pretrained

    for name, im in builtin_images()[:2]:
        save_image(tmp_path / f"{name}.png", im[96:216, 96:216])

    def psnr(method, s):
        return evaluate(method, [str(tmp_path)], [s])[0].psnr

    b = {s: psnr(bicubic, s) for s in (2, 3, 4)}
    x4 = as_method(pretrained("vdsr10-x4"), "vdsr", "x4", None)
    multi = as_method(pretrained("vdsr10-x234"), "vdsr", "x234", None)
    assert psnr(x4, 2) < b[2] - 1  # over-sharpens a barely blurred input
    assert all(psnr(multi, s) > b[s] for s in (2, 3, 4))
