"""Checkers for the exercises of the notebook "Perceptual loss and adversarial training"."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import Case, Report, check


def _features(seed: int) -> nn.Module:
    """A small fixed random feature extractor (conv-ReLU-pool-conv-ReLU), as a stand-in for VGG."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the constructors draw from the global generator
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return net.eval().requires_grad_(False)


def _content(features: nn.Module, sr: torch.Tensor, hr: torch.Tensor, rescale: float) -> torch.Tensor:
    return F.mse_loss(features(sr) * rescale, features(hr) * rescale)  # SRGAN eq. (5)


def check_content_loss(fn: Callable) -> Report:
    """``fn(features, sr, hr, rescale) -> scalar``: SRGAN's VGG loss, the mean over all elements of
    (rescale * features(sr) - rescale * features(hr))^2."""
    cases = []
    for name, shape, rescale, seed in [("one 16x16 image, paper's rescaling 1/12.75", (1, 3, 16, 16), 1 / 12.75, 1),
                                       ("a batch of 3, no rescaling", (3, 3, 12, 20), 1.0, 2),
                                       ("a batch of 2, rescale 0.5", (2, 3, 8, 8), 0.5, 3)]:
        g = torch.Generator().manual_seed(seed)
        net = _features(seed)
        hr = torch.rand(shape, generator=g)
        sr = (hr + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
        cases.append(Case(name, (net, sr, hr, rescale), _content(net, sr, hr, rescale).item(), atol=1e-7, rtol=1e-4))
    return check("content loss on feature maps", fn, cases)


def check_adversarial_loss(fn: Callable) -> Report:
    """``fn(fake_logits) -> scalar``: SRGAN eq. (6), the mean of -log D(G(x)) with D = sigmoid(logit),
    computed stably (it must stay finite for logits far from 0)."""
    cases = [
        Case("undecided discriminator (logits 0)", (torch.zeros(4),), float(torch.log(torch.tensor(2.0)))),
        Case("mixed logits", (torch.tensor([-2.0, -0.5, 1.0, 3.0]),),
             F.softplus(-torch.tensor([-2.0, -0.5, 1.0, 3.0])).mean().item()),
        Case("very confident discriminator (logits -200 and 50)", (torch.tensor([-200.0, 50.0]),), 100.0, rtol=1e-5),
    ]
    return check("adversarial loss from logits", fn, cases)


def check_discriminator_verdict(fn: Callable) -> Report:
    """``fn(real_logits, fake_logits) -> (p_real, p_fake, accuracy)``: the mean probability D gives
    to real crops, the mean it gives to generated ones, and the fraction of all crops it classifies
    right (real when D > 0.5)."""
    cases = []
    for name, real, fake in [("a discriminator that is right on every crop", [2.0, 3.0, 1.0], [-1.0, -4.0]),
                             ("an undecided discriminator", [0.1, -0.1], [0.1, -0.1]),
                             ("a fooled discriminator", [0.5, -1.0, 2.0, 0.2], [1.5, 3.0, -0.3, 0.7])]:
        r, f = torch.tensor(real), torch.tensor(fake)
        acc = ((r > 0).sum() + (f <= 0).sum()).item() / (len(r) + len(f))
        cases.append(Case(name, (r, f), (torch.sigmoid(r).mean().item(), torch.sigmoid(f).mean().item(), acc)))
    return check("the discriminator's verdict", fn, cases)
