"""Running a trained network on whole images, as the papers do.

SRCNN and VDSR work on the bicubic-upscaled Y channel (Cb and Cr are upscaled bicubically
for display); SRResNet and SRGAN take the LR RGB image itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.degrade import bicubic_restore
from .data.image import quantize, rgb_to_ycbcr, ycbcr_to_rgb
from .errors import SRError
from .evaluate import Method
from .models import SRCNN, VDSR, SRResNet

__all__ = ["KINDS", "make_model", "read_checkpoint", "load_model", "as_method", "upscale", "model_input"]

KINDS = {"srcnn": SRCNN, "vdsr": VDSR, "srresnet": SRResNet, "srgan": SRResNet}
RGB_KINDS = ("srresnet", "srgan")


def make_model(kind: str, config: dict) -> nn.Module:
    """The network of ``kind`` ("srcnn", "vdsr", "srresnet", "srgan": its generator)."""
    if kind not in KINDS:
        raise SRError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")
    try:
        return KINDS[kind](**config)
    except TypeError as err:  # an argument the constructor does not take
        raise SRError(f"bad settings for {kind}: {err}") from None


def read_checkpoint(path: str | Path) -> dict:
    """The contents of an srlib checkpoint (state_dicts and plain values only), or SRError."""
    path = Path(path)
    if not path.is_file():
        raise SRError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SRError(f"{path}: not an srlib checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "model" not in ckpt:
        raise SRError(f"{path}: not an srlib checkpoint (no 'kind'/'model' entries)")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint or a weights file written by srlib: ``(model in eval mode, info)``.

    ``info`` has ``kind``, ``scales`` and whatever else the file recorded.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    model = make_model(ckpt["kind"], ckpt["model_config"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise SRError(f"{path}: weights do not fit a {ckpt['kind']} model ({str(e).splitlines()[0]})") from None
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "disc", "opt_disc", "scalers", "rng")}
    info["path"] = str(path)
    return model.to(device).eval(), info


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def model_input(model: nn.Module) -> nn.Module:
    """The model as used on whole images: SRCNN switched to 'same' padding."""
    if isinstance(model, SRCNN):
        model.padding = "same"
    return model


@torch.no_grad()
def _run(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) float image through the network, on its device."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    out = model(t.to(_device_of(model)))[0].float().cpu()
    return (out[0] if out.shape[0] == 1 else out.permute(1, 2, 0)).double().numpy()


def as_method(model: nn.Module, kind: str, name: str, scales: tuple[float, ...] | None) -> Method:
    """The model as an evaluate :class:`~srlib.evaluate.Method`."""
    model_input(model.eval())
    if kind in RGB_KINDS:
        return Method(name, lambda lr, shape, s: np.clip(_run(model, lr), 0, 1), scales, rgb=True)
    return Method(name, lambda lr, shape, s: _run(model, bicubic_restore(lr, shape)), scales)


def upscale(image: np.ndarray, model: nn.Module, kind: str, scale: float) -> np.ndarray:
    """Super-resolve a uint8 image (H, W) or (H, W, 3) by ``scale``; uint8 out.

    Y models: the network on Y, Cb and Cr upscaled bicubically. RGB models: on RGB.
    """
    model_input(model.eval())
    a = np.asarray(image)
    if kind in RGB_KINDS:
        rgb = a if a.ndim == 3 else np.repeat(a[..., None], 3, -1)
        out = _run(model, rgb / 255.0)
        return quantize(out * 255.0) if a.ndim == 3 else quantize(out.mean(-1) * 255.0)
    shape = tuple(int(np.ceil(n * scale - 1e-9)) for n in a.shape[:2])
    if a.ndim == 2:
        return quantize(_run(model, bicubic_restore(a / 255.0, shape)) * 255.0)
    ycc = rgb_to_ycbcr(a / 255.0)
    up = bicubic_restore(ycc, shape)
    up[..., 0] = _run(model, up[..., 0])
    return quantize(ycbcr_to_rgb(up) * 255.0)

