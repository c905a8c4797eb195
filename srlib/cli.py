"""``python -m srlib`` / ``srlib``: evaluate methods on benchmarks, download data sets.

Every error caused by the user's input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .errors import SRError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2 (argparse prints the usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _methods() -> dict:
    from .evaluate import bicubic

    return {"bicubic": bicubic}


def _method(name: str):
    methods = _methods()
    if name not in methods:
        raise SRError(f"unknown model {name!r}; available: {', '.join(methods)}")
    return methods[name]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table, write_json

    method = _method(args.model)
    results = evaluate(method, args.data, args.scale, progress=args.verbose)
    print(format_table(results, method.name))
    if args.json:
        write_json(args.json, results, method.name)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .data.datasets import dataset_dir

    for name in args.names:
        print(f"{name}: {dataset_dir(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="srlib", description="Single-image super-resolution: data, metrics, models.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    e = sub.add_parser("evaluate", help="PSNR/SSIM/time on benchmark sets with the papers' protocol")
    e.add_argument("--model", default="bicubic", help="method to evaluate (default: bicubic)")
    e.add_argument("--data", nargs="+", default=["Set5", "Set14", "BSD100"],
                   help="data set names (Set5, Set14, BSD100, Urban100, builtin, ...) or folders")
    e.add_argument("--scale", nargs="+", type=float, default=[2, 3, 4], help="scale factors")
    e.add_argument("--json", help="also write the results to this JSON file")
    e.add_argument("--verbose", action="store_true", help="print every image's PSNR")
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("download", help="fetch data sets into srlib's cache (checksummed)")
    d.add_argument("names", nargs="+", help="data set names")
    d.set_defaults(func=cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SRError as e:
        print(f"srlib {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("srlib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
