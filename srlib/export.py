"""srlib's networks as ONNX files, for ONNX Runtime in Python, C++, C#, Java or the browser.

Chapter: "Upscale your own photo" (book/upscale.md), where the shipped SRCNN, VDSR and
SRResNet run in the reader's browser with onnxruntime-web; the API reference.

An exported network takes and gives what it takes and gives in srlib, with any height and
width (``h``, ``w`` in the file):

- Y networks (SRCNN, VDSR): ``float32 (1, 1, H, W)``, the Y channel (MATLAB's ``rgb2ycbcr``,
  in [0, 1]) upscaled by MATLAB's bicubic to the output size; out: the restored Y, same size.
  SRCNN is exported with 'same' padding, as srlib runs it on whole images.
- RGB networks (SRResNet, SRGAN's generator): ``float32 (1, 3, h, w)``, the LR RGB image in
  [0, 1]; out: ``(1, 3, s*h, s*w)``.

``manifest.json`` beside the files describes each one (kind, input, scales, receptive
radius for tiles, Set5 PSNR of shipped weights, SHA-256) and the colour conversion, so a
program using them needs nothing else from srlib. :func:`export` checks every file with
ONNX Runtime against PyTorch before it is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.image import MATRIX, OFFSET
from .errors import SRError
from .inference import _widest, load_model, margin, model_input
from .models import RGB_KINDS

__all__ = ["OPSET", "TOLERANCE", "export_onnx", "check_onnx", "export_name", "export"]

OPSET = 18  # the torch.export-based exporter's own; the book's onnxruntime-web (1.30) runs it
TOLERANCE = 1e-4  # largest difference from PyTorch that check_onnx accepts (float32, any size)


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` into a file beside ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain new file (mkstemp's are private)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _need(*packages: str) -> None:
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise SRError(f"ONNX export needs {', '.join(missing)}: pip install 'srlib[export]'")


def export_onnx(model: nn.Module, kind: str, path: str | Path) -> Path:
    """Write ``model`` (of ``kind``: srcnn, vdsr, srresnet, srgan) to the ONNX file ``path``.

    Dynamic height and width; opset :data:`OPSET`; written atomically. The model is not
    changed (a copy is exported).
    """
    import copy

    path = Path(path)
    if not path.parent.is_dir():
        raise SRError(f"{path}: no such folder {path.parent}")
    model = model_input(copy.deepcopy(model).float().cpu().eval())
    channels = 3 if kind in RGB_KINDS else 1
    example = torch.rand(1, channels, 40, 36)
    dims = {2: torch.export.Dim("h", min=1, max=65536), 3: torch.export.Dim("w", min=1, max=65536)}

    _need("onnx", "onnxscript")

    def write(tmp: str) -> None:
        # The exporter logs and prints its progress (and that torchvision is absent): kept out of the user's way.
        quiet = logging.getLogger("torch.onnx")
        level, quiet.level = quiet.level, logging.ERROR
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (example,), tmp, dynamo=True, opset_version=OPSET, external_data=False,
                                  input_names=["input"], output_names=["output"],
                                  dynamic_shapes=(dims,), verbose=False)
        except Exception as e:  # noqa: BLE001  (the exporter raises many kinds)
            raise SRError(f"{path}: ONNX export of the {kind} network failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
        finally:
            quiet.level = level

    _atomic(path, write)
    return path


def check_onnx(model: nn.Module, kind: str, path: str | Path, sizes=((37, 41), (64, 17), (96, 96))) -> float:
    """The largest difference between ONNX Runtime (CPU) and PyTorch on random images of
    ``sizes`` (odd ones included); SRError if it exceeds :data:`TOLERANCE`."""
    import copy

    _need("onnxruntime")
    import onnxruntime as ort

    model = model_input(copy.deepcopy(model).float().cpu().eval())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    channels = 3 if kind in RGB_KINDS else 1
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for h, w in sizes:
        x = torch.rand(1, channels, h, w, generator=gen)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        if got.shape != want.shape:
            raise SRError(f"{path}: ONNX Runtime gives shape {got.shape} for a {h}x{w} input, PyTorch {want.shape}")
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > TOLERANCE:
        raise SRError(f"{path}: ONNX Runtime differs from PyTorch by {worst:.2e} (more than {TOLERANCE:g})")
    return worst


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_name(source: str) -> str:
    """The name :func:`export` gives ``source``: shipped weights keep theirs, a checkpoint file
    is named by its file name without suffix."""
    from .pretrained import available

    return source if source in available() else Path(source).stem


def export(models: list[str], out_dir: str | Path, check: bool = True) -> dict:
    """Export shipped weights (by name, see ``srlib pretrained``) or checkpoint files to
    ``out_dir/<name>.onnx``, and describe them in ``out_dir/manifest.json``.

    A checkpoint is named by its file name without suffix. Entries of the manifest that are
    not exported now are kept. Returns the manifest.
    """
    from .pretrained import available, load

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SRError(f"{out_dir}: not a folder")
    jobs = []
    for source in models:
        name = export_name(source)
        if source in available():
            model, info = load(source)
        elif Path(source).is_file():
            model, info = load_model(source)
        else:
            raise SRError(f"{source}: neither shipped weights ({', '.join(available())}) nor a checkpoint file")
        if any(name == other for other, *_ in jobs):
            raise SRError(f"{source}: a second model named {name!r} in this export (rename the file)")
        jobs.append((name, model, info))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except (OSError, ValueError):
        raise SRError(f"{manifest_path}: not a manifest written by srlib export") from None
    if not isinstance(manifest.get("models"), dict):
        manifest = {"models": {}}
    manifest.update({
        "opset": OPSET,
        # Y networks: MATLAB's rgb2ycbcr on RGB in [0, 1], ycc = (rgb @ matrix^T + offset) / 255, and its
        # inverse; Cb and Cr (and alpha) are upscaled by MATLAB's bicubic (imresize, a = -0.5).
        "ycbcr": {"matrix": MATRIX.tolist(), "offset": OFFSET.tolist()},
    })
    for name, model, info in jobs:
        kind = info["kind"]
        path = export_onnx(model, kind, out_dir / f"{name}.onnx")
        worst = check_onnx(model, kind, path) if check else None
        rgb = kind in RGB_KINDS
        scales = [float(info["model_config"].get("scale", 4))] if rgb else [float(s) for s in info.get("scales") or []]
        manifest["models"][name] = {
            "file": path.name, "kind": kind, "input": "rgb" if rgb else "y", "scales": scales,
            "factor": _widest(model)[1], "margin": margin(model),
            "set5_psnr": info.get("set5_psnr"), "parameters": sum(p.numel() for p in model.parameters()),
            "max_difference": worst, "sha256": _sha256(path), "bytes": path.stat().st_size,
        }
    _atomic(manifest_path, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)))
    return manifest
