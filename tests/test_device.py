"""The CPU description every timing carries, and the instruction-set limit that lets a CPU with
AVX-512 or AMX measure what an AVX2-only CPU runs (srlib.device; performance appendix)."""

import json
import os
import subprocess
import sys

from srlib.device import AVX2_ONLY, ISA_LIMITS, cpu_info, describe_cpu

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
