"""Receptive fields: how much of the input one output pixel sees, in theory and in fact.

VDSR's argument against SRCNN (Kim et al., CVPR 2016, section 3.1) is context: a 9-1-5
SRCNN predicts a pixel from a 13x13 window, VDSR's twenty 3x3 layers from 41x41.

- :func:`receptive_field`: the theoretical size, computed from the layers (kernel sizes,
  dilations, strides, pooling; sub-pixel upsampling divides the step between outputs).
- :func:`input_gradient` and :func:`support`: the empirical receptive field, the input
  pixels with a non-zero gradient for one output pixel.
- :func:`effective_rf` and :func:`mass_width`: Luo et al.'s effective receptive field
  (NeurIPS 2016), how the gradient mass spreads inside the theoretical window.

Chapter: receptive fields and context (notebook 02).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["Layer", "RF", "receptive_field", "input_gradient", "support", "empirical_rf", "effective_rf",
           "mass_width", "gain_by_gradient", "upscale_factor"]

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_GLOBAL = (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _square_side(v) -> int:
    v = v if isinstance(v, int) else v[0]
    return int(v)


@dataclass(frozen=True)
class Layer:
    """One layer of the walk and the receptive field after it."""

    name: str
    kernel: int
    stride: int
    dilation: int
    size: float  # receptive field after this layer, in input pixels
    jump: float  # input pixels between two neighbouring outputs of this layer


@dataclass(frozen=True)
class RF:
    """Receptive field of a network's output pixel, in input pixels.

    ``jump`` is the step between neighbouring outputs in input pixels: 1 for SRCNN and VDSR
    (same grid), ``1/r`` after a sub-pixel upsampling by ``r`` (SRResNet: LR pixels).
    """

    size: float
    jump: float
    layers: tuple[Layer, ...]

    @property
    def depth(self) -> int:
        """Number of layers with a spatial kernel (convolutions and pooling)."""
        return sum(1 for x in self.layers if x.kernel > 1 or x.stride > 1)


def upscale_factor(m: nn.PixelShuffle | nn.Upsample) -> int:
    """The whole factor by which a sub-pixel shuffle or a nearest-neighbour or bilinear enlargement
    multiplies each side."""
    if isinstance(m, nn.PixelShuffle):
        return m.upscale_factor
    r = m.scale_factor
    if m.mode not in ("nearest", "bilinear") or m.size is not None or r is None or isinstance(r, tuple) \
            or float(r) != int(r) or (m.mode == "bilinear" and m.align_corners):
        raise ValueError(f"only a nearest-neighbour or bilinear (align_corners=False) Upsample by a whole factor "
                         f"is supported, got {m}")
    return int(r)


def receptive_field(model: nn.Module) -> RF:
    """The theoretical receptive field of ``model``, from its layers in forward order.

    Walks the module tree in registration order (which is the forward order of every srlib
    network). A convolution or pooling of kernel k, dilation d, stride s widens the field by
    ``(k - 1) d jump`` and multiplies the jump by s; a ``PixelShuffle(r)`` or a nearest-neighbour
    ``Upsample`` by r divides it by r; a bilinear one reads two neighbours per side first (``+ jump``).
    For residual networks the longest path counts: an identity skip does not widen it.
    """
    size, jump, trace = 1.0, 1.0, []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, *_POOLS)):
            k, s = _square_side(m.kernel_size), _square_side(m.stride)
            d = _square_side(getattr(m, "dilation", 1))
            size += (k - 1) * d * jump  # r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}
            jump *= s  # j_l = j_{l-1} s_l
            trace.append(Layer(name, k, s, d, size, jump))
        elif isinstance(m, (nn.PixelShuffle, nn.Upsample)):
            if isinstance(m, nn.Upsample) and m.mode == "bilinear":
                size += jump  # each output between the two nearest inputs per side
            jump /= upscale_factor(m)  # r outputs per input step (nearest: each a copy of one input)
            trace.append(Layer(name, 1, 1, 1, size, jump))
        elif isinstance(m, _GLOBAL):
            raise ValueError(f"{name} ({type(m).__name__}) sees the whole input: the receptive field of the "
                             f"convolutional part is receptive_field(model.features) or similar")
    return RF(int(size) if float(size).is_integer() else size, jump, tuple(trace))


def _generic(model: nn.Module) -> nn.Module:
    """A float64 copy in eval mode (batch norm with fixed statistics: no mixing across pixels)."""
    return copy.deepcopy(model).double().eval()


def input_gradient(model: nn.Module, x: torch.Tensor, position: tuple[int, int] | None = None,
                   generic: bool = True) -> torch.Tensor:
    """``d y[position] / d x``: the gradient of one output pixel (summed over output channels)
    with respect to the input ``x`` (1, C, H, W), summed over input channels: (H, W).

    ``position`` (row, column) in output pixels defaults to the centre. With ``generic`` the
    model runs as a float64 copy in eval mode, so that tiny gradients at the edge of the
    field are not lost to rounding.
    """
    net = _generic(model) if generic else model
    x = x.detach().to(torch.float64 if generic else x.dtype).clone().requires_grad_(True)
    y = net(x)
    i, j = position if position is not None else (y.shape[-2] // 2, y.shape[-1] // 2)
    (g,) = torch.autograd.grad(y[0, :, i, j].sum(), x)
    return g[0].sum(0).detach()


def support(grad: torch.Tensor | np.ndarray, tol: float = 0.0) -> tuple[int, int]:
    """(height, width) of the bounding box of the entries with ``|grad| > tol``."""
    g = torch.as_tensor(grad).abs() > tol
    if not g.any():
        return 0, 0
    rows, cols = torch.nonzero(g.any(1)).flatten(), torch.nonzero(g.any(0)).flatten()
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _probe(channels: int, size: int, seed: int) -> torch.Tensor:
    """A positive random input (0.5 to 1): ReLUs of a random network are not all dead on it."""
    g = torch.Generator().manual_seed(seed)
    return 0.5 + 0.5 * torch.rand(1, channels, size, size, generator=g, dtype=torch.float64)


def empirical_rf(model: nn.Module, size: int = 64, channels: int | None = None, seed: int = 0,
                 position: tuple[int, int] | None = None) -> tuple[int, int]:
    """Support (height, width) of one output pixel's input gradient, on a positive random input."""
    c = channels or next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    return support(input_gradient(model, _probe(c, size, seed), position))


def effective_rf(model: nn.Module, size: int = 64, n: int = 8, channels: int | None = None,
                 seed: int = 0, inputs: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Luo et al.'s effective receptive field: mean ``|d y_centre / d x|`` over ``n`` inputs,
    normalised to sum 1 (H, W). ``inputs`` (each (1, C, H, W)) replace the random ones."""
    c = channels or next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    xs = inputs if inputs is not None else [_probe(c, size, seed + k) for k in range(n)]
    net = _generic(model)
    acc = sum(input_gradient(net, x.double(), generic=False).abs() for x in xs)
    return acc / acc.sum()


def mass_width(erf: torch.Tensor | np.ndarray, fraction: float = 0.95) -> int:
    """Side of the smallest square centred on the mass centre holding ``fraction`` of the map's mass."""
    e = torch.as_tensor(erf, dtype=torch.float64).abs()
    e = e / e.sum()
    h, w = e.shape
    ys, xs = torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64)
    ci, cj = int(round(float((e.sum(1) * ys).sum()))), int(round(float((e.sum(0) * xs).sum())))
    for r in range(max(h, w)):
        if e[max(ci - r, 0):ci + r + 1, max(cj - r, 0):cj + r + 1].sum() >= fraction - 1e-12:
            return 2 * r + 1
    return 2 * max(h, w) + 1


def gain_by_gradient(ref: np.ndarray, a: np.ndarray, b: np.ndarray, bins: int = 4,
                     shave: int = 0) -> list[tuple[float, float, float, float]]:
    """Squared-error reduction of ``b`` over ``a``, by equal-count bins of the reference's
    gradient magnitude, flattest first: ``[(share of pixels, mean |grad|, mean reduction of the
    squared error per pixel, share of the total reduction)]``.

    All images (H, W) on the same scale (e.g. Y in [0, 255]); ``shave`` border pixels dropped.
    """
    s = (slice(shave, -shave or None),) * 2
    ref, a, b = (np.asarray(v, dtype=np.float64)[s] for v in (ref, a, b))
    gy, gx = np.gradient(ref)
    mag = np.hypot(gx, gy).ravel()
    gain = ((a - ref) ** 2 - (b - ref) ** 2).ravel()
    which = np.empty(mag.size, dtype=int)  # equal-count bins by rank (ties broken by position)
    which[np.argsort(mag, kind="stable")] = np.arange(mag.size) * bins // mag.size
    out = []
    for k in range(bins):
        m = which == k
        out.append((float(m.mean()), float(mag[m].mean()), float(gain[m].mean()), float(gain[m].sum() / gain.sum())))
    return out
