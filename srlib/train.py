"""One training engine for SRCNN, VDSR, SRResNet and SRGAN.

A :class:`~srlib.recipes.Recipe` (``srlib/recipes.py``) holds every hyper-parameter;
:func:`train` runs one (``srlib/device.py`` picks the device and precision, ``srlib/checkpoint.py``
writes and reads the checkpoints). The loop is plain PyTorch:

* the device is picked automatically (cuda, mps, cpu); on a GPU, mixed precision (bf16
  where supported, else fp16 with a gradient scaler, whose skipped updates the history
  counts), channels_last, pinned memory and loader workers; ``torch.compile`` on request; on
  a CPU that computes bf16 natively (AMX or AVX512-BF16), bf16 autocast and channels_last for
  recipes that ask (``cpu_amp``);
* batches are cut from a permutation drawn from ``seed + epoch``, so a run is a function
  of its recipe, and resuming from a checkpoint continues it bit for bit;
* VDSR's adjustable gradient clipping (section 3.3): each gradient element is clipped to
  [-theta/lr, theta/lr], lr the current learning rate (see :func:`clip_gradients`);
* checkpoints hold state_dicts and plain values only (``torch.load(weights_only=True)``),
  written atomically; Ctrl-C or SIGTERM saves one and stops (a second signal cannot cut that
  save); a NaN loss stops with a clear message and keeps the last good checkpoint;
* a run locks its folder (``out/.lock``, the holder in ``out/.lock.pid``): a second run into
  it stops at once, naming the first; impossible settings are refused before any work
  (:meth:`Recipe.check`);
* under ``torchrun --nproc_per_node=N`` it trains with DistributedDataParallel, each rank
  taking its share of every global batch; rank 0 validates, logs and saves.

Chapters: SRCNN and VDSR (the papers' recipes), the GPU appendix (book/gpu.md), the performance
appendix (the fast presets).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from . import checkpoint
from .data.datasets import load_images, or_builtin
from .data.degrade import bicubic_degrade
from .data.patches import SRCNNPatches, SRGANPatches, VDSRPatches
from .device import pick_device, training_precision
from .errors import SRError
from .evaluate import evaluate
from .inference import as_method
from .losses import (
    ContentLoss,
    adversarial_loss,
    discriminator_loss,
    euclidean,
    generator_loss,
    log_l1_per_scale,
    log_mse_per_scale,
    mse,
    srgan_mse,
)
from .models import RGB_KINDS, SRCNN, Discriminator, make_model
from .perceptual import discriminator_verdict
from .recipes import Recipe
from .spectrum import periodic_energy_ratio

__all__ = ["clip_gradients", "scaled_update", "Trainer", "GANTrainer", "train", "read_history", "plot_history",
           "TrainingDiverged"]


class TrainingDiverged(SRError):
    """The loss became NaN or infinite."""


def clip_gradients(params, mode: str | None, theta: float, lr: float) -> float:
    """Clip gradients in place; return the global gradient norm before clipping.

    ``"adjustable"``: VDSR's, each element to [-theta/lr, theta/lr], so that the step
    lr * g stays within theta whatever the learning rate. ``"value"``: each element to the
    fixed range [-theta, theta] (the common strategy the paper improves on). ``"norm"``:
    rescale the whole gradient to norm at most theta (what most reimplementations use instead).
    """
    params = [p for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([p.grad.detach().float().norm() for p in params])).item()
    if mode == "adjustable":
        bound = theta / lr
        for p in params:
            p.grad.clamp_(-bound, bound)
    elif mode == "value":
        for p in params:
            p.grad.clamp_(-theta, theta)
    elif mode == "norm":
        nn.utils.clip_grad_norm_(params, theta)
    elif mode is not None:
        raise SRError(f"unknown clipping {mode!r}: use 'adjustable', 'value', 'norm' or None")
    return norm


#: A step's counts of updates the fp16 gradient scaler skipped: the model's, and SRGAN's discriminator's.
SKIPPED = ("skipped", "d_skipped")


def scaled_update(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> int:
    """``scaler.step`` and ``scaler.update``; 1 if the update was skipped, else 0. In fp16 the
    gradient scaler skips an update whose gradients overflowed (inf or NaN) and halves its scale:
    a run's first updates, until the scale fits its gradients, and now and then after it doubles."""
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return int(scaler.get_scale() < scale)


# Recipe.loss: the MSE, Caffe's Euclidean loss (the papers'), or the mean log MSE (or L1 error) over
# the batch's scales (VDSR's mixed scales; the batch's third item is each sample's scale)
LOSSES = {"mse": lambda sr, hr, batch: mse(sr, hr), "euclidean": lambda sr, hr, batch: euclidean(sr, hr),
          "log-mse": lambda sr, hr, batch: log_mse_per_scale(sr, hr, batch[2].to(sr.device)),
          "log-l1": lambda sr, hr, batch: log_l1_per_scale(sr, hr, batch[2].to(sr.device))}


class _Stop(Exception):
    pass


class Trainer:
    """Trains ``recipe`` into folder ``out`` (``last.pt``, ``best.pt``, ``history.csv``).

    From construction to the end of :meth:`fit` the trainer holds a lock on ``out`` (rank 0),
    so that a second run into the same folder stops at once instead of overwriting this one's
    checkpoints; :meth:`close` releases it early (a trainer built but never fitted).
    """

    def __new__(cls, recipe: Recipe, *args, **kwargs):
        """``Trainer(recipe)`` of an SRGAN recipe is a :class:`GANTrainer`."""
        if cls is Trainer and recipe.kind == "srgan":
            cls = GANTrainer
        return super().__new__(cls)

    def __init__(self, recipe: Recipe, out: str | Path, device: str | None = None, resume: bool = False,
                 progress: bool = True):
        self.recipe, self.out, self.progress = recipe.check(), Path(out), progress
        self.distributed = int(os.environ.get("WORLD_SIZE", 1)) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and device != "cpu" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self._lock = None
        try:
            self._acquire()
            self._setup(recipe, device, resume)
        except BaseException:  # a failed set-up leaves the folder free for the corrected run
            self.close()
            raise

    def _setup(self, recipe: Recipe, device: str | None, resume: bool) -> None:
        self.device = pick_device(device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        if recipe.batch_size % self.world:
            raise SRError(f"batch size {recipe.batch_size} is not divisible by the {self.world} processes")
        self.kind = recipe.kind
        if not resume and (self.out / "last.pt").is_file():  # a finished or stopped run is never overwritten
            raise SRError(f"{self.out}: holds a run already (last.pt); continue it with resume=True "
                          "(srlib train --resume), or train into another folder")
        saved = self._read_resume(self.out / "last.pt") if resume else None  # a wrong folder fails before the data
        torch.manual_seed(recipe.seed)
        self.data = self._dataset()
        self.steps_per_epoch = len(self.data) // recipe.batch_size
        if self.steps_per_epoch == 0:
            raise SRError(f"{recipe.data}: {len(self.data)} patches, fewer than one batch of {recipe.batch_size}")
        self.model_config = dict(recipe.model_config)
        if self.kind == "vdsr":
            self.model_config.setdefault("channels", 1)
        self.model = make_model(self.kind, self.model_config).to(self.device)
        self._build_more()
        self.optimizer = self._optimizer(self.model, recipe.lr, recipe.lr_last)
        cuda = self.device.type == "cuda"
        precision = training_precision(self.device, recipe.amp, recipe.cpu_amp)
        self.amp_dtype, self.use_amp = precision.dtype, precision.dtype is not None
        self.scalers = [torch.amp.GradScaler(self.device.type, enabled=precision.scaled) for _ in range(2)]
        self.channels_last = precision.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.total = int(recipe.epochs * self.steps_per_epoch) if recipe.epochs else recipe.iterations
        self.lr_step = int(recipe.lr_step_epochs * self.steps_per_epoch) if recipe.lr_step_epochs else recipe.lr_step
        self.iteration, self.best, self.seconds = 0, -math.inf, 0.0
        self.skipped: dict[str, int] = {}  # fp16: the updates the gradient scaler skipped, of each network (SKIPPED)
        self._t_fit: float | None = None  # when fit() started: training time is kept in checkpoints
        if saved is not None:
            self._load(saved)
        self.net = self.model  # what forward and backward run through: the model, or its DDP/compiled wrapper
        if self.distributed:
            ids = [self.device.index] if cuda else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            self._wrap_more(ids)
        if recipe.compile:
            self.net = torch.compile(self.net)
        self._stop_signal: int | None = None

    # ----- the run folder's lock --------------------------------------------------------
    def _acquire(self) -> None:
        """Lock ``out/.lock`` (rank 0) and write who holds it to ``out/.lock.pid`` (the lock file
        itself may be truncated by filelock). The OS drops the lock when the process dies."""
        if self.rank != 0 or self._lock is not None:
            return
        from filelock import FileLock, Timeout

        pid_file = self.out / ".lock.pid"
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            lock = FileLock(self.out / ".lock", thread_local=False)
            lock.acquire(timeout=0)
        except Timeout:
            try:
                holder = pid_file.read_text().strip()
            except OSError:
                holder = "a process that is starting"
            raise SRError(f"{self.out}: another run is training into this folder ({holder}); wait for it to "
                          f"end or choose another --out") from None
        except OSError as e:
            raise SRError(f"{self.out}: cannot use as the run folder ({e.strerror or e})") from None
        self._lock = lock
        pid_file.write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")

    def close(self) -> None:
        """Release the run folder (fit does at its end)."""
        if self._lock is not None:
            (self.out / ".lock.pid").unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    # ----- set-up ---------------------------------------------------------------------
    def _dataset(self):
        r, p = self.recipe, dict(self.recipe.patch)
        if self.kind == "srcnn":
            if len(r.scales) != 1:
                raise SRError("SRCNN trains one network per scale: give one scale")
            # The label is the part of the sub-image the network's valid convolutions reach;
            # the sub-images are in the colour space the network sees (section 4.4).
            with torch.random.fork_rng(devices=[]):  # the network's initial weights stay the recipe seed's
                net = make_model("srcnn", r.model_config)
            size = p.pop("size", 33)
            p["label_size"] = size - 2 * net.shrink if net.shrink else None
            return SRCNNPatches(r.data, int(r.scales[0]), size=size, colour=net.colour, **p)
        if self.kind == "vdsr":
            return VDSRPatches(r.data, tuple(r.scales), **p)
        if len(r.scales) != 1:
            raise SRError(f"{self.kind} trains one network per scale: give one scale")
        return SRGANPatches(r.data, int(r.scales[0]), **p)

    def _build_more(self) -> None:
        """What a kind of training adds to the network and its optimiser (the GAN: a discriminator)."""

    def _wrap_more(self, device_ids) -> None:
        """Wrap what :meth:`_build_more` added for DistributedDataParallel."""

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser of the run (the schedule sets their learning rates together)."""
        return [self.optimizer]

    def _optimizer(self, model: nn.Module, lr: float, lr_last: float | None) -> torch.optim.Optimizer:
        r = self.recipe
        params = list(model.parameters())
        if lr_last is not None:  # SRCNN section 4: 1e-5 for the reconstruction layer, 1e-4 for the others
            if not isinstance(model, SRCNN):
                raise SRError(f"lr_last (a rate for SRCNN's last layer) does not apply to {self.kind}")
            last = {id(p) for p in model.convs()[-1].parameters()}
            groups = [{"params": [p for p in params if id(p) not in last], "lr": lr, "base_lr": lr},
                      {"params": [p for p in params if id(p) in last], "lr": lr_last, "base_lr": lr_last}]
        else:
            groups = [{"params": params, "lr": lr, "base_lr": lr}]
        if r.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=lr, momentum=r.momentum, weight_decay=r.weight_decay)
        if r.optimizer == "adam":
            return torch.optim.Adam(groups, lr=lr, betas=tuple(r.betas), weight_decay=r.weight_decay)
        raise SRError(f"unknown optimizer {r.optimizer!r}: use 'sgd' or 'adam'")

    # ----- schedule ---------------------------------------------------------------------
    def lr_factor(self, it: int) -> float:
        """Multiplier of the base learning rates at iteration ``it``: the warm-up's ramp times the schedule."""
        r = self.recipe
        ramp = min(1.0, (it + 1) / r.warmup) if r.warmup else 1.0  # linear warm-up (Goyal et al., 2017)
        if r.schedule == "constant":
            return ramp
        if r.schedule == "step":
            return ramp * (r.lr_gamma ** (it // self.lr_step) if self.lr_step else 1.0)
        if r.schedule == "cosine":
            return ramp * 0.5 * (1 + math.cos(math.pi * min(it, self.total) / max(self.total, 1)))
        raise SRError(f"unknown schedule {r.schedule!r}: use 'step', 'cosine' or 'constant'")

    def _set_lr(self, it: int) -> float:
        f = self.lr_factor(it)
        for opt in self.optimizers():
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * f
        return self.optimizer.param_groups[0]["lr"]

    # ----- data -------------------------------------------------------------------------
    def _batches(self, epoch: int, start: int):
        """Index lists of this rank for the steps ``start..`` of ``epoch``."""
        g = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.data), generator=g)
        b = self.recipe.batch_size
        for step in range(start, self.steps_per_epoch):
            yield perm[step * b:(step + 1) * b][self.rank::self.world].tolist()

    def _loader(self, epoch: int, start: int) -> DataLoader:
        cuda = self.device.type == "cuda"
        workers = self.recipe.workers if self.recipe.workers is not None else (4 if cuda else 0)
        return DataLoader(self.data, batch_sampler=list(self._batches(epoch, start)), num_workers=workers,
                          pin_memory=cuda, persistent_workers=False)

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if self.channels_last and t.ndim == 4 else t

    # ----- one step ---------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def step(self, batch, learning_rate: float) -> dict:
        """One optimisation step on one batch at ``learning_rate`` (the current one, for VDSR's
        adjustable clipping); returns the losses and gradient norm."""
        r = self.recipe
        x, y = self._to(batch[0]), self._to(batch[1])
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.net(x)
        loss = LOSSES[r.loss](out.float(), y.float(), batch)
        scaler = self.scalers[0]
        scaler.scale(loss).backward()
        scaler.unscale_(self.optimizer)
        gnorm = clip_gradients(self.model.parameters(), r.clip, r.clip_value, learning_rate)
        skipped = scaled_update(scaler, self.optimizer)
        return {"loss": loss.item(), "grad_norm": gnorm, "skipped": skipped}

    # ----- checkpoints ------------------------------------------------------------------
    def state(self) -> dict:
        s = {
            "kind": self.kind, "model_config": self.model_config, "model": self.kept().state_dict(),
            "scales": [float(x) for x in self.recipe.scales], "recipe": checkpoint.plain(asdict(self.recipe)),
            "optimizer": self.optimizer.state_dict(), "scalers": [sc.state_dict() for sc in self.scalers],
            "iteration": self.iteration, "total": self.total, "lr_step": self.lr_step, "best": self.best,
            "seconds": self.seconds + (time.perf_counter() - self._t_fit if self._t_fit else 0.0),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }
        if self.scalers[0].is_enabled():
            s["skipped"] = dict(self.skipped)
        return s

    def _load_more(self, s: dict) -> None:
        """Restore from checkpoint ``s`` what :meth:`_build_more` added."""

    def save(self, name: str = "last.pt") -> Path:
        """Write a checkpoint atomically (rank 0 only)."""
        path = self.out / name
        if self.rank == 0:
            checkpoint.write(self.state(), path)
        return path

    def _read_resume(self, path: Path) -> dict:
        try:
            s = checkpoint.read(path)
        except SRError as e:
            raise SRError(f"cannot resume: {e}") from None
        if s.get("kind") != self.kind:
            raise SRError(f"cannot resume: {path} is a {s.get('kind')} checkpoint, not {self.kind}")
        self.recipe.continues(Recipe.from_dict(s["recipe"]))
        return s

    def _load(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        opts = self.optimizers()
        asked = [[g["base_lr"] for g in o.param_groups] for o in opts]
        self.optimizer.load_state_dict(s["optimizer"])
        for sc, st in zip(self.scalers, s["scalers"], strict=True):
            sc.load_state_dict(st)
        self._load_more(s)
        for o, lrs in zip(opts, asked, strict=True):  # the recipe's learning rates, not the saved ones:
            for g, lr in zip(o.param_groups, lrs, strict=True):  # --lr on a resume applies (same run: equal)
                g["base_lr"] = lr
        self.iteration, self.best = s["iteration"], s["best"]
        self.skipped = dict(s.get("skipped", {}))
        plan = ("iterations", "epochs", "minutes")
        if all(s["recipe"].get(k) == getattr(self.recipe, k) for k in plan):  # the same plan: its (fitted) length
            self.total, self.lr_step = s["total"], s["lr_step"]
        elif self.recipe.minutes:  # a new budget counts from here: a first guess, then fitted to the speed
            self.total = self.iteration + self.total
        # else a new length was asked for (say, more iterations after a finished run): it applies
        self.seconds = s.get("seconds", 0.0)
        torch.set_rng_state(s["rng"]["torch"])
        if s["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["rng"]["cuda"])

    # ----- validation and history -------------------------------------------------------
    def _val_data(self) -> str:
        """The validation set, or the builtin images where it is not on this machine."""
        return or_builtin(self.recipe.val_data)

    def kept(self) -> nn.Module:
        """The network that is evaluated and saved: the model being trained."""
        return self.model

    def _as_method(self):
        """The network as an evaluate Method, on a plain copy of its weights: without the DDP or
        compiled wrappers and the channels_last layout of the model being trained."""
        model = make_model(self.kind, self.model_config).to(self.device)
        model.load_state_dict(self.kept().state_dict())
        return as_method(model, self.kind, self.kind, None)

    def validate(self) -> dict:
        """Mean PSNR/SSIM on the validation set at each training scale (with srlib's protocol)."""
        res = evaluate(self._as_method(), [self._val_data()], list(self.recipe.scales))
        out = {}
        for x in res:
            out[f"psnr_x{x.scale:g}"] = round(x.psnr, 4)
            out[f"ssim_x{x.scale:g}"] = round(x.ssim, 5)
        out["psnr_mean"] = float(np.mean([x.psnr for x in res]))
        return out

    def _log(self, row: dict) -> None:
        path = self.out / "history.csv"
        rows = []
        if path.is_file():  # rows past a resumed checkpoint belong to the lost segment: dropped
            with open(path, newline="") as f:
                rows = [x for x in csv.DictReader(f) if int(x["iteration"]) < row["iteration"]]
        rows.append(row)
        keys = list(dict.fromkeys(k for x in rows for k in x))
        tmp = path.with_name("history.csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)

    # ----- the loop -----------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def fit(self) -> Path:
        """Train until the last iteration, the time budget, or a signal; return ``last.pt``.

        SIGINT and SIGTERM only ask the loop to stop until the final checkpoint is written: a
        second signal during shutdown cannot cut it. The run folder is released at the end.
        """
        self._acquire()  # again, if fit is called a second time
        handlers = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    handlers[sig] = signal.signal(sig, self._on_signal)
                except ValueError:  # not in the main thread
                    pass
            return self._fit()
        finally:
            self.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)

    def _fit(self) -> Path:
        """The loop: a step, then the bookkeeping of that step, until the plan's last iteration."""
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total, initial=self.iteration, disable=not self.progress or self.rank != 0,
                   desc=f"{self.kind} x{'/'.join(f'{s:g}' for s in self.recipe.scales)}", unit="it")
        self._t_fit = time.perf_counter()
        plan = _Plan(self.recipe.minutes * 60 if self.recipe.minutes else None, self.iteration, self.total,
                     self.lr_step)
        window = _Window()
        self.model.train()
        try:
            while self.iteration < self.total:
                epoch, start = divmod(self.iteration, self.steps_per_epoch)
                for batch in self._loader(epoch, start):
                    learning_rate = self._set_lr(self.iteration)
                    stats = self.step(batch, learning_rate)
                    self._check_finite(stats, learning_rate)
                    self.iteration += 1
                    window.add(stats["loss"])
                    for k in SKIPPED:
                        if k in stats:
                            self.skipped[k] = self.skipped.get(k, 0) + stats[k]
                    bar.update(1)
                    elapsed = time.perf_counter() - self._t_fit
                    self._fit_to_budget(plan, elapsed, bar)
                    last = self._agree_on_stop(self.iteration >= self.total or plan.spent(elapsed))
                    self._record(stats, learning_rate, window, last, bar)
                    if self._stop_signal is not None:
                        raise _Stop
                    if last:
                        self.total = self.iteration
                        break
        except _Stop:
            self.save()
            if self.rank == 0:
                print(f"\nstopped by signal {self._stop_signal} at iteration {self.iteration}; "
                      f"checkpoint saved to {self.out / 'last.pt'}", flush=True)
        finally:
            bar.close()
        self.save()
        return self.out / "last.pt"

    def _check_finite(self, stats: dict, learning_rate: float) -> None:
        if not math.isfinite(stats["loss"]):
            raise TrainingDiverged(
                f"the loss became {stats['loss']} at iteration {self.iteration} (learning rate {learning_rate:g}, "
                f"gradient norm {stats['grad_norm']:.3g}); training stopped. The last good checkpoint is "
                f"{self.out / 'last.pt'}. Lower the learning rate or clip the gradients (--clip adjustable).")

    def _fit_to_budget(self, plan: _Plan, elapsed: float, bar) -> None:
        """With a time budget, fit the schedule's length (and step) to the speed measured so far: first
        after 5 steps, so that a slow machine fits it too, then every 20 until 60% of the budget."""
        done = self.iteration - plan.done_before
        if plan.budget and done >= 5 and (done % 20 == 0 or not plan.fitted) and elapsed < 0.6 * plan.budget:
            plan.fitted = True
            self.total = max(self.iteration + 1, plan.done_before + int(done / elapsed * plan.budget * 0.97))
            # rounded up: the plan's last step (VDSR's 4th /10 at epoch 80) never falls inside the run
            self.lr_step = plan.lr_step and max(1, math.ceil(plan.lr_step * self.total / plan.total))
            bar.total = self.total

    def _agree_on_stop(self, last: bool) -> bool:
        """Under DDP every rank must stop at the same step, and on a signal to any: rank 0's plan decides."""
        if not self.distributed:
            return last
        lead = self.rank == 0
        flags = torch.tensor([self.total if lead else 0, int(last and lead), int(self._stop_signal is not None)],
                             device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        self.total, last = int(flags[0]), bool(flags[1])
        if flags[2] and self._stop_signal is None:
            self._stop_signal = int(signal.SIGTERM)
        return last

    def _record(self, stats: dict, learning_rate: float, window: _Window, last: bool, bar) -> None:
        """Every ``val_every`` steps and at the end: validate, log a history row, keep the best and the
        last checkpoints; every ``checkpoint_every`` steps in between: the last checkpoint."""
        if self.iteration % self.recipe.val_every == 0 or last:
            row = {"iteration": self.iteration, "epoch": round(self.iteration / self.steps_per_epoch, 3),
                   "loss": float(np.mean(window.losses)), "lr": learning_rate, "grad_norm": stats["grad_norm"],
                   "seconds_per_it": window.seconds_per_step()}
            row.update({k: v for k, v in stats.items() if k not in ("loss", "grad_norm", *SKIPPED)})
            if self.scalers[0].is_enabled():  # fp16: the updates the gradient scaler skipped so far
                row.update(self.skipped)
            if self.rank == 0:
                row.update(self.validate())
                self._log(row)
                bar.set_postfix(psnr=f"{row['psnr_mean']:.2f}")
                if row["psnr_mean"] > self.best:
                    self.best = row["psnr_mean"]
                    self.save("best.pt")
            self.save()
            window.restart()  # after validating and saving: the next row's seconds per step are the steps' own
        elif self.iteration % self.recipe.checkpoint_every == 0:
            self.save()


@dataclass
class _Plan:
    """The run's length as planned when fit started, which a time budget rescales in proportion."""

    budget: float | None  # seconds, or None
    done_before: int  # iterations done before this fit (a resume): the budget counts from here
    total: int
    lr_step: int
    fitted: bool = False

    def spent(self, elapsed: float) -> bool:
        return self.budget is not None and elapsed >= self.budget


@dataclass
class _Window:
    """The losses and time of the steps since the last history row (its validation and saving excluded)."""

    losses: list = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    def add(self, loss: float) -> None:
        self.losses.append(loss)

    def seconds_per_step(self) -> float:
        return (time.perf_counter() - self.t0) / max(len(self.losses), 1)

    def restart(self) -> None:
        self.losses, self.t0 = [], time.perf_counter()


class GANTrainer(Trainer):
    """SRGAN (Ledig et al., CVPR 2017): the generator (SRResNet, from a checkpoint of it if the
    recipe names one) against a discriminator, trained in turns on every batch. Chapter: SRGAN."""

    def _build_more(self) -> None:
        r = self.recipe
        if r.generator:  # a checkpoint file, or the name of shipped weights
            from .inference import load_model
            from .pretrained import available, load

            shipped = r.generator in available() and not Path(r.generator).exists()
            gen, info = load(r.generator) if shipped else load_model(r.generator)
            if info["kind"] not in RGB_KINDS:
                raise SRError(f"{r.generator}: a {info['kind']} checkpoint cannot start an SRGAN generator")
            if info["model_config"] != self.model_config:
                ours, theirs = (" ".join(f"{k}={v}" for k, v in c.items()) for c in (self.model_config,
                                                                                      info["model_config"]))
                raise SRError(f"{r.generator}: its network is SRResNet({theirs}), the recipe's is "
                              f"SRResNet({ours}); give --model-set {theirs}")
            self.model.load_state_dict(gen.state_dict())
        # Not the paper's: a moving average of the generator's weights (Yazici et al., ICLR 2019), evaluated and
        # saved in its place; the discriminator trains against the generator itself.
        self.average = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(r.ema), use_buffers=True) \
            if r.ema else None
        self.disc = Discriminator(int(r.patch.get("size", 96))).to(self.device)
        self.disc_net = self.disc  # wrapped for DistributedDataParallel by _wrap_more
        self.opt_disc = self._optimizer(self.disc, r.lr, None)
        if r.content_layer == "mse":  # SRGAN-MSE (Table 1): the pixel MSE as the content loss
            self.content = srgan_mse
            return
        self.content = ContentLoss(r.content_layer, r.vgg_weights).to(self.device)
        if r.vgg_weights is None:  # random features: the loss starts at the pixel MSE on a fixed batch
            first = [self.data[i] for i in range(0, len(self.data), max(1, len(self.data) // r.batch_size))]
            low, hr = (torch.stack(t).to(self.device) for t in zip(*first, strict=True))
            self.model.eval()
            with torch.no_grad():
                self.content.calibrate(self.model(low), hr)
            self.model.train()

    def _wrap_more(self, device_ids) -> None:
        self.disc_net = nn.parallel.DistributedDataParallel(self.disc, device_ids=device_ids)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer, self.opt_disc]

    def kept(self) -> nn.Module:
        """The moving average of the generator's weights where the recipe asks for one (``ema``)."""
        return self.model if self.average is None else self.average.module

    def state(self) -> dict:
        averaged = {} if self.average is None else {"generator": self.model.state_dict()}  # "model": the average
        return {**super().state(), **averaged, "disc": self.disc.state_dict(), "opt_disc": self.opt_disc.state_dict(),
                "content_rescale": getattr(self.content, "rescale", 1.0)}

    def _load_more(self, s: dict) -> None:
        if self.average is not None:
            self.average.module.load_state_dict(s["model"])
            self.model.load_state_dict(s["generator"])
            self.average.n_averaged.fill_(s["iteration"])  # not 0: the next update averages, not copies
        self.disc.load_state_dict(s["disc"])
        self.opt_disc.load_state_dict(s["opt_disc"])
        if isinstance(self.content, ContentLoss):
            self.content.rescale = s.get("content_rescale", self.content.rescale)

    def validate(self) -> dict:
        """PSNR/SSIM, the discriminator's verdict on the same crops of the validation HR images and
        of the generator's outputs (``d_real``, ``d_generated``, ``d_accuracy``), and how much of a
        grid the outputs have (``grid_ratio``: their energy at the frequencies of a pattern that
        repeats every ``scale`` pixels, over the HR images', the median image; about 1 without one)."""
        out = super().validate()
        scale = int(self.recipe.scales[0])
        hrs = [im / 255.0 if im.dtype == np.uint8 else im for _, im in load_images(self._val_data(), scale)]
        hrs = [im if im.ndim == 3 else np.repeat(im[..., None], 3, -1) for im in hrs]
        run = self._as_method().run
        outs = [run(np.clip(bicubic_degrade(hr, scale), 0, 1), hr.shape, scale) for hr in hrs]
        grid = float(np.median([periodic_energy_ratio(o, h, scale) for o, h in zip(outs, hrs, strict=True)]))
        return {**out, **{k: round(v, 4) for k, v in discriminator_verdict(self.disc, hrs, outs).items()},
                "grid_ratio": round(grid, 3)}

    def step(self, batch, learning_rate: float) -> dict:
        lr_img, hr = self._to(batch[0]), self._to(batch[1])
        scaler_disc, scaler_gen = self.scalers[1], self.scalers[0]
        # Discriminator: -log D(hr) - log(1 - D(G(lr_img))).
        self.opt_disc.zero_grad(set_to_none=True)
        gamma = self.recipe.r1
        hr = hr.detach().requires_grad_(gamma > 0)
        # R1 differentiates D's input gradient: BatchNorm's second derivative overflows fp16 (NaN at any loss scale)
        r1_in_fp32 = gamma > 0 and self.amp_dtype == torch.float16
        with self._autocast():
            fake = self.net(lr_img)
            with torch.autocast(self.device.type, enabled=False) if r1_in_fp32 else contextlib.nullcontext():
                real_logits = self.disc_net(hr).float()
            d_loss = discriminator_loss(real_logits, self.disc_net(fake.detach()).float())
        if gamma:  # not the paper's: R1 (Mescheder et al., ICML 2018, eq. 9), gamma/2 E ||grad_x D(x)||^2 on real x
            grad, = torch.autograd.grad(real_logits.sum(), hr, create_graph=True)
            r1 = grad.float().pow(2).flatten(1).sum(1).mean()
            d_loss = d_loss + gamma / 2 * r1
        scaler_disc.scale(d_loss).backward()
        d_skipped = scaled_update(scaler_disc, self.opt_disc)
        # Generator: content loss + 1e-3 x -log D(G(lr_img)) (SRGAN eq. 3).
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            content = self.content(fake.float(), hr.detach().float())
            fake_logits = self.disc_net(fake).float()
            g_loss = generator_loss(content, fake_logits, self.recipe.adversarial_weight)
        scaler_gen.scale(g_loss).backward()
        scaler_gen.unscale_(self.optimizer)
        gnorm = clip_gradients(self.model.parameters(), self.recipe.clip, self.recipe.clip_value, learning_rate)
        skipped = scaled_update(scaler_gen, self.optimizer)
        if self.average is not None:  # w_avg <- ema w_avg + (1 - ema) w
            self.average.update_parameters(self.model)
        return {"loss": g_loss.item(), "content": content.item(), "adversarial": adversarial_loss(fake_logits).item(),
                "d_loss": d_loss.item(), "grad_norm": gnorm, "skipped": skipped, "d_skipped": d_skipped,
                **({"r1": r1.item()} if gamma else {})}


def train(recipe: Recipe, out: str | Path, device: str | None = None, resume: bool = False,
          progress: bool = True) -> Path:
    """Train ``recipe`` into ``out``; return the path of the last checkpoint."""
    return Trainer(recipe, out, device, resume, progress).fit()


def read_history(path: str | Path) -> list[dict]:
    """The rows of a ``history.csv`` (or of the one in run folder ``path``) as dicts of floats."""
    path = Path(path) / "history.csv" if Path(path).is_dir() else path
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def plot_history(path: str | Path, ax=None):
    """Plot validation PSNR (and the training loss) against iterations; returns the axes."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise SRError("plot_history needs matplotlib (not installed with srlib): pip install 'srlib[plot]'") from None

    rows = read_history(path)
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    its = [r["iteration"] for r in rows]
    for k in [k for k in rows[0] if k.startswith("psnr_x")]:
        ax.plot(its, [r[k] for r in rows], marker=".", label=k.replace("psnr_", "PSNR "))
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation PSNR (dB)")
    ax.legend()
    return ax
