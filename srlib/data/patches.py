"""Training patch sets as PyTorch Datasets: SRCNN, VDSR and SRGAN, as their papers cut them.

Patches are cut on a regular grid with ``sliding_window_view`` (one vectorised slice per
image, no Python loop per patch), and the arrays are cached on disk under srlib's cache,
keyed by every parameter and the list of source files, so the second run starts at once.

Flips and rotations (VDSR, SRGAN) are not stored: item ``i`` of the data set is patch
``i // 8`` under the ``i % 8``-th of the eight symmetries of the square, so augmentation
is deterministic and a shuffled sampler mixes symmetries and scales in every batch.

Chapters: SRCNN, VDSR and SRGAN (their training sets).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset

from ..errors import SRError
from .datasets import BUILTIN_NAMES, BUILTIN_SIZE, image_paths, load_images
from .degrade import bicubic_degrade, bicubic_restore, modcrop
from .download import cache_dir
from .image import rgb_to_ycbcr, to_y

__all__ = ["grid_patches", "SRCNNPatches", "VDSRPatches", "SRGANPatches", "dihedral"]


def grid_patches(image: np.ndarray, size: int, stride: int) -> np.ndarray:
    """All ``size`` x ``size`` patches of ``image`` (H, W[, C]) at ``stride``: (N, size, size[, C])."""
    if image.shape[0] < size or image.shape[1] < size:
        return np.empty((0, size, size) + image.shape[2:], image.dtype)
    v = sliding_window_view(image, (size, size), axis=(0, 1))[::stride, ::stride]
    # v: (rows, cols, [C,] size, size) -> (rows * cols, size, size[, C])
    v = v.reshape((-1,) + v.shape[2:])
    return np.ascontiguousarray(np.moveaxis(v, (-2, -1), (1, 2)) if image.ndim == 3 else v)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th (0..7) of the 8 flips/rotations of the last two axes of ``x``."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _y01(image: np.ndarray) -> np.ndarray:
    return to_y(image).astype(np.float64) / 255.0


class _Cached(Dataset):
    """Builds arrays once per parameter set and keeps them in an .npz under the cache.
    Subclasses hold the network's inputs in ``inputs`` and its targets in ``targets``."""

    kind = ""
    augmentations = 1  # 8 when every patch also comes in its flips/rotations (``dihedral``)

    def __len__(self) -> int:
        return len(self.inputs) * self.augmentations

    def _load(self, params: dict, build) -> dict[str, np.ndarray]:
        files = [("builtin", BUILTIN_NAMES, BUILTIN_SIZE)] if params["data"] == "builtin" else [
            (p.name, p.stat().st_size) for p in image_paths(params["data"])]  # the source images' identity
        key = hashlib.sha1(json.dumps([self.kind, params, files], sort_keys=True).encode()).hexdigest()[:16]
        path = cache_dir() / "patches" / f"{self.kind}-{key}.npz"
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        arrays = build()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)  # atomic: a half-written cache is never read
        return arrays


class SRCNNPatches(_Cached):
    """SRCNN's training set: 33x33 sub-images of the bicubic-interpolated Y at stride 14,
    each paired with the central 21x21 of the HR Y (the output size of the 9-1-5 valid
    convolutions); ``label_size=None`` keeps the label 33x33 (for 'same' padding).
    ``augment=True`` adds the 8 flips/rotations (VDSR's; the SRCNN paper has none).
    ``colour="rgb"`` or ``"ycbcr"`` gives three-channel sub-images instead of Y (section 4.4;
    MATLAB's ``rgb2ycbcr`` in floating point, grayscale images repeated to three channels)."""

    kind = "srcnn"

    def __init__(self, data: str = "T91", scale: int = 3, size: int = 33, stride: int = 14,
                 label_size: int | None = 21, augment: bool = False, colour: str = "y"):
        if label_size is not None and (label_size > size or (size - label_size) % 2):
            raise SRError(f"SRCNNPatches: label_size {label_size} must be <= size {size} with an even margin")
        if colour not in ("y", "rgb", "ycbcr"):
            raise SRError(f"SRCNNPatches: colour must be 'y', 'rgb' or 'ycbcr', got {colour!r}")
        params = dict(data=data, scale=scale, size=size, stride=stride, label_size=label_size)
        if colour != "y":  # Y sets keep the cache key they always had
            params["colour"] = colour

        def channels(image: np.ndarray) -> np.ndarray:
            if colour == "y":
                return _y01(image)
            rgb = (image if image.ndim == 3 else np.repeat(image[..., None], 3, -1)).astype(np.float64) / 255.0
            return rgb if colour == "rgb" else rgb_to_ycbcr(rgb)

        def build():
            xs, ys = [], []
            for _, im in load_images(data):
                hr = channels(modcrop(im, scale))
                lr_up = bicubic_restore(bicubic_degrade(hr, scale), hr.shape)
                xs.append(grid_patches(lr_up, size, stride))
                ys.append(grid_patches(hr, size, stride))
            return {"x": np.concatenate(xs).astype(np.float32), "y": np.concatenate(ys).astype(np.float32)}

        a = self._load(params, build)
        m = 0 if label_size is None else (size - label_size) // 2
        as_nchw = (lambda v: v[:, None]) if colour == "y" else (lambda v: v.permute(0, 3, 1, 2).contiguous())  # noqa: E731
        self.inputs = as_nchw(torch.from_numpy(a["x"]))
        y = as_nchw(torch.from_numpy(a["y"]))
        self.targets = y[..., m:size - m, m:size - m] if m else y
        self.augmentations = 8 if augment else 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j, k = divmod(i, self.augmentations)
        return dihedral(self.inputs[j], k), dihedral(self.targets[j], k)


class VDSRPatches(_Cached):
    """VDSR's training set: 41x41 Y patches (input: the HR patch degraded and restored by
    bicubic at one of ``scales``), all scales in one set, with the 8 flips/rotations.

    Items are ``(input, target, scale)``.
    """

    kind = "vdsr"

    def __init__(self, data: str = "T91", scales: Sequence[float] = (2, 3, 4), size: int = 41,
                 stride: int = 41, augment: bool = True):
        params = dict(data=data, scales=list(map(float, scales)), size=size, stride=stride)

        def build():
            xs, ys, ss = [], [], []
            for _, im in load_images(data):
                for s in scales:
                    hr = _y01(modcrop(im, s))
                    lr_up = bicubic_restore(bicubic_degrade(hr, s), hr.shape)
                    p = grid_patches(lr_up, size, stride)
                    xs.append(p)
                    ys.append(grid_patches(hr, size, stride))
                    ss.append(np.full(len(p), s))
            return {"x": np.concatenate(xs).astype(np.float32), "y": np.concatenate(ys).astype(np.float32),
                    "s": np.concatenate(ss).astype(np.float32)}

        a = self._load(params, build)
        self.inputs, self.targets = torch.from_numpy(a["x"])[:, None], torch.from_numpy(a["y"])[:, None]
        self.scales = torch.from_numpy(a["s"])
        self.augmentations = 8 if augment else 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        j, k = divmod(i, self.augmentations)
        return dihedral(self.inputs[j], k), dihedral(self.targets[j], k), self.scales[j]


class SRGANPatches(_Cached):
    """SRGAN's training set: 96x96 RGB HR crops (grid at ``stride``) with their 24x24 LR
    (the whole image downscaled by MATLAB bicubic at 1/``scale``, then cropped in register),
    with the 8 flips/rotations. Items are ``(low, hr)`` in [0, 1], channels first.

    Grayscale images are repeated to three channels.
    """

    kind = "srgan"

    def __init__(self, data: str = "T91", scale: int = 4, size: int = 96, stride: int = 48,
                 augment: bool = True):
        if size % scale or stride % scale:
            raise SRError(f"SRGANPatches: size {size} and stride {stride} must be multiples of the scale {scale}")
        params = dict(data=data, scale=scale, size=size, stride=stride)

        def build():
            his, los = [], []
            for _, im in load_images(data):
                hr = modcrop(im if im.ndim == 3 else np.repeat(im[..., None], 3, -1), scale)
                hr = hr.astype(np.float64) / 255.0
                low = np.clip(bicubic_degrade(hr, scale), 0, 1)
                his.append(grid_patches(hr, size, stride))
                los.append(grid_patches(low, size // scale, stride // scale))
            return {"hr": (np.concatenate(his) * 255).round().astype(np.uint8),
                    "lr": np.concatenate(los).astype(np.float32)}  # "lr": the cached files name it so

        a = self._load(params, build)
        self.inputs = torch.from_numpy(a["lr"]).permute(0, 3, 1, 2)
        self.targets = torch.from_numpy(a["hr"]).permute(0, 3, 1, 2)  # uint8: a quarter of the memory
        self.augmentations = 8 if augment else 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j, k = divmod(i, self.augmentations)
        return dihedral(self.inputs[j], k).contiguous(), dihedral(self.targets[j].float() / 255.0, k).contiguous()
