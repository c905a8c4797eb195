"""Each notebook's quick mode, timed as a reader runs it, with this CPU's kernels or AVX2's alone.

Executes every notebook in notebooks/ in quick mode (a fresh kernel each, the outputs are not
saved), and records its wall time and the report its last cell prints (srlib.notebook.Session.report)
in ``benchmarks/results/quick-modes.json``, under the kernels it ran with and the CPU's model. ``--avx2`` limits
oneDNN's and PyTorch's kernels to AVX2's (srlib.device.ISA_LIMITS), as on the CPUs most readers
have: the quick mode's budget is 3 minutes on 2 cores in float32 there (performance appendix).

    SRLIB_DATA=../shared/data python benchmarks/quick_modes.py [--avx2] [notebooks/01_sparse_coding.ipynb ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from srlib.device import AVX2_ONLY, ISA_LIMITS, cpu_info

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> dict:
    """Executes the notebook at ``path`` in memory (the file is left as it is)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t = time.perf_counter()
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    seconds = time.perf_counter() - t
    report = "".join("".join(o.get("text", "")) for o in nb.cells[-1].get("outputs", [])).strip()
    return {"seconds": round(seconds, 1), "report": report}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    p.add_argument("--avx2", action="store_true", help="AVX2's kernels only, as on a CPU without AVX-512")
    a = p.parse_args()
    for k in ISA_LIMITS:  # the kernels start with this process's environment
        os.environ.pop(k, None)
    if a.avx2:
        os.environ.update(AVX2_ONLY)
    os.environ.pop("SRLIB_FULL", None)  # quick mode
    dest = Path(__file__).with_name("results") / "quick-modes.json"
    results = json.loads(dest.read_text()) if dest.is_file() else {}
    name = "AVX2 kernels" if a.avx2 else "all kernels"
    cpu = cpu_info()  # one record per kernel set and CPU model: the same kernels run at other speeds elsewhere
    entry = results.setdefault(f"{name}, {cpu['model']}", {"kernels": name, "cpu": cpu,
                                                           "data": bool(os.environ.get("SRLIB_DATA")), "notebooks": {}})
    entry["cpu"] = cpu
    for path in a.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        entry["notebooks"][path.name] = run(path.resolve())
        print(f"{path.name}: {entry['notebooks'][path.name]['seconds']:.0f} s", flush=True)
        dest.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
