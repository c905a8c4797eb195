"""Weights that ship inside srlib, each trained by a command recorded beside it.

``srlib/weights/index.json`` lists them: the file, the model, its scales, its Set5 PSNR
measured with srlib's protocol, and the exact command, data, iterations, device and time
of its training (all on a 2-core CPU but ``vdsr-gpu``, the paper's recipe on a GPU).
``python -m srlib pretrained`` prints that list.

Chapters: the benchmarks (book/benchmarks.md) measure them; "Upscale your own photo"
(book/upscale.md) runs them; the performance appendix (book/performance.md) lists how each was
trained.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as checkpoints
from .errors import SRError
from .inference import load_model

__all__ = ["index", "available", "load", "pretrained", "history", "retrain"]

WEIGHTS = Path(__file__).with_name("weights")


@cache
def index() -> dict[str, dict]:
    """Name -> description of every shipped weights file."""
    path = WEIGHTS / "index.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def available() -> list[str]:
    return list(index())


def load(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """``(model, info)`` of shipped weights ``name``."""
    if name not in index():
        raise SRError(f"no shipped weights named {name!r}; available: {', '.join(available()) or 'none'}")
    model, info = load_model(WEIGHTS / index()[name]["file"], device)
    info.update(index()[name])
    return model, info


def history(name: str) -> list[dict]:
    """The validation history of shipped weights ``name`` as :func:`srlib.train.read_history` gives
    it (iteration, loss, ``psnr_x<scale>`` on the recipe's validation set, ...); empty if none was kept."""
    if name not in index():
        raise SRError(f"no shipped weights named {name!r}; available: {', '.join(available()) or 'none'}")
    return checkpoints.read(WEIGHTS / index()[name]["file"]).get("history", [])


def pretrained(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The network of shipped weights ``name``, in eval mode (e.g. ``pretrained("vdsr")``)."""
    return load(name, device)[0]


def retrain(name: str, out: str | Path, device: str | torch.device | None = None, data: str | None = None,
            iterations: int | None = None) -> tuple[nn.Module, dict, list[dict]]:
    """Train shipped weights ``name`` again, from the recipe recorded with them, into ``out``:
    ``(network, info, history)``, to set beside the shipped run (the notebooks' full mode does).

    The same recipe and seed, for as many iterations as the shipped run did (a run fitted to
    ``--minutes`` is retrained for the iterations it reached); ``data`` replaces its training set
    (``"builtin"`` where the set is not at hand), ``iterations`` shortens it (a dry run, on a CPU;
    validated four times).
    A run stopped in ``out`` before is continued, a finished one is read.
    """
    from .recipes import Recipe
    from .train import read_history, train

    info = load(name)[1]
    length = iterations or int(info["iterations"])
    r = Recipe.from_dict(info["recipe"]).replace(minutes=None, epochs=None, iterations=length, checkpoint_every=2000)
    if iterations:  # shortened: validated four times along the way, as the curves want
        r = r.replace(val_every=min(r.val_every, max(1, length // 4)))
    if data is not None:
        r = r.replace(data=data)
    out = Path(out)
    last = out / "last.pt"
    if not last.is_file() or load_model(last)[1]["iteration"] < length:
        train(r, out, device=None if device is None else str(device), resume=last.is_file(), progress=False)
    model, trained = load_model(last, device or "cpu")
    return model, {**info, **trained}, read_history(out)


def ship(checkpoint: str | Path, name: str, command: str, cpu_minutes: float, data: str,
         device: str = "2-core CPU") -> dict:
    """Add a trained checkpoint to srlib's shipped weights (maintainers' tool).

    Writes ``weights/<name>.pt`` (:func:`srlib.checkpoint.slim`: the network without the
    optimiser, with its recipe and validation history) and its entry in ``index.json``, with its Set5 PSNR measured now
    with srlib's protocol (``builtin`` images if Set5 is absent). ``device`` says where it
    trained; the training minutes are recorded as ``cpu_minutes`` on a CPU, else ``gpu_minutes``.
    """
    from .data.datasets import or_builtin
    from .evaluate import evaluate
    from .inference import as_method
    from .train import read_history

    ckpt = checkpoints.read(checkpoint)
    log = Path(checkpoint).with_name("history.csv")  # its validation PSNR against iterations, for the curves
    slim = checkpoints.slim(ckpt, read_history(log) if log.is_file() else None)
    if "seconds" in ckpt:  # measured by the trainer; older checkpoints: as given
        cpu_minutes = round(ckpt["seconds"] / 60, 1)
    WEIGHTS.mkdir(exist_ok=True)
    checkpoints.write(slim, WEIGHTS / f"{name}.pt")
    model, info = load_model(WEIGHTS / f"{name}.pt")
    data_name = or_builtin("Set5")
    scales = [float(s) for s in slim["scales"]]
    res = evaluate(as_method(model, info["kind"], name, tuple(scales)), [data_name], scales)
    entries = json.loads((WEIGHTS / "index.json").read_text()) if (WEIGHTS / "index.json").is_file() else {}
    entries[name] = {
        "file": f"{name}.pt", "kind": slim["kind"], "scales": scales,
        "set5_psnr" if data_name == "Set5" else "builtin_psnr": {f"{r.scale:g}": round(r.psnr, 2) for r in res},
        "command": command, "data": data, "iterations": int(slim["iteration"]), "device": device,
        "cpu_minutes" if "CPU" in device else "gpu_minutes": cpu_minutes, "model_config": slim["model_config"],
    }
    (WEIGHTS / "index.json").write_text(json.dumps(entries, indent=1) + "\n")
    index.cache_clear()
    return entries[name]
