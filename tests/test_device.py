"""The CPU description every timing carries, and the instruction-set limit that lets a CPU with
AVX-512 or AMX measure what an AVX2-only CPU runs (srlib.device; performance appendix)."""

import json
import os
import subprocess
import sys

import torch

from srlib.device import (
    AVX2_ONLY,
    ISA_LIMITS,
    Precision,
    cpu_has_native_bf16,
    cpu_info,
    cuda_has_native_bf16,
    describe_cpu,
    half_dtype,
    training_precision,
)

RECORD = {"model": "AMD EPYC 7B13", "flags": ["avx2", "fma"], "cores": 2}


def test_a_recorded_cpu_is_described_in_one_line():
    assert describe_cpu(RECORD) == "AMD EPYC 7B13 (avx2, fma), 2 cores"
    assert describe_cpu({**RECORD, "flags": []}) == "AMD EPYC 7B13 (no AVX2), 2 cores"
    limited = {**RECORD, "isa_limit": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}
    assert describe_cpu(limited) == "AMD EPYC 7B13 (avx2, fma), 2 cores, kernels limited by ONEDNN_MAX_CPU_ISA=AVX2"


def test_the_isa_limit_is_recorded_and_takes_effect():
    ask = ("import json, torch; from srlib.device import cpu_info, cpu_has_native_bf16; "
           "print(json.dumps([cpu_info(), cpu_has_native_bf16(), torch.backends.cpu.get_cpu_capability()]))")
    env = {k: v for k, v in os.environ.items() if k not in ISA_LIMITS}
    plain = json.loads(subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    assert "isa_limit" not in plain[0] and plain[0]["model"] == cpu_info()["model"]
    env.update(AVX2_ONLY)
    info, bf16, capability = json.loads(subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True,
                                                       text=True, check=True).stdout)
    assert info["isa_limit"] == AVX2_ONLY == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert info["flags"] == plain[0]["flags"]  # the hardware's flags stay
    assert not bf16  # no native bf16 under AVX2: the fast presets train in float32, as on such a CPU
    assert capability in ("AVX2", "DEFAULT")  # PyTorch's own kernels: at most AVX2


def test_the_precision_of_a_run_is_chosen_in_one_place(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert training_precision(cpu) == Precision(None, False, False)  # the papers' recipes: float32
    native = Precision(torch.bfloat16, False, True) if cpu_has_native_bf16() else Precision(None, False, False)
    assert training_precision(cpu, cpu_amp=True) == native  # emulated bf16 would be slower than float32
    assert training_precision(cpu, amp=False, cpu_amp=True) == Precision(None, False, False)  # --no-amp
    bf16, fp16 = Precision(torch.bfloat16, False, True), Precision(torch.float16, True, True)
    # PyTorch's is_bf16_supported() says yes on every one of these GPUs (on a T4 or V100 by emulation, slow):
    # only the compute capability tells which compute bf16 in hardware.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    for gpu, capability, want in [("H100", (9, 0), bf16), ("A100", (8, 0), bf16), ("T4", (7, 5), fp16),
                                  ("V100", (7, 0), fp16)]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, c=capability, **k: c)
        assert cuda_has_native_bf16(cuda) == (want is bf16), gpu
        assert training_precision(cuda) == want and half_dtype(cuda) == want.dtype, gpu  # a T4: fp16, scaled
    assert training_precision(cuda, amp=False) == Precision(None, False, True)
    monkeypatch.setattr(torch.version, "hip", "6.2")  # an AMD GPU under ROCm computes bf16
    assert half_dtype(cuda) == torch.bfloat16
    assert half_dtype(torch.device("mps")) == torch.float16
