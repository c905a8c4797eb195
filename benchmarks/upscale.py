"""``srlib upscale`` on photos of 0.5 to 24 megapixels: time and peak memory, tiled and whole.

For each network (SRCNN x3, VDSR x2, SRResNet x4) and each input size, one fresh process
upscales a colour photo (the builtin astronaut, repeated to the size) with
:func:`srlib.inference.upscale_photo`, as the command line does, and reports the wall time
and its peak resident memory (``ru_maxrss``, the Python and PyTorch baseline included,
which is printed too). "tiled" uses srlib's default tiles; "whole" passes the image through
the network at once (the behaviour before tiling), run only where its activations fit in
``--whole-limit``. Time per input megapixel should be flat: the targets are a 12 MP photo
at x2 with VDSR in under 2 GB, and time per megapixel within 20% from 0.5 to 24 MP.

    python benchmarks/upscale.py [--sizes 0.5 2 12 24] [--models srcnn-x3 vdsr] [--json out.json [--update]]
    python benchmarks/upscale.py --allocator --json out.json   # glibc default vs keep_freed_memory
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = {"srcnn-x3": 3, "vdsr": 2, "srresnet-x4-small": 4}  # shipped network: its scale


def photo(megapixels: float):
    """A 4:3 colour photo of about ``megapixels`` (uint8), tiled from scikit-image's astronaut."""
    import numpy as np
    import skimage.data

    w = int(math.sqrt(megapixels * 1e6 * 4 / 3))
    h = int(w * 3 / 4)
    base = skimage.data.astronaut()
    reps = (math.ceil(h / base.shape[0]), math.ceil(w / base.shape[1]), 1)
    return np.ascontiguousarray(np.tile(base, reps)[:h, :w])


def one(name: str, megapixels: float, whole: bool, tile: int | None = None) -> dict:
    """Run one case in this process (``tile``: this side instead of srlib's); return its measurements."""
    import torch

    from srlib.data.image import Photo
    from srlib.inference import _widest, tile_size, upscale_photo
    from srlib.pretrained import load

    model, info = load(name)
    image = photo(megapixels)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # MiB (Linux: KiB)
    h, w = image.shape[:2]
    tile = 1 << 30 if whole else tile or tile_size(model)  # whole: one tile
    t0 = time.perf_counter()
    upscale_photo(Photo(image), model, info["kind"], CASES[name], tile=tile)
    seconds = time.perf_counter() - t0
    return {"model": name, "scale": CASES[name], "mode": "whole" if whole else "tiled", "tile": tile,
            "width": w, "height": h, "megapixels": h * w / 1e6, "seconds": seconds,
            "seconds_per_mp": seconds / (h * w / 1e6), "peak_rss_mib": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 2**10, "baseline_rss_mib": base_rss,
            "threads": torch.get_num_threads(), "widest_layer_elements_per_px": _widest(model)[0]}


def whole_bytes(name: str, megapixels: float) -> float:
    """Activation memory of whole-image inference: three times the widest layer's output."""
    from srlib.inference import _widest
    from srlib.pretrained import load

    model, _ = load(name)
    widest, factor = _widest(model)
    pixels = megapixels * 1e6 * (1 if factor > 1 else CASES[name] ** 2)  # Y models run at the output size
    return 3 * 4 * widest * pixels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=float, default=[0.5, 2, 12, 24], help="input megapixels")
    p.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--whole-limit", type=float, default=6.0, help="GiB: run whole-image inference below this")
    p.add_argument("--tiles", nargs="*", type=int, default=[96, 128, 192, 256, 384],
                   help="tile sides to compare first, on a photo of --sweep-mp megapixels")
    p.add_argument("--sweep-mp", type=float, default=0.5)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--update", action="store_true",
                   help="keep the other networks' results already in --json (re-measure only --models)")
    p.add_argument("--one", nargs=4, metavar=("MODEL", "MP", "MODE", "TILE"), help=argparse.SUPPRESS)
    p.add_argument("--allocator", action="store_true",
                   help="only compare glibc's default (freed memory returned at once) with srlib's setting "
                        "(keep_freed_memory) on a --sweep-mp photo, and add the result to --json")
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.plain:  # glibc's default behaviour: what srlib's keep_freed_memory changes
        import srlib.inference

        srlib.inference.keep_freed_memory = lambda: False
    if a.one:
        print(json.dumps(one(a.one[0], float(a.one[1]), a.one[2] == "whole", int(a.one[3]) or None)))
        return
    from srlib.device import cpu_info, describe_cpu

    about = {"cpu": cpu_info(), "python": sys.version.split()[0]}
    print(f"{describe_cpu(about['cpu'])}, float32")
    print(f"{'model':<18} {'scale':>5} {'input':>13} {'mode':>6} {'tile':>5} {'seconds':>8} {'s/MP':>6} "
          f"{'peak RSS':>9} {'baseline':>9}")
    rows, sweep = [], []
    if a.update and a.json and Path(a.json).is_file():
        kept = json.loads(Path(a.json).read_text())
        rows = [r for r in kept["rows"] if r["model"] not in a.models]
        sweep = [r for r in kept["tile_sweep"] if r["model"] not in a.models]

    def run(name: str, mp: float, mode: str, tile: int = 0) -> dict | None:
        out = subprocess.run([sys.executable, __file__, "--one", name, str(mp), mode, str(tile)], capture_output=True,
                             text=True)
        if out.returncode:
            print(f"{name} {mp} MP {mode}: failed\n{out.stderr[-2000:]}", flush=True)
            return None
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<18} {'x' + str(r['scale']):>5} {r['width']:>6}x{r['height']:<6} {mode:>6} "
              f"{r['tile']:>5} {r['seconds']:8.1f} {r['seconds_per_mp']:6.2f} "
              f"{r['peak_rss_mib']:7.0f} M {r['baseline_rss_mib']:7.0f} M", flush=True)
        return r

    def save() -> None:  # after every case: a long run keeps what it measured
        if a.json:
            Path(a.json).write_text(json.dumps({**about, "tile_sweep": sweep, "rows": rows}, indent=1))

    if a.allocator:
        result = {}
        for name in a.models:
            for plain in (True, False):
                out = subprocess.run([sys.executable, __file__, "--one", name, str(a.sweep_mp), "tiled", "0"]
                                     + (["--plain"] if plain else []), capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                result.setdefault(name, {})["glibc default" if plain else "keep_freed_memory"] = r["seconds_per_mp"]
                print(f"{name:<18} {a.sweep_mp:g} MP  {'glibc default' if plain else 'keep_freed_memory':<18} "
                      f"{r['seconds_per_mp']:6.2f} s per input MP", flush=True)
        if a.json:
            kept = json.loads(Path(a.json).read_text()) if Path(a.json).is_file() else {}
            Path(a.json).write_text(json.dumps({**kept, "allocator": result}, indent=1))
        return

    for name in [m for m in a.models if m != "srresnet-x4-small"] if a.tiles else []:
        for tile in a.tiles + [0]:
            r = run(name, a.sweep_mp, "whole" if tile == 0 else "tiled", tile)
            if r:
                sweep.append(r)
                save()
    for name in a.models:
        for mp in a.sizes:
            for mode in ("tiled", "whole"):
                if mode == "whole" and whole_bytes(name, mp) > a.whole_limit * 2**30:
                    need = whole_bytes(name, mp) / 2**30
                    print(f"{name:<18} {'x' + str(CASES[name]):>5} {mp:>10g} MP {mode:>6}   does not fit: "
                          f"its activations alone need {need:.1f} GiB", flush=True)
                    rows.append({"model": name, "megapixels": mp, "mode": "whole", "skipped_gib": need})
                    continue
                r = run(name, mp, mode)
                if r:
                    rows.append(r)
                    save()


if __name__ == "__main__":
    main()
