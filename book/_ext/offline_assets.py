"""Sphinx extension: the book reads offline. MathJax and the ipywidgets renderer come from
the built site itself, not from a CDN.

When the configuration is read, the npm packages ``mathjax``, ``@jupyter-widgets/html-manager``
(the renderer of the notebooks' saved widgets) and ``requirejs`` (which it needs) are fetched
from the npm registry, checked and cached (book/_ext/npm_package.py), and the pages are
pointed at ``_static/npm/``; at the end of the build their files are copied there, with
``offline_widgets.js``, which points the renderer at its fonts and gives it the MathJax 2
call it makes on the book's MathJax 3. Where
the registry cannot be reached, the pages keep the CDN addresses and the build log says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import npm_package
from sphinx.util import logging

log = logging.getLogger(__name__)

# (npm name, version, integrity published by the registry, folder in the package, files to serve)
MATHJAX = ("mathjax", "3.2.2",
           "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
           # the combined TeX/MathML + CommonHTML build, and what it loads on demand (fonts, extensions)
           "es5", ["tex-mml-chtml.js", "input/", "output/chtml/", "a11y/", "ui/", "sre/", "adaptors/"])
WIDGETS = ("@jupyter-widgets/html-manager", "1.0.15",
           "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
           "dist", ["embed-amd.js", "*.woff2", "*.woff", "*.ttf", "*.eot", "*.svg"])  # the fonts and icons it uses
REQUIRE = ("requirejs", "2.3.8",
           "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
           "", ["require.js"])
VENDOR = "npm"  # under _static
SHIM = Path(__file__).with_name("offline_widgets.js")  # points the renderer at its files; MathJax 2's API on 3


def _folder(package: tuple) -> str:
    return f"{VENDOR}/{package[0].rpartition('/')[2]}"


def _fetch(app, config) -> None:
    got = {}
    for package in (MATHJAX, WIDGETS, REQUIRE):
        name, version, integrity = package[:3]
        got[name] = npm_package.tarball(name, version, integrity, "the pages will load it from a CDN")
    app.offline_assets = got
    if got["mathjax"]:
        config.mathjax_path = f"{_folder(MATHJAX)}/tex-mml-chtml.js"
    if got[WIDGETS[0]] and got["requirejs"]:
        config.nb_ipywidgets_js = {
            f"{_folder(REQUIRE)}/require.js": {},
            f"{VENDOR}/{SHIM.name}": {},
            # widget modules other than the standard ones (none in this book) would still come from the CDN
            f"{_folder(WIDGETS)}/embed-amd.js": {"data-jupyter-widgets-cdn": "https://cdn.jsdelivr.net/npm/"},
        }
    served = [n for n, tgz in got.items() if tgz]
    log.info(f"offline assets: {', '.join(served) or 'none'} served from the site"
             + (f"; from a CDN: {', '.join(n for n in got if n not in served)}" if len(served) < len(got) else ""))


def _copy(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for package in (MATHJAX, WIDGETS, REQUIRE):
        tgz = app.offline_assets.get(package[0])
        if tgz:
            npm_package.copy(tgz, package[3], package[4], static / _folder(package))
    if app.offline_assets.get(WIDGETS[0]) and app.offline_assets.get("requirejs"):
        shutil.copyfile(SHIM, static / VENDOR / SHIM.name)


def setup(app):
    app.connect("config-inited", _fetch, priority=400)  # before myst-nb and mathjax read the settings
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
