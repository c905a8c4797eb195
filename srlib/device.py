"""Where a run computes, and in what precision: the device and precision policy.

:func:`pick_device` chooses cuda, then mps, then the CPU; :func:`cpu_has_native_bf16` says
whether this CPU computes bf16 in hardware (AMX or AVX512-BF16), where the fast presets train
in bf16 (``Recipe.cpu_amp``). Used by the training engine, inference and the notebooks.
Appendices: performance (CPU precision), GPU.
"""

from __future__ import annotations

import os

import torch

from .errors import SRError

__all__ = ["pick_device", "cpu_has_native_bf16", "cpu_info"]


def cpu_info() -> dict:
    """This CPU's model name, the vector and matrix extensions that decide convolution speed
    (AVX2, FMA, AVX-512, AVX512-BF16, AMX) and the number of cores: what every timing is reported with."""
    import platform

    model, flags = platform.processor() or platform.machine() or "unknown", set()
    try:  # Linux
        text = open("/proc/cpuinfo").read()
        model = next(x.split(":", 1)[1].strip() for x in text.splitlines() if x.startswith("model name"))
        flags = set(next(x.split(":", 1)[1].split() for x in text.splitlines() if x.startswith("flags")))
    except (OSError, StopIteration):
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    return {"model": model, "flags": [f for f in wanted if f in flags], "cores": os.cpu_count()}


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN computes bf16 in hardware here (AMX or AVX512-BF16), not emulated."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without the check
        return False


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else cuda, then mps, then cpu."""
    if device:
        try:
            d = torch.device(device)
        except RuntimeError:
            raise SRError(f"unknown device {device!r}") from None
        if d.type == "cuda" and not torch.cuda.is_available():
            raise SRError("device cuda requested but CUDA is not available")
        if d.type == "cuda" and d.index is None:  # under torchrun, each process its own GPU
            d = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return d
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
