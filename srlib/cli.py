"""``python -m srlib`` / ``srlib``: train, evaluate and apply SR networks; fetch data sets.

Every error caused by the user's input is one line on stderr and exit status 2.

Appendix: the API (book/api.md); the README shows the commands.
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
    from .models import RGB_KINDS
    from .pretrained import available, load

    if name in available():
        model, info = load(name)
    elif Path(name).suffix in (".pt", ".pth") or Path(name).exists():
        model, info = load_model(name)
    else:
        raise SRError(f"unknown model {name!r}: use bicubic, one of `srlib pretrained` "
                      f"({', '.join(available()) or 'none shipped'}), or a checkpoint file")
    scales = tuple(float(s) for s in info.get("scales") or ())
    if info["kind"] in RGB_KINDS:
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


def _check_output(path: str, option: str) -> None:
    """Refuse an output file that cannot be written before the work whose results it would hold."""
    p = Path(path)
    if p.is_dir():
        raise SRError(f"{option} {path}: is a folder, not a file")
    if not p.parent.is_dir():
        raise SRError(f"{option} {path}: no such folder {p.parent}")
    if not os.access(p.parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise SRError(f"{option} {path}: not writable")


def _keep_json(path: str, data: dict) -> str:
    """Write ``data`` to a new file named like ``path`` in the current folder, else the temporary
    one; return its name (results that were computed are not lost to an unwritable path)."""
    import json
    import tempfile

    for folder in (".", tempfile.gettempdir()):
        try:
            fd, name = tempfile.mkstemp(prefix=f"{Path(path).stem}-", suffix=".json", dir=folder)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            return os.path.abspath(name)
        except OSError:
            continue
    return "no file (neither the current nor the temporary folder is writable)"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table, to_json, write_json

    if args.json:
        _check_output(args.json, "--json")
    method = _method(args.model)
    results = evaluate(method, args.data, args.scale, progress=args.verbose)
    print(format_table(results, method.name))
    if args.json:
        try:
            write_json(args.json, results, method.name)
        except OSError as e:  # it became unwritable during the evaluation
            kept = _keep_json(args.json, to_json(results, method.name))
            raise SRError(f"--json {args.json}: cannot write ({e.strerror or e}); the results are in {kept}") from None
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .data.datasets import ALIASES, dataset_dir

    for name in args.names:
        for part in ALIASES.get(name, name).split("+"):  # "291" is T91 and BSD200
            print(f"{part}: {dataset_dir(part)}")
    return 0


class _Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM outside the training loop (which handles its own and saves)."""


def _interrupt(signum, frame):
    raise _Interrupted(signum)


def cmd_train(args: argparse.Namespace) -> int:
    import signal

    from . import checkpoint
    from .data import or_builtin
    from .evaluate import evaluate, format_table
    from .inference import as_method, load_model
    from .recipes import RECIPES, Recipe
    from .train import train

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise SRError(f"--out {args.out}: is a file; give a run folder")
    name = args.preset or args.model
    if name not in RECIPES:
        raise SRError(f"unknown preset {name!r}; choose from {', '.join(RECIPES)}")
    if RECIPES[name].kind != args.model:
        raise SRError(f"preset {name!r} trains {RECIPES[name].kind}, not {args.model}")
    changes = {k: v for k, v in {
        "data": args.data, "scales": tuple(args.scale) if args.scale else None, "iterations": args.iterations,
        "epochs": args.epochs, "minutes": args.minutes, "lr": args.lr, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "schedule": args.schedule, "seed": args.seed, "val_data": args.val_data,
        "val_every": args.val_every,
        "generator": args.generator, "content_layer": args.content_layer, "workers": args.workers,
        "adversarial_weight": args.adversarial_weight, "ema": args.ema, "r1": args.r1,
        "clip_value": args.clip_value, "warmup": args.warmup, "loss": args.loss,
    }.items() if v is not None}
    base = RECIPES[name]
    last_ckpt = Path(args.out) / "last.pt"
    if args.resume and last_ckpt.is_file():  # the run as it was; the options given here change it
        ckpt = checkpoint.read(last_ckpt)
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
        changes["model_config"] = {**base.model_config, **_model_settings(args.model_set)}
    if args.augment is not None:
        changes["patch"] = {**base.patch, "augment": args.augment}
    if args.patch_size is not None:  # the stride keeps its ratio to the size (SRGAN: crops that do not overlap)
        patch = changes.get("patch", base.patch)
        size = patch.get("size", args.patch_size)
        stride = max(1, round(patch["stride"] * args.patch_size / size)) if "stride" in patch else None
        changes["patch"] = {**patch, "size": args.patch_size, **({"stride": stride} if stride else {})}
    if args.no_amp:
        changes["amp"] = False
    if args.compile:
        changes["compile"] = True
    r = base.replace(**changes)
    # The trainer handles signals while it trains and saves. Before (data loading) a signal ends
    # the command as Ctrl-C does; after, it stops only the closing evaluation: the run is saved.
    handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    last = None
    try:
        last = train(r, args.out, device=args.device, resume=args.resume, progress=not args.quiet)
        if int(os.environ.get("RANK", 0)) == 0:
            model, info = load_model(last)
            method = as_method(model, info["kind"], f"{args.model} ({Path(args.out).name})", None)
            results = evaluate(method, [or_builtin(r.val_data)], list(r.scales))
            print(format_table(results, method.name))
            print(f"checkpoint: {last}")
    except _Interrupted as e:
        if last is None:
            raise
        print(f"evaluation stopped by signal {e.args[0]}; checkpoint: {last}", flush=True)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
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


def _bytes(text: str) -> int:
    """``2G``, ``500M``, ``1.5GiB``, ``800000000``: a memory size in bytes (binary units)."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise SRError(f"--max-memory {text!r}: expected a size such as 2G, 500M or 1.5GiB")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " "))


def _upscale_one(src: Path, dst: Path, model, info: dict, args: argparse.Namespace) -> str:
    """Upscale the file ``src`` into ``dst``; return the line that reports it."""
    import time

    from .data.image import check_photo_path, read_photo, save_photo
    from .inference import upscale_photo

    if dst.exists() and src.resolve() == dst.resolve():
        raise SRError(f"{dst}: is the input file; refusing to overwrite it (give another output path)")
    if dst.exists() and not args.overwrite:
        raise SRError(f"{dst}: exists; give --overwrite to replace it")
    photo = read_photo(src)
    h, w = photo.pixels.shape[:2]
    need = {"srcnn": 13, "vdsr": 8}.get(info["kind"], 4)
    if min(h, w) < need:
        raise SRError(f"{src}: a {w}x{h} image is too small for {args.model}")
    check_photo_path(dst, photo)  # before the work, so that no result is lost at the end
    t0 = time.perf_counter()
    out = upscale_photo(photo, model, info["kind"], float(args.scale), tile=args.tile, max_memory=args.max_memory,
                        half=args.half, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    save_photo(dst, out)
    oh, ow = out.pixels.shape[:2]
    return f"{dst}: {w}x{h} -> {ow}x{oh}, x{args.scale:g} by {args.model} in {seconds:.1f} s"


def cmd_upscale(args: argparse.Namespace) -> int:
    from .data.datasets import IMAGE_SUFFIXES
    from .device import pick_device

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise SRError(f"{src}: no such file or folder")
    if args.tile is not None and args.tile < 8:
        raise SRError(f"--tile {args.tile}: give at least 8 pixels")
    args.max_memory = _bytes(args.max_memory) if args.max_memory else None
    device = pick_device(args.device)
    if args.half and device.type not in ("cuda", "mps"):
        raise SRError(f"--half needs a GPU (cuda or mps), not {device.type}; on a CPU srlib infers in float32")
    model, info, _, scales = _load_named(args.model)
    model = model.to(device)
    if args.scale is None:
        if len(scales) != 1:
            raise SRError(f"{args.model} supports scales {', '.join(f'{s:g}' for s in scales)}: give --scale")
        args.scale = scales[0]
    if scales and float(args.scale) not in scales:
        raise SRError(f"scale {args.scale:g} is not supported by {args.model} "
                      f"(supported: {', '.join(f'{s:g}' for s in scales)})")
    if not (1 < float(args.scale) <= 8):
        raise SRError(f"--scale {args.scale:g}: use a number greater than 1 and at most 8")
    if src.is_file():
        print(_upscale_one(src, dst / src.name if dst.is_dir() else dst, model, info, args))
        return 0
    # A folder in, a folder out: what exists is skipped (unless --overwrite), a bad file is
    # reported and the rest goes on, and a summary line ends the run.
    if dst.exists() and not dst.is_dir():
        raise SRError(f"{dst}: not a folder (the input {src} is one)")
    if dst.resolve() == src.resolve():
        raise SRError(f"{dst}: is the input folder; refusing to overwrite its images (give another folder)")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SRError(f"{src}: no images (.png, .jpg, .tif, ...) in this folder")
    dst.mkdir(parents=True, exist_ok=True)
    done, skipped, failed = 0, 0, []
    for f in files:
        if (dst / f.name).exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            print(_upscale_one(f, dst / f.name, model, info, args), flush=True)
            done += 1
        except SRError as e:
            print(f"srlib upscale: error: {e}", file=sys.stderr, flush=True)
            failed.append(f.name)
    print(f"{dst}: {done} upscaled, {skipped} skipped (exist; --overwrite replaces them), {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 2 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export, export_name

    manifest = export(args.models, args.out)
    for name in dict.fromkeys(map(export_name, args.models)):
        e = manifest["models"][name]
        scales = ",".join(f"{s:g}" for s in e["scales"])
        print(f"{Path(args.out) / e['file']}: {e['kind']}, {e['input']} input, x{scales}, "
              f"{e['bytes'] / 2**20:.1f} MiB, ONNX Runtime within {e['max_difference']:.1e} of PyTorch")
    print(f"{Path(args.out) / 'manifest.json'}: {len(manifest['models'])} models")
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

    from .models import KINDS

    t = sub.add_parser("train", help="train SRCNN, VDSR, SRResNet or SRGAN")
    t.add_argument("model", choices=list(KINDS))
    t.add_argument("--out", required=True,
                   help="run folder (checkpoints, history.csv); one that holds a run is continued with --resume, "
                        "never overwritten")
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
    t.add_argument("--schedule", choices=["step", "cosine", "constant"],
                   help="learning-rate schedule: divided by 10 in steps, a cosine down to zero at the last "
                        "iteration, or constant")
    t.add_argument("--loss", choices=["mse", "euclidean", "log-mse", "log-l1"],
                   help="training loss: the MSE, Caffe's Euclidean (the papers'), or for VDSR's mixed scales the "
                        "mean over scales of the log MSE or log L1 error")
    t.add_argument("--warmup", type=int, metavar="N",
                   help="raise the learning rate linearly over the first N iterations (0: none)")
    t.add_argument("--clip", choices=["adjustable", "value", "norm", "none"],
                   help="gradient clipping: VDSR's adjustable, a fixed value range, the global norm, or none")
    t.add_argument("--clip-value", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--val-data")
    t.add_argument("--val-every", type=int)
    t.add_argument("--generator", help="SRGAN: SRResNet checkpoint to start from")
    t.add_argument("--vgg-weights", help="SRGAN: VGG19 weights file, or 'none' for random features")
    t.add_argument("--content-layer", help="SRGAN: VGG19 layer of the content loss (relu2_2, relu5_4), or mse")
    t.add_argument("--adversarial-weight", type=float,
                   help="SRGAN: weight of the adversarial loss (paper: 1e-3; 0: the discriminator only watches)")
    t.add_argument("--ema", type=float, metavar="DECAY",
                   help="SRGAN: evaluate and save a moving average of the generator's weights, e.g. 0.995 "
                        "(not the paper's; default 0: the generator itself)")
    t.add_argument("--r1", type=float, metavar="GAMMA",
                   help="SRGAN: penalise the discriminator by GAMMA/2 x the squared norm of its gradient at the real "
                        "crops (R1, Mescheder et al. 2018; not the paper's; default 0: none)")
    t.add_argument("--patch-size", type=int, help="side of the training patches (HR side for SRResNet and SRGAN)")
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

    u = sub.add_parser("upscale", help="super-resolve an image file, or every image of a folder")
    u.add_argument("input", help="image file, or folder of images")
    u.add_argument("output", help="output file (same format rules as the input), or folder")
    u.add_argument("--model", required=True, help="shipped weights name or checkpoint file")
    u.add_argument("--scale", type=float)
    u.add_argument("--tile", type=int, help="tile side in pixels (default: from --max-memory; 192 at most on a CPU)")
    u.add_argument("--max-memory", help="memory for the network's tiles, e.g. 2G or 500M "
                                        "(default: a quarter of the free RAM, or of the GPU's free memory)")
    u.add_argument("--half", action="store_true", help="GPU: infer in bf16 (fp16 where the GPU has no bf16)")
    u.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    u.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    u.add_argument("--quiet", action="store_true", help="no progress bar")
    u.set_defaults(func=cmd_upscale)

    x = sub.add_parser("export", help="write networks as ONNX files (dynamic size) with a manifest.json")
    x.add_argument("models", nargs="+", help="shipped weights names or checkpoint files")
    x.add_argument("--out", default="onnx", help="folder of the .onnx files and manifest.json (default: onnx)")
    x.set_defaults(func=cmd_export)

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
