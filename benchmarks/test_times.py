"""How long the README's test commands take on this machine: ``make test`` (what CI runs) and ``make test-fast``.

Runs the chosen make target as CI does (``SRLIB_DATA`` as set by the caller), with ``JOBS`` pytest-xdist
workers, and records in ``benchmarks/results/test-times.json``, under the target: its wall time, the
tests passed and skipped, the slowest tests (pytest's ``--durations``), the number of workers and the
CPU. The performance appendix shows the record. A failing run is printed and not recorded.

    SRLIB_DATA=../shared/data python benchmarks/test_times.py [--target test|test-fast] [--jobs N] [--log FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from srlib.device import cpu_info

ROOT = Path(__file__).resolve().parents[1]
DURATION = re.compile(r"^\s*([0-9.]+)s (call|setup|teardown)\s+(\S+)", re.M)


def summary(log: str) -> dict:
    """Counts and time of pytest's last line, e.g. ``431 passed, 8 skipped in 2207.67s (0:36:47)``."""
    line = [s for s in log.splitlines() if re.search(r"\b(passed|failed)\b.* in [0-9.]+s", s)][-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", line)}
    return {"pytest_s": float(re.search(r" in ([0-9.]+)s", line).group(1)), **counts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=["test", "test-fast"], default="test")
    p.add_argument("--jobs", default="auto", help="pytest-xdist workers (the Makefile's JOBS; default: one per core)")
    p.add_argument("--log", type=Path, help="also write the whole output of make to this file")
    a = p.parse_args()
    t = time.perf_counter()
    run = subprocess.run(["make", a.target, f"JOBS={a.jobs}"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    log = run.stdout + run.stderr
    if a.log:
        a.log.write_text(log)
    if run.returncode != 0:
        print(log[-6000:])
        print(f"make {a.target} failed (exit {run.returncode}) after {wall:.0f} s: not recorded", file=sys.stderr)
        return 1
    slowest = [{"seconds": float(s), "phase": phase, "test": name} for s, phase, name in DURATION.findall(log)]
    record = {"date": date.today().isoformat(), "wall_s": round(wall, 1), "jobs": a.jobs,
              "cores": len(os.sched_getaffinity(0)), "data": bool(os.environ.get("SRLIB_DATA")), "cpu": cpu_info(),
              **summary(log), "slowest": slowest[:10]}
    dest = Path(__file__).with_name("results") / "test-times.json"
    results = json.loads(dest.read_text()) if dest.is_file() else {}
    results[a.target] = record
    dest.write_text(json.dumps(results, indent=1) + "\n")
    print(f"make {a.target}: {wall:.0f} s ({wall / 60:.1f} min) with JOBS={a.jobs} on {record['cores']} cores; "
          f"pytest {record['pytest_s']:.0f} s, {record.get('passed', 0)} passed, {record.get('skipped', 0)} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
