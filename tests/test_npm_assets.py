"""book/_ext/npm_package.py and its users: how the book gets its JavaScript, on a local server.

The real packages come from the npm registry at build time (tests/test_book.py and
tests/test_browser.py check the built site); here packages of our own, served on 127.0.0.1
as a registry serves them, go the same way: fetched, checked against the SHA-512 integrity
string, cached, their files copied. A wrong checksum or an unreachable registry leaves the
pages on the CDN.
"""

import base64
import hashlib
import io
import sys
import tarfile
from types import SimpleNamespace

import pytest
from conftest import ROOT
from test_datasets import server  # noqa: F401  (the 127.0.0.1 server fixture)

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import npm_package  # noqa: E402
import offline_assets  # noqa: E402
import upscale_page  # noqa: E402


def _publish(root, name: str, version: str, files: dict[str, bytes]) -> str:
    """A package as the registry serves it (``/<name>/-/<name>-<version>.tgz``); its integrity."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = root / name / "-"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name.rpartition('/')[2]}-{version}.tgz").write_bytes(buf.getvalue())
    return "sha512-" + base64.b64encode(hashlib.sha512(buf.getvalue()).digest()).decode()


@pytest.fixture
def registry(server, tmp_path, monkeypatch):  # noqa: F811
    root, url = server
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(npm_package, "REGISTRY", url)
    return root


@pytest.fixture
def ort_package(registry, monkeypatch):
    files = {f"dist/{name}": f"contents of {name}".encode() for name in upscale_page.ORT_FILES}
    files["dist/ort.all.js"] = b"not needed by the page"
    integrity = _publish(registry, "onnxruntime-web", upscale_page.ORT_VERSION, files)
    monkeypatch.setattr(upscale_page, "ORT_INTEGRITY", integrity)
    return files


def test_the_runtime_is_fetched_checked_and_copied(ort_package, tmp_path):
    assert upscale_page._runtime(tmp_path / "site" / "ort") == "ort/"
    assert sorted(p.name for p in (tmp_path / "site" / "ort").iterdir()) == sorted(upscale_page.ORT_FILES)
    for path, data in ort_package.items():
        if path != "dist/ort.all.js":
            assert (tmp_path / "site" / "ort" / path.removeprefix("dist/")).read_bytes() == data
    assert list((tmp_path / "cache" / "npm").rglob("*.tgz"))  # kept for the next build


def test_a_wrong_checksum_leaves_the_page_on_the_cdn(ort_package, tmp_path, monkeypatch):
    bad = "sha512-" + base64.b64encode(hashlib.sha512(b"something else").digest()).decode()
    monkeypatch.setattr(upscale_page, "ORT_INTEGRITY", bad)
    assert upscale_page._runtime(tmp_path / "site" / "ort") == upscale_page.ORT_CDN
    assert not (tmp_path / "site" / "ort").exists() and not list((tmp_path / "cache").rglob("*.tgz"))


def test_no_registry_leaves_the_pages_on_the_cdn(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(npm_package, "REGISTRY", "http://127.0.0.1:9")  # nothing listens on port 9
    assert upscale_page._runtime(tmp_path / "site" / "ort") == upscale_page.ORT_CDN
    config = SimpleNamespace(mathjax_path="https://cdn/mathjax.js", nb_ipywidgets_js={"https://cdn/embed.js": {}})
    offline_assets._fetch(SimpleNamespace(), config)
    assert config.mathjax_path == "https://cdn/mathjax.js" and config.nb_ipywidgets_js == {"https://cdn/embed.js": {}}


def test_mathjax_and_the_widget_renderer_from_the_site(registry, tmp_path, monkeypatch):
    contents = {
        "MATHJAX": {"es5/tex-mml-chtml.js": b"mj", "es5/input/tex/extensions/cancel.js": b"c",
                    "es5/output/chtml/fonts/woff-v2/a.woff": b"f", "es5/a11y/x.js": b"x", "es5/ui/x.js": b"x",
                    "es5/sre/x.js": b"x", "es5/adaptors/x.js": b"x", "es5/tex-svg.js": b"not served"},
        "WIDGETS": {"dist/embed-amd.js": b"w", "dist/x.woff2": b"f", "dist/embed.js.map": b"not served"},
        "REQUIRE": {"require.js": b"r", "bin/r.js": b"not served"},
    }
    for var, files in contents.items():
        name, version, _, root, wanted = getattr(offline_assets, var)
        integrity = _publish(registry, name, version, files)
        monkeypatch.setattr(offline_assets, var, (name, version, integrity, root, wanted))
    config = SimpleNamespace(mathjax_path="https://cdn/mathjax.js", nb_ipywidgets_js={})
    app = SimpleNamespace(outdir=str(tmp_path / "html"), builder=SimpleNamespace(format="html"))
    offline_assets._fetch(app, config)
    assert config.mathjax_path == "npm/mathjax/tex-mml-chtml.js"
    assert list(config.nb_ipywidgets_js) == ["npm/requirejs/require.js", "npm/offline_widgets.js",
                                             "npm/html-manager/embed-amd.js"]  # in this order
    offline_assets._copy(app, None)
    static = tmp_path / "html" / "_static" / "npm"
    served = sorted(str(p.relative_to(static)) for p in static.rglob("*") if p.is_file())
    assert served == sorted(["mathjax/tex-mml-chtml.js", "mathjax/input/tex/extensions/cancel.js",
                             "mathjax/output/chtml/fonts/woff-v2/a.woff", "mathjax/a11y/x.js", "mathjax/ui/x.js",
                             "mathjax/sre/x.js", "mathjax/adaptors/x.js", "html-manager/embed-amd.js",
                             "html-manager/x.woff2", "requirejs/require.js", "offline_widgets.js"])


def test_a_package_cannot_write_outside_its_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/dist/../../evil.js")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "p.tgz").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="unsafe path"):
        npm_package.copy(tmp_path / "p.tgz", "dist", None, tmp_path / "out")
    assert not (tmp_path / "evil.js").exists()


def test_the_cdn_is_the_same_version():
    assert f"onnxruntime-web@{upscale_page.ORT_VERSION}/" in upscale_page.ORT_CDN
