"""What every notebook of the book starts with: its mode, its device, its seeds, its images.

A notebook runs in *quick* mode by default (a few minutes on two CPU cores) and at the
papers' scale when ``SRLIB_FULL=1`` is set in the environment (or ``full=True`` is passed).
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .data import have, load_images
from .train import pick_device


@dataclass(frozen=True)
class Session:
    """The settings a notebook runs with."""

    full: bool  # paper scale (True) or quick mode (False)
    device: torch.device
    test_set: str  # "Set5" when the benchmark images are at hand, else "builtin"
    seed: int

    def images(self, scale: float | None = None) -> list[tuple[str, np.ndarray]]:
        """The test images (uint8, cropped to a multiple of ``scale``)."""
        return load_images(self.test_set, scale)

    def train_set(self, name: str) -> str:
        """The training set ``name`` when it is at hand (on Colab, after a download), else
        ``"builtin"``, saying so: every notebook runs with no data and no network."""
        if have(name, "google.colab" in sys.modules):
            return name
        print(f"training images: builtin ({name} not found: see the data sets appendix)")
        return "builtin"


def full_mode(full: bool | None = None) -> bool:
    """``full`` if given, else whether ``SRLIB_FULL`` is set to 1/true/yes."""
    if full is not None:
        return bool(full)
    return os.environ.get("SRLIB_FULL", "").strip().lower() in ("1", "true", "yes", "on")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, so that a notebook prints the same numbers every run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, full: bool | None = None, device: str | None = None, verbose: bool = True) -> Session:
    """Seed everything, pick the mode, the device and the test images, and say which."""
    seed_everything(seed)
    on_colab = "google.colab" in sys.modules  # there, a missing Set5 is downloaded
    test_set = "Set5" if have("Set5", on_colab) else "builtin"
    s = Session(full=full_mode(full), device=pick_device(device), test_set=test_set, seed=seed)
    if verbose:
        mode = "full (the papers' scale)" if s.full else "quick (set SRLIB_FULL=1 for the papers' scale)"
        data = "Set5" if s.test_set == "Set5" else "builtin (Set5 not found: see the data sets appendix)"
        print(f"mode: {mode}\ndevice: {s.device}\ntest images: {data}")
    return s
