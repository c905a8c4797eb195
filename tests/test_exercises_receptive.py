"""The receptive-field checkers accept a right answer and say what is wrong with a wrong one."""

import torch

from srlib.exercises.receptive import check_input_gradient, check_receptive_field


def rf_right(layers):
    size, jump = 1, 1
    for k, s, d in layers:
        size += (k - 1) * d * jump
        jump *= s
    return size


def rf_wrong(layers):  # forgets that strides widen the later layers' steps
    return 1 + sum((k - 1) * d for k, s, d in layers)


def grad_right(model, x, position):
    x = x.clone().requires_grad_(True)
    model(x)[0, :, position[0], position[1]].sum().backward()
    return x.grad[0].sum(0)


def grad_wrong(model, x, position):  # the gradient of the whole output, not of one pixel
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad[0].sum(0)


def test_receptive_field_checker():
    assert check_receptive_field(rf_right).passed
    r = check_receptive_field(rf_wrong)
    assert len(r.failures) == 2 and r.failures[0].startswith("two stride-2 layers then a 3x3: expected 15., got 7.")
    assert "pooling" in r.failures[1]


def test_input_gradient_checker():
    before = torch.random.get_rng_state()
    assert check_input_gradient(grad_right).passed
    assert torch.equal(torch.random.get_rng_state(), before)  # the checker leaves the global seed alone
    r = check_input_gradient(grad_wrong)
    assert not r.passed and "one 3x3 convolution: expected array of shape (9, 9)" in r.failures[0]


def test_input_gradient_checker_reports_a_stub_and_a_wrong_shape():
    def stub(model, x, position):
        raise NotImplementedError

    assert "not implemented yet" in check_input_gradient(stub).failures[0]
    r = check_input_gradient(lambda m, x, p: torch.zeros(x.shape[-2:] + (1,)))
    assert "expected shape" in r.failures[0]
