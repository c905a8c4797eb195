import copy
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import srlib
from srlib import SRError
from srlib.data import builtin_images, save_image
from srlib.device import Precision, cpu_has_native_bf16
from srlib.evaluate import evaluate
from srlib.inference import as_method, load_model
from srlib.losses import discriminator_loss, log_l1_per_scale, log_mse_per_scale, mse, srgan_mse
from srlib.models import VDSR as VDSRNet
from srlib.models import make_model
from srlib.pretrained import load
from srlib.recipes import RECIPES, Recipe, recipe
from srlib.train import GANTrainer, Trainer, TrainingDiverged, clip_gradients, plot_history, read_history

# Small, fast runs on the builtin images; every setting is a real recipe's.
SRCNN = recipe("srcnn", data="builtin", scales=(3,), batch_size=128, iterations=16, val_data="builtin",
               val_every=8, checkpoint_every=4)
VDSR = recipe("vdsr", model_config=dict(depth=4, width=16), data="builtin", scales=(2, 3), batch_size=256, epochs=None,
              iterations=12, lr_step=6, val_data="builtin", val_every=6, checkpoint_every=3)
NATIVE_BF16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AMX, AVX512-BF16)")


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


class _StopAt(Trainer):
    """A trainer that receives SIGTERM (as from outside) during iteration ``stop_at``."""

    stop_at = 0

    def step(self, batch, learning_rate):
        out = super().step(batch, learning_rate)
        if self.iteration + 1 == self.stop_at:
            self._on_signal(signal.SIGTERM, None)
        return out


def test_a_new_run_never_overwrites_a_finished_one(tmp_path):
    r = VDSR.replace(iterations=2, val_every=2)
    Trainer(r, tmp_path, progress=False).fit()
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(SRError, match="holds a run already"):
        Trainer(r, tmp_path, progress=False)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert Trainer(r.replace(iterations=3), tmp_path, resume=True, progress=False).fit()  # the folder is free
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 3


@pytest.mark.parametrize("r", [SRCNN, pytest.param(VDSR, marks=pytest.mark.slow),
                               pytest.param(VDSR.replace(cpu_amp=True), marks=NATIVE_BF16)],
                         ids=["srcnn", "vdsr", "vdsr-cpu-bf16"])
def test_resume_is_bitwise_exact(tmp_path, r):
    straight = Trainer(r, tmp_path / "a", progress=False).fit()
    t = _StopAt(r, tmp_path / "b", progress=False)
    t.stop_at = r.iterations // 2 + 1  # not on a checkpoint boundary, across an epoch for SRCNN
    t.fit()
    if r.kind == "srcnn":  # stopped inside the first epoch; the resumed run then crosses into the second
        assert t.stop_at < t.steps_per_epoch < r.iterations
    mid = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert mid["iteration"] == t.stop_at
    resumed = Trainer(r, tmp_path / "b", resume=True, progress=False).fit()
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(resumed, weights_only=True)["iteration"] == r.iterations
    hist = read_history(tmp_path / "b" / "history.csv")
    assert [h["iteration"] for h in hist] == [h["iteration"] for h in read_history(tmp_path / "a" / "history.csv")]
    assert "skipped" not in hist[0]  # no loss scaling: no update is ever skipped, and the history has no column


@pytest.mark.slow
def test_loader_workers_train_the_same_run_as_the_main_process_and_resume_it_exactly(tmp_path):
    # On a GPU the batches are loaded by worker processes (`workers` None: 4 there, 0 on a CPU), so the runs the
    # notebooks train in full mode take this path; here two workers, stopped inside the first epoch and resumed.
    straight = Trainer(SRCNN, tmp_path / "a", progress=False).fit()
    two = SRCNN.replace(workers=2)
    t = _StopAt(two, tmp_path / "b", progress=False)
    assert t._loader(0, 0).num_workers == 2
    t.stop_at = SRCNN.iterations // 2 + 1
    t.fit()
    resumed = Trainer(two, tmp_path / "b", resume=True, progress=False).fit()
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    psnr = [[h["psnr_mean"] for h in read_history(tmp_path / run)] for run in "ab"]
    assert psnr[0] == psnr[1] and len(psnr[0]) == 2


@pytest.mark.slow
def test_a_finished_run_resumed_with_more_iterations_continues_as_one_longer_run(tmp_path):
    longer = Trainer(VDSR, tmp_path / "a", progress=False).fit()
    Trainer(VDSR.replace(iterations=VDSR.lr_step), tmp_path / "b", progress=False).fit()  # stops at the lr step
    t = Trainer(VDSR, tmp_path / "b", resume=True, progress=False)
    assert (t.iteration, t.total) == (VDSR.lr_step, VDSR.iterations)
    a, b = _weights(longer), _weights(t.fit())
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_finished_run_resumed_with_a_new_budget_and_learning_rate_trains_on_with_them(tmp_path):
    cosine = VDSR.replace(schedule="cosine")
    Trainer(cosine, tmp_path, progress=False).fit()  # finished: 12 of 12 iterations
    t = Trainer(cosine.replace(minutes=0.03, lr=0.01), tmp_path, resume=True, progress=False)
    assert t.iteration == cosine.iterations < t.total  # the budget counts from here
    assert [g["base_lr"] for g in t.optimizer.param_groups] == [0.01]  # not the saved 0.1
    t.fit()
    assert t.iteration > cosine.iterations
    lrs = [h["lr"] for h in read_history(tmp_path / "history.csv")][2:]
    assert lrs and all(0 < lr < 0.01 for lr in lrs)  # the new rate, on the cosine of the longer plan


@pytest.mark.slow
def test_cpu_amp_trains_in_bf16_only_where_the_cpu_has_it(tmp_path):
    fp32 = Trainer(VDSR, tmp_path / "a", device="cpu", progress=False)
    assert not fp32.use_amp and not fp32.channels_last  # the papers' presets stay in float32
    t = Trainer(VDSR.replace(cpu_amp=True), tmp_path / "b", device="cpu", progress=False)
    assert t.use_amp == t.channels_last == cpu_has_native_bf16()
    if not t.use_amp:
        return
    assert t.amp_dtype == torch.bfloat16 and t.model.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    with t._autocast():
        assert t.model.body(torch.rand(1, 1, 16, 16)).dtype == torch.bfloat16  # the residual branch
    x, y = next(iter(fp32._loader(0, 0)))[:2]

    def gradient(tr):  # the whole gradient of one batch, from the same initial weights
        tr.model.zero_grad()
        with tr._autocast():
            out = tr.net(tr._to(x))
        torch.nn.functional.mse_loss(out.float(), tr._to(y)).backward()
        return torch.cat([p.grad.flatten() for p in tr.model.parameters()])

    g32, g16 = gradient(fp32), gradient(t)
    assert 0 < (g16 - g32).norm() / g32.norm() < 0.03  # bf16 products: close, not equal
    a, b = _weights(fp32.fit()), _weights(t.fit())
    assert all(b[k].dtype == torch.float32 for k in b)  # the master weights stay float32
    assert not all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def as_on_a_t4(monkeypatch):
    """Train on this CPU as on a T4 or V100 (no bf16 in hardware): fp16 autocast with loss scaling."""
    monkeypatch.setattr(srlib.train, "training_precision", lambda *a, **k: Precision(torch.float16, True, False))


class _Updates(_StopAt):
    """A trainer that records, for each step, whether it reported the update skipped and whether the
    weights moved; it can stop like _StopAt."""

    def step(self, batch, learning_rate):
        before = [p.detach().clone() for p in self.model.parameters()]
        out = super().step(batch, learning_rate)
        moved = any(not torch.equal(a, p) for a, p in zip(before, self.model.parameters(), strict=True))
        self.updates = [*getattr(self, "updates", []), (out["skipped"], moved)]
        return out


@pytest.mark.slow
def test_fp16_with_loss_scaling_counts_the_updates_it_skips_and_resumes_exactly(tmp_path, as_on_a_t4):
    """The path of a T4 or V100 (tests/test_gpu.py runs it on a GPU), run here on the CPU. VDSR's
    gradients at rate 0.1 overflow fp16 at the scaler's first scales: those updates are skipped, the
    weights stay, the scale halves; the history counts them; a resumed run continues bit for bit."""
    r = VDSR.replace(batch_size=32, clip="adjustable")
    t = _Updates(r, tmp_path / "a", progress=False)
    assert t.amp_dtype == torch.float16 and t.scalers[0].is_enabled()
    start = t.scalers[0].get_scale()
    straight = t.fit()
    skipped = sum(s for s, _ in t.updates)
    assert all(moved != bool(s) for s, moved in t.updates)  # a skipped update leaves every weight as it was
    assert 0 < skipped < r.iterations and t.updates[-1] == (0, True)  # the first ones, until the scale fits
    assert t.scalers[0].get_scale() == start / 2 ** skipped
    hist = read_history(tmp_path / "a" / "history.csv")  # the updates skipped so far, at each row
    assert [h["skipped"] for h in hist] == [sum(s for s, _ in t.updates[:int(h["iteration"])]) for h in hist]
    assert hist[-1]["skipped"] == skipped and torch.load(straight, weights_only=True)["skipped"] == {"skipped": skipped}
    b = _Updates(r, tmp_path / "b", progress=False)
    b.stop_at = skipped + 1  # stopped just after the first update taken
    b.fit()
    resumed = Trainer(r, tmp_path / "b", resume=True, progress=False)
    assert resumed.iteration == skipped + 1 and resumed.scalers[0].get_scale() == start / 2 ** skipped
    a, c = _weights(straight), _weights(resumed.fit())
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert [h["skipped"] for h in read_history(tmp_path / "b" / "history.csv")] == [h["skipped"] for h in hist]


def test_adjustable_clipping_bounds_every_element():
    p = torch.nn.Parameter(torch.zeros(5))
    p.grad = torch.tensor([-100.0, -0.05, 0.0, 0.05, 100.0])
    norm = clip_gradients([p], "adjustable", theta=0.01, lr=0.1)
    assert norm == pytest.approx(torch.tensor([100.0, 0.05, 0, 0.05, 100.0]).norm().item())
    assert torch.allclose(p.grad, torch.tensor([-0.1, -0.05, 0.0, 0.05, 0.1]))
    p.grad = torch.tensor([3.0, 4.0, 0, 0, 0])
    clip_gradients([p], "norm", theta=1.0, lr=0.1)
    assert p.grad.norm().item() == pytest.approx(1.0)


def test_log_mse_per_scale_is_the_mean_psnr_loss_and_weighs_each_scale_by_its_error():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(6, 1, 8, 8, generator=g)
    noise = torch.randn(6, 1, 8, 8, generator=g)
    scales = torch.tensor([2.0, 4.0, 2.0, 4.0, 4.0, 2.0])
    amp = torch.where(scales == 2, 0.01, 0.1)[:, None, None, None]  # x4's errors 10 times x2's
    sr = (hr + amp * noise).requires_grad_()
    loss = log_mse_per_scale(sr, hr, scales)
    per_scale = {s: ((sr - hr)[scales == s] ** 2).mean() for s in (2.0, 4.0)}
    assert loss.item() == pytest.approx(sum(v.log() for v in per_scale.values()).item() / 2, rel=1e-6)
    # -10 log10 of each scale's MSE, averaged: the loss is the mean PSNR's negative, rescaled
    mean_psnr = sum(-10 * torch.log10(v) for v in per_scale.values()).item() / 2
    assert -10 / torch.log(torch.tensor(10.0)).item() * loss.item() == pytest.approx(mean_psnr, rel=1e-6)
    loss.backward()

    def pull(s):  # how fast the loss falls as scale s's errors shrink by a common factor: d loss / d log(factor)
        return (sr.grad * (sr - hr).detach())[scales == s].sum().item()

    # each scale the same, 2 / (number of scales): x2's small errors count as much as x4's large ones
    assert pull(2.0) == pytest.approx(1.0, rel=1e-4) and pull(4.0) == pytest.approx(1.0, rel=1e-4)
    sr.grad = None
    mse(sr, hr).backward()  # the plain MSE: in proportion to each scale's MSE, x4's 100 times x2's
    assert pull(4.0) > 50 * pull(2.0)


def test_log_l1_per_scale_balances_the_scales_with_the_absolute_error():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(6, 1, 8, 8, generator=g)
    scales = torch.tensor([2.0, 4.0, 2.0, 4.0, 4.0, 2.0])
    amp = torch.where(scales == 2, 0.01, 0.1)[:, None, None, None]  # x4's errors 10 times x2's
    sr = (hr + amp * torch.randn(6, 1, 8, 8, generator=g)).requires_grad_()
    loss = log_l1_per_scale(sr, hr, scales)
    per_scale = [(sr - hr)[scales == s].abs().mean() for s in (2.0, 4.0)]
    assert loss.item() == pytest.approx(sum(v.log() for v in per_scale).item() / 2, rel=1e-6)
    loss.backward()
    pull = [(sr.grad * (sr - hr).detach())[scales == s].sum().item() for s in (2.0, 4.0)]
    assert pull == pytest.approx([0.5, 0.5], rel=1e-4)  # each scale the same, whatever the size of its errors


@pytest.mark.parametrize("loss", ["log-mse", "log-l1"])
def test_vdsr_trains_with_the_per_scale_log_losses_and_other_kinds_refuse_them(tmp_path, loss):
    r = VDSR.replace(loss=loss, optimizer="adam", lr=1e-3, iterations=6, val_every=6)
    hist = read_history(Trainer(r, tmp_path / "v", progress=False).fit().parent / "history.csv")
    assert hist[-1]["loss"] < 0 and hist[-1]["psnr_x2"] > 0  # the log of errors well below 1
    with pytest.raises(SRError, match="log-mse"):
        SRCNN.replace(loss=loss).check()


def test_warmup_ramps_the_rate_linearly_then_follows_the_schedule(tmp_path):
    plain = Trainer(VDSR.replace(schedule="cosine"), tmp_path / "p", progress=False)
    warm = Trainer(VDSR.replace(schedule="cosine", warmup=4), tmp_path / "w", progress=False)
    got = [warm.lr_factor(i) for i in range(VDSR.iterations)]
    want = [plain.lr_factor(i) * min(1, (i + 1) / 4) for i in range(VDSR.iterations)]
    assert got == pytest.approx(want) and got[0] == pytest.approx(0.25) and got[3] == pytest.approx(plain.lr_factor(3))
    with pytest.raises(SRError, match="warmup"):
        VDSR.replace(warmup=-1).check()
    p = _cli("train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "2",
             "--batch-size", "4", "--model-set", "depth=3", "width=8", "--warmup", "7", "--out", str(tmp_path / "c"),
             "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]
    assert torch.load(tmp_path / "c" / "last.pt", weights_only=True)["recipe"]["warmup"] == 7
    p = _cli("train", "vdsr", "--data", "builtin", "--warmup", "-1", "--out", str(tmp_path / "d"), "--quiet")
    assert p.returncode == 2 and "--warmup" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    r = VDSR.replace(lr=1e3, clip=None, weight_decay=0.0, iterations=200, checkpoint_every=1, lr_step=0,
                     model_config=dict(depth=4, width=16, residual=False))
    with pytest.raises(TrainingDiverged, match="learning rate 1000.*last good checkpoint"):
        Trainer(r, tmp_path, progress=False).fit()
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


@pytest.mark.slow  # runs for its wall-clock budget, or a CLI subprocess per step
def test_time_budget_fits_the_schedule(tmp_path):
    r = SRCNN.replace(iterations=10_000, minutes=0.15, schedule="cosine", val_every=10_000, batch_size=32)
    last = Trainer(r, tmp_path, progress=False).fit()
    ckpt = torch.load(last, weights_only=True)
    assert 20 <= ckpt["iteration"] == ckpt["total"] < 10_000
    assert read_history(tmp_path / "history.csv")[-1]["lr"] < 0.05 * r.lr  # cosine ran to its end


@pytest.mark.slow  # runs for its wall-clock budget, or a CLI subprocess per step
def test_time_budget_keeps_the_papers_step_schedule_in_proportion(tmp_path):
    """VDSR's /10 every 20 of 80 epochs becomes /10 at every quarter of the budget."""
    r = recipe("vdsr", model_config=dict(depth=3, width=8), data="builtin", scales=(2,), batch_size=4, minutes=0.1,
               val_data="builtin", val_every=10**6)
    ckpt = torch.load(Trainer(r, tmp_path / "m", progress=False).fit(), weights_only=True)
    # any speed: the proportion. The schedule is fitted to the speed until 60% of the budget; a machine that
    # slows down after that ends the run a little before the fitted length (1.2% on CI once), never after it
    total, step = ckpt["total"], ckpt["lr_step"]
    assert total >= 8 and (total - 1) // step == 3 and abs(step - total / 4) <= 0.05 * total + 1
    assert read_history(tmp_path / "m" / "history.csv")[-1]["lr"] == pytest.approx(r.lr * r.lr_gamma**3)
    p = _cli("train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "8",
             "--batch-size", "4", "--model-set", "depth=3", "width=8", "--out", str(tmp_path / "i"), "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]
    ckpt = torch.load(tmp_path / "i" / "last.pt", weights_only=True)
    assert (ckpt["total"], ckpt["lr_step"]) == (8, 2)
    assert [round(h["lr"], 6) for h in read_history(tmp_path / "i" / "history.csv")][-1] == 1e-4  # 0.1 / 10^3


def test_resume_refuses_another_model(tmp_path):
    Trainer(SRCNN.replace(iterations=2), tmp_path, progress=False).fit()
    with pytest.raises(SRError, match="is a srcnn checkpoint, not vdsr"):
        Trainer(VDSR, tmp_path, resume=True, progress=False)


def test_resume_continues_the_same_run_only_in_the_api_and_the_cli(tmp_path):
    """One meaning of resume: the run's length, budget, learning rate and book-keeping may change;
    its network, data, patches, loss or seed may not (the same rule for Trainer and the CLI)."""
    Trainer(VDSR.replace(iterations=2), tmp_path, progress=False).fit()
    for change in (dict(data="T91"), dict(model_config=dict(depth=5, width=8)), dict(seed=1), dict(loss="mse")):
        with pytest.raises(SRError, match=f"cannot resume with other settings \\({next(iter(change))} "):
            Trainer(VDSR.replace(**change), tmp_path, resume=True, progress=False)
    t = Trainer(VDSR.replace(iterations=4, lr=0.05, val_every=2), tmp_path, resume=True, progress=False)
    assert (t.iteration, t.total) == (2, 4)
    t.close()
    p = _cli("train", "vdsr", "--resume", "--scale", "4", "--out", str(tmp_path), "--quiet")
    assert p.returncode == 2 and "cannot resume with other settings (scales (2, 3) -> (4.0,))" in p.stderr, p.stderr


def test_recipes_recorded_before_the_model_config_rename_still_read():
    old = {**{k: v for k, v in asdict(VDSR).items() if k != "model_config"}, "model": {"depth": 3}}
    assert Recipe.from_dict(old) == VDSR.replace(model_config={"depth": 3})
    shipped = torch.load(Path(srlib.__file__).parent / "weights" / "srcnn-x3-915.pt", weights_only=True)
    assert Recipe.from_dict(shipped["recipe"]).model_config.items() <= shipped["model_config"].items() != {}.items()


def test_checkpoint_loads_as_a_model(tmp_path):
    last = Trainer(VDSR.replace(iterations=2), tmp_path, progress=False).fit()
    model, info = load_model(last)
    assert info["kind"] == "vdsr" and info["scales"] == [2.0, 3.0] and not model.training
    ax = plot_history(tmp_path)
    assert [line.get_label() for line in ax.get_lines()] == ["PSNR x2", "PSNR x3"]


def test_plot_history_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    (tmp_path / "history.csv").write_text("iteration,loss,psnr_x2\n10,0.1,30.0\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as where it is not installed: import fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(SRError, match=r"srlib\[plot\]"):
        plot_history(tmp_path)


@pytest.mark.parametrize("model, colour", [(dict(f2b=1, n2b=8), "y"), (dict(colour="ycbcr"), "ycbcr"),
                                           (dict(colour="rgb", padding="same"), "rgb")],
                         ids=["four-layers", "ycbcr-valid", "rgb-same"])
def test_srcnn_variants_of_section_4_train_and_validate(tmp_path, model, colour):
    """The four-layer SRCNN gets labels cropped by its own shrink; colour SRCNNs train on their colour
    space and are validated on the Y of their RGB output; the checkpoint rebuilds them."""
    r = SRCNN.replace(model_config={**dict(f1=9, f2=1, f3=5), **model}, iterations=4, val_every=4)
    t = Trainer(r, tmp_path, progress=False)
    torch.manual_seed(r.seed)  # the initial weights are the recipe seed's: a shipped run's start can be rebuilt
    start = make_model("srcnn", t.model_config).state_dict()
    assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in start.items())
    x, y = t.data[0]
    shrink = t.model.shrink
    assert x.shape[0] == y.shape[0] == (1 if colour == "y" else 3) and y.shape[-1] == 33 - 2 * shrink
    assert shrink == (6 if "f2b" in model else 0 if "padding" in model else 6)
    last = t.fit()
    net, info = load_model(last)
    assert net.colour == colour and info["model_config"].get("f2b") == model.get("f2b")
    # The validation in the history is the protocol's evaluation of the checkpoint (Y of the RGB output)
    (again,) = evaluate(as_method(net, "srcnn", "again", (3.0,)), ["builtin"], [3])
    assert read_history(tmp_path)[-1]["psnr_x3"] == pytest.approx(again.psnr, abs=1e-3)


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "srlib", *args], capture_output=True, text=True, **kw)


def test_recipe_check_refuses_impossible_values_before_the_data_is_loaded(tmp_path, monkeypatch):
    assert all(r.check() is r for r in RECIPES.values())
    assert SRCNN.replace(clip=None, clip_value=0.0).check()  # no clipping: theta 0 is fine (notebook 03)
    with pytest.raises(SRError, match="clip_value"):
        SRCNN.replace(clip="adjustable", clip_value=0.0).check()
    monkeypatch.setattr(Trainer, "_dataset", lambda self: pytest.fail("the data was loaded"))
    for change, message in [(dict(batch_size=0), "batch_size (--batch-size)"), (dict(lr=float("nan")), "lr (--lr)"),
                            (dict(scales=(1,)), "scales (--scale)"), (dict(iterations=0), "iterations"),
                            (dict(checkpoint_every=0), "checkpoint_every must be"), (dict(loss="l1"), "loss")]:
        with pytest.raises(SRError, match=message.replace("(", r"\(").replace(")", r"\)")):
            Trainer(SRCNN.replace(**change), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_second_trainer_into_the_same_folder_is_refused_until_the_first_ends(tmp_path):
    first = Trainer(SRCNN.replace(iterations=2), tmp_path, progress=False)
    assert (tmp_path / ".lock.pid").read_text().startswith(f"pid {os.getpid()} on ")
    with pytest.raises(SRError, match=f"another run is training into this folder \\(pid {os.getpid()} on "):
        Trainer(SRCNN, tmp_path, resume=True, progress=False)
    first.fit()  # releases the folder
    assert not (tmp_path / ".lock.pid").exists()
    Trainer(SRCNN, tmp_path, resume=True, progress=False).close()


class _SecondSignalInSave(_StopAt):
    """SIGTERM stops the loop; a second real SIGTERM arrives during each save after it."""

    def save(self, name="last.pt"):
        if self._stop_signal is not None:
            os.kill(os.getpid(), signal.SIGTERM)  # with the default handler, this would kill pytest
        return super().save(name)


def test_a_second_signal_during_the_final_save_is_recorded_not_fatal(tmp_path):
    t = _SecondSignalInSave(SRCNN, tmp_path, progress=False)
    t.stop_at = 3
    last = t.fit()
    assert torch.load(last, weights_only=True)["iteration"] == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handed back after the final save


@pytest.mark.slow
def test_cli_train_a_signal_during_the_closing_evaluation_stops_it_and_exits_0(tmp_path, monkeypatch, capsys):
    import srlib.evaluate
    from srlib.cli import main

    def killed(*args, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("the signal did not stop the evaluation")

    monkeypatch.setattr(srlib.evaluate, "evaluate", killed)  # the closing one (validation is the trainer's)
    out = tmp_path / "run"
    assert main(["train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "2",
                 "--batch-size", "4", "--model-set", "depth=3", "width=8", "--quiet", "--out", str(out)]) == 0
    assert f"evaluation stopped by signal 15; checkpoint: {out / 'last.pt'}" in capsys.readouterr().out
    assert load_model(out / "last.pt")[1]["iteration"] == 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _long_run(out):
    """A run that trains until stopped, saving every 20 iterations."""
    return subprocess.Popen([sys.executable, "-m", "srlib", "train", "srcnn", "--data", "builtin", "--val-data",
                             "builtin", "--scale", "3", "--iterations", "100000", "--batch-size", "64",
                             "--val-every", "20", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, p):
    deadline = time.time() + 120
    while not path.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert path.exists(), p.stderr.read()[-2000:] if p.poll() is not None else "timed out"


@pytest.mark.slow
def test_cli_train_a_second_run_into_a_running_folder_stops_at_once_naming_the_first(tmp_path):
    out = tmp_path / "run"
    first = _long_run(out)
    try:
        _wait_for(out / ".lock.pid", first)
        second = _cli("train", "srcnn", "--data", "builtin", "--scale", "3", "--out", str(out))
        assert second.returncode == 2 and f"(pid {first.pid} on " in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        _wait_for(out / "last.pt", first)
    finally:
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0 and "stopped by signal" in stdout, stderr[-2000:]
    assert load_model(out / "last.pt")[1]["iteration"] >= 20  # the first run's checkpoint, intact
    assert not (out / ".lock.pid").exists()


@pytest.mark.slow
def test_cli_train_a_second_sigterm_during_shutdown_still_saves_and_exits_0(tmp_path):
    out = tmp_path / "run"
    p = _long_run(out)
    _wait_for(out / "last.pt", p)
    p.send_signal(signal.SIGTERM)
    lines = []
    while not any("stopped by signal" in x for x in lines) and p.poll() is None:
        lines.append(p.stdout.readline())
    p.send_signal(signal.SIGTERM)  # during the final save or the closing evaluation
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr[-2000:]
    assert f"checkpoint: {out / 'last.pt'}" in stdout
    assert load_model(out / "last.pt")[1]["iteration"] >= 20


@pytest.mark.slow
def test_cli_train_stopped_by_sigterm_leaves_a_usable_checkpoint(tmp_path):
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "srlib", "train", "srcnn", "--data", "builtin", "--val-data",
                          "builtin", "--scale", "3", "--iterations", "100000", "--batch-size", "64", "--out",
                          str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline:  # first checkpoint: 500 iterations
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr[-2000:]
    assert "stopped by signal" in stdout
    model, info = load_model(out / "last.pt")
    assert 500 <= info["iteration"] < 100_000
    assert "builtin" in stdout  # evaluated after stopping


@pytest.mark.parametrize("args, message", [
    (["srcnn", "--preset", "vdsr", "--out", "x"], "preset 'vdsr' trains vdsr, not srcnn"),
    (["srcnn", "--preset", "nope", "--out", "x"], "unknown preset 'nope'"),
    (["vdsr", "--resume", "--data", "builtin", "--out", "{tmp}/none"], "cannot resume"),
    (["srcnn", "--data", "/no/such/dir", "--out", "x"], "/no/such/dir: no such folder"),
    (["vdsr", "--data", "builtin", "--model-set", "depth", "--out", "x"], "--model-set expects KEY=VALUE"),
    (["vdsr", "--data", "builtin", "--model-set", "colour=3", "--out", "x"], "bad settings for vdsr"),
])
def test_cli_train_bad_input(tmp_path, args, message):
    p = _cli("train", *[a.replace("{tmp}", str(tmp_path)) for a in args], cwd=tmp_path)
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_cli_train_model_settings(tmp_path):
    p = _cli("train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "2",
             "--batch-size", "4", "--model-set", "depth=3", "residual=false", "--no-augment",
             "--clip", "value", "--clip-value", "0.5", "--patch-size", "21", "--schedule", "constant",
             "--out", str(tmp_path / "r"), "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]
    model, info = load_model(tmp_path / "r" / "last.pt")
    assert info["model_config"] == {"depth": 3, "residual": False, "channels": 1}
    recipe = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["recipe"]
    assert recipe["patch"] == {"size": 21, "stride": 21, "augment": False}  # the stride keeps its ratio (41/41)
    assert (recipe["clip"], recipe["clip_value"]) == ("value", 0.5)  # every mode of clip_gradients
    assert recipe["schedule"] == "constant"  # the paper's VDSR divides its rate in steps
    assert len([m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]) == 3 and not model.residual


@pytest.mark.slow  # runs for its wall-clock budget, or a CLI subprocess per step
def test_cli_resume_continues_the_run_with_its_own_settings(tmp_path):
    out = ["--out", str(tmp_path / "r"), "--quiet"]
    p = _cli("train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "4",
             "--batch-size", "4", "--lr", "0.05", "--no-amp", "--model-set", "depth=3", "width=8", *out)
    assert p.returncode == 0, p.stderr[-2000:]
    before = (tmp_path / "r" / "last.pt").read_bytes()
    p = _cli("train", "vdsr", "--data", "builtin", "--scale", "2", "--iterations", "2", *out)  # a new run: refused
    assert p.returncode == 2 and "holds a run already (last.pt)" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and (tmp_path / "r" / "last.pt").read_bytes() == before
    p = _cli("train", "vdsr", "--resume", "--iterations", "6", *out)  # only what changes
    assert p.returncode == 0, p.stderr[-2000:]
    ckpt = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    kept = {k: ckpt["recipe"][k] for k in ("data", "val_data", "scales", "batch_size", "lr", "amp", "model_config")}
    assert kept == {"data": "builtin", "val_data": "builtin", "scales": [2], "batch_size": 4, "lr": 0.05,
                    "amp": False, "model_config": {"depth": 3, "width": 8}}
    assert (ckpt["iteration"], ckpt["total"]) == (6, 6)
    p = _cli("train", "srcnn", "--resume", *out)
    assert p.returncode == 2 and "is a vdsr checkpoint, not srcnn" in p.stderr, p.stderr


@pytest.mark.slow
def test_ddp_under_torchrun_equals_one_process_on_the_whole_batch(tmp_path):
    """Two CPU processes (gloo), each on half of every batch, give the weights of one
    process on the whole batch (gradients averaged across ranks)."""
    val = tmp_path / "val"  # one small validation image keeps the 20-layer runs quick
    val.mkdir()
    save_image(val / "crop.png", builtin_images()[0][1][:60, :60])
    args = ["train", "vdsr", "--data", "builtin", "--val-data", str(val), "--scale", "2", "3",
            "--iterations", "3", "--batch-size", "32", "--device", "cpu", "--clip-value", "0.01", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "srlib", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "srlib", *args,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "two" / "last.pt")
    # Equal up to the order of floating-point sums (lr 0.1 amplifies it to ~1e-5, 5.5e-5 seen) ...
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    # ... while three steps moved the weights by far more (a rank training on its half
    # alone, without the averaged gradient, would be off by that much).
    torch.manual_seed(0)
    init = VDSRNet(depth=20).state_dict()
    assert min((a[k] - init[k]).abs().max().item() for k in a if k.endswith("weight")) > 5e-3


@pytest.mark.slow
def test_srgan_with_the_mse_as_content_loss(tmp_path):
    r = recipe("srgan", model_config=dict(scale=4, blocks=1, width=8), content_layer="mse", data="builtin",
               val_data="builtin", batch_size=4, iterations=2, val_every=2, patch=dict(size=32, stride=64))
    t = Trainer(r, tmp_path / "m", progress=False)
    assert t.content is srgan_mse  # SRGAN-MSE: no VGG network at all, the MSE on [-1, 1] as the paper
    ckpt = torch.load(t.fit(), weights_only=True)
    assert ckpt["content_rescale"] == 1.0 and ckpt["iteration"] == 2
    row = read_history(tmp_path / "m" / "history.csv")[-1]
    assert row["content"] > 0 and 0 <= row["d_accuracy"] <= 1


class _GANStopAt(GANTrainer):
    """An SRGAN trainer that keeps the generator's own weights after each step, and can stop like _StopAt."""

    stop_at = 0

    def step(self, batch, learning_rate):
        out = super().step(batch, learning_rate)
        self.seen = [*getattr(self, "seen", []), {k: v.clone() for k, v in self.model.state_dict().items()}]
        if self.iteration + 1 == self.stop_at:
            self._on_signal(signal.SIGTERM, None)
        return out


@pytest.mark.slow
def test_srgan_keeps_a_moving_average_of_the_generator_and_resumes_it_exactly(tmp_path):
    r = recipe("srgan", model_config=dict(scale=4, blocks=1, width=8), content_layer="mse", data="builtin",
               val_data="builtin", batch_size=4, iterations=4, val_every=4, patch=dict(size=32, stride=64), ema=0.5)
    t = _GANStopAt(r, tmp_path / "a", progress=False)
    ckpt = torch.load(t.fit(), weights_only=True)
    expected = dict(t.seen[0])  # the first step's weights, then avg <- 0.5 avg + 0.5 w after each step
    for w in t.seen[1:]:
        expected = {k: (0.5 * expected[k] + 0.5 * w[k]) if w[k].is_floating_point() else w[k] for k in w}
    floats = [k for k in expected if expected[k].is_floating_point()]
    assert all(torch.allclose(ckpt["model"][k], expected[k], atol=1e-6) for k in floats)
    assert all(torch.equal(ckpt["generator"][k], t.seen[-1][k]) for k in floats)
    assert max((ckpt["model"][k] - ckpt["generator"][k]).abs().max().item() for k in floats) > 1e-4
    plain = torch.load(Trainer(r.replace(ema=0.0), tmp_path / "p", progress=False).fit(), weights_only=True)
    assert all(torch.equal(plain["model"][k], ckpt["generator"][k]) for k in floats)  # the average changes no step
    # What is evaluated and loaded is the average: the recorded PSNR is the saved network's.
    model, _ = load_model(tmp_path / "a" / "last.pt")
    psnr = evaluate(as_method(model, "srgan", "avg", (4.0,)), ["builtin"], [4])[0].psnr
    assert psnr == pytest.approx(read_history(tmp_path / "a" / "history.csv")[-1]["psnr_x4"], abs=1e-3)
    assert "generator" not in srlib.checkpoint.slim(ckpt)
    # Stopped after step 2 and resumed: the same average and generator, bit for bit.
    b = _GANStopAt(r, tmp_path / "b", progress=False)
    b.stop_at = 2
    b.fit()
    again = torch.load(Trainer(r, tmp_path / "b", resume=True, progress=False).fit(), weights_only=True)
    assert all(torch.equal(again[key][k], ckpt[key][k]) for key in ("model", "generator") for k in ckpt[key])
    with pytest.raises(SRError, match=r"ema \(--ema\) must be"):
        recipe("srresnet", ema=0.9).check()
    with pytest.raises(SRError, match=r"ema \(--ema\) must be"):
        r.replace(ema=1.0).check()


@pytest.mark.slow
def test_srgan_r1_penalises_the_discriminators_gradient_at_the_real_crops(tmp_path):
    """With ``r1`` = gamma the discriminator steps on its loss + gamma/2 x the mean over the batch of the
    squared norm of its input gradient at the real crops, computed here by hand on copies."""
    r = recipe("srgan", model_config=dict(scale=4, blocks=1, width=8), content_layer="mse", data="builtin",
               val_data="builtin", batch_size=4, iterations=1, val_every=1, patch=dict(size=32, stride=64), r1=10.0)
    t = Trainer(r, tmp_path / "a", progress=False)
    low, hr = (torch.stack(x) for x in zip(*[t.data[i] for i in range(4)], strict=True))
    gen, steps = copy.deepcopy(t.model), {}
    for gamma in (10.0, 0.0):
        disc = copy.deepcopy(t.disc)
        opt = type(t.opt_disc)(disc.parameters(), **t.opt_disc.defaults)
        x = hr.clone().requires_grad_(True)
        real = disc(x)
        grad, = torch.autograd.grad(real.sum(), x, create_graph=True)
        penalty = grad.pow(2).flatten(1).sum(1).mean()
        with torch.no_grad():
            fake = gen(low)
        (discriminator_loss(real, disc(fake)) + gamma / 2 * penalty).backward()
        opt.step()
        steps[gamma] = [p.detach() for p in disc.parameters()]
    stats = t.step((low, hr), r.lr)
    assert stats["r1"] == pytest.approx(penalty.item(), rel=1e-4) and penalty.item() > 0
    ours = list(t.disc.parameters())
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, steps[10.0], strict=True))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, steps[0.0], strict=True))
    assert not hr.requires_grad  # the caller's batch is left as it was
    with pytest.raises(SRError, match=r"r1 \(--r1\) must be"):
        recipe("srresnet", r1=1.0).check()
    with pytest.raises(SRError, match=r"r1 \(--r1\) must be"):
        r.replace(r1=-1.0).check()


@pytest.mark.slow
def test_srgan_r1_trains_the_discriminator_in_fp16_too(tmp_path, as_on_a_t4):
    """On a T4 or V100 (fp16), R1's second derivative through the discriminator's BatchNorm overflows
    (NaN at any loss scale): every discriminator update was skipped. Its pass on the real crops runs in
    float32: the penalty is the float32 one, the updates are taken, and the history counts the skipped."""
    r = recipe("srgan", model_config=dict(scale=4, blocks=1, width=8), content_layer="mse", data="builtin",
               val_data="builtin", batch_size=4, iterations=3, val_every=3, patch=dict(size=32, stride=64), r1=10.0)
    t = Trainer(r, tmp_path / "a", progress=False)
    assert t.amp_dtype == torch.float16 and t.scalers[1].is_enabled()
    low, hr = (torch.stack(x) for x in zip(*[t.data[i] for i in range(4)], strict=True))
    x = hr.clone().requires_grad_(True)
    grad, = torch.autograd.grad(copy.deepcopy(t.disc)(x).sum(), x)
    before = [p.detach().clone() for p in t.disc.parameters()]
    stats = t.step((low, hr), r.lr)
    assert stats["r1"] == pytest.approx(grad.pow(2).flatten(1).sum(1).mean().item(), rel=1e-5)
    assert stats["d_skipped"] == 0
    assert not all(torch.equal(a, b) for a, b in zip(before, t.disc.parameters(), strict=True))  # D was updated
    t.fit()
    row = read_history(tmp_path / "a" / "history.csv")[-1]
    assert row["d_skipped"] == 0 and row["skipped"] <= 3 and all(map(math.isfinite, (row["r1"], row["d_loss"])))


@pytest.mark.slow
def test_srresnet_then_srgan_from_it(tmp_path):
    small = dict(scale=4, blocks=2, width=16)
    common = dict(data="builtin", val_data="builtin", batch_size=8, iterations=3, patch=dict(size=48, stride=96))
    gen = Trainer(recipe("srresnet", model_config=small, **common), tmp_path / "g", progress=False).fit()
    r = recipe("srgan", model_config=small, generator=str(gen), vgg_weights=None, content_layer="relu2_2", **common)
    t = Trainer(r, tmp_path / "gan", progress=False)
    g0 = torch.load(gen, weights_only=True)["model"]
    assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in g0.items())  # starts from SRResNet
    last = t.fit()
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["iteration"] == 3 and "disc" in ckpt and "opt_disc" in ckpt
    hist = read_history(tmp_path / "gan" / "history.csv")[-1]
    assert {"content", "adversarial", "d_loss", "psnr_x4"} <= set(hist)
    # The discriminator's verdict on the validation crops, recorded with the PSNR.
    assert 0 <= hist["d_real"] <= 1 and 0 <= hist["d_generated"] <= 1 and 0 <= hist["d_accuracy"] <= 1
    assert hist["grid_ratio"] > 0
    # Random VGG features: the content loss was calibrated to the pixel MSE (SRGAN's), and the scale is kept on resume.
    assert ckpt["content_rescale"] == t.content.rescale != 1 / 12.75
    again = Trainer(r.replace(iterations=4), tmp_path / "gan", progress=False, resume=True)
    assert again.content.rescale == ckpt["content_rescale"]
    again.close()
    v = Trainer(VDSR.replace(iterations=1), tmp_path / "v", progress=False).fit()
    shipped = recipe("srgan", model_config=dict(scale=4, blocks=8, width=32), generator="srresnet-x4-small",
                     vgg_weights=None, **common)  # the name of shipped weights starts it too
    start = Trainer(shipped, tmp_path / "s", progress=False)
    weights = load("srresnet-x4-small")[0].state_dict()
    assert all(torch.equal(v, start.model.state_dict()[k]) for k, v in weights.items())
    with pytest.raises(SRError, match="a vdsr checkpoint cannot start an SRGAN generator"):
        Trainer(r.replace(generator=str(v)), tmp_path / "x", progress=False)


def test_retrain_trains_a_shipped_run_again_from_its_recorded_recipe_and_reads_it_once_done(tmp_path):
    """The notebooks' full mode sets a run trained again beside the shipped one: same recipe and
    seed, shortened here (a dry run validates four times), continued or read, never restarted."""
    from srlib.pretrained import retrain

    name, out = "srcnn-x3-915-n32", tmp_path / "again"
    model, info, hist = retrain(name, out, data="builtin", iterations=8)
    shipped = Recipe.from_dict(load(name)[1]["recipe"])
    assert Recipe.from_dict(info["recipe"]) == shipped.replace(iterations=8, val_every=2, data="builtin",
                                                               checkpoint_every=2000, minutes=None, epochs=None)
    assert info["iteration"] == 8 and [int(r["iteration"]) for r in hist] == [2, 4, 6, 8]
    assert model.conv1.out_channels == 32 and not model.training
    stamp = (out / "last.pt").stat().st_mtime_ns
    again = retrain(name, out, data="builtin", iterations=8)  # finished: read, not trained again
    assert (out / "last.pt").stat().st_mtime_ns == stamp and again[1]["iteration"] == 8
    assert torch.equal(again[0].conv1.weight, model.conv1.weight)
