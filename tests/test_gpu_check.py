"""scripts/gpu_check.py in its CPU dry run: notebooks run with their limits, records written, the
budget respected and what it did not reach named (the GPU run itself needs a CUDA machine)."""

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--no-install",
                           *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.slow
def test_dry_run_records_a_notebook_then_stops_at_the_budget(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint('mode:', os.environ['SRLIB_FULL'])"),
                nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint('key number:', 6 * 7)"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    quick = tmp_path / "quick.ipynb"
    nb.cells = nb.cells[:2]
    nbformat.write(nb, quick)
    slow = tmp_path / "slow.ipynb"
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    nbformat.write(nb, slow)
    out = tmp_path / "out"
    p = _run("--out", str(out), "--budget", "25", "--notebooks", str(quick), str(slow), "02_receptive_fields")
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((out / "quick.json").read_text())
    assert rec["status"] == "ok" and rec["peak_gpu_bytes"] == 0 and not rec["full"]
    assert list(rec["checked_outputs"].values()) == ["key number: 42\n"]
    ran = nbformat.read(out / "quick.ipynb", as_version=4)
    assert ran.cells[0].outputs[0]["text"] == "mode: dry\n" and len(ran.cells) == 2  # no added cell kept
    rec = json.loads((out / "slow.json").read_text())
    assert rec["status"] == "timed out" and rec["wall_s"] < 30  # the rest of the budget, not the 60 s sleep
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_reached"] == ["02_receptive_fields.ipynb"] and summary["device"] == "cpu (dry run)"
    assert "not reached: 02_receptive_fields.ipynb" in p.stdout


def test_no_gpu_without_dry_run_and_unknown_notebook(tmp_path):
    import torch

    if not torch.cuda.is_available():  # on a GPU machine this would be the real run
        p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--no-install", "--out",
                            str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 2 and "no CUDA device" in p.stderr
    p = _run("--out", str(tmp_path), "--notebooks", "05_nothing")
    assert p.returncode == 2 and "unknown notebook" in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb"))])
def test_every_notebooks_full_mode_runs_dry_on_a_cpu(tmp_path, name):
    """Full mode's code (SRLIB_FULL=dry: its branches, at quick mode's sizes) runs to the end, so that
    a full-mode branch that fails is found here, not after minutes on a GPU; its runs train in the
    results folder, never in the checkout."""
    p = _run("--out", str(tmp_path), "--notebooks", name)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / f"{name}.json").read_text())
    assert rec["status"] == "ok", rec.get("error", "")[-3000:]
    ran = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    first = "".join(o.get("text", "") for c in ran.cells[:4] if c.cell_type == "code" for o in c.outputs)
    assert "mode: full, dry run" in first
    assert not [*ROOT.glob("runs/*-dry"), *ROOT.glob("notebooks/runs/*-dry")]  # they stayed in its scratch folder


def _stubbed_gpu_check(monkeypatch, device="Tesla T4"):
    """scripts/gpu_check.py as a module, on a pretend CUDA machine: its notebooks and GPU tests are
    stubbed (what they were given is kept in ``calls``), so that its limits and records can be checked."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    calls = {"notebooks": {}, "tests": []}

    def run_notebook(path, limit, full, out):
        calls["notebooks"][path.stem] = (limit, full)
        return {"status": "ok", "wall_s": 1.0, "peak_gpu_bytes": 0}

    def run_tests(*args, **kwargs):
        calls["tests"].append(kwargs["timeout"])
        return subprocess.CompletedProcess(args, 0, "9 passed", "")

    monkeypatch.setattr(gpu_check, "run_notebook", run_notebook)
    monkeypatch.setattr(gpu_check.subprocess, "run", run_tests)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: device)
    return gpu_check, calls


def test_limits_on_an_h100_class_gpu_and_with_t4(tmp_path, monkeypatch):
    """On a CUDA machine each notebook runs under its budget (srlib.notebook.FULL_BUDGET_S), with --t4
    under the T4 estimate of it (t4_upper_s), and the default budget adds up the GPU tests' limit and the
    notebooks'."""
    from srlib.notebook import FULL_BUDGET_S, t4_upper_s

    for t4 in (False, True):
        gpu_check, calls = _stubbed_gpu_check(monkeypatch)
        out = tmp_path / str(t4)
        assert gpu_check.main(["--no-install", "--out", str(out)] + ["--t4"] * t4) == 0
        expected = {name: (t4_upper_s(b) if t4 else b) for name, b in FULL_BUDGET_S.items()}
        assert calls["notebooks"] == {name: (pytest.approx(s), True) for name, s in expected.items()}
        assert calls["tests"] == [gpu_check.GPU_TESTS_S]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["parts"][0]["budget_s"] == pytest.approx(gpu_check.GPU_TESTS_S + sum(expected.values()))
        assert summary["device"] == "Tesla T4" and summary["not_reached"] == [] and summary["full"]
        assert summary["gpu_tests"]["returncode"] == 0 and len(summary["notebooks"]) == len(FULL_BUDGET_S)


def test_a_run_in_parts_adds_to_its_record_and_another_devices_is_refused(tmp_path, monkeypatch, capsys):
    """Two parts (the GPU tests and two notebooks, then --no-tests and the other two) make one record; a
    run on another device into the same folder stops with exit 2 and leaves it as it was; GPU tests past
    their limit are recorded as such (no exit code), not a crash."""
    out = tmp_path / "full-mode"
    gpu_check, calls = _stubbed_gpu_check(monkeypatch)
    assert gpu_check.main(["--no-install", "--out", str(out), "--notebooks", "01_sparse_coding",
                           "02_receptive_fields"]) == 0
    assert gpu_check.main(["--no-install", "--no-tests", "--out", str(out), "--notebooks", "03_residual_learning",
                           "04_perceptual_loss"]) == 0
    assert len(calls["tests"]) == 1 and len(calls["notebooks"]) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["notebooks"]) == [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    assert [len(part["notebooks"]) for part in summary["parts"]] == [2, 2] and summary["gpu_tests"]["returncode"] == 0
    assert summary["wall_s"] == pytest.approx(sum(part["wall_s"] for part in summary["parts"]))
    kept = (out / "summary.json").read_text()
    other, _ = _stubbed_gpu_check(monkeypatch, device="NVIDIA H200")
    assert other.main(["--no-install", "--out", str(out), "--notebooks", "02_receptive_fields"]) == 2
    assert "holds a run on Tesla T4" in capsys.readouterr().err and (out / "summary.json").read_text() == kept

    def too_slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args, kwargs["timeout"])

    monkeypatch.setattr(other.subprocess, "run", too_slow)
    assert other.main(["--no-install", "--out", str(tmp_path / "h200"), "--notebooks", "02_receptive_fields"]) == 0
    tests = json.loads((tmp_path / "h200" / "summary.json").read_text())["gpu_tests"]
    assert tests["returncode"] is None and "timed out" in tests["tail"]


def test_the_gpu_appendix_reads_the_record_gpu_check_writes(tmp_path, monkeypatch):
    """The full-mode table of book/gpu.md, run on a record written by gpu_check (stubbed notebooks, one
    timed out): measured times, the T4 estimate from a finished run only, the notebooks not run named."""
    import re

    from srlib.notebook import FULL_BUDGET_S, t4_upper_s

    gpu_check, _ = _stubbed_gpu_check(monkeypatch, device="NVIDIA H200")
    slow = gpu_check.run_notebook

    def one_times_out(path, limit, full, out):
        rec = slow(path, limit, full, out)
        return {**rec, "status": "timed out", "wall_s": limit} if path.stem == "02_receptive_fields" else rec

    monkeypatch.setattr(gpu_check, "run_notebook", one_times_out)
    assert gpu_check.main(["--no-install", "--out", str(tmp_path / "full-mode"), "--notebooks", "01_sparse_coding",
                           "02_receptive_fields"]) == 0
    page = (ROOT / "book" / "gpu.md").read_text()
    (cell,) = [c for c in re.findall(r"```\{code-cell\} ipython3\n(.*?)```", page, re.S) if "t4_upper_s" in c]
    shown = []
    exec(cell, {"gpu": tmp_path, "json": json, "Markdown": lambda text: text, "display": shown.append,
                "print": shown.append})
    table, *lines = shown
    rows = {r.split(" | ")[0].strip("| "): r for r in table.splitlines()[2:]}
    assert rows["01_sparse_coding"].endswith(f"| 1 | 0.0 | ok | {t4_upper_s(1) / 60:.0f} |")
    assert rows["02_receptive_fields"].endswith("| timed out | not known: it did not finish |")
    assert rows["03_residual_learning"].endswith(
        f"| not run on a GPU yet | {t4_upper_s(FULL_BUDGET_S['03_residual_learning']) / 60:.0f} |")
    assert "measured on NVIDIA H200" in lines[-1] and "for the 2 of 4 notebooks recorded" in lines[-1]
