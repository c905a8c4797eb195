"""Every chapter runs as a reader gets it on Colab, with no data and no network.

Each chapter's notebook (notebooks/*.ipynb, and book/NAME.ipynb, the Markdown chapters' twins)
is copied alone into an empty folder and executed, in quick mode, by a fresh virtual environment:

- ``google.colab`` is importable and imported (a stub), so the Colab set-up cell runs: its
  ``%pip install "srlib @ git+URL"`` builds srlib from a clone of the repository (``git`` is
  pointed at this checkout's commits instead of GitHub), not from the working tree;
- ``SRLIB_DATA`` is unset, srlib's download cache is empty and every download is refused
  (an unreachable proxy): each chapter must fall back to the images that ship with
  scikit-image, and say so.

The fresh environment sees the packages of .venv (a .pth file) but not srlib, so the test
costs no download. It runs the committed repository: commit before running it.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

pytestmark = pytest.mark.slow

URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    p.with_suffix(".ipynb") for p in (ROOT / "book").glob("*.md") if "```{code-cell}" in p.read_text())

RUN = """
import sys, time, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
t = time.perf_counter()
try:
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
finally:
    nbformat.write(nb, path)
print(f"{time.perf_counter() - t:.1f} s")
"""


@pytest.fixture(scope="module")
def colab(tmp_path_factory) -> dict:
    """A fresh environment like a Colab runtime's, and the environment variables to run in it."""
    base = tmp_path_factory.mktemp("colab")
    venv = base / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)  # pip and setuptools come from .venv: the same ones `make` installed
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", ask], capture_output=True, text=True,
                                  check=True).stdout.strip())
    # The packages of .venv, as a plain path: its .pth files (srlib's editable install) are not read.
    (purelib / "_dot_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    stub = base / "stub" / "google" / "colab"  # a namespace package `google` (protobuf's stays importable)
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('"""Stands in for Colab\'s module in tests/test_colab.py."""\n')
    startup = base / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401  (as on a Colab runtime)\n")
    fake_bin = base / "bin"
    fake_bin.mkdir()
    real_git = shutil.which("git")
    (fake_bin / "git").write_text(f'#!/bin/sh\n# GitHub is this checkout here.\nargs=""\nfor a in "$@"; do\n'
                                  f'  [ "$a" = "{URL}" ] || [ "$a" = "{URL}.git" ] && a="{ROOT}"\n'
                                  f'  args="$args \'$a\'"\ndone\neval exec {real_git} $args\n')
    (fake_bin / "git").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SRLIB_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        PATH=f"{fake_bin}:{venv / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(venv), PYTHONPATH=str(base / "stub"),
        IPYTHONDIR=str(base / "ipython"), SRLIB_CACHE=str(base / "cache"), MPLBACKEND="agg",
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="",
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="",
        PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
        TORCH_HOME=str(base / "torch"), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
    return {"python": venv / "bin" / "python", "env": env, "base": base}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[f"{p.parent.name}/{p.stem}" for p in CHAPTERS])
def test_chapter_runs_on_colab_without_data_or_network(colab, chapter, tmp_path):
    work = tmp_path / "content"  # Colab's working folder, with only the notebook in it
    work.mkdir()
    shutil.copy(chapter, work / chapter.name)
    p = subprocess.run([str(colab["python"]), "-c", RUN, chapter.name], cwd=work, env=colab["env"],
                       capture_output=True, text=True, timeout=1200)
    nb = json.loads((work / chapter.name).read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert p.returncode == 0 and not errors, (p.stderr[-3000:], [(e["ename"], e["evalue"]) for e in errors])
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    # srlib came from the clone, not from this checkout
    where = subprocess.run([str(colab["python"]), "-c", "import srlib; print(srlib.__file__)"], env=colab["env"],
                           cwd=work, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where, where
    said = [line for line in printed.splitlines() if line.startswith(("test images:", "training images:"))]
    if chapter.parent.name == "notebooks":  # setup() says which images a notebook uses
        assert said, f"{chapter.name}: does not say which images it uses"
    assert all("builtin" in line for line in said), f"{chapter.name}: {said}"
    print(chapter.name, p.stdout.strip())
