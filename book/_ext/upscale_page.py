"""Sphinx extension: the files of the page "Upscale your own photo" (book/upscale.md).

At the end of an HTML build it writes ``_static/upscale/``:

- the shipped networks as ONNX files with their ``manifest.json`` (``srlib.export``, built
  anew at every build and never committed), each checked against PyTorch by ONNX Runtime;
- ONNX Runtime Web (the npm package ``onnxruntime-web``, its WebAssembly build and its
  WebGPU build), by book/_ext/npm_package.py: from the npm registry, checked, cached. Where
  the registry cannot be reached the build goes on, says so in its log, and the page loads
  the same version from a CDN (``runtime.json`` says which);
- the page's scripts and style (``book/upscale/``) and its examples: builtin images of
  scikit-image reduced by MATLAB's bicubic, so that they need upscaling.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import npm_package
from sphinx.util import logging

log = logging.getLogger(__name__)

MODELS = ["srcnn-x2", "srcnn-x3", "srcnn-x4", "vdsr", "srresnet-x4-small"]
ORT_VERSION = "1.30.0"
ORT_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_VERSION}/dist/"
# The WebAssembly build (ort.wasm) and the WebGPU build (ort.webgpu, with its asyncify WebAssembly).
ORT_FILES = ["ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
             "ort.webgpu.min.js", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"]
# Builtin images (scikit-image) and the factor MATLAB's bicubic reduces them by.
EXAMPLES = [("astronaut", 3), ("chelsea", 2), ("coffee", 3), ("camera", 3)]
HERE = Path(__file__).resolve().parents[1] / "upscale"


def _runtime(dest: Path) -> str:
    """Copy onnxruntime-web's files into ``dest``; return the URL prefix the page loads them from."""
    tgz = npm_package.tarball("onnxruntime-web", ORT_VERSION, ORT_INTEGRITY,
                              f"the upscaling page will load it from {ORT_CDN}")
    if tgz is None:
        return ORT_CDN
    npm_package.copy(tgz, "dist", ORT_FILES, dest)
    return "ort/"


def _examples(dest: Path) -> list[dict]:
    import numpy as np
    import skimage.data
    from PIL import Image

    from srlib.data.resize import imresize

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, factor in EXAMPLES:  # the whole photographs (the builtin test set holds their central crops)
        small = imresize(getattr(skimage.data, name)(), 1 / factor)
        Image.fromarray(np.asarray(small)).save(dest / f"{name}.png")
        out.append({"name": name, "file": f"examples/{name}.png", "reduced_by": factor,
                    "width": small.shape[1], "height": small.shape[0]})
    return out


def _build(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from srlib.export import export

    dest = Path(app.outdir) / "_static" / "upscale"
    dest.mkdir(parents=True, exist_ok=True)
    manifest = export(MODELS, dest)
    manifest["examples"] = _examples(dest / "examples")
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    runtime = _runtime(dest / "ort")
    (dest / "runtime.json").write_text(json.dumps({"version": ORT_VERSION, "base": runtime}))
    for f in HERE.iterdir():
        if f.suffix in (".js", ".css"):
            shutil.copyfile(f, dest / f.name)
    log.info(f"upscale page: {len(manifest['models'])} networks in ONNX, onnxruntime-web {ORT_VERSION} "
             f"from {'the npm registry' if runtime == 'ort/' else 'the CDN'}")


def setup(app):
    app.connect("build-finished", _build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
