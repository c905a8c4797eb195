"""Checkpoints: the one place that writes, reads, describes and slims them.

A checkpoint is a dict of state_dicts and plain values only, so that ``torch.load`` reads it
with ``weights_only=True`` (no code runs when a file is opened):

- every checkpoint: ``kind``, ``model_config`` (the network's constructor arguments), ``model``
  (its state_dict), ``scales``, ``iteration``, and ``recipe`` (the run's settings, a plain dict);
- a training checkpoint (``last.pt``, ``best.pt``) also holds what resuming needs:
  :data:`TRAINING_STATE` (optimisers, gradient scalers, random states; the discriminator for
  SRGAN, and its generator's own weights where ``model`` is their moving average) and
  ``total``, ``lr_step``, ``best``, ``seconds``;
- shipped weights (``srlib/weights``) are :func:`slim`: the network, its recipe and its
  validation ``history`` only.

Files are written atomically (:func:`write`): an interrupted save never leaves half a file.
Chapters: the performance appendix (the shipped weights); the training engine writes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import SRError

__all__ = ["TRAINING_STATE", "plain", "write", "read", "describe", "slim"]

TRAINING_STATE = ("optimizer", "scalers", "rng", "disc", "opt_disc", "generator")  # what only resuming needs


def plain(x):
    """Tuples as lists, recursively: what ``weights_only`` loading accepts and JSON writes."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def write(state: dict, path: str | Path) -> Path:
    """Save ``state`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> dict:
    """The contents of an srlib checkpoint, or :class:`SRError` saying why the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise SRError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SRError(f"{path}: not an srlib checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "model" not in ckpt:
        raise SRError(f"{path}: not an srlib checkpoint (no 'kind'/'model' entries)")
    if not isinstance(ckpt.get("model_config"), dict):  # the network cannot be rebuilt without it
        raise SRError(f"{path}: not an srlib checkpoint (no 'model_config' entry)")
    return ckpt


def describe(ckpt: dict) -> dict:
    """Everything a checkpoint records but the weights and the training state."""
    return {k: v for k, v in ckpt.items() if k != "model" and k not in TRAINING_STATE}


def slim(ckpt: dict, history: list[dict] | None = None) -> dict:
    """The shipped form of a checkpoint: the network, its scales, recipe and iteration, and the
    validation ``history`` rows up to that iteration (:func:`srlib.train.read_history`)."""
    out = {k: ckpt[k] for k in ("kind", "model_config", "model", "scales", "iteration")}
    if "recipe" in ckpt:  # what trained it, so that it can be trained again (the notebooks' full mode)
        out["recipe"] = ckpt["recipe"]
    if history:
        out["history"] = [row for row in history if row["iteration"] <= ckpt["iteration"]]
    return out
