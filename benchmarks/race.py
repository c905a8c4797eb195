"""Learning on a CPU: what srlib's CPU presets reach in a fixed budget, from scratch on T91.

Runs SRCNN x3 (15 minutes) and VDSR x2/x3/x4 (30 minutes), then measures Set5 with srlib's
protocol and prints the table beside the figures reported for popular reimplementations
(yjn870/SRCNN-pytorch and twtygqyy/pytorch-vdsr, as measured for srlib's issue tracker). It
writes ``benchmarks/results/race.json``.

Two budgets:

- by default, wall-clock minutes on this machine (``--minutes`` of the trainer);
- ``--as-reference``: the budgets of issue 23's reference machine, a 2-core CPU with AVX2 only
  (no native bf16) and float32 convolutions at about 90 GFLOP/s, the kind of CPU most readers
  have. There, in float32, ``srcnn-fast`` made 8,602 steps in 15 minutes and ``vdsr-fast``
  1,369 steps in 30 minutes. A preset's budget is that many steps of the reference preset,
  converted into its own steps by the ratio of their step times measured here, one after the
  other. This machine's own speed then does not matter, on an assumption not checked on the
  reference machine: that the ratio of two convolution-bound step times depends on the CPU
  much less than minutes do. ``--check-conversion`` tests one part of that assumption: it
  converts the budgets twice on this CPU, with all its kernels and with AVX2's alone
  (``benchmarks/results/race-conversion.json``). The reference machine has AVX2's kernels only,
  so ``--as-reference`` uses that record's AVX2 conversion where it holds one for this CPU and
  preset.

It trains in float32 (``--no-amp``), as on the CPUs most readers have; ``--bf16`` lets the
presets use bf16 where this CPU computes it natively. The CPU model, its flags that matter
(avx2, avx512f, avx512_bf16, amx), the precision and the budget are recorded with each result.

    SRLIB_DATA=../shared/data python benchmarks/race.py [--as-reference] [--only srcnn] [--bf16] [--check-conversion]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from srlib.device import AVX2_ONLY, ISA_LIMITS, cpu_has_native_bf16, cpu_info, describe_cpu
from srlib.evaluate import evaluate
from srlib.inference import as_method, load_model
from srlib.recipes import recipe
from srlib.train import read_history, train

# The reimplementations' Set5 PSNR in the same budgets: yjn870/SRCNN-pytorch on the AVX2 reference
# machine, twtygqyy/pytorch-vdsr on a faster 2-core machine (issue 23).
REFERENCE = {"srcnn": {"3": 31.49}, "vdsr": {"2": 34.60, "3": 31.79, "4": 29.62}}
#: Issue 23's targets for the same budgets (Set5 PSNR, dB).
TARGETS = {"srcnn": {"3": 32.0}, "vdsr": {"2": 35.1, "3": 32.3, "4": 30.1}}
CONVERSION = Path(__file__).with_name("results") / "race-conversion.json"  # --check-conversion's record
#: Issue 23's reference machine, as its tracker measured it.
REFERENCE_MACHINE = {"cores": 2, "kernels": "AVX2", "conv_gflops": 90}
RACES = {"srcnn": dict(preset="srcnn-cpu", scales=["3"], minutes=15, reference=("srcnn-fast", 8602)),
         "vdsr": dict(preset="vdsr-cpu", scales=["2", "3", "4"], minutes=30, reference=("vdsr-fast", 1369))}


def step_seconds(preset: str, scales: list[str], bf16: bool, window: int) -> list[float]:
    """This machine's seconds per training step of ``preset`` in six windows of ``window`` steps,
    after a first window of warm-up."""
    r = recipe(preset, data="T91", scales=tuple(float(s) for s in scales), iterations=7 * window, val_every=window,
               val_data="builtin", cpu_amp=bf16 and recipe(preset).cpu_amp)
    with tempfile.TemporaryDirectory() as tmp:
        train(r, tmp, device="cpu", progress=False)
        return [h["seconds_per_it"] for h in read_history(Path(tmp) / "history.csv")[1:]]


def reference_steps(kind: str, preset: str, scales: list[str], bf16: bool) -> dict:
    """The reference machine's budget in steps of ``preset``, by the ratio of the two presets' step
    times measured here: in turns (reference, preset, reference, preset), each the fastest of its
    windows, the time least slowed by other work on a shared machine."""
    ref_preset, ref_steps = RACES[kind]["reference"]
    window = 50 if kind == "srcnn" else 5
    times = {ref_preset: [], preset: []}
    for _ in range(2):
        for name in times:
            times[name] += step_seconds(name, scales, bf16, window)
    ref, own = min(times[ref_preset]), min(times[preset])
    return {"preset": preset, "reference_preset": ref_preset, "reference_steps": ref_steps,
            "seconds_per_step": round(own, 4),
            "reference_seconds_per_step": round(ref, 4), "iterations": round(ref_steps * ref / own)}


def reference_budget(kind: str, preset: str, bf16: bool) -> dict:
    """The reference machine's budget in steps of ``preset``. That machine has AVX2's kernels only:
    the conversion that --check-conversion recorded on this CPU with AVX2's kernels is used where
    there is one for this preset (in float32); otherwise the step times are measured now. (Run
    --check-conversion again after changing a preset's network, batch or patches.)"""
    recorded = json.loads(CONVERSION.read_text()).get("AVX2 kernels", {}) if CONVERSION.is_file() else {}
    if (not bf16 and recorded.get(kind, {}).get("preset") == preset
            and recorded["cpu"]["model"] == cpu_info()["model"]):
        return recorded[kind] | {"measured": "with AVX2's kernels here (race-conversion.json)"}
    return reference_steps(kind, preset, RACES[kind]["scales"], bf16) | {"measured": "here"}


def curve(out: Path, scales: list[str]) -> list[list[float]]:
    """The run's validation history: each row the iteration, then Set5 PSNR at each scale."""
    rows = read_history(out / "history.csv")
    return [[int(h["iteration"])] + [round(h[f"psnr_x{s}"], 2) for s in scales] for h in rows]


def run(kind: str, preset: str, out: Path, bf16: bool, as_reference: bool) -> dict:
    race = RACES[kind]
    if (out / "last.pt").exists():  # srlib train never overwrites a run: say so before measuring anything
        print(f"{out}: holds an earlier race's run; move it away or give --out another folder", file=sys.stderr)
        raise SystemExit(2)
    budget = reference_budget(kind, preset, bf16) if as_reference else None
    length = ["--iterations", str(budget["iterations"])] if budget else ["--minutes", str(race["minutes"])]
    cmd = [sys.executable, "-m", "srlib", "train", kind, "--preset", preset, "--data", "T91", "--scale",
           *race["scales"], *length, "--out", str(out), "--quiet"] + ([] if bf16 else ["--no-amp"])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    model, info = load_model(out / "last.pt")
    res = evaluate(as_method(model, kind, kind, None), ["Set5"], [float(s) for s in race["scales"]])
    return {"command": " ".join(["python", "-m", "srlib"] + cmd[3:]), "preset": preset, "minutes": race["minutes"],
            "budget": ("the reference machine's" if budget else "this machine's") + f" {race['minutes']} minutes",
            "steps": budget, "wall_seconds": round(wall, 1), "iterations": info["iteration"],
            "set5_psnr": {f"{r.scale:g}": round(r.psnr, 2) for r in res},
            "history": curve(out, race["scales"]), "reference": REFERENCE[kind],
            "precision": "bf16" if bf16 else "float32", "cpu": cpu_info()}


def conversions_here(kinds: list[str]) -> dict:
    """The races' budgets converted into the CPU presets' steps on this machine, as it runs now,
    with its float32 convolution ceiling (benchmarks/models.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from models import conv_ceiling

    return {"cpu": cpu_info(), "conv_gflops": round(conv_ceiling(torch.device("cpu")) / 1e9, 1),
            **{kind: reference_steps(kind, RACES[kind]["preset"], RACES[kind]["scales"], False) for kind in kinds}}


def check_conversion(kinds: list[str]) -> dict:
    """The conversion twice on this CPU: with all its kernels, then limited to AVX2's (a child
    process each: the limit is read when torch starts). Where the two agree, the ratio of step
    times does not hang on the instruction set, one of the ways the reference machine differs.
    The races not in ``kinds`` keep their recorded conversion."""
    out = json.loads(CONVERSION.read_text()) if CONVERSION.is_file() else {}
    out["reference machine"] = REFERENCE_MACHINE
    for name, limit in [("all kernels", {}), ("AVX2 kernels", AVX2_ONLY)]:
        env = {k: v for k, v in os.environ.items() if k not in ISA_LIMITS} | limit
        child = subprocess.run([sys.executable, __file__, "--conversion-here", *kinds], env=env, check=True,
                               capture_output=True, text=True)
        here = json.loads(child.stdout.splitlines()[-1])
        kept = {k: v for k, v in out.get(name, {}).items() if k in RACES and k not in kinds
                and out[name]["cpu"] == here["cpu"]}  # another race's record, on this same CPU
        out[name] = here | kept
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check-conversion", action="store_true",
                   help="only convert the budgets, with all of this CPU's kernels and with AVX2's alone "
                        "(results/race-conversion.json)")
    p.add_argument("--conversion-here", nargs="+", choices=list(RACES), help=argparse.SUPPRESS)  # its child
    p.add_argument("--as-reference", action="store_true",
                   help="budgets in steps: the AVX2 reference machine's, converted by step times measured here")
    p.add_argument("--srcnn-preset", default=RACES["srcnn"]["preset"])
    p.add_argument("--vdsr-preset", default=RACES["vdsr"]["preset"])
    p.add_argument("--out", type=Path, default=Path("runs/race"))
    p.add_argument("--only", choices=["srcnn", "vdsr"],
                   help="race (or convert the budget of) one of the two; the other keeps its record")
    p.add_argument("--bf16", action="store_true", help="let the presets use bf16 where the CPU has it natively")
    a = p.parse_args()
    if a.conversion_here:
        print(json.dumps(conversions_here(a.conversion_here)))
        return
    if a.check_conversion:
        checked = check_conversion([a.only] if a.only else list(RACES))
        CONVERSION.write_text(json.dumps(checked, indent=1) + "\n")
        for name, c in checked.items():
            if name == "reference machine":
                continue
            print(f"{name:<13} {describe_cpu(c['cpu'])}: convolutions {c['conv_gflops']:.0f} GFLOP/s; " + "; ".join(
                f"{c[k]['reference_preset']} {1e3 * c[k]['reference_seconds_per_step']:.0f} ms, "
                f"{c[k]['preset']} {1e3 * c[k]['seconds_per_step']:.0f} ms: {c[k]['iterations']:,} steps"
                for k in RACES if k in c))
        return
    precision = "bf16" if a.bf16 and cpu_has_native_bf16() else "float32"
    dest = Path(__file__).with_name("results") / "race.json"
    results = json.loads(dest.read_text()) if dest.is_file() else {}
    table = results.setdefault(precision, {})
    for kind in ("srcnn", "vdsr"):
        if a.only in (None, kind):
            preset = getattr(a, f"{kind}_preset")
            table[kind] = run(kind, preset, a.out / kind, precision == "bf16", a.as_reference)
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(results, indent=1) + "\n")
    for precision, table in results.items():
        print(f"\n{precision}")
        print(f"{'run':<6} {'preset':<10} {'budget':<32} {'iterations':>10}  Set5 PSNR (srlib)      "
              "reimplementation      CPU")
        for kind, r in table.items():
            ours = " ".join(f"x{k} {v:.2f}" for k, v in r["set5_psnr"].items())
            ref = " ".join(f"x{k} {v:.2f}" for k, v in r["reference"].items())
            cpu_text = describe_cpu(r["cpu"]) if r.get("cpu") else "not recorded"
            print(f"{kind:<6} {r['preset']:<10} {r['budget']:<32} {r['iterations']:>10}  {ours:<22} {ref:<21} "
                  f"{cpu_text}")


if __name__ == "__main__":
    main()
