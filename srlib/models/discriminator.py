"""SRGAN's discriminator (Ledig et al., CVPR 2017, Figure 4).

Eight 3x3 convolutions with 64, 64, 128, 128, 256, 256, 512, 512 filters, every second
one with stride 2 (so the feature map halves four times), batch normalisation after all
but the first, LeakyReLU (slope 0.2); then a dense layer of 1024 units, LeakyReLU and a
dense layer to one logit (the sigmoid of the paper is left to the loss, for stability).

Chapter: SRGAN (book/srgan.md, notebook 04).
"""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """Classifies ``size`` x ``size`` RGB crops (96 in the paper) as real HR or generated."""

    def __init__(self, size: int = 96, channels: int = 3, width: int = 64):
        super().__init__()
        if size % 16:
            raise ValueError(f"size must be a multiple of 16, got {size}")
        self.config = dict(size=size, channels=channels, width=width)
        widths = [width, width, 2 * width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width]
        layers, c_in = [], channels
        for i, c in enumerate(widths):
            layers.append(nn.Conv2d(c_in, c, 3, stride=1 + i % 2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * (size // 16) ** 2, 1024), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)  # logits, one per image
