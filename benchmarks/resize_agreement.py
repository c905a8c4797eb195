"""How close is a bicubic downscaler to MATLAB's imresize? Prints a table.

Compares srlib's imresize and Pillow's bicubic against the MATLAB-made LR images of the
SelfExSR benchmark (Set5, Set14, BSD100 at x2, x3, x4): fraction of equal pixels, over
whole images and away from the borders, and the largest difference in grey levels.

    SRLIB_DATA=../shared/data python benchmarks/resize_agreement.py
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from srlib.data import image_paths, imresize, read_image


def main() -> None:
    print(f"{'set':<8} {'scale':<6} {'method':<8} {'equal':>8} {'interior':>9} {'max diff':>9}")
    totals: dict[str, list[int]] = {"srlib": [0, 0], "Pillow": [0, 0]}
    t0 = time.perf_counter()
    for name in ("Set5", "Set14", "BSD100"):
        for s in (2, 3, 4):
            stats = {m: [0, 0, 0, 0, 0] for m in totals}  # equal, total, interior equal, interior total, max
            for p in image_paths(name, s):
                hr, ref = read_image(p), read_image(str(p).replace("_HR", "_LR"))
                outs = {"srlib": imresize(hr, 1 / s),
                        "Pillow": np.asarray(Image.fromarray(hr).resize(ref.shape[1::-1], Image.BICUBIC))}
                b = s + 2
                for m, out in outs.items():
                    st = stats[m]
                    st[0] += int((out == ref).sum())
                    st[1] += ref.size
                    st[2] += int((out[b:-b, b:-b] == ref[b:-b, b:-b]).sum())
                    st[3] += ref[b:-b, b:-b].size
                    st[4] = max(st[4], int(np.abs(out.astype(int) - ref).max()))
            for m, st in stats.items():
                totals[m][0] += st[0]
                totals[m][1] += st[1]
                print(f"{name:<8} x{s:<5} {m:<8} {100 * st[0] / st[1]:7.2f}% {100 * st[2] / st[3]:8.2f}% {st[4]:9d}")
    for m, (eq, tot) in totals.items():
        print(f"all: {m} equal on {100 * eq / tot:.2f}% of {tot} pixels")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
