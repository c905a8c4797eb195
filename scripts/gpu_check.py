"""Full mode on a GPU, run and recorded: the GPU tests, then every notebook with SRLIB_FULL=1.

    python scripts/gpu_check.py --out benchmarks/results/gpu/full-mode            # on a CUDA machine
    python scripts/gpu_check.py --t4 --out results-t4                             # on a Colab T4
    python scripts/gpu_check.py --dry-run --out /tmp/dry --budget 40              # on a CPU (tested in CI)

Run from the root of a checkout with SRLIB_DATA pointing at the benchmark data (else the notebooks
use the builtin images, and say so). Unless ``--no-install``, it first installs what it needs
(``pip install -r requirements.txt -e .``). Then, within ``--budget`` seconds in all:

1. ``pytest tests/test_gpu.py``, within ``GPU_TESTS_S`` (skipped in a dry run);
2. each notebook executed in a fresh kernel (nbclient) with ``SRLIB_FULL=1``, each under its own time
   limit (``srlib.notebook.FULL_BUDGET_S``, or what is left of the budget). A dry run sets
   ``SRLIB_FULL=dry`` instead: full mode's code at quick mode's sizes, on a CPU, which finds a
   full-mode branch that fails before any GPU time is spent (its limits are not the GPU's);

and writes into ``--out``: ``<notebook>.json`` per notebook (status, wall time, peak GPU memory,
the printed output of its checked cells: its key numbers), the executed notebooks, and
``summary.json`` (device, PyTorch and CUDA versions, the GPU tests' result, what was not reached).
A notebook that runs past its limit is stopped and recorded as such; the run stops cleanly at the
budget and names the notebooks it did not reach. ``--t4`` is for a T4 (Colab's GPU) or a GPU of its
class: each notebook's limit is then ``srlib.notebook.t4_upper_s`` of its budget.

A run can be made in parts (a session with a time limit, Colab's or a lent machine's): a results
folder that holds a run on the same device and software is added to, notebook by notebook (a
notebook run again replaces its record), and ``--no-tests`` skips the GPU tests in a later part;
a folder that holds another device's run, or a dry run's, is refused (exit 2), never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
GPU_TESTS_S = 120  # the limit of tests/test_gpu.py (59 s on an H100 when it had 7 tests)
PEAK = ("import json as _j, torch as _t\n"
        "print('gpu_check:' + _j.dumps({'peak_gpu_bytes': _t.cuda.max_memory_allocated() "
        "if _t.cuda.is_available() else 0}))")


def printed(cell) -> str:
    """The streams and plain-text results of a code cell, as one string."""
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif o.get("output_type") in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
            out.append(o["data"]["text/plain"])
    return "".join(out)


def run_notebook(path: Path, limit: float, full: bool, out: Path) -> dict:
    """Execute ``path`` in a scratch folder (removed after) under ``limit`` seconds; save it into ``out``;
    its record."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK))
    env = {**os.environ, "SRLIB_FULL": "1" if full else "dry"}
    work = tempfile.mkdtemp(prefix=f"gpu_check-{path.stem}-")  # the runs it trains: not in the checkout
    client = NotebookClient(nb, timeout=max(1, int(limit)), kernel_name="python3",
                            resources={"metadata": {"path": work}})
    record = {"notebook": path.name, "full": full, "limit_s": round(limit, 1)}
    t0 = time.perf_counter()
    deadline = t0 + limit
    try:
        with client.setup_kernel(env=env):
            for i, cell in enumerate(nb.cells):
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise CellTimeoutError(f"the notebook's limit of {limit:.0f} s ran out before cell {i}")
                client.timeout = max(1, int(left))
                client.execute_cell(cell, i)
        record["status"] = "ok"
    except CellTimeoutError as e:
        record["status"] = "timed out"
        record["error"] = str(e).splitlines()[0][:300]
    except (CellExecutionError, DeadKernelError) as e:
        record["status"] = "failed"
        record["error"] = str(e)[-2000:]
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    shutil.rmtree(work, ignore_errors=True)
    tail = printed(nb.cells[-1])
    record["peak_gpu_bytes"] = json.loads(tail.split("gpu_check:", 1)[1])["peak_gpu_bytes"] if "gpu_check:" in tail \
        else None
    nb.cells.pop()
    record["checked_outputs"] = {c.get("id", str(i)): printed(c) for i, c in enumerate(nb.cells)
                                 if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source}
    nbformat.write(nb, out / path.name)
    (out / f"{path.stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="results folder (created)")
    p.add_argument("--budget", type=float, help="seconds for everything (default: the GPU tests' limit and the "
                   "notebooks' added up; 600 in a dry run)")
    p.add_argument("--dry-run", action="store_true",
                   help="on a CPU: full mode's code at quick mode's sizes (SRLIB_FULL=dry), no GPU tests")
    p.add_argument("--limit", type=float, help="seconds per notebook (default: srlib.notebook.FULL_BUDGET_S; "
                   "a dry run: 3 times quick mode's budget)")
    p.add_argument("--t4", action="store_true", help="a T4-class GPU: limits from srlib.notebook.t4_upper_s")
    p.add_argument("--no-tests", action="store_true", help="skip the GPU tests (a later part of a run)")
    p.add_argument("--no-install", action="store_true", help="use the environment as it is")
    p.add_argument("--notebooks", nargs="+", help="notebook names or .ipynb files (default: all of notebooks/)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.no_install:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements.txt"),
                        "-e", str(ROOT)], check=True)
    import torch

    from srlib.notebook import FULL_BUDGET_S, QUICK_BUDGET_S, t4_upper_s

    cuda = torch.cuda.is_available()
    if not cuda and not a.dry_run:
        print("gpu_check: no CUDA device; use --dry-run to try the script on a CPU", file=sys.stderr)
        return 2
    chosen = [Path(n).resolve() if n.endswith(".ipynb") and Path(n).is_file() else
              next((b for b in NOTEBOOKS if n in (b.stem, b.name)), None) for n in a.notebooks or []] or NOTEBOOKS
    if None in chosen:
        print(f"gpu_check: unknown notebook in {a.notebooks}; choose from {[b.stem for b in NOTEBOOKS]}",
              file=sys.stderr)
        return 2

    def limit_of(path: Path) -> float:  # a notebook's time limit, before the overall budget cuts it
        if a.limit or a.dry_run:
            return a.limit or 3 * QUICK_BUDGET_S
        budget = FULL_BUDGET_S.get(path.stem, 180)
        return t4_upper_s(budget) if a.t4 else budget

    tests = not a.dry_run and not a.no_tests
    a.budget = a.budget or (600 if a.dry_run else GPU_TESTS_S * tests + sum(limit_of(path) for path in chosen))
    run = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run)", "torch": torch.__version__,
           "cuda": torch.version.cuda, "full": not a.dry_run}
    record = a.out / "summary.json"
    before = json.loads(record.read_text()) if record.is_file() else None
    if before and {k: before.get(k) for k in run} != run:
        print(f"gpu_check: {record} holds a run on {before.get('device')} (PyTorch {before.get('torch')}, "
              f"full mode {before.get('full')}); give another --out", file=sys.stderr)
        return 2
    summary = {"notebooks": {}, "parts": [], **run, **(before or {})}
    part = {"budget_s": a.budget, "notebooks": [path.name for path in chosen]}
    if tests:
        t = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_gpu.py")],
                                  capture_output=True, text=True, cwd=ROOT, timeout=min(GPU_TESTS_S, a.budget / 4))
            code, tail = done.returncode, done.stdout[-1500:]
        except subprocess.TimeoutExpired as e:
            code, tail = None, f"timed out after {e.timeout:.0f} s"
        summary["gpu_tests"] = {"returncode": code, "wall_s": round(time.perf_counter() - t, 1), "tail": tail}
        print(f"GPU tests: exit {code} in {summary['gpu_tests']['wall_s']} s", flush=True)
    not_reached = []
    for path in chosen:
        left = a.budget - (time.perf_counter() - t0)
        if left < 5:
            not_reached.append(path.name)
            continue
        limit = min(limit_of(path), left)
        rec = run_notebook(path, limit, not a.dry_run, a.out)
        summary["notebooks"][path.name] = {k: rec[k] for k in ("status", "wall_s", "peak_gpu_bytes")}
        print(f"{path.name}: {rec['status']} in {rec['wall_s']} s (limit {limit:.0f} s)", flush=True)
    summary["not_reached"] = sorted(set(summary.get("not_reached", []) + not_reached) - set(summary["notebooks"]))
    part["wall_s"] = round(time.perf_counter() - t0, 1)
    summary["parts"].append(part)
    summary["wall_s"] = round(sum(q["wall_s"] for q in summary["parts"]), 1)
    record.write_text(json.dumps(summary, indent=1) + "\n")
    if not_reached:
        print(f"budget of {a.budget:.0f} s spent: not reached: {', '.join(not_reached)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
