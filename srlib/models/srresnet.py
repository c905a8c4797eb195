"""SRResNet, the generator of SRGAN (Ledig et al., CVPR 2017, Figure 4).

A 9x9 convolution and PReLU; B residual blocks (conv-BN-PReLU-conv-BN with an identity
skip); a convolution and BN closed by a long skip from the first features; sub-pixel
convolution upsampling (Shi et al., 2016); a 9x9 convolution to RGB. It works on the LR
image itself, not on an interpolated one, so all convolutions run at LR resolution.

``upsample="nearest"`` or ``"bilinear"`` (not the paper's) replaces each sub-pixel stage by an
enlargement followed by a convolution at the higher resolution (resize-convolution, Odena et
al., 2016): a flat region then stays flat, where sub-pixel stages can give each of the r x r
positions of an output pixel block its own value, a grid (notebook 04 measures it). Nearest
enlargement still turns a ramp into a staircase of period r; bilinear keeps it a ramp.

Chapter: SRGAN (book/srgan.md, notebook 04).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def upsampler(width: int, scale: int, upsample: str = "subpixel") -> nn.Sequential:
    """Upsampling stages: two x2 stages for x4, one for x2, one x3 stage for x3; each a sub-pixel
    convolution (the paper's: r x r outputs per LR pixel, shuffled) or a nearest-neighbour or
    bilinear enlargement then a convolution (``"nearest"``, ``"bilinear"``)."""
    factors = {2: [2], 3: [3], 4: [2, 2], 8: [2, 2, 2]}
    if scale not in factors:
        raise ValueError(f"SRResNet supports scales 2, 3, 4 and 8, got {scale}")
    if upsample not in ("subpixel", "nearest", "bilinear"):
        raise ValueError(f"upsample must be 'subpixel', 'nearest' or 'bilinear', got {upsample!r}")
    stages = []
    for r in factors[scale]:
        if upsample == "subpixel":
            stages += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r), nn.PReLU(width)]
        else:
            align = {} if upsample == "nearest" else {"align_corners": False}  # pixel centres, as imresize
            stages += [nn.Upsample(scale_factor=r, mode=upsample, **align), nn.Conv2d(width, width, 3, padding=1),
                       nn.PReLU(width)]
    return nn.Sequential(*stages)


class SRResNet(nn.Module):
    """SRResNet for ``scale`` with ``blocks`` residual blocks of ``width`` channels.

    Input: LR RGB in [0, 1]; output: HR RGB (not clamped).
    """

    def __init__(self, scale: int = 4, blocks: int = 16, width: int = 64, channels: int = 3,
                 upsample: str = "subpixel"):
        super().__init__()
        self.config = dict(scale=scale, blocks=blocks, width=width, channels=channels, upsample=upsample)
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.trunk_end = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.upsample = upsampler(width, scale, upsample)
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.trunk_end(self.blocks(h))  # the long skip connection
        return self.tail(self.upsample(h))
