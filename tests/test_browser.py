"""The built book as a reader sees it: every page opened in headless Chromium.

The browser is Debian's ``chromium`` driven by selenium through Debian's ``chromedriver``
(installed by ``make test`` / ``.ci/run`` when missing: ``apt-get install -y chromium
chromium-driver``), never a browser downloaded by a test tool. Every host but 127.0.0.1 is
blocked for the browser.

The book is served by ``http.server`` on 127.0.0.1. For every page we check that it loads,
that every ``<img>`` has a non-zero natural width, that every internal link (and its
``#fragment``) resolves, that our own pages' scripts log no errors, that its math is
typeset (MathJax, served by the site: book/_ext/offline_assets.py) and that its saved
widgets are drawn (the ipywidgets renderer, served by the site too). A screenshot of every
chapter page goes to ``_build/screenshots/`` (kept by CI as artifacts).
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import yaml
from conftest import ROOT
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.book

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps calling home and floods a closed network.
# The host resolver rules block every host but 127.0.0.1: the book must work from its own files.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,1600",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# Run in the page once it has loaded: what the tests look at.
PROBE = r"""
const imgs = Array.from(document.images).map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth,
                                                    done: i.complete}));
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
const views = document.querySelectorAll('script[type="WIDGET_VIEW"]').length;
const state = document.querySelectorAll('script[type="WIDGET_STATE"]').length;
const text = (document.querySelector('main') || document.body).innerText;
return {title: document.title, ready: document.readyState, imgs, links, views, state,
        math: document.querySelectorAll('mjx-container').length,
        drawn: document.querySelectorAll('.jupyter-widgets').length,
        raw_tex: text.match(/\$\$|\\\(|\\\[|\\begin\{/g) || [],
        h1: Array.from(document.querySelectorAll('main h1, article h1')).map(h => h.textContent)};
""".replace("WIDGET_VIEW", WIDGET_VIEW).replace("WIDGET_STATE", WIDGET_STATE)


def chromium():
    """Debian's headless Chromium, driven by selenium through Debian's chromedriver (given by
    path, so that Selenium Manager downloads nothing), with the browser's console log kept."""
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never fetch a browser or a driver
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists():
            pytest.fail(f"{exe} is missing: `make test` installs it (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="module")
def server(built):
    handler = functools.partial(_QuietHandler, directory=str(built))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


@pytest.fixture(scope="module")
def visits(built, server) -> dict[str, dict]:
    """Every HTML page of the book opened once: what the page reported, and the browser's log."""
    pages = sorted(str(p.relative_to(built)) for p in built.rglob("*.html")
                   if not str(p.relative_to(built)).startswith(("_static", "_sources", "_images")))
    chapters = {f"{c}.html" for c in _chapters()}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = {}
    driver = chromium()
    try:
        for page in pages:
            driver.get(f"{server}/{page}")
            for _ in range(50):  # images of the page finished loading
                info = driver.execute_script(PROBE)
                if info["ready"] == "complete" and all(i["done"] for i in info["imgs"]):
                    break
                time.sleep(0.1)
            # MathJax typesets after the page has loaded; the widget renderer draws after that
            driver.execute_async_script("""const done = arguments[arguments.length - 1];
                const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
                (mj || Promise.resolve()).then(() => done(true), () => done(false));""")
            for _ in range(50):
                info = driver.execute_script(PROBE)
                if info["drawn"] >= info["views"]:
                    break
                time.sleep(0.1)
            info["log"] = driver.get_log("browser")
            if page in chapters:
                driver.save_screenshot(SCREENSHOTS / (page[:-5].replace("/", "__") + ".png"))
            out[page] = info
    finally:
        driver.quit()
    return out


def test_every_chapter_loads(visits):
    for chapter in _chapters():
        info = visits.get(f"{chapter}.html")
        assert info is not None, f"{chapter}: no page"
        assert info["ready"] == "complete", chapter
        assert info["h1"], f"{chapter}: no title"
        assert (SCREENSHOTS / (chapter.replace("/", "__") + ".png")).stat().st_size > 10_000, chapter


def test_launch_buttons_open_notebooks_on_colab(visits):
    """Every page with code has a Colab button, and it opens a notebook of the repository (the
    Markdown chapters' twins, book/NAME.ipynb), never a .md file, which Colab cannot open."""
    with_code = [c for c in _chapters() if c.startswith("notebooks/")
                 or "```{code-cell}" in (ROOT / f"{c}.md").read_text()]
    for chapter in with_code:
        colab = [h for h in visits[f"{chapter}.html"]["links"] if h.startswith("https://colab.research.google.com/")]
        assert colab, f"{chapter}: no Colab button"
        assert all(h.endswith(f"/{chapter}.ipynb") for h in colab), (chapter, colab)
        assert (ROOT / f"{chapter}.ipynb").is_file(), chapter


def test_every_image_is_drawn(visits):
    blank = [(page, i["src"]) for page, info in visits.items() for i in info["imgs"] if i["w"] == 0]
    assert not blank, f"images with natural width 0: {blank[:10]}"
    assert sum(len(info["imgs"]) for info in visits.values()) > 10  # the chapters' figures were seen


def test_every_internal_link_resolves(visits, built, server):
    ids: dict[Path, set[str]] = {}
    broken = []
    for page, info in visits.items():
        for href in info["links"]:
            if not href.startswith(server + "/"):
                continue  # external: not checked offline
            u = urlsplit(href)
            target = built / unquote(u.path).lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append((page, href))
                continue
            if u.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = set(re.findall(r'\sid="([^"]+)"', target.read_text(errors="replace")))
                if unquote(u.fragment) not in ids[target]:
                    broken.append((page, href))
    assert not broken, f"{len(broken)} broken internal links, e.g. {broken[:10]}"


def _ours(entry: dict, server: str) -> bool:
    """Is this console error caused by our pages, not by an unreachable external host?"""
    msg = entry.get("message", "")
    if entry.get("level") != "SEVERE":
        return False
    if msg.startswith(f"{server}/favicon.ico"):
        return False  # the browser asks for it on its own; the book has no favicon
    if "net::ERR_" in msg or "Failed to load resource" in msg:
        # A failed request: ours only if it was for a file of the book itself.
        return msg.startswith(server)
    return server in msg  # a script error reports the script's URL


def test_no_console_errors_from_our_pages(visits, server):
    errors = [(page, e["message"]) for page, info in visits.items() for e in info["log"] if _ours(e, server)]
    assert not errors, f"console errors: {errors[:10]}"


def test_widgets_are_drawn(visits):
    """Notebooks saved with widget state show their widgets, drawn from that state by the
    renderer that the site serves itself (no kernel, no network)."""
    checked = 0
    for chapter in _chapters():
        src = ROOT / f"{chapter}.ipynb"
        if not src.is_file():
            continue
        meta = json.loads(src.read_text()).get("metadata", {})
        if WIDGET_STATE not in meta.get("widgets", {}):
            continue
        info = visits[f"{chapter}.html"]
        assert info["views"] > 0 and info["state"] > 0, f"{chapter}: no widget view or saved state in the page"
        assert info["drawn"] >= info["views"], f"{chapter}: {info['views']} widgets saved, {info['drawn']} drawn"
        checked += 1
    notebooks = [c for c in _chapters() if c.startswith("notebooks/")]
    if notebooks:
        assert checked, f"no notebook of the book has saved widget state: {notebooks}"


def test_math_is_typeset_offline(visits, built):
    """Every page's math is typeset by the MathJax the site serves: no TeX left in the text."""
    with_math = 0
    for page, info in visits.items():
        assert not info["raw_tex"], f"{page}: TeX left untypeset: {info['raw_tex'][:5]}"
        source = (built / page).read_text(errors="replace")
        if 'class="math' in source:  # Sphinx's inline and display math
            assert info["math"] > 0, f"{page}: has math, none typeset"
            with_math += 1
    assert with_math >= 5, with_math  # the chapters with equations were seen
    assert all("_static/npm/mathjax/" in (built / page).read_text() for page, info in visits.items() if info["math"])


# ----- "Upscale your own photo" (book/upscale.md): the networks in the reader's browser -----------------
STATE = """const r = document.getElementById('srlib-upscale');
return {state: r.dataset.state, status: document.getElementById('up-status').textContent, backend: r.dataset.backend,
        network_seconds: Number(r.dataset.networkSeconds), seconds: Number(r.dataset.seconds),
        workers: Number(r.dataset.workers)};"""


def upscale_in_page(driver, server: str, image: Path, model: str, scale: int,
                    timeout: float = 900) -> tuple[np.ndarray, dict]:
    """Open the page, choose ``model`` and ``scale``, give it ``image`` through the file input
    and wait for the worker: ``(the network's result as uint8 RGB, the page's state)``."""
    from PIL import Image

    driver.get(f"{server}/book/upscale.html")
    end = time.monotonic() + 120
    while (info := driver.execute_script(STATE))["state"] == "loading" and time.monotonic() < end:
        time.sleep(0.2)
    assert info["state"] == "ready", info
    driver.execute_script(f"""const m = document.getElementById('up-model'); m.value = {json.dumps(model)};
                   m.dispatchEvent(new Event('change'));
                   document.getElementById('up-scale').value = '{scale}';""")
    driver.find_element(By.CSS_SELECTOR, "#up-file").send_keys(str(image))  # as a reader choosing the file
    end = time.monotonic() + timeout
    while (info := driver.execute_script(STATE))["state"] not in ("done", "error") and time.monotonic() < end:
        time.sleep(0.5)
    assert info["state"] == "done", info
    url = driver.execute_script("return document.getElementById('up-sr').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")), info


def upscale_on_command_line(image: Path, model: str, scale: int, out: Path,
                            threads: int | None = None) -> tuple[np.ndarray, float]:
    """``srlib upscale`` on the same file (on ``threads`` CPU threads; None: PyTorch's default):
    ``(its result, the seconds it reports)``."""
    import os

    from PIL import Image

    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    p = subprocess.run([sys.executable, "-m", "srlib", "upscale", str(image), str(out), "--model", model,
                        "--scale", str(scale), "--quiet", "--overwrite"], capture_output=True, text=True, check=True,
                       env=env)
    return np.asarray(Image.open(out).convert("RGB")), float(re.search(r" in ([0-9.]+) s", p.stdout).group(1))


def cut_images(folder: Path) -> dict[str, Path]:
    """Colour test images of odd sizes cut from builtin images, and the 256x256 one of the timing."""
    import skimage.data
    from PIL import Image

    cuts = {"chelsea_101x77": skimage.data.chelsea()[60:137, 150:251],
            "coffee_97x83": skimage.data.coffee()[100:183, 200:297],
            "astronaut_256": skimage.data.astronaut()[100:356, 100:356]}
    out = {}
    for name, pixels in cuts.items():
        out[name] = folder / f"{name}.png"
        Image.fromarray(np.ascontiguousarray(pixels)).save(out[name])
    return out


CASES = [("chelsea_101x77", "srcnn-x3", 3), ("coffee_97x83", "vdsr", 2), ("astronaut_256", "vdsr", 3)]


@pytest.fixture(scope="module")
def upscaled(server, tmp_path_factory) -> dict:
    """Each case of CASES upscaled in the page and by ``srlib upscale``."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("upscale")
    images = cut_images(folder)
    driver = chromium()
    out = {}
    try:
        for name, model, scale in CASES:
            page, info = upscale_in_page(driver, server, images[name], model, scale)
            cli, cli_seconds = upscale_on_command_line(images[name], model, scale, folder / f"{name}_{model}.png")
            out[(name, model, scale)] = (page, cli, info, cli_seconds, np.asarray(Image.open(images[name])).shape)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(SCREENSHOTS / "book__upscale__result.png")  # the last case, as the reader sees it
        # One of the page's own examples, chosen from its list instead of a file
        driver.execute_script("""document.getElementById('srlib-upscale').dataset.state = 'chosen';
                                 const m = document.getElementById('up-model'); m.value = 'srcnn-x2';
                                 m.dispatchEvent(new Event('change'));
                                 const e = document.getElementById('up-example');
                                 e.value = Array.from(e.options).find(o => o.value.includes('chelsea')).value;
                                 e.dispatchEvent(new Event('change'));""")
        end = time.monotonic() + 300
        while (info := driver.execute_script(STATE))["state"] not in ("done", "error") and time.monotonic() < end:
            time.sleep(0.2)
        out["example"] = info, driver.execute_script(
            "const c = document.getElementById('up-sr'); return [c.width, c.height]")
        out["log"] = driver.get_log("browser")
    finally:
        driver.quit()
    return out


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: f"{c[1]}-x{c[2]}")
def test_upscale_page_gives_the_command_lines_image(upscaled, case):
    page, cli, info, _, (h, w, _) = upscaled[case]
    assert page.shape == cli.shape == (h * case[2], w * case[2], 3)
    mse = np.mean((page.astype(np.float64) - cli) ** 2)
    psnr = 10 * np.log10(255**2 / mse) if mse else float("inf")
    print(f"{case[1]} x{case[2]}: page against srlib upscale {psnr:.1f} dB ({info['backend']})")
    assert psnr >= 50, (psnr, info)


def test_upscale_page_vdsr_x3_on_256_pixels(upscaled):
    page, cli, info, cli_seconds, _ = upscaled[CASES[2]]
    assert page.shape == (768, 768, 3)
    mse = np.mean((page.astype(np.float64) - cli) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50
    print(f"VDSR x3, 256x256 -> 768x768: the page's network {info['network_seconds']:.1f} s "
          f"({info['backend']}, {info['workers']} workers, {info['seconds']:.1f} s in all); "
          f"srlib upscale {cli_seconds:.1f} s")
    assert "on this machine" in info["status"] and f"{info['network_seconds']:.1f} s" in info["status"]


def test_upscale_page_logs_no_errors(upscaled, server):
    errors = [e["message"] for e in upscaled["log"] if _ours(e, server)]
    assert not errors, errors[:10]


def test_upscale_page_examples(upscaled, built):
    """An example chosen from the page's list (a builtin image reduced by bicubic) is upscaled."""
    info, size = upscaled["example"]
    example = next(e for e in json.loads((built / "_static/upscale/manifest.json").read_text())["examples"]
                   if e["name"] == "chelsea")
    assert info["state"] == "done", info
    assert size == [2 * example["width"], 2 * example["height"]], (size, example)


# ----- controls: every slider and menu of the notebooks changes what the page shows --------------------
SHOWN = r"""return Array.from(document.querySelectorAll('.jupyter-widgets img, .srlib-compare img'))
    .filter(i => i.offsetParent !== null && getComputedStyle(i).visibility !== 'hidden')
    .map(i => i.src.length + ':' + i.src.slice(-48) + ':' + getComputedStyle(i).clipPath);"""


def _changes(driver, act) -> bool:
    """Whether ``act()`` changes the images shown (within a few seconds)."""
    before = driver.execute_script(SHOWN)
    act()
    end = time.monotonic() + 5
    while time.monotonic() < end:
        if driver.execute_script(SHOWN) != before:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def controls(server) -> dict[str, list[tuple[str, bool]]]:
    """On each chapter's page: every slider moved and every menu changed, and whether the shown images changed."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    out = {}
    driver = chromium()
    try:
        for chapter in _chapters():
            driver.get(f"{server}/{chapter}.html")
            end = time.monotonic() + 20
            while time.monotonic() < end and driver.execute_script(
                    f"return document.querySelectorAll('script[type=\"{WIDGET_VIEW}\"]').length > "
                    "document.querySelectorAll('.jupyter-widgets').length"):
                time.sleep(0.2)  # the renderer draws the saved widgets
            results = []
            for handle in driver.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle"):
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
                results.append(("slider", _changes(driver, lambda h=handle: h.send_keys(Keys.END))))
            for menu in driver.find_elements(By.CSS_SELECTOR, ".widget-dropdown select, .srlib-compare select"):
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", menu)
                choice = Select(menu)
                index = next(i for i, o in enumerate(choice.options) if o.is_selected())
                results.append(("menu", _changes(driver, lambda c=choice, i=index: c.select_by_index(
                    (i + 1) % len(c.options)))))
            for border in driver.find_elements(By.CSS_SELECTOR, ".srlib-compare input[type=range]"):
                results.append(("border", _changes(driver, lambda b=border: driver.execute_script(
                    "arguments[0].value = 20; arguments[0].dispatchEvent(new Event('input'))", b))))
            out[chapter] = results
    finally:
        driver.quit()
    return out


def test_every_control_changes_what_is_shown(controls):
    """The notebooks' sliders and menus work in the static book: moving one shows another image."""
    assert sum(len(r) for r in controls.values()) >= 6, controls  # the controls of notebooks 01-04 were found
    for page in ("book/srcnn", "book/vdsr"):  # a before/after comparison beside the bicubic/network figures
        assert [kind for kind, _ in controls[page]].count("border") == 1, (page, controls[page])
    dead = [(chapter, kind) for chapter, results in controls.items() for kind, changed in results if not changed]
    assert not dead, f"controls that change nothing: {dead}"
    for chapter in ("notebooks/01_sparse_coding", "notebooks/02_receptive_fields", "notebooks/03_residual_learning",
                    "notebooks/04_perceptual_loss"):
        assert controls.get(chapter), f"{chapter}: no control found"
