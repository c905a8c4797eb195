"""VGG19 features for SRGAN's content loss (Simonyan and Zisserman, ICLR 2015).

The layer layout and ``state_dict`` keys (``features.0.weight`` ...) are those of the
common ImageNet VGG19 (torchvision's), so its published weights load as they are. Layers
are named as in the SRGAN paper: ``relu2_2`` is VGG22, ``relu5_4`` is VGG54.

Chapter: SRGAN (book/srgan.md, notebook 04).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import SRError

# The ImageNet VGG19 published with torchvision; the file name carries its hash prefix.
IMAGENET_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """Names of the modules of ``features``, in order: conv1_1, relu1_1, ..., pool5."""
    names, block, i = [], 1, 1
    for v in LAYOUT:
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 1
        else:
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
            i += 1
    return names


def _load_imagenet_state() -> dict:
    local = os.environ.get("SRLIB_VGG19")
    if local:
        return _load_file(local)
    try:
        return torch.hub.load_state_dict_from_url(IMAGENET_URL, check_hash=True, progress=False,
                                                  map_location="cpu", weights_only=True)
    except Exception as e:  # no network, proxy, hash mismatch: all end the same way for the user
        raise SRError(
            f"cannot get the ImageNet VGG19 weights ({type(e).__name__}: {e}). Download {IMAGENET_URL} on a "
            f"machine with internet and pass its path as weights=PATH or set SRLIB_VGG19=PATH, or put it in "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'}; weights=None gives random features (not ImageNet's)."
        ) from None


def _load_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SRError(f"{path}: no such VGG19 weights file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SRError(f"{path}: not a PyTorch state_dict ({e})") from None


class VGG19Features(nn.Module):
    """Frozen VGG19 truncated after ``layer``; input RGB in [0, 1], ImageNet-normalised inside.

    ``weights``: ``"imagenet"`` (the published file: ``$SRLIB_VGG19``, torch.hub's cache, or
    a download with its hash checked), a path to a state_dict, or ``None`` for random
    weights (only when asked for explicitly).
    """

    def __init__(self, layer: str = "relu5_4", weights: str | Path | None = "imagenet", seed: int = 0):
        super().__init__()
        names = layer_names()
        if layer not in names:
            raise SRError(f"unknown VGG19 layer {layer!r}; choose from {', '.join(names)}")
        mods, c_in = [], 3
        for v in LAYOUT:
            if v == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        self.features = nn.Sequential(*mods[: names.index(layer) + 1])
        self.layer, self.pretrained = layer, weights is not None
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            state = _load_imagenet_state() if weights == "imagenet" else _load_file(weights)
            wanted = {k: v for k, v in state.items() if k.startswith("features.")}
            own = self.features.state_dict()
            missing = [k for k in own if f"features.{k}" not in wanted]
            if missing:
                raise SRError(f"the VGG19 weights lack {', '.join(missing[:4])}: not a VGG19 state_dict")
            self.features.load_state_dict({k: wanted[f"features.{k}"] for k in own})
        else:  # He initialisation, seeded: PyTorch's default shrinks the signal until relu5_4 ignores the input
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for m in self.features:
                    if isinstance(m, nn.Conv2d):
                        m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / m.weight[0].numel()))
                        m.bias.zero_()
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always frozen, always in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features((x - self.mean) / self.std)
