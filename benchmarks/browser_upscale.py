"""The page "Upscale your own photo" (book/upscale.md) against ``srlib upscale``: same image, time.

Serves a built book (``make book`` writes ``_build/html``) on 127.0.0.1, opens the page in
Debian's headless Chromium with every other host blocked (selenium, as the browser test), and
upscales the browser test's 256x256 colour image with each network, in the page and by the
command line (on one thread, as the page's WebAssembly, and on PyTorch's default threads).
Records the times, the PSNR between the page's and the command line's images, the page's
backend and the CPU, and prints a table; the performance appendix of the book shows it.

    python benchmarks/browser_upscale.py [--html _build/html] [--json benchmarks/results/browser_upscale.json]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from srlib.device import cpu_info

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]
from test_browser import CHROMIUM, _QuietHandler, chromium, cut_images, upscale_in_page, upscale_on_command_line  # noqa: E402

CASES = [("vdsr", 3), ("srcnn-x3", 3), ("srresnet-x4-small", 4)]
IMAGE = "astronaut_256"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", default=str(ROOT / "_build" / "html"), help="the built book")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if not (Path(args.html) / "_static" / "upscale" / "manifest.json").is_file():
        sys.exit(f"{args.html}: no built book with the upscale page (run `make book`)")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=args.html))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f"http://127.0.0.1:{httpd.server_address[1]}"
    folder = Path(tempfile.mkdtemp(prefix="srlib-browser-"))
    image = cut_images(folder)[IMAGE]
    rows = []
    driver = chromium()
    try:
        for model, scale in CASES:
            page, info = upscale_in_page(driver, server, image, model, scale)
            cli, one = upscale_on_command_line(image, model, scale, folder / "one.png", threads=1)
            _, default = upscale_on_command_line(image, model, scale, folder / "all.png")
            mse = float(np.mean((page.astype(np.float64) - cli) ** 2))
            rows.append({"model": model, "scale": scale, "input": "256x256",
                         "output": f"{page.shape[1]}x{page.shape[0]}",
                         "backend": info["backend"], "workers": info["workers"],
                         "page_network_seconds": info["network_seconds"],
                         "page_seconds": info["seconds"], "cli_seconds_1_thread": one,
                         "cli_seconds": default, "cli_threads": torch.get_num_threads(),
                         "psnr_page_vs_cli": 10 * np.log10(255**2 / mse) if mse else None})
            r = rows[-1]
            print(f"{model} x{scale}: page {r['page_network_seconds']:.1f} s ({r['backend']}, {r['workers']} workers), "
                  f"srlib upscale {one:.1f} s on 1 thread, {default:.1f} s on {r['cli_threads']}; PSNR page vs CLI "
                  + (f"{r['psnr_page_vs_cli']:.1f} dB" if mse else "identical"), flush=True)
    finally:
        driver.quit()
        httpd.shutdown()
    browser = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    result = {"cpu": cpu_info(), "browser": browser, "torch": torch.__version__, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
