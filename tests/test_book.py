"""The book builds with warnings as errors, its chapters executed (`make book` does the same).

The build itself is the session fixture ``built`` of tests/conftest.py, shared with test_browser.py.
"""

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, _shared_data

from srlib.recipes import RECIPES

pytestmark = pytest.mark.book


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


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_every_toc_entry_is_a_page(built):
    for f in _toc_files():
        assert (built / f"{f}.html").is_file(), f


def test_theory_chapters_show_computed_results(built):
    srcnn = _text(built / "book" / "srcnn.html")
    assert "SRCNN 9-1-5 8,032 8,129 13 x 13" in srcnn  # counted from srlib.models (a table row)
    assert re.search(r"SRCNN gains \d+\.\d\d dB over bicubic", srcnn)
    vdsr = _text(built / "book" / "vdsr.html")
    assert "VDSR, D = 20: 41 x 41 pixels" in vdsr
    # adjustable clipping: the largest step is theta at every learning rate
    theta = RECIPES["vdsr"].clip_value  # the page's table uses the preset's theta
    assert f"0.001 {0.001 * theta:.2e} {theta:.2e}" in vdsr
    srgan = _text(built / "book" / "srgan.html")
    assert "total 1,550,659" in srgan  # SRResNet x4, 16 blocks, counted from srlib.models
    assert "24x24 LR in, 96x96 out" in srgan
    for page in ("srcnn", "vdsr", "srgan"):
        html = (built / "book" / f"{page}.html").read_text()
        assert "glossary.html#term-" in html, f"{page} does not link the glossary"
        assert re.search(r"<img [^>]*src=\"[^\"]*_images/", html), f"{page} has no figure"


def test_glossary_is_bilingual(built):
    text = _text(built / "book" / "glossary.html")
    for zh in ("超分辨率", "感受野", "残差学习", "梯度裁剪", "感知损失", "对抗损失"):
        assert zh in text, zh
    for en in ("receptive field", "residual learning", "adjustable gradient clipping", "perceptual loss"):
        assert en in text, en


def test_benchmarks_page(built):
    text = _text(built / "book" / "benchmarks.html")
    assert "Published (Kim et al., 2016, Table 3)" in text
    assert "37.53 / 0.9587 / 0.13" in text  # the paper's VDSR, Set5 x2, typed and labelled
    assert re.search(r"this page's evaluations took \d+ s", text)
    if _shared_data():
        assert "benchmark data: found" in text
        assert re.search(r"Set5 x2 33\.66 / 0\.9299 / \d", text)  # bicubic, computed at build
        assert "Bicubic interpolation matches the paper to within 0.0" in text
    else:
        assert "builtin" in text


def test_api_reference_from_docstrings(built):
    html = (built / "book" / "api.html").read_text()
    for name in ("srlib.evaluate.evaluate", "srlib.metrics.psnr", "srlib.train.clip_gradients", "srlib.models.VDSR"):
        assert f'id="{name}"' in html, name  # an autodoc entry
    text = _text(built / "book" / "api.html")
    assert "adjustable" in text  # a docstring's text, not only the names


def test_launch_buttons_and_repository(built):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    html = (built / "book" / "srcnn.html").read_text()
    assert url in html
    assert "colab.research.google.com/github/" in html and "mybinder.org" in html
    # Every page with code opens a notebook of the repository on Colab: the notebooks, and the
    # Markdown chapters' twins (book/NAME.ipynb), never a .md file that Colab cannot open.
    repo = url.removeprefix("https://github.com/")
    opened = {}
    for page in _toc_files():
        html = (built / f"{page}.html").read_text()
        for target in re.findall(rf'href="https://colab\.research\.google\.com/github/{repo}/blob/main/([^"]+)"', html):
            opened[page] = target
    assert set(opened) >= {"book/srcnn", "book/vdsr", "book/srgan", "book/sr_problem", "notebooks/01_sparse_coding"}
    assert all(t.endswith(".ipynb") and (ROOT / t).is_file() for t in opened.values()), opened


def test_upscale_page_carries_its_networks_and_runtime(built):
    """The page "Upscale your own photo" works from the site's own files (tests/test_browser.py runs it)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import upscale_page

    folder = built / "_static" / "upscale"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert list(manifest["models"]) == upscale_page.MODELS
    for e in manifest["models"].values():
        assert (folder / e["file"]).stat().st_size == e["bytes"] and e["max_difference"] <= 1e-4
    runtime = json.loads((folder / "runtime.json").read_text())
    assert runtime == {"version": upscale_page.ORT_VERSION, "base": "ort/"}, "onnxruntime-web was not fetched"
    assert all((folder / "ort" / f).stat().st_size > 10_000 for f in upscale_page.ORT_FILES)
    assert all((folder / e["file"]).is_file() for e in manifest["examples"])
    assert {"worker.js", "page.js", "page.css"} <= {p.name for p in folder.iterdir()}


def test_figures_are_readable_in_dark_mode(built):
    """Every figure of the book is opaque, on a light background of its own, so that the theme's
    dark mode does not put black axes and labels on a dark page (item 5 of the reader's checks)."""
    from PIL import Image

    figures = sorted((built / "_images").glob("*.png"))
    assert len(figures) > 10, len(figures)
    see_through = [f.name for f in figures if Image.open(f).convert("RGBA").getextrema()[3][0] < 255]
    assert not see_through, f"figures with transparent pixels: {see_through[:10]}"
