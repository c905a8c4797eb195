"""Where a run computes, and in what precision: the device and precision policy.

:func:`pick_device` chooses cuda, then mps, then the CPU; :func:`cpu_has_native_bf16` says
whether this CPU computes bf16 in hardware (AMX or AVX512-BF16), where the fast presets train
in bf16 (``Recipe.cpu_amp``), and :func:`cuda_has_native_bf16` whether a GPU does (Ampere and
newer; not a T4 or V100); :func:`training_precision` and :func:`half_dtype` are the one place
that chooses a run's 16-bit type, loss scaling and memory layout; :func:`cpu_info` and
:func:`describe_cpu` say what every timing ran on, including an instruction set limited by
:data:`ISA_LIMITS` (a CPU with AVX-512 or AMX measuring what an AVX2-only one runs). Used by
the training engine, inference and the notebooks.
Appendices: performance (CPU precision), GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import SRError

__all__ = ["pick_device", "cpu_has_native_bf16", "cuda_has_native_bf16", "Precision", "training_precision",
           "half_dtype", "cpu_info", "describe_cpu", "ISA_LIMITS", "AVX2_ONLY"]

#: Environment variables, read when torch starts, that keep oneDNN's kernels (convolutions) and
#: PyTorch's own (element-wise, reductions) to a smaller instruction set:
#: ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` runs float32 as a CPU without AVX-512
#: does, on this one's cores, clock and caches (performance appendix).
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
#: Their values for a CPU with AVX2 only (no AVX-512, no AMX): the CPUs most readers have.
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


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
    info = {"model": model, "flags": [f for f in wanted if f in flags], "cores": os.cpu_count()}
    limits = {k: os.environ[k] for k in ISA_LIMITS if os.environ.get(k)}
    if limits:  # the hardware's flags stay; the kernels that ran are limited
        info["isa_limit"] = limits
    return info


def describe_cpu(info: dict | None = None) -> str:
    """One line for a timing: model, extensions, cores and any instruction-set limit
    (``info``: a recorded :func:`cpu_info`, else this machine's)."""
    info = info or cpu_info()
    text = f"{info['model']} ({', '.join(info['flags']) or 'no AVX2'}), {info['cores']} cores"
    if info.get("isa_limit"):
        text += ", kernels limited by " + " ".join(f"{k}={v}" for k, v in info["isa_limit"].items())
    return text


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


def cuda_has_native_bf16(device: torch.device | int | None = None) -> bool:
    """Whether this CUDA GPU computes bf16 in hardware: compute capability 8.0 and newer (A100, L4,
    H100, RTX 30xx and later), or an AMD GPU under ROCm. ``torch.cuda.is_bf16_supported()`` says yes on a
    T4 or V100 too (capability 7.x), where bf16 is only emulated: fp16 with loss scaling is their 16-bit type."""
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def half_dtype(device: torch.device) -> torch.dtype:
    """The 16-bit type a GPU computes in: bf16 where a CUDA GPU has it in hardware
    (:func:`cuda_has_native_bf16`), else fp16 (a V100, a T4, Apple's mps)."""
    if device.type == "cuda" and cuda_has_native_bf16(device):
        return torch.bfloat16
    return torch.float16


@dataclass(frozen=True)
class Precision:
    """How a training run computes: ``dtype`` its autocast type (None: float32 throughout),
    ``scaled`` whether the loss is scaled (fp16's small range needs it, bf16 does not), and
    ``channels_last`` the memory layout of the model and the batches."""

    dtype: torch.dtype | None
    scaled: bool
    channels_last: bool


def training_precision(device: torch.device, amp: bool = True, cpu_amp: bool = False) -> Precision:
    """A run's precision (``Recipe.amp``, ``Recipe.cpu_amp``): on CUDA, ``amp`` autocasts to
    :func:`half_dtype` (fp16 with loss scaling) and every run is channels_last; on the CPU,
    bf16 autocast and channels_last only where the recipe asks (``cpu_amp``) and the CPU
    computes bf16 natively (emulated bf16 is slower than float32); elsewhere float32."""
    if device.type == "cuda":
        dtype = half_dtype(device) if amp else None
        return Precision(dtype, dtype == torch.float16, True)
    cpu_bf16 = device.type == "cpu" and amp and cpu_amp and cpu_has_native_bf16()
    return Precision(torch.bfloat16 if cpu_bf16 else None, False, cpu_bf16)
