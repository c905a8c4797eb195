"""bf16 on the CPU: the same training run in float32 and under bf16 autocast.

The fast presets (``srcnn-fast``, ``vdsr-fast``) train under bf16 autocast in channels_last
where the CPU computes bf16 natively (AMX or AVX512-BF16, ``cpu_amp``). This runs one
preset for a fixed number of steps both ways, from the same seed, and prints the
validation PSNR on Set5 at a few points and the seconds per step of each. It writes
``benchmarks/results/cpu-bf16.json``.

    SRLIB_DATA=../shared/data python benchmarks/cpu_bf16.py [--preset srcnn-fast] [--scale 3] [--iterations 3000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from srlib.device import cpu_has_native_bf16, cpu_info, describe_cpu
from srlib.recipes import recipe
from srlib.train import read_history, train


def run(preset: str, scales: tuple, iterations: int, bf16: bool, out: Path) -> dict:
    r = recipe(preset, data="T91", scales=scales, iterations=iterations, val_every=iterations // 3, cpu_amp=bf16)
    t = time.perf_counter()
    train(r, out, device="cpu", progress=False)
    seconds = time.perf_counter() - t
    rows = read_history(out / "history.csv")
    psnr = {int(h["iteration"]): {f"{s:g}": round(h[f"psnr_x{s:g}"], 3) for s in scales}
            for h in rows if h[f"psnr_x{scales[0]:g}"] == h[f"psnr_x{scales[0]:g}"]}  # validation rows
    return {"seconds": round(seconds, 1), "psnr": psnr}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="srcnn-fast", choices=["srcnn-fast", "vdsr-fast"])
    p.add_argument("--scale", nargs="+", type=float, default=[3])
    p.add_argument("--iterations", type=int, default=3000)
    a = p.parse_args()
    if not cpu_has_native_bf16():
        raise SystemExit("this CPU has no native bf16 (AMX or AVX512-BF16): the fast presets train in float32 here")
    result = {"preset": a.preset, "scales": a.scale, "iterations": a.iterations, "threads": torch.get_num_threads(),
              "cpu": cpu_info()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, bf16 in [("float32", False), ("bf16", True)]:
            result[name] = run(a.preset, tuple(a.scale), a.iterations, bf16, Path(tmp) / name)
    dest = Path(__file__).with_name("results") / "cpu-bf16.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{a.preset}, x{'/'.join(f'{s:g}' for s in a.scale)}, {a.iterations} steps, {result['threads']} threads, "
          f"{describe_cpu(result['cpu'])}")
    for name in ("float32", "bf16"):
        r = result[name]
        points = "  ".join(f"{it}: {'/'.join(f'{v:.2f}' for v in ps.values())}" for it, ps in r["psnr"].items())
        print(f"{name:<8} {1e3 * r['seconds'] / a.iterations:6.1f} ms/step (validation included)   Set5 PSNR  {points}")


if __name__ == "__main__":
    main()
