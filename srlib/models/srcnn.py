"""SRCNN (Dong et al., TPAMI 2016): three convolutions, from sparse coding to a network.

Section 3.1 of the paper: patch extraction and representation (f1 x f1, n1 filters),
non-linear mapping (f2 x f2, n2 filters), reconstruction (f3 x f3, one filter per channel).
The input is the bicubic-upscaled LR image, so the network only restores detail.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRESETS = {"9-1-5": (9, 1, 5), "9-3-5": (9, 3, 5), "9-5-5": (9, 5, 5)}


class SRCNN(nn.Module):
    """SRCNN with filter sizes ``f1-f2-f3`` and widths ``n1``, ``n2``.

    ``padding="valid"`` is the paper's: no padding, the output is ``f1 + f2 + f3 - 3``
    pixels smaller than the input (the labels are cropped to match). ``"same"`` pads with
    zeros so that the output has the input's size, for whole-image inference.
    """

    def __init__(self, f1: int = 9, f2: int = 1, f3: int = 5, n1: int = 64, n2: int = 32,
                 channels: int = 1, padding: str = "valid", init: str = "gaussian"):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if init not in ("gaussian", "he"):
            raise ValueError(f"init must be 'gaussian' (the paper's) or 'he', got {init!r}")
        self.config = dict(f1=f1, f2=f2, f3=f3, n1=n1, n2=n2, channels=channels, init=init)
        self.padding = padding  # may be switched after training: the weights are the same
        self.conv1 = nn.Conv2d(channels, n1, f1)
        self.conv2 = nn.Conv2d(n1, n2, f2)
        self.conv3 = nn.Conv2d(n2, channels, f3)
        self.reset_parameters()

    @classmethod
    def preset(cls, name: str = "9-1-5", **kwargs) -> SRCNN:
        """SRCNN 9-1-5, 9-3-5 or 9-5-5 (section 4.3)."""
        if name not in PRESETS:
            raise ValueError(f"unknown SRCNN preset {name!r}; choose from {', '.join(PRESETS)}")
        f1, f2, f3 = PRESETS[name]
        return cls(f1, f2, f3, **kwargs)

    def reset_parameters(self) -> None:
        for conv in (self.conv1, self.conv2, self.conv3):
            if self.config["init"] == "gaussian":
                # Section 4.1: weights from a Gaussian with zero mean and standard deviation 0.001.
                nn.init.normal_(conv.weight, 0.0, 1e-3)
            else:  # He et al.'s, a faster start (not the paper's)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    @property
    def shrink(self) -> int:
        """How many pixels the output loses on each side (0 with 'same' padding)."""
        c = self.config
        return 0 if self.padding == "same" else (c["f1"] + c["f2"] + c["f3"] - 3) // 2

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        pad = conv.kernel_size[0] // 2 if self.padding == "same" else 0
        return F.conv2d(x, conv.weight, conv.bias, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self._conv(self.conv1, x))  # eq. (1): F1 = max(0, W1 * Y + B1)
        x = torch.relu(self._conv(self.conv2, x))  # eq. (2): F2 = max(0, W2 * F1 + B2)
        return self._conv(self.conv3, x)  # eq. (3): F = W3 * F2 + B3
