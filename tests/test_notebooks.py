"""The notebooks follow the book's conventions (notebooks/README.md), and the book build runs them.

The book build executes every notebook once (``execute_notebooks: force``); the cells marked
``# NBVAL_CHECK_OUTPUT`` must print there what the saved notebook shows: nbval's ``--nbval-lax``
check, without running the notebooks a second time (``pytest --nbval-lax notebooks/`` still works
for a notebook on its own).
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _repo_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _toc_files() -> set[str]:
    text = re.sub(r"#.*", "", (ROOT / "_toc.yml").read_text())  # commented-out chapters are not in it
    return set(re.findall(r"file:\s*(\S+)", text))


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, dict]:
    return request.param, json.loads(request.param.read_text())


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks in notebooks/"


def test_colab_cell_first_and_installs_this_repository(notebook):
    path, nb = notebook
    first = _code(nb)[0]
    assert "google.colab" in first and "pip install" in first, f"{path.name}: first code cell is not the Colab set-up"
    assert f"git+{_repo_url()}" in first, f"{path.name}: Colab cell does not install from _config.yml's repository"


def test_markdown_chapters_have_notebook_twins_with_the_colab_cell():
    """The launch buttons of a Markdown chapter open its twin, book/NAME.ipynb: the same cells,
    starting with the Colab set-up that installs this repository."""
    import subprocess
    import sys

    chapters = sorted(p.stem for p in (ROOT / "book").glob("*.md") if "```{code-cell}" in p.read_text())
    assert {"sr_problem", "srcnn", "vdsr", "srgan"} <= set(chapters)
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "twins.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for name in chapters:
        first = _code(json.loads((ROOT / "book" / f"{name}.ipynb").read_text()))[0]
        assert "google.colab" in first and f"git+{_repo_url()}" in first, f"book/{name}.ipynb: no Colab set-up first"


def test_ends_with_its_wall_time_and_machine(notebook):
    """Issue 23's rule, checked where it is measured: the last cell prints how long the notebook
    took and on which CPU (srlib.notebook.Session.report)."""
    path, nb = notebook
    assert _code(nb)[-1].strip() == "print(session.report())", f"{path.name}: last cell does not report its time"


def test_setup_prints_mode_and_device(notebook):
    """The saved run of every notebook says, near its top, its mode, its device and its test images."""
    path, nb = notebook
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"][:3]
    printed = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                      for c in cells for o in c.get("outputs", []) if o.get("output_type") == "stream")
    for line in ("mode: ", "device: ", "test images: "):
        assert line in printed, f"{path.name}: its first cells do not print {line.strip()!r}"


def test_in_the_table_of_contents(notebook):
    path, _ = notebook
    assert f"notebooks/{path.stem}" in _toc_files() or f"notebooks/{path.name}" in _toc_files(), path.name


def test_executed_with_checked_cells_and_saved_widgets(notebook):
    path, nb = notebook
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), f"{path.name}: not executed"
    assert any("# NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code), f"{path.name}: no checked cell"
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state")
    if any("widgets." in src for src in _code(nb)):  # the rendered book draws its widgets from that state
        assert state, f"{path.name}: no saved widget state"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored outputs contain an error"


def test_exercises_with_checkers_and_hidden_solutions(notebook):
    path, nb = notebook
    assert any("srlib.exercises" in c for c in _code(nb)), f"{path.name}: no srlib.exercises checker"
    tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert "hide-input" in tags, f"{path.name}: no solution hidden behind a toggle (tag hide-input)"


def test_training_data_falls_back_to_builtin_images(notebook):
    """No notebook names a training set directly: they go through ``session.train_set``, which
    falls back to the builtin images, so that the book builds with no data and no network."""
    path, nb = notebook
    for src in _code(nb):
        direct = re.findall(r"""(?:data\s*=|SRGANPatches\(|training_pairs\()\s*["'](?!builtin)[^"']+["']""", src)
        assert not direct, f"{path.name}: a training set named directly: {direct}"


def test_switch_and_compare_work_without_a_kernel():
    """The helpers of the notebooks' controls: views switched in the browser (the browser test moves them)."""
    import ipywidgets as widgets
    import numpy as np

    from srlib.notebook import compare, switch

    slider = widgets.SelectionSlider(options=[1, 2, 3], value=2)
    stack = switch(slider, [widgets.Label(str(k)) for k in (1, 2, 3)])
    assert isinstance(stack, widgets.Stack) and stack.selected_index == 1 and len(stack.children) == 3
    with pytest.raises(ValueError, match="3 options but 2 views"):
        switch(slider, [widgets.Label("a"), widgets.Label("b")])
    a, b = np.zeros((4, 6, 3), np.uint8), np.full((4, 6), 200, np.uint8)
    html = compare({"black": a, "grey <b>": b}, "black", "grey <b>", zoom=2).data
    assert html.count("<option") == 4 and "grey &lt;b&gt;" in html  # both menus; names escaped
    assert html.count("data:image/png;base64,") == 2 + 4 and 'oninput="' in html


def _printed(cell: dict) -> str:
    """What a code cell printed: its streams joined by name as the kernel sent them (as nbval and Jupyter
    join them; book/_ext/merge_streams.py makes the book do the same and leaves the chunks in the notebook
    the build saves) and the text of its results, as one string."""
    def text(o):  # raw: the kernel may cut a line anywhere, even just before its newline
        return o["text"] if isinstance(o["text"], str) else "".join(o["text"])

    by_name, results = {}, []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            by_name[o["name"]] = by_name.get(o["name"], "") + text(o)
        elif o.get("output_type") in ("execute_result", "display_data") and "text/plain" in o.get("data", {}):
            t = o["data"]["text/plain"]
            results.append(t if isinstance(t, str) else "".join(t))
    return "".join(t.rstrip() + "\n" for t in by_name.values()) + "".join(results)


def test_printed_reads_a_cell_however_the_kernel_chunked_it():
    """The kernel splits a cell's prints into streams at random, even between a line and its newline:
    each chunking reads as the same text, and the book's merge renders that text (with myst-nb's own
    merge, the cut before a newline showed a blank line that was never printed: CI failed on notebook
    02's cell d35a9793)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from merge_streams import join_streams
    from myst_nb.core.utils import coalesce_streams

    lines = ["head\n", "x2\n", "x3\n", "x4\n"]

    def cell(*chunks):
        return {"outputs": [{"output_type": "stream", "name": "stdout", "text": "".join(c)} for c in chunks]}

    once = "".join(lines)
    cut_before_newline = cell(["head"], ["\nx2\n", "x3\n", "x4\n"])
    for c in (cell(lines[:1], lines[1:3], lines[3:]), cell(["head\n", "x2"], ["\nx3\n", "x4\n"]),
              cell(["he"], ["ad\nx2\n"], lines[2:]), cut_before_newline):
        assert _printed(c) == once
        outputs = json.loads(json.dumps(c["outputs"]))
        assert [o["text"] for o in coalesce_streams(join_streams(outputs))] == [once]
        assert outputs == c["outputs"]  # the executed notebook keeps the kernel's chunks
    assert coalesce_streams(json.loads(json.dumps(cut_before_newline["outputs"])))[0]["text"] != once  # myst-nb
    assert _printed(cell(lines[:2], lines[:2])) == "head\nx2\nhead\nx2\n"  # a cell that printed twice
    both = {"outputs": [{"output_type": "stream", "name": "stdout", "text": "a"},
                        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
                        {"output_type": "stream", "name": "stdout", "text": "b\n"}]}
    assert _printed(both) == "ab\nwarn\n"
    assert [(o["name"], o["text"]) for o in join_streams(both["outputs"])] == [("stdout", "ab\n"), ("stderr", "warn\n")]


def test_checked_outputs_are_what_the_book_build_computed(built, notebook):
    path, nb = notebook
    ran = json.loads((built.parent / "jupyter_execute" / "notebooks" / path.name).read_text())
    by_id = {c.get("id"): c for c in ran["cells"]}
    errors = [c.get("id") for c in ran["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: cells {errors} failed in the book build"
    checked = [c for c in nb["cells"] if c["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert checked, f"{path.name}: no cell is checked (# NBVAL_CHECK_OUTPUT)"
    for cell in checked:
        saved, now = _printed(cell), _printed(by_id[cell["id"]])
        assert saved == now, f"{path.name}, cell {cell['id']}: saved\n{saved}\nbut the book build printed\n{now}"


def test_full_mode_and_its_dry_run_pick_their_sizes(monkeypatch, capsys):
    """SRLIB_FULL=1: full mode's code and sizes; SRLIB_FULL=dry: its code at quick mode's sizes."""
    from srlib.notebook import setup

    for value, full, dry in (("", False, False), ("0", False, False), ("1", True, False), ("dry", True, True)):
        monkeypatch.setenv("SRLIB_FULL", value)
        s = setup()
        assert (s.full, s.dry, s.size("paper", "small")) == (full, dry, "paper" if full and not dry else "small")
    assert "mode: full, dry run" in capsys.readouterr().out
    assert setup(full=True, verbose=False).size(1, 0) == 1  # full=True asked in code: the real full mode


def test_every_notebook_has_a_full_mode_budget_and_all_four_fit_in_ten_minutes(monkeypatch):
    """The issue's sizing: each notebook's full mode has its budget on one H100/H200-class GPU
    (scripts/gpu_check.py runs it under it), the four together 10 minutes; the notebook says it."""
    from srlib.notebook import FULL_BUDGET_S, setup

    assert set(FULL_BUDGET_S) == {p.stem for p in NOTEBOOKS} and sum(FULL_BUDGET_S.values()) <= 600
    monkeypatch.delenv("SRLIB_FULL", raising=False)
    s = setup("02_receptive_fields", full=True, verbose=False)
    assert s.full_budget_s == FULL_BUDGET_S["02_receptive_fields"]
    assert f"sized for {FULL_BUDGET_S['02_receptive_fields']} s on one H100/H200-class GPU: within it." in s.report()
    for path in NOTEBOOKS:
        assert f'setup("{path.stem}")' in "".join(_code(json.loads(path.read_text()))), path.name


def test_full_mode_says_up_to_how_long_it_takes_on_a_colab_t4(monkeypatch, capsys):
    """The T4 estimate is the budget scaled by the larger ratio of the data sheets' peak throughput
    (16-bit: 989 / 65 TFLOPS, against float32's 67 / 8.1); setup() prints it, and report() on a T4
    compares the run with it as well as with the H100/H200 budget."""
    import time

    import torch

    from srlib.notebook import FULL_BUDGET_S, PEAK_TFLOPS, Session, setup, t4_upper_s

    ratios = {k: PEAK_TFLOPS["H100/H200"][k] / PEAK_TFLOPS["T4"][k] for k in ("float32", "16-bit")}
    assert 8 < ratios["float32"] < ratios["16-bit"] < 16
    budget = FULL_BUDGET_S["02_receptive_fields"]
    assert t4_upper_s(budget) == pytest.approx(budget * 989 / 65)
    monkeypatch.delenv("SRLIB_FULL", raising=False)
    setup("02_receptive_fields")
    minutes = round(budget * 989 / 65 / 60)
    assert (f"sized for {budget} s on one H100/H200-class GPU, up to about {minutes} min on a Colab T4"
            in capsys.readouterr().out)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    ten_minutes = Session(full=True, device=torch.device("cuda"), test_set="Set5", seed=0,
                          started=time.perf_counter() - 600, full_budget_s=budget).report()
    assert "on Tesla T4;" in ten_minutes
    assert f"sized for {budget} s on one H100/H200-class GPU: over it." in ten_minutes
    assert f"On a T4, up to about {minutes} min: within that." in ten_minutes
