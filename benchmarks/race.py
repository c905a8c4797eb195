"""Learning on a CPU: what srlib's fast presets reach in a fixed wall-clock budget.

Runs the two commands of the "learning on a CPU in minutes" targets from scratch, each
with its time budget, then measures Set5 with srlib's protocol and prints the table
beside the figures reported for popular reimplementations on the same 2-core machine
(yjn870/SRCNN-pytorch: 15 minutes, Set5 x3 32.00 dB; twtygqyy/pytorch-vdsr: 30 minutes,
Set5 x2/x3/x4 34.60/31.79/29.62 dB, as measured for srlib's issue tracker). It writes
``benchmarks/results/race.json``. It takes the budgets' sum (45 minutes by default).

It trains in float32 (``--no-amp``), as on the CPUs most readers have (no native bf16);
``--bf16`` lets the presets use bf16 where this CPU computes it natively. The CPU model, its
flags that matter (avx2, avx512f, avx512_bf16, amx) and the precision are recorded with the result.

    SRLIB_DATA=../shared/data python benchmarks/race.py [--srcnn-minutes 15] [--vdsr-minutes 30] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from srlib.device import cpu_info
from srlib.evaluate import evaluate
from srlib.inference import as_method, load_model

REFERENCE = {"srcnn": {"3": 32.00}, "vdsr": {"2": 34.60, "3": 31.79, "4": 29.62}}


def run(kind: str, scales: list[str], minutes: float, out: Path, bf16: bool) -> dict:
    from srlib.device import cpu_has_native_bf16

    cmd = [sys.executable, "-m", "srlib", "train", kind, "--preset", f"{kind}-fast", "--data", "T91",
           "--scale", *scales, "--minutes", str(minutes), "--out", str(out), "--quiet"] + ([] if bf16 else ["--no-amp"])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    model, info = load_model(out / "last.pt")
    res = evaluate(as_method(model, kind, kind, None), ["Set5"], [float(s) for s in scales])
    return {"command": " ".join(["python", "-m", "srlib"] + cmd[3:]), "minutes": minutes, "wall_seconds": wall,
            "iterations": info["iteration"], "set5_psnr": {f"{r.scale:g}": round(r.psnr, 2) for r in res},
            "reference": REFERENCE[kind], "precision": "bf16" if bf16 and cpu_has_native_bf16() else "float32",
            "cpu": cpu_info()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srcnn-minutes", type=float, default=15)
    p.add_argument("--vdsr-minutes", type=float, default=30)
    p.add_argument("--out", type=Path, default=Path("runs/race"))
    p.add_argument("--only", choices=["srcnn", "vdsr"], help="run one of the two (the other keeps its result)")
    p.add_argument("--bf16", action="store_true", help="let the presets use bf16 where the CPU has it natively")
    a = p.parse_args()
    dest = Path(__file__).with_name("results") / "race.json"
    results = json.loads(dest.read_text()) if dest.is_file() else {}
    if a.only in (None, "srcnn"):
        results["srcnn"] = run("srcnn", ["3"], a.srcnn_minutes, a.out / "srcnn", a.bf16)
    if a.only in (None, "vdsr"):
        results["vdsr"] = run("vdsr", ["2", "3", "4"], a.vdsr_minutes, a.out / "vdsr", a.bf16)
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{'run':<6} {'minutes':>7} {'iterations':>10} {'precision':>9}  Set5 PSNR (srlib)      reimplementation"
          "      CPU")
    for kind, r in results.items():
        ours = " ".join(f"x{k} {v:.2f}" for k, v in r["set5_psnr"].items())
        ref = " ".join(f"x{k} {v:.2f}" for k, v in r["reference"].items())
        where = r.get("cpu", {})
        cpu_text = f"{where.get('model', '?')} ({' '.join(where.get('flags', []))})" if where else "not recorded"
        print(f"{kind:<6} {r['minutes']:>7g} {r['iterations']:>10} {r.get('precision', 'not recorded'):>9}  "
              f"{ours:<22} {ref:<21} {cpu_text}")


if __name__ == "__main__":
    main()
