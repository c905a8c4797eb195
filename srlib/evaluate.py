"""Benchmark evaluation with the papers' protocol (``shared/PROTOCOL.md`` in the repo).

For every HR image of a data set at scale s: crop to a multiple of s; take 8-bit Y (a
grayscale file is its own Y); LR = bicubic(Y, 1/s) in floating point; the method
restores it to the HR size; the result is rounded to 8 bits, s pixels are shaved from
each border, and PSNR and SSIM are averaged over the images of the set.

Chapters: the SR problem (book/sr_problem.md) and the benchmarks (book/benchmarks.md).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data.datasets import ALIASES, DATASETS, image_paths, load_images
from .data.degrade import bicubic_degrade, bicubic_restore, modcrop
from .data.image import read_image, to_y
from .errors import SRError
from .metrics import channel_psnr, psnr, ssim

__all__ = ["Method", "bicubic", "bicubic_rgb", "evaluate", "colour_psnr", "Result", "format_table", "to_json",
           "check_scale"]


@dataclass
class Method:
    """An SR method as evaluate sees it: LR Y in [0, 1] and the HR shape in, SR Y out.

    ``scales`` lists the scales it supports (``None``: any scale in (1, 8]). With
    ``rgb=True`` the method gets the LR RGB image (H, W, 3) and returns RGB, measured on
    its Y (a grayscale test image is given as three equal channels, and the mean of the
    output channels is measured against it).
    """

    name: str
    run: Callable[[np.ndarray, tuple[int, int], float], np.ndarray]
    scales: tuple[float, ...] | None = None
    rgb: bool = False


bicubic = Method("bicubic", lambda low, shape, scale: bicubic_restore(low, shape))
bicubic_rgb = Method("bicubic", lambda low, shape, scale: bicubic_restore(low, shape), rgb=True)


def check_scale(method: Method, scale: float) -> float:
    """The scale as a float, or :class:`SRError` if ``method`` does not support it."""
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise SRError(f"scale {scale!r} is not a number") from None
    if method.scales is not None:
        if s not in method.scales:
            raise SRError(f"scale {scale} is not supported by {method.name} (supported: "
                          f"{', '.join(f'{x:g}' for x in method.scales)})")
    elif not (math.isfinite(s) and 1 < s <= 8):
        raise SRError(f"scale {scale} is not supported: use a number greater than 1 and at most 8")
    return s


@dataclass
class Result:
    """One (data set, scale) cell of the table; ``seconds`` is the mean per image; ``skipped``
    names the unreadable files of a folder that were left out."""

    dataset: str
    scale: float
    psnr: float
    ssim: float
    seconds: float
    images: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_folder(name: str) -> bool:
    """A folder path, not a named set (whose protocol needs every image) nor ``builtin``."""
    named = {n.lower() for n in [*DATASETS, *ALIASES, "builtin"]}
    return name.lower() not in named and Path(name).expanduser().is_dir()


def _readable_images(folder: str, scale: float, warned: set) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """A folder's images that can be read, and the names of those that cannot: one broken file
    does not void the evaluation of the others (each is warned about once, on stderr)."""
    images, errors = [], []
    for p in image_paths(folder, scale):
        try:
            images.append((p.stem.split("_SRF_")[0].removesuffix("_HR"), modcrop(read_image(p), scale)))
        except SRError as e:
            errors.append((p, e))
    if errors and not images:
        raise SRError(f"{errors[0][1]} (no image of {folder} could be read)")
    for p, e in errors:
        if p not in warned:
            warned.add(p)
            print(f"srlib: warning: skipped {e}", file=sys.stderr, flush=True)
    return images, [p.name for p, _ in errors]


def evaluate(method: Method, datasets: Sequence[str], scales: Sequence[float], progress: bool = False) -> list[Result]:
    """Evaluate ``method`` on each data set (name or folder) at each scale."""
    scales = [check_scale(method, s) for s in scales]
    results, warned = [], set()
    for name in datasets:
        for s in scales:
            images, skipped = _readable_images(name, s, warned) if _is_folder(name) else (load_images(name, s), [])
            if not images:
                raise SRError(f"data set {name!r} has no images")
            rows, seconds = [], 0.0
            shave = math.ceil(s)
            for img_name, hr in images:
                y = to_y(hr).astype(np.float64) / 255.0
                if min(y.shape) < 2 * shave + 11 or min(y.shape) / s < 1:
                    raise SRError(f"{name}/{img_name}: image of {y.shape} is too small for scale {s:g}")
                if method.rgb:
                    rgb = (hr if hr.ndim == 3 else np.repeat(hr[..., None], 3, -1)) / 255.0
                    low, want = bicubic_degrade(rgb, s), rgb.shape
                else:
                    low, want = bicubic_degrade(y, s), y.shape
                t0 = time.perf_counter()
                sr = np.asarray(method.run(low, y.shape, s))
                seconds += time.perf_counter() - t0
                if sr.shape != want:
                    raise SRError(f"{method.name} returned {sr.shape} for {name}/{img_name}, expected {want}")
                if method.rgb and hr.ndim == 2:
                    sr = sr.mean(-1)
                elif method.rgb:
                    y = hr
                rows.append({"name": img_name, "psnr": psnr(sr, y, shave), "ssim": ssim(sr, y, shave)})
                if progress:
                    print(f"  {name} x{s:g} {img_name}: {rows[-1]['psnr']:.2f} dB", flush=True)
            label = Path(name).name if Path(name).is_dir() else name
            results.append(Result(label, s, float(np.mean([r["psnr"] for r in rows])),
                                  float(np.mean([r["ssim"] for r in rows])), seconds / len(rows), rows, skipped))
    return results


def colour_psnr(method: Method, dataset: str, scale: float) -> dict[str, float]:
    """The SRCNN paper's colour table (section 4.4, Table 5) for one data set: the mean PSNR of
    Y, Cb, Cr and of RGB (:func:`~srlib.metrics.channel_psnr`) of ``method``, which takes and
    returns RGB (``rgb=True``), over the set's colour images (grayscale ones have no colour).
    LR is the bicubic degradation of the HR RGB image in floating point, as in :func:`evaluate`."""
    if not method.rgb:
        raise SRError(f"colour_psnr: {method.name} works on Y; give a method with rgb=True")
    s = check_scale(method, scale)
    rows = []
    for _, hr in load_images(dataset, s):
        if hr.ndim != 3:
            continue
        rgb = hr / 255.0
        sr = np.clip(np.asarray(method.run(bicubic_degrade(rgb, s), rgb.shape[:2], s)), 0, 1)
        rows.append(channel_psnr(sr, hr, math.ceil(s)))
    if not rows:
        raise SRError(f"colour_psnr: {dataset} has no colour images")
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def format_table(results: Sequence[Result], method: str) -> str:
    """A table shaped like the VDSR paper's Table 3: PSNR/SSIM/seconds per set and scale."""
    lines = [f"{'Dataset':<10} {'Scale':<6} {method + ' PSNR/SSIM/time':>28}"]
    for r in results:
        lines.append(f"{r.dataset:<10} {'x' + format(r.scale, 'g'):<6} "
                     f"{f'{r.psnr:.2f}/{r.ssim:.4f}/{r.seconds:.3f}s':>28}")
    for r in results:
        if r.skipped:
            lines.append(f"{r.dataset} x{r.scale:g}: {len(r.skipped)} of {len(r.images) + len(r.skipped)} images "
                         f"skipped (unreadable): {', '.join(r.skipped)}")
    return "\n".join(lines)


def to_json(results: Sequence[Result], method: str) -> dict:
    """The JSON form written by ``srlib evaluate --json``."""
    return {"model": method, "results": [asdict(r) for r in results]}


def write_json(path: str | Path, results: Sequence[Result], method: str) -> None:
    Path(path).write_text(json.dumps(to_json(results, method), indent=1))
