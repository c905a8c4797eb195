"""Running a trained network on images: benchmark images, and photos of any size.

SRCNN and VDSR work on the bicubic-upscaled Y channel (Cb and Cr are upscaled bicubically
for display); SRResNet and SRGAN take the LR RGB image itself. Large images go through the
network in tiles that overlap by its receptive radius (:func:`run_tiled`), which gives the
whole image's result to the last bit in bounded memory. Chapters: SRCNN and VDSR (the
pipelines), receptive fields (the radius), and the performance appendix (time and memory).
"""

from __future__ import annotations

import copy
import math
import os
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .data.degrade import bicubic_restore
from .data.image import Photo, quantize, rgb_to_ycbcr, ycbcr_to_rgb
from .data.resize import output_shape, resize_sparse
from .device import half_dtype
from .errors import SRError
from .evaluate import Method
from .models import RGB_KINDS, SRCNN, make_model
from .receptive import receptive_field, upscale_factor

__all__ = ["load_model", "as_method", "upscale", "upscale_photo", "evaluating",
           "model_input", "run_tiled", "margin", "tile_size", "available_memory", "keep_freed_memory", "CPU_TILE"]

def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint or a weights file written by srlib: ``(model in eval mode, info)``.

    ``info`` has ``kind``, ``scales`` and whatever else the file recorded.
    """
    path = Path(path)
    ckpt = checkpoint.read(path)
    try:
        model = make_model(ckpt["kind"], ckpt["model_config"])
    except SRError as e:  # the file recorded impossible settings: name it
        raise SRError(f"{path}: {e}") from None
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as e:  # wrong shapes, or not a state_dict at all
        raise SRError(f"{path}: weights do not fit a {ckpt['kind']} model ({str(e).splitlines()[0]})") from None
    info = checkpoint.describe(ckpt)
    info["path"] = str(path)
    return model.to(device).eval(), info


@contextmanager
def evaluating(model: nn.Module):
    """``model`` in eval mode (batch norm with its running statistics) for the ``with`` block,
    then every submodule back in the mode it had: running a network on images never changes
    the caller's model."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def model_input(model: nn.Module) -> nn.Module:
    """The model as used on whole images: SRCNN with 'same' padding. The model given is left as
    it is: an SRCNN with 'valid' padding comes back as a shallow copy that shares its weights."""
    if isinstance(model, SRCNN) and model.padding != "same":
        model = copy.copy(model)  # the same parameters and layers; only the padding attribute differs
        model.padding = "same"
    return model


# ----- tiles ------------------------------------------------------------------------------
# A fully convolutional network's output pixel depends only on the input pixels within its
# receptive radius. So an image can go through the network in tiles that overlap by that
# radius: each tile keeps only its core, whose outputs saw exactly what they would have seen
# in the whole image (zero padding included, at the image's own borders). Memory is bounded
# by the tile, and time grows with the pixel count. Chapter: receptive fields (notebook 02).

CPU_TILE = 192  # the core side that ran fastest on a 2-core CPU (cache; benchmarks/upscale.py measures it)


def margin(model: nn.Module) -> int:
    """The receptive radius of ``model`` in input pixels: how far beyond a tile it looks."""
    return math.ceil((receptive_field(model).size - 1) / 2)


def _widest(model: nn.Module) -> tuple[float, int]:
    """``(largest layer output in elements per input pixel, output pixels per input pixel side)``."""
    area, widest = 1.0, 1.0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            widest = max(widest, m.out_channels * area)
        elif isinstance(m, (nn.PixelShuffle, nn.Upsample)):
            area *= upscale_factor(m) ** 2
    return widest, round(math.sqrt(area))


def available_memory(device: torch.device) -> int:
    """Free memory in bytes: the GPU's own for CUDA, else the machine's available RAM."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not a POSIX system
            return 4 << 30


def tile_size(model: nn.Module, max_memory: int | None = None, half: bool = False) -> int:
    """The core side of a tile (input pixels) whose activations fit in ``max_memory`` bytes.

    ``max_memory`` defaults to a quarter of the free memory of the model's device. A tile's
    peak is about three times its widest layer's output (input, output, workspace). On a CPU
    the side is at most :data:`CPU_TILE`, which is faster than larger tiles (cache).
    """
    device = _device_of(model)
    budget = max_memory if max_memory is not None else available_memory(device) // 4
    per_pixel = 3 * _widest(model)[0] * (2 if half else 4)
    m = margin(model)
    side = int(math.sqrt(max(budget, 0) / per_pixel)) - 2 * m
    if side < 16:
        need = per_pixel * (16 + 2 * m) ** 2
        raise SRError(f"--max-memory {budget / 2**20:.0f} MiB is too small for this network: "
                      f"tiles need at least {need / 2**20:.0f} MiB")
    return min(side, CPU_TILE) if device.type == "cpu" else side


def _spans(n: int, tile: int | None, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
    stop = n if stop is None else stop
    step = tile or max(stop - start, 1)
    return [(a, min(a + step, stop)) for a in range(start, stop, step)]


@cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the system at once.

    By default glibc gives large freed blocks back to the operating system, so the next tile's
    activations arrive as fresh pages that the kernel must zero first, which slows inference
    on a CPU down markedly (``benchmarks/upscale.py --allocator`` measures both; the book's
    performance appendix shows the result). Blocks up to 32 MB then come from the heap, and
    up to 256 MB of free heap is kept. Process-wide, once; Linux with glibc only (elsewhere
    it does nothing and returns False).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))


def _precision(device: torch.device, half: bool) -> torch.dtype | None:
    """The autocast dtype of ``--half``: bf16 where the GPU computes it in hardware, else fp16 (:func:`half_dtype`)."""
    if not half:
        return None
    if device.type in ("cuda", "mps"):
        return half_dtype(device)
    raise SRError("--half needs a GPU (cuda or mps); on a CPU srlib infers in float32")


@torch.no_grad()
def run_tiled(model: nn.Module, x: np.ndarray, tile: int | None = None, rows: tuple[int, int] | None = None, *,
              half: bool = False, channels_last: bool = False, bar=None) -> np.ndarray:
    """The network on an ``(H, W)`` or ``(H, W, C)`` float image, tile by tile; float32 out.

    Tiles have cores of ``tile`` x ``tile`` input pixels (``None``: the whole image) and
    overlap by :func:`margin`, so the result is the whole image's, to the last bit. ``rows``
    limits the output to input rows ``[r0, r1)`` (the rest of ``x`` is context only). Output
    size: the input's times the network's factor (1 for SRCNN and VDSR). ``bar``: a tqdm
    bar, advanced once per tile.
    """
    device, dtype = _device_of(model), _precision(_device_of(model), half)
    if device.type == "cpu":
        keep_freed_memory()
    m, (_, f) = margin(model), _widest(model)
    h, w = x.shape[:2]
    r0, r1 = rows or (0, h)
    out = np.empty(((r1 - r0) * f, w * f) + x.shape[2:], dtype=np.float32)
    with evaluating(model):  # batch norm with its running statistics; the caller's mode comes back
        for a0, a1 in _spans(h, tile, r0, r1):
            for b0, b1 in _spans(w, tile):
                c0, c1, d0, d1 = max(a0 - m, 0), min(a1 + m, h), max(b0 - m, 0), min(b1 + m, w)
                t = torch.from_numpy(np.ascontiguousarray(x[c0:c1, d0:d1], dtype=np.float32))
                t = (t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]).to(device)
                if channels_last:
                    t = t.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    y = model(t)[0].float()
                y = y[:, (a0 - c0) * f:(a1 - c0) * f, (b0 - d0) * f:(b1 - d0) * f].cpu()
                y = y[0] if y.shape[0] == 1 else y.permute(1, 2, 0)
                out[(a0 - r0) * f:(a1 - r0) * f, b0 * f:b1 * f] = y.numpy()
                if bar is not None:
                    bar.update(1)
    return out


def as_method(model: nn.Module, kind: str, name: str, scales: tuple[float, ...] | None,
              tile: int | None = None, rgb: bool = False) -> Method:
    """The model as an evaluate :class:`~srlib.evaluate.Method`.

    Networks that see colour (SRResNet, SRGAN, SRCNN on RGB or YCbCr) take and return RGB;
    Y networks take and return Y, or with ``rgb=True`` RGB with Cb and Cr bicubic.

    Images larger than two tiles (``tile``, by default :func:`tile_size`) go through the
    network in tiles: the same numbers, in bounded memory; smaller ones at once.
    """
    model = model_input(model)
    side = tile or tile_size(model)
    run = lambda x: run_tiled(model, x, side if max(x.shape[:2]) > 2 * side else None).astype(np.float64)  # noqa: E731
    if kind in RGB_KINDS:
        return Method(name, lambda low, shape, s: np.clip(run(low), 0, 1), scales, rgb=True)
    colour = getattr(model, "colour", "y")
    if colour == "rgb":  # SRCNN on three channels (section 4.4): RGB in, RGB out
        return Method(name, lambda low, shape, s: np.clip(run(bicubic_restore(low, shape)), 0, 1), scales, rgb=True)
    if colour == "ycbcr":
        return Method(name, lambda low, shape, s: np.clip(ycbcr_to_rgb(run(rgb_to_ycbcr(bicubic_restore(low, shape)))),
                                                         0, 1), scales, rgb=True)
    if rgb:  # a Y network on a colour image: Cb and Cr bicubic, as upscale_photo does

        def on_y(low, shape, s):
            up = rgb_to_ycbcr(bicubic_restore(low, shape))
            up[..., 0] = run(up[..., 0])
            return np.clip(ycbcr_to_rgb(up), 0, 1)

        return Method(name, on_y, scales, rgb=True)
    return Method(name, lambda low, shape, s: run(bicubic_restore(low, shape)), scales)


# ----- photos -----------------------------------------------------------------------------
def _encode(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """0-1 floats to the photo's own type: 8 or 16 bits rounded and clipped, float32 as is."""
    if dtype == np.uint8:
        return quantize(x * 255.0)
    if dtype == np.uint16:
        return np.clip(np.floor(x * 65535.0 + 0.5), 0, 65535).astype(np.uint16)
    return x.astype(np.float32)


def _along(m, a: np.ndarray, axis: int) -> np.ndarray:
    """The sparse matrix ``m`` applied along ``axis`` (0 or 1) of ``a``."""
    a = np.moveaxis(a, axis, 0)
    return np.moveaxis((m @ a.reshape(a.shape[0], -1)).reshape((m.shape[0],) + a.shape[1:]), 0, axis)


def _resize_rows(x: np.ndarray, mh, mw, lo: int, cols_first: bool) -> np.ndarray:
    """MATLAB's bicubic of the input rows ``x`` (image rows ``lo ..``) by the sparse matrices
    ``mh`` (this band's output rows) and ``mw`` (all output columns), in imresize's axis order."""
    mh = mh[:, lo:lo + x.shape[0]]
    return _along(mh, _along(mw, x, 1), 0) if cols_first else _along(mw, _along(mh, x, 0), 1)


def _network_on(model: nn.Module, up: np.ndarray, rows: tuple[int, int], tile: int, *, half: bool, bar) -> np.ndarray:
    """The network on the bicubic band ``up`` (YCbCr (H, W, 3), or grey (H, W)), output rows
    ``rows`` of it: RGB, or grey for a grey band. A Y network restores Y (Cb and Cr stay
    bicubic); a colour SRCNN (section 4.4) its three channels, a grey band as three equal ones."""
    kw = dict(half=half, channels_last=_device_of(model).type == "cuda", bar=bar)
    grey, colour = up.ndim == 2, getattr(model, "colour", "y")
    if colour == "y":
        sr = run_tiled(model, up if grey else up[..., 0], tile, rows, **kw).astype(np.float64)
        if grey:
            return sr
        core = up[rows[0]:rows[1]].copy()
        core[..., 0] = sr
        return ycbcr_to_rgb(core)
    ycc = rgb_to_ycbcr(np.repeat(up[..., None], 3, -1)) if grey else up
    sr = run_tiled(model, ycbcr_to_rgb(ycc) if colour == "rgb" else ycc, tile, rows, **kw).astype(np.float64)
    sr = sr if colour == "rgb" else ycbcr_to_rgb(sr)
    return sr.mean(-1) if grey else sr


def upscale_photo(photo: Photo, model: nn.Module, kind: str, scale: float, *, tile: int | None = None,
                  max_memory: int | None = None, half: bool = False, progress: bool = False) -> Photo:
    """Super-resolve a :class:`~srlib.data.image.Photo` by ``scale``, in tiles; same type out.

    Y models (SRCNN, VDSR): the network on the bicubic-upscaled Y, Cb and Cr bicubic (MATLAB's),
    as the papers show their results. RGB models (SRResNet, SRGAN): on the RGB image itself.
    Grayscale stays grayscale; alpha is upscaled bicubically and put back; 8 bits, 16 bits or
    float in gives the same out (float values beyond [0, 1] are not clipped). The work goes in
    bands of output rows, so memory is bounded by a tile and a band whatever the image size.
    """
    from tqdm.auto import tqdm

    model = model_input(model)
    device = _device_of(model)
    tile = tile or tile_size(model, max_memory, half)
    m, (_, factor) = margin(model), _widest(model)
    px, peak = photo.pixels, photo.peak
    h, w = px.shape[:2]
    rgb_model = kind in RGB_KINDS
    oh, ow = (h * factor, w * factor) if rgb_model else output_shape((h, w), scale)
    mh, mw = resize_sparse(h, oh, oh / h), resize_sparse(w, ow, ow / w)
    cols_first = ow / w < oh / h  # imresize resizes the axis of the smaller scale first
    out = np.empty((oh, ow) + px.shape[2:], dtype=px.dtype)
    alpha = None if photo.alpha is None else np.empty((oh, ow), dtype=photo.alpha.dtype)
    clip = (lambda x: np.clip(x, 0, 1)) if px.dtype != np.float32 else (lambda x: x)  # noqa: E731
    band = tile * factor if rgb_model else tile
    n_bands, n_cols = math.ceil(oh / band), math.ceil((w if rgb_model else ow) / tile)
    bar = tqdm(total=n_bands * n_cols, desc=f"x{scale:g} in tiles of {tile}", unit="tile", disable=not progress)
    with bar:
        for y0, y1 in _spans(oh, band):
            if rgb_model:  # LR rows with their context; the network upscales them itself
                a0, a1 = y0 // factor, y1 // factor
                c0, c1 = max(a0 - m, 0), min(a1 + m, h)
                low = px[c0:c1].astype(np.float64) / peak
                low = low if low.ndim == 3 else np.repeat(low[..., None], 3, -1)
                sr = run_tiled(model, low, tile, (a0 - c0, a1 - c0), half=half, channels_last=device.type == "cuda",
                               bar=bar)
                for x0, x1 in _spans(ow, 1024):  # this band is factor x tile rows tall: in chunks, few temporaries
                    part = sr[:, x0:x1].astype(np.float64)
                    out[y0:y1, x0:x1] = _encode(clip(part if px.ndim == 3 else part.mean(-1)), px.dtype)
            else:  # bicubic rows y0 - m .. y1 + m of the output (context for the network)
                c0, c1 = max(y0 - m, 0), min(y1 + m, oh)
                rows = mh[c0:c1]
                lo, hi = int(rows.indices.min()), int(rows.indices.max()) + 1
                low = px[lo:hi].astype(np.float64) / peak
                up = _resize_rows(rgb_to_ycbcr(low) if px.ndim == 3 else low, rows, mw, lo, cols_first)
                sr = _network_on(model, up, (y0 - c0, y1 - c0), tile, half=half, bar=bar)
                out[y0:y1] = _encode(clip(sr), px.dtype)
            if alpha is not None:
                rows = mh[y0:y1]
                lo, hi = int(rows.indices.min()), int(rows.indices.max()) + 1
                a = _resize_rows(photo.alpha[lo:hi].astype(np.float64) / peak, rows, mw, lo, cols_first)
                alpha[y0:y1] = _encode(np.clip(a, 0, 1), photo.alpha.dtype)
    return Photo(out, alpha)


def upscale(image: np.ndarray, model: nn.Module, kind: str, scale: float, *, tile: int | None = None,
            max_memory: int | None = None, half: bool = False, progress: bool = False) -> np.ndarray:
    """Super-resolve a uint8 image (H, W) or (H, W, 3) by ``scale``; uint8 out (see :func:`upscale_photo`)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise SRError(f"upscale: expected a uint8 image, got {a.dtype} (use upscale_photo for 16-bit or float)")
    return upscale_photo(Photo(a), model, kind, scale, tile=tile, max_memory=max_memory, half=half,
                         progress=progress).pixels
