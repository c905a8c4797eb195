"""The book builds with warnings as errors, its chapters executed (`make book` does the same)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, _shared_data

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    p = subprocess.run([str(jb), "build", "-W", "--keep-going", "--path-output", str(out), str(ROOT)],
                       capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-6000:]
    assert not re.search(r"WARNING: (?!Kernel is running over TCP)", log), log[-6000:]
    return out / "_build" / "html"


def _text(page: Path) -> str:
    s = re.sub(r"<(script|style).*?</\1>", "", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", s))


def test_pages_exist(built):
    for page in ["book/preface.html", "book/sr_problem.html", "book/data_sets.html", "book/bibliography.html"]:
        assert (built / page).is_file(), page
    assert re.search(r"Kim\s+et al\.\s*,\s*2016", _text(built / "book" / "sr_problem.html"))  # citations resolve


def test_chapter_was_executed_and_shows_the_table(built):
    text = _text(built / "book" / "sr_problem.html")
    assert "images evaluated in" in text
    assert re.search(r"null space dimension: 2048 of 2304", text)
    if _shared_data():
        assert "benchmark data: found" in text
        assert re.search(r"\| ?Set5 ?\| ?x2|Set5 x2 33\.66 / 0\.9299", text), "table missing"
    else:
        assert "benchmark data: not found" in text
