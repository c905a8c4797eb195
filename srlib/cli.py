"""``python -m srlib`` / ``srlib``: train, evaluate and apply SR networks; fetch data sets.

Every error caused by the user's input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import SRError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2 (argparse prints the usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _load_named(name: str):
    """A shipped weights name or a checkpoint path: ``(model, info, label, supported scales)``."""
    from .inference import load_model
    from .pretrained import available, load

    if name in available():
        model, info = load(name)
    elif Path(name).suffix in (".pt", ".pth") or Path(name).exists():
        model, info = load_model(name)
    else:
        raise SRError(f"unknown model {name!r}: use bicubic, one of `srlib pretrained` "
                      f"({', '.join(available()) or 'none shipped'}), or a checkpoint file")
    scales = tuple(float(s) for s in info.get("scales") or ())
    if info["kind"] in ("srresnet", "srgan"):
        scales = (float(info["model_config"].get("scale", 4)),)
    return model, info, name if name in available() else Path(name).stem, scales


def _method(name: str):
    """``bicubic``, a shipped weights name, or a checkpoint path, as an evaluate Method."""
    from .evaluate import bicubic
    from .inference import as_method

    if name == "bicubic":
        return bicubic
    model, info, label, scales = _load_named(name)
    return as_method(model, info["kind"], label, scales or None)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table, write_json

    method = _method(args.model)
    results = evaluate(method, args.data, args.scale, progress=args.verbose)
    print(format_table(results, method.name))
    if args.json:
        write_json(args.json, results, method.name)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .data.datasets import ALIASES, dataset_dir

    for name in args.names:
        for part in ALIASES.get(name, name).split("+"):  # "291" is T91 and BSD200
            print(f"{part}: {dataset_dir(part)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .data import have
    from .evaluate import evaluate, format_table
    from .inference import as_method, load_model, read_checkpoint
    from .train import RECIPES, Recipe, train

    name = args.preset or args.model
    if name not in RECIPES:
        raise SRError(f"unknown preset {name!r}; choose from {', '.join(RECIPES)}")
    if RECIPES[name].kind != args.model:
        raise SRError(f"preset {name!r} trains {RECIPES[name].kind}, not {args.model}")
    changes = {k: v for k, v in {
        "data": args.data, "scales": tuple(args.scale) if args.scale else None, "iterations": args.iterations,
        "epochs": args.epochs, "minutes": args.minutes, "lr": args.lr, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "seed": args.seed, "val_data": args.val_data, "val_every": args.val_every,
        "generator": args.generator, "content_layer": args.content_layer, "workers": args.workers,
        "clip_value": args.clip_value,
    }.items() if v is not None}
    base = RECIPES[name]
    last_ckpt = Path(args.out) / "last.pt"
    if args.resume and last_ckpt.is_file():  # the run as it was; the options given here change it
        ckpt = read_checkpoint(last_ckpt)
        if ckpt["kind"] == args.model:  # another model's checkpoint: the trainer refuses it, naming both
            base = Recipe.from_dict(ckpt["recipe"])
    if args.iterations is not None and args.epochs is None:  # the length in iterations, not epochs
        changes["epochs"] = None
        if base.epochs and base.lr_step_epochs:  # keep the preset's schedule in proportion (VDSR: /10 at 1/4)
            changes["lr_step"] = max(1, round(args.iterations * base.lr_step_epochs / base.epochs))
            changes["lr_step_epochs"] = None
    # --minutes alone keeps the preset's length as the plan that the budget rescales, steps included.
    if args.clip is not None:
        changes["clip"] = None if args.clip == "none" else args.clip
    if args.vgg_weights is not None:
        changes["vgg_weights"] = None if args.vgg_weights == "none" else args.vgg_weights
    if args.model_set:
        changes["model"] = {**base.model, **_model_settings(args.model_set)}
    if args.augment is not None:
        changes["patch"] = {**base.patch, "augment": args.augment}
    if args.no_amp:
        changes["amp"] = False
    if args.compile:
        changes["compile"] = True
    r = base.replace(**changes)
    last = train(r, args.out, device=args.device, resume=args.resume, progress=not args.quiet)
    if int(os.environ.get("RANK", 0)) == 0:
        model, info = load_model(last)
        method = as_method(model, info["kind"], f"{args.model} ({Path(args.out).name})", None)
        results = evaluate(method, [r.val_data if have(r.val_data) else "builtin"], list(r.scales))
        print(format_table(results, method.name))
        print(f"checkpoint: {last}")
    return 0


def _model_settings(items: list[str]) -> dict:
    """``["depth=10", "residual=false"]`` -> ``{"depth": 10, "residual": False}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SRError(f"--model-set expects KEY=VALUE (e.g. depth=10), got {item!r}")
        low = value.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
        else:
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
    return out


def cmd_upscale(args: argparse.Namespace) -> int:
    from .data.image import read_image, save_image
    from .inference import upscale

    model, info, _, scales = _load_named(args.model)
    if args.scale is None:
        if len(scales) != 1:
            raise SRError(f"{args.model} supports scales {', '.join(f'{s:g}' for s in scales)}: give --scale")
        args.scale = scales[0]
    if scales and float(args.scale) not in scales:
        raise SRError(f"scale {args.scale:g} is not supported by {args.model} "
                      f"(supported: {', '.join(f'{s:g}' for s in scales)})")
    image = read_image(args.input)
    need = {"srcnn": 13, "vdsr": 8}.get(info["kind"], 4)
    if min(image.shape[:2]) < need:
        raise SRError(f"{args.input}: a {image.shape[1]}x{image.shape[0]} image is too small for {args.model}")
    save_image(args.output, upscale(image, model, info["kind"], float(args.scale)))
    print(f"{args.output}: {args.scale:g}x by {args.model}")
    return 0


def cmd_pretrained(args: argparse.Namespace) -> int:
    from .pretrained import index

    entries = index()
    if not entries:
        print("no weights are shipped with this version of srlib")
    for name, e in entries.items():
        psnr = " ".join(f"x{k}:{v:.2f}" for k, v in e.get("set5_psnr", {}).items())
        scales = ",".join(f"{s:g}" for s in e["scales"])
        where = e.get("device", "2-core CPU")
        mins = e.get("cpu_minutes", e.get("gpu_minutes"))
        print(f"{name}\t{e['kind']}\tx{scales}\tSet5 {psnr} dB\t{mins:g} min on {where}\t{e['command']}")
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

    t = sub.add_parser("train", help="train SRCNN, VDSR, SRResNet or SRGAN")
    t.add_argument("model", choices=["srcnn", "vdsr", "srresnet", "srgan"])
    t.add_argument("--out", required=True, help="run folder (checkpoints, history.csv)")
    t.add_argument("--preset", help="named recipe (default: the paper's, named like the model)")
    t.add_argument("--data", help="training set name or folder")
    t.add_argument("--scale", nargs="+", type=float, help="scale(s); VDSR trains several at once")
    t.add_argument("--iterations", type=int)
    t.add_argument("--epochs", type=float)
    t.add_argument("--minutes", type=float, help="wall-clock budget; the schedule is fitted to it")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from its last.pt with its settings; options given here change "
                        "them (a new --minutes budget counts from the resume)")
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=["sgd", "adam"])
    t.add_argument("--clip", choices=["adjustable", "norm", "none"])
    t.add_argument("--clip-value", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--val-data")
    t.add_argument("--val-every", type=int)
    t.add_argument("--generator", help="SRGAN: SRResNet checkpoint to start from")
    t.add_argument("--vgg-weights", help="SRGAN: VGG19 weights file, or 'none' for random features")
    t.add_argument("--content-layer", help="SRGAN: VGG19 layer of the content loss (relu2_2, relu5_4)")
    t.add_argument("--model-set", nargs="+", metavar="KEY=VALUE",
                   help="network settings, e.g. depth=10 residual=false (VDSR), blocks=8 (SRResNet), f2=5 (SRCNN)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction,
                   help="train on the 8 flips/rotations of each patch (default: VDSR, SRResNet and SRGAN do, "
                        "SRCNN as its paper does not)")
    t.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    t.add_argument("--workers", type=int)
    t.add_argument("--no-amp", action="store_true", help="float32 only: no mixed precision (GPU), no bf16 (CPU)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    u = sub.add_parser("upscale", help="super-resolve an image file")
    u.add_argument("input")
    u.add_argument("output")
    u.add_argument("--model", required=True, help="shipped weights name or checkpoint file")
    u.add_argument("--scale", type=float)
    u.set_defaults(func=cmd_upscale)

    pt = sub.add_parser("pretrained", help="list the weights shipped with srlib")
    pt.set_defaults(func=cmd_pretrained)

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
