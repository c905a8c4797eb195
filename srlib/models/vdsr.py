"""VDSR (Kim et al., CVPR 2016): a very deep network that learns the residual.

Section 3.1: D layers of 3x3 convolutions with 64 filters, zero padding so every feature
map keeps the input's size, ReLU between them; the last layer outputs the residual
r = y - x, which is added to the interpolated input x (residual learning).

Chapter: VDSR (book/vdsr.md, notebook 03).
"""

from __future__ import annotations

import torch
from torch import nn


class VDSR(nn.Module):
    """VDSR of ``depth`` convolution layers (20 in the paper) on ``channels`` (1: Y)."""

    def __init__(self, depth: int = 20, channels: int = 1, width: int = 64, residual: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self.config = dict(depth=depth, channels=channels, width=width, residual=residual)
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.residual = residual
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Section 4.1: He et al.'s initialisation for ReLU networks; biases 0.
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out  # eq. (4): y = x + r
