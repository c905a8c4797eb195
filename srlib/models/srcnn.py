"""SRCNN (Dong et al., TPAMI 2016): three convolutions, from sparse coding to a network.

Section 3.1 of the paper: patch extraction and representation (f1 x f1, n1 filters),
non-linear mapping (f2 x f2, n2 filters), reconstruction (f3 x f3, one filter per channel).
The input is the bicubic-upscaled LR image, so the network only restores detail.
Section 4.3.3 adds a second mapping layer (four layers, e.g. 9-1-1-5); section 4.4 feeds
the three channels of RGB or YCbCr instead of Y alone. Chapter: SRCNN (book/srcnn.md,
notebook 01).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRESETS = {"9-1-5": (9, 1, 5), "9-3-5": (9, 3, 5), "9-5-5": (9, 5, 5)}
COLOURS = {"y": 1, "rgb": 3, "ycbcr": 3}  # the colour space a network sees, and its channels


class SRCNN(nn.Module):
    """SRCNN with filter sizes ``f1-f2-f3`` and widths ``n1``, ``n2``.

    ``f2b > 0`` inserts a second mapping layer of ``n2b`` filters of ``f2b x f2b`` (section
    4.3.3: 9-1-1-5 is ``f2=1, f2b=1, n2b=16``). ``colour`` is what the network sees:
    ``"y"`` (one channel, the papers' choice), ``"rgb"`` or ``"ycbcr"`` (three, section 4.4).

    ``padding="valid"`` is the paper's: no padding, the output is ``f1 + f2 + f3 - 3``
    pixels smaller than the input (the labels are cropped to match). ``"same"`` pads with
    zeros so that the output has the input's size, for whole-image inference.
    """

    def __init__(self, f1: int = 9, f2: int = 1, f3: int = 5, n1: int = 64, n2: int = 32,
                 channels: int | None = None, padding: str = "valid", init: str = "gaussian",
                 f2b: int = 0, n2b: int = 16, colour: str | None = None):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if init not in ("gaussian", "he"):
            raise ValueError(f"init must be 'gaussian' (the paper's) or 'he', got {init!r}")
        colour = colour or ("y" if channels in (None, 1) else "rgb")
        if colour not in COLOURS:
            raise ValueError(f"colour must be one of {', '.join(COLOURS)}, got {colour!r}")
        channels = COLOURS[colour] if channels is None else channels
        if channels != COLOURS[colour]:
            raise ValueError(f"colour {colour!r} has {COLOURS[colour]} channels, got channels={channels}")
        self.config = dict(f1=f1, f2=f2, f3=f3, n1=n1, n2=n2, channels=channels, init=init)
        if f2b:  # recorded only when used: the three-layer configurations stay as they were
            self.config.update(f2b=f2b, n2b=n2b)
        if colour != "y":
            self.config["colour"] = colour
        self.colour = colour
        self.padding = padding  # may be switched after training: the weights are the same
        self.conv1 = nn.Conv2d(channels, n1, f1)
        self.conv2 = nn.Conv2d(n1, n2, f2)
        self.conv2b = nn.Conv2d(n2, n2b, f2b) if f2b else None
        self.conv3 = nn.Conv2d(n2b if f2b else n2, channels, f3)
        self.reset_parameters()

    def convs(self) -> list[nn.Conv2d]:
        """The convolutions in order (three, or four with a second mapping layer)."""
        return [c for c in (self.conv1, self.conv2, self.conv2b, self.conv3) if c is not None]

    @classmethod
    def preset(cls, name: str = "9-1-5", **kwargs) -> SRCNN:
        """SRCNN 9-1-5, 9-3-5 or 9-5-5 (section 4.3)."""
        if name not in PRESETS:
            raise ValueError(f"unknown SRCNN preset {name!r}; choose from {', '.join(PRESETS)}")
        f1, f2, f3 = PRESETS[name]
        return cls(f1, f2, f3, **kwargs)

    def reset_parameters(self) -> None:
        for conv in self.convs():
            if self.config["init"] == "gaussian":
                # Section 4.1: weights from a Gaussian with zero mean and standard deviation 0.001.
                nn.init.normal_(conv.weight, 0.0, 1e-3)
            else:  # He et al.'s, a faster start (not the paper's)
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    @property
    def shrink(self) -> int:
        """How many pixels the output loses on each side (0 with 'same' padding)."""
        return 0 if self.padding == "same" else sum(c.kernel_size[0] - 1 for c in self.convs()) // 2

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        pad = conv.kernel_size[0] // 2 if self.padding == "same" else 0
        return F.conv2d(x, conv.weight, conv.bias, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self._conv(self.conv1, x))  # eq. (1): F1 = max(0, W1 * Y + B1)
        x = torch.relu(self._conv(self.conv2, x))  # eq. (2): F2 = max(0, W2 * F1 + B2)
        if self.conv2b is not None:  # section 4.3.3: one more mapping layer, the same form as eq. (2)
            x = torch.relu(self._conv(self.conv2b, x))
        return self._conv(self.conv3, x)  # eq. (3): F = W3 * F2 + B3
