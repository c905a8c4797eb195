"""Checkers for the exercises of the notebook "Receptive fields, context and depth"."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..models import SRCNN, VDSR
from ..receptive import input_gradient
from . import Case, Report, check


def check_receptive_field(fn: Callable) -> Report:
    """``fn(layers) -> size``: the receptive field, in input pixels, of a stack of layers given
    as ``(kernel, stride, dilation)`` tuples in forward order."""
    cases = [
        Case("no layer at all", ([],), 1),
        Case("SRCNN 9-1-5", ([(9, 1, 1), (1, 1, 1), (5, 1, 1)],), 13),
        Case("SRCNN 9-5-5", ([(9, 1, 1), (5, 1, 1), (5, 1, 1)],), 17),
        Case("VDSR, 20 layers 3x3", ([(3, 1, 1)] * 20,), 41),
        Case("two stride-2 layers then a 3x3", ([(3, 2, 1), (3, 2, 1), (3, 1, 1)],), 15),
        Case("dilations 1, 2, 4", ([(3, 1, 1), (3, 1, 2), (3, 1, 4)],), 15),
        Case("a 2x2 pooling between 5x5 layers", ([(5, 1, 1), (2, 2, 1), (5, 1, 1)],), 14),
    ]
    return check("receptive field of a stack", fn, cases)


def _net(kind: str, seed: int) -> nn.Module:
    """Small networks with fixed random weights (a local generator: the global seed is untouched)."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the constructors' initialisation draws from the global generator
        net = _build(kind)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=g) + (0.05 if p.ndim == 1 else 0.0))
    return net.eval()


def _build(kind: str) -> nn.Module:
    return {"conv": lambda: nn.Conv2d(1, 1, 3, padding=1),
            "rgb": lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)),
            "srcnn": lambda: SRCNN(5, 1, 3, n1=8, n2=4, padding="same", init="he"),
            "vdsr": lambda: VDSR(4, width=8)}[kind]()


def check_input_gradient(fn: Callable) -> Report:
    """``fn(model, x, position) -> (H, W)``: the gradient of output pixel ``position`` (row,
    column; summed over output channels) with respect to the input ``x`` (1, C, H, W),
    summed over the input channels."""
    cases = []
    for name, kind, c, pos, seed in [("one 3x3 convolution", "conv", 1, (4, 4), 1),
                                     ("SRCNN 5-1-3, centre pixel", "srcnn", 1, (8, 8), 2),
                                     ("SRCNN 5-1-3, pixel near a border", "srcnn", 1, (1, 14), 3),
                                     ("VDSR of depth 4 (residual)", "vdsr", 1, (7, 9), 4),
                                     ("two convolutions on RGB", "rgb", 3, (5, 6), 5)]:
        net = _net(kind, seed)
        size = 9 if kind == "conv" else 16
        x = torch.rand(1, c, size, size, generator=torch.Generator().manual_seed(seed))
        cases.append(Case(name, (net, x, pos), input_gradient(net, x, pos, generic=False), atol=1e-5, rtol=1e-3))
    return check("gradient of one output pixel", fn, cases)
