"""Recipes: every setting of a training run, and the papers' and srlib's named ones.

:class:`Recipe` holds every hyper-parameter of a run; :data:`RECIPES` has the papers' settings
(``srcnn``, ``vdsr``, ``srresnet``, ``srgan``) and faster named alternatives (``srcnn-fast``,
``vdsr-fast``, and ``srcnn-cpu``, ``vdsr-cpu`` for CPUs without native bf16); :func:`recipe` gives
one with some settings changed. The training engine
(:mod:`srlib.train`) runs them. Chapters: SRCNN and VDSR (the papers' recipes), the performance
appendix (the fast presets).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace

from .errors import SRError
from .models import KINDS, RGB_KINDS
from .models.vgg import layer_names

__all__ = ["Recipe", "RECIPES", "RESUMABLE", "recipe"]


@dataclass
class Recipe:
    """Every setting of a training run. Iterations count optimiser steps (global batches)."""

    kind: str  # a key of srlib.models.KINDS
    model_config: dict = field(default_factory=dict)  # the network's constructor arguments
    data: str = "T91"
    scales: tuple = (3,)
    patch: dict = field(default_factory=dict)  # arguments of the patch set
    loss: str = "mse"  # "mse" (mean), "euclidean" (Caffe's: sum / 2N, as SRCNN and VDSR), "log-mse", "log-l1" (VDSR)
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 1e-4
    lr_last: float | None = None  # SRCNN: a separate rate for the last layer
    momentum: float = 0.9
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 128
    iterations: int = 10_000
    epochs: float | None = None  # if set, replaces iterations (epochs x batches per epoch)
    schedule: str = "step"  # "step" (x lr_gamma every lr_step iterations), "cosine", "constant"
    lr_step: int = 0
    lr_step_epochs: float | None = None  # if set, replaces lr_step
    lr_gamma: float = 0.1
    warmup: int = 0  # iterations over which the rate rises linearly from base/warmup to base (0: none)
    clip: str | None = None  # "adjustable" (VDSR), "value" (fixed [-theta, theta]), "norm" (global norm)
    clip_value: float = 0.01  # theta, the bound of each weight's step lr * g ("vdsr": 1e-4, measured, see book/gpu.md)
    # SRGAN
    content_layer: str = "relu5_4"  # a VGG19 layer (relu2_2: VGG22, relu5_4: VGG54), or "mse" (SRGAN-MSE)
    vgg_weights: str | None = "imagenet"
    adversarial_weight: float = 1e-3
    ema: float = 0.0  # SRGAN: evaluate and keep a moving average of the generator's weights, this decay per step
    r1: float = 0.0  # SRGAN: gamma of an R1 penalty on the discriminator's gradient at real crops (0: none)
    generator: str | None = None  # SRResNet checkpoint to start the generator from
    # Validation and book-keeping
    val_data: str = "Set5"
    val_every: int = 1000
    checkpoint_every: int = 500
    seed: int = 0
    workers: int | None = None  # None: 0 on the CPU, 4 on a GPU
    amp: bool = True  # CUDA: bf16 where supported, else fp16 with a gradient scaler
    cpu_amp: bool = False  # CPU: bf16 autocast + channels_last where bf16 is native (4x here, benchmarks/)
    compile: bool = False
    minutes: float | None = None  # wall-clock budget: the schedule is fitted to it

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        """The recipe that a checkpoint recorded (``state()["recipe"]``); settings it lacks keep their defaults."""
        names = {f.name for f in fields(cls)}
        if "model" in d and "model_config" not in d:  # recorded before the setting's rename (older weights)
            d = {("model_config" if k == "model" else k): v for k, v in d.items()}
        d = {k: tuple(v) if k in ("scales", "betas") else v for k, v in d.items() if k in names}
        return cls(**d)

    def replace(self, **changes) -> Recipe:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise SRError(f"unknown recipe settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def continues(self, saved: Recipe) -> Recipe:
        """This recipe as the continuation of the run that ``saved`` describes: what resuming means,
        for ``Trainer(resume=True)`` and ``srlib train --resume`` alike. Only :data:`RESUMABLE`
        settings may differ; a change to anything else would make it another run, and is refused."""
        changed = [f.name for f in fields(self) if f.name not in RESUMABLE
                   and getattr(self, f.name) != getattr(saved, f.name)]
        if changed:
            what = ", ".join(f"{k} {getattr(saved, k)!r} -> {getattr(self, k)!r}" for k in changed)
            raise SRError(f"cannot resume with other settings ({what}): a resumed run may change only "
                          f"{', '.join(RESUMABLE)}; start a new run in another folder")
        return self

    def check(self) -> Recipe:
        """Refuse impossible values at once, before data loading or training start, naming the
        setting and its CLI option (a zero batch or learning rate would fail late or train nothing)."""
        options = {"scales": "--scale", "batch_size": "--batch-size", "iterations": "--iterations",
                   "epochs": "--epochs", "minutes": "--minutes", "lr": "--lr", "val_every": "--val-every",
                   "clip_value": "--clip-value", "workers": "--workers", "optimizer": "--optimizer",
                   "clip": "--clip", "patch": "--patch-size", "warmup": "--warmup", "loss": "--loss",
                   "adversarial_weight": "--adversarial-weight", "content_layer": "--content-layer", "ema": "--ema",
                   "r1": "--r1"}

        def whole(v, least):
            return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= least

        def positive(v):
            return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                opt = f" ({options[name]})" if name in options else ""
                raise SRError(f"{name}{opt} must be {what}, got {getattr(self, name)!r}")

        need(self.kind in KINDS, "kind", "one of " + ", ".join(map(repr, KINDS)))
        need(len(self.scales) > 0 and all(positive(x) and 1 < x <= 8 for x in self.scales), "scales",
             "numbers greater than 1 and at most 8")
        for name in ("batch_size", "val_every", "checkpoint_every"):
            need(whole(getattr(self, name), 1), name, "a whole number of at least 1")
        if self.epochs is None:
            need(whole(self.iterations, 1), "iterations", "a whole number of at least 1")
        for name in ("epochs", "minutes", "lr_last", "lr_step_epochs"):
            need(getattr(self, name) is None or positive(getattr(self, name)), name, "a positive number")
        need(positive(self.lr), "lr", "a positive number")
        need(positive(self.clip_value) or (self.clip is None and self.clip_value == 0), "clip_value",
             "a positive number" + (" (or 0 with no clipping)" if self.clip is None else ""))
        need(whole(self.warmup, 0), "warmup", "a whole number of at least 0")
        need(self.workers is None or whole(self.workers, 0), "workers", "a whole number of at least 0")
        need(self.optimizer in ("sgd", "adam"), "optimizer", "'sgd' or 'adam'")
        need(self.schedule in ("step", "cosine", "constant"), "schedule", "'step', 'cosine' or 'constant'")
        need(self.clip in (None, "adjustable", "value", "norm"), "clip", "'adjustable', 'value', 'norm' or None")
        need(self.loss in ("mse", "euclidean") or (self.loss in ("log-mse", "log-l1") and self.kind == "vdsr"),
             "loss", "'mse' or 'euclidean' ('log-mse' or 'log-l1' for VDSR's mixed scales)")
        need(self.content_layer == "mse" or self.content_layer in layer_names(), "content_layer",
             "'mse' or a VGG19 layer such as 'relu2_2' or 'relu5_4'")
        need(isinstance(self.adversarial_weight, numbers.Real) and math.isfinite(self.adversarial_weight)
             and self.adversarial_weight >= 0, "adversarial_weight", "a number of at least 0")
        need(isinstance(self.ema, numbers.Real) and 0 <= self.ema < 1 and (self.ema == 0 or self.kind == "srgan"),
             "ema", "a decay from 0 (none) up to, not including, 1, for SRGAN only")
        need(isinstance(self.r1, numbers.Real) and math.isfinite(self.r1) and self.r1 >= 0
             and (self.r1 == 0 or self.kind == "srgan"), "r1", "a number of at least 0, for SRGAN only")
        size = self.patch.get("size")
        need(size is None or whole(size, 2), "patch", "a size of at least 2 pixels")
        if self.kind in RGB_KINDS and size is not None:  # HR crops of whole LR pixels; SRGAN's discriminator
            gan = self.kind == "srgan"  # halves the crop four times
            need(size % int(self.scales[0]) == 0 and (not gan or size % 16 == 0), "patch",
                 "a size that is a multiple of the scale" + (" and of 16" if gan else ""))
        return self


#: What a resumed run may change: its length and budget, its learning rates, its book-keeping, and
#: how this machine runs it. The network, data, patches, loss, optimiser, schedule, clipping and seed stay.
RESUMABLE = ("iterations", "epochs", "minutes", "lr", "lr_last", "lr_step", "lr_step_epochs", "val_data",
             "val_every", "checkpoint_every", "workers", "amp", "cpu_amp", "compile")

RECIPES: dict[str, Recipe] = {
    # SRCNN, section 4: SGD with momentum 0.9, 1e-4 for the first two layers and 1e-5 for the
    # last, Caffe's Euclidean loss, 33x33 sub-images of T91 at stride 14, 9-1-5, Gaussian init.
    "srcnn": Recipe("srcnn", model_config=dict(f1=9, f2=1, f3=5), loss="euclidean", lr=1e-4, lr_last=1e-5,
                    batch_size=128, iterations=1_000_000, schedule="constant",
                    patch=dict(size=33, stride=14)),
    # The same network with Adam: a faster, named alternative (not the paper's).
    "srcnn-adam": Recipe("srcnn", model_config=dict(f1=9, f2=1, f3=5), optimizer="adam", lr=1e-3, lr_last=1e-4,
                         batch_size=128, iterations=100_000, schedule="cosine",
                         patch=dict(size=33, stride=14)),
    # Learning on a CPU in minutes: the 9-5-5 network with He initialisation, 'same' padding
    # (every pixel of a sub-image supervised), Adam and a cosine schedule fitted to --minutes;
    # bf16 where the CPU has it (the same PSNR per step, 3.5x the steps per second here).
    "srcnn-fast": Recipe("srcnn", model_config=dict(f1=9, f2=5, f3=5, init="he", padding="same"), optimizer="adam",
                         lr=3e-4, batch_size=16, iterations=50_000, schedule="cosine", val_every=2000,
                         patch=dict(size=33, stride=14), cpu_amp=True),
    # The same in float32, the precision of most readers' CPUs (no native bf16): the paper's 9-3-5
    # network (section 4.3.1) instead of 9-5-5: more steps per second for nearly the same PSNR per
    # step, so more PSNR in a fixed time (benchmarks/race.py, the performance appendix).
    "srcnn-cpu": Recipe("srcnn", model_config=dict(f1=9, f2=3, f3=5, init="he", padding="same"), optimizer="adam",
                        lr=3e-4, batch_size=16, iterations=50_000, schedule="cosine", val_every=2000,
                        patch=dict(size=33, stride=14), cpu_amp=True),
    # VDSR, section 4.1: SGD, momentum 0.9, weight decay 1e-4, batch 64, lr 0.1 divided by 10
    # every 20 epochs for 80 epochs, adjustable gradient clipping, x2/x3/x4 mixed, 41x41 patches.
    "vdsr": Recipe("vdsr", model_config=dict(depth=20), data="291", scales=(2, 3, 4), loss="euclidean",
                   lr=0.1, weight_decay=1e-4, batch_size=64, epochs=80, schedule="step", lr_step_epochs=20,
                   clip="adjustable", clip_value=1e-4, patch=dict(size=41, stride=41)),
    # Learning on a CPU in minutes: Adam on the mean squared error, small batches (more
    # updates per second), a cosine schedule fitted to --minutes; residual learning as the paper;
    # bf16 where the CPU has it.
    "vdsr-fast": Recipe("vdsr", model_config=dict(depth=20), data="291", scales=(2, 3, 4), optimizer="adam", lr=5e-4,
                        batch_size=16, iterations=20_000, schedule="cosine", val_every=1000,
                        patch=dict(size=41, stride=41), cpu_amp=True),
    # The same in float32, the precision of most readers' CPUs: batches of 8 (twice the steps for
    # the same cost per patch), the log of each scale's error as the loss, so that x2's small
    # errors count as much as x4's large ones from the first steps, with the L1 error (log-l1,
    # ahead of log-mse at every scale in the race's budget), twice the rate (2e-3 falls to
    # bicubic's output), and 32x32 patches instead of 41x41 (more steps for the same pixels)
    # (benchmarks/race.py, benchmarks/results/cpu-recipes.json).
    "vdsr-cpu": Recipe("vdsr", model_config=dict(depth=20), data="291", scales=(2, 3, 4), optimizer="adam", lr=1e-3,
                       loss="log-l1", batch_size=8, iterations=40_000, schedule="cosine", val_every=1000,
                       patch=dict(size=32, stride=32), cpu_amp=True),
    # SRResNet, section 3.2: Adam (beta1 0.9), lr 1e-4, MSE on 96x96 HR crops, batch 16.
    "srresnet": Recipe("srresnet", model_config=dict(scale=4, blocks=16), data="DIV2K", scales=(4,), optimizer="adam",
                       lr=1e-4, batch_size=16, iterations=1_000_000, schedule="constant",
                       patch=dict(size=96, stride=96)),
    # SRGAN: the generator from SRResNet, 1e5 iterations at 1e-4 then 1e5 at 1e-5.
    "srgan": Recipe("srgan", model_config=dict(scale=4, blocks=16), data="DIV2K", scales=(4,), optimizer="adam",
                    lr=1e-4, batch_size=16, iterations=200_000, schedule="step", lr_step=100_000,
                    patch=dict(size=96, stride=96)),
}


def recipe(name: str, **overrides) -> Recipe:
    """A named recipe with some settings changed."""
    if name not in RECIPES:
        raise SRError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name].replace(**overrides) if overrides else RECIPES[name]
