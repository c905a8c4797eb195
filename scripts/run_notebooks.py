"""Execute notebooks in place, as the book and nbval do, keeping their widget state.

    python scripts/run_notebooks.py notebooks/01_sparse_coding.ipynb [...]

Run from the repository root (with SRLIB_DATA set to have the benchmark images); each
notebook runs in its own folder, its outputs and widget state are saved into the file, and
the wall time is printed (the quick mode must stay within 3 minutes on 2 CPU cores).
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path: Path, timeout: int = 1800) -> float:
    nb = nbformat.read(path, as_version=4)
    t = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - t
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: {run(Path(p)):.1f} s", flush=True)
