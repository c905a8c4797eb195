"""Tools of the notebook on perceptual loss and adversarial training (SRGAN, Ledig et al. 2017).

* :func:`choose_vgg`: the one place that decides whether the content loss gets ImageNet
  VGG19 features or random ones (offline), and says so;
* :func:`same_lr_candidates`: several HR patches with exactly the same LR patch (the
  idea of the paper's Figure 3: the MSE-optimal answer is their blurry mean);
* :func:`fine_tune`: SRResNet fine-tuned with MSE, a VGG content loss, and optionally
  SRGAN's adversarial loss against a discriminator trained alongside;
* :func:`crop_grid` and :func:`discriminator_verdict`: what a discriminator says about the
  same crops of real and generated images (the trainer records it at every validation).

Chapter: SRGAN (book/srgan.md, notebook 04).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.resize import resize_matrix
from .errors import SRError
from .losses import ContentLoss, adversarial_loss, discriminator_loss, generator_loss, srgan_mse
from .models import Discriminator, VGG19Features

__all__ = ["VGGChoice", "choose_vgg", "vgg_features", "downscale_operator", "same_lr_candidates",
           "FineTune", "Run", "fine_tune", "content_loss", "crop_grid", "discriminator_verdict"]


@dataclass(frozen=True)
class VGGChoice:
    """Which VGG19 weights the content loss uses: ``weights`` goes to :class:`VGG19Features`."""

    weights: str | Path | None
    reason: str = ""  # why the ImageNet weights could not be had

    @property
    def imagenet(self) -> bool:
        return self.weights is not None

    @property
    def label(self) -> str:
        """For figure titles: which features a result was computed with."""
        return "ImageNet VGG features" if self.imagenet else "random VGG features"

    def message(self) -> str:
        if self.imagenet:
            return "The content loss uses the ImageNet-trained VGG19, as in the paper."
        return ("The ImageNet VGG19 weights are not available here, so every VGG result below uses randomly "
                "initialised VGG19 features (He initialisation, fixed seed), labelled 'random VGG features'. "
                "They are not the paper's perceptual features: do not read them as such. On a machine with "
                f"internet (e.g. Colab) the same code downloads the real weights. Reason: {self.reason}")

    def _repr_html_(self) -> str:  # a visible admonition in Jupyter, Colab and the book
        kind, title, colour = ("note", "Note", "#2e7d32") if self.imagenet else ("warning", "Warning", "#e65100")
        return (f'<div class="admonition {kind}" style="border-left: 6px solid {colour}; padding: 0.4em 0.8em; '
                f'background: #fff8e1;"><p class="admonition-title" style="font-weight: bold; margin: 0;">'
                f"{title}: {self.label}</p><p>{self.message()}</p></div>")

    def __repr__(self) -> str:
        return f"{self.label.upper()}: {self.message()}"


def choose_vgg(weights: str | Path | None = "imagenet") -> VGGChoice:
    """Try the ImageNet VGG19 (``$SRLIB_VGG19``, torch.hub's cache, a download) or the file
    ``weights``; fall back to random features, with the reason, when it cannot be had."""
    if weights is None:
        return VGGChoice(None, "random features were asked for")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            VGG19Features("relu1_1", weights)  # quiet: torch.hub prints "Downloading ..."
    except SRError as e:
        return VGGChoice(None, str(e))
    return VGGChoice(weights)


def vgg_features(layer: str, choice: VGGChoice, seed: int = 0) -> VGG19Features:
    """VGG19 up to ``layer`` with the chosen weights (random: He initialisation drawn from ``seed``)."""
    return VGG19Features(layer, choice.weights, seed=seed)


def content_loss(layer: str, choice: VGGChoice, seed: int = 0) -> ContentLoss:
    """SRGAN eq. (5) on ``layer`` ("relu2_2": VGG22, "relu5_4": VGG54) with the chosen weights."""
    loss = ContentLoss(layer, weights=None)
    loss.vgg = vgg_features(layer, choice, seed)
    return loss


# ----- regression to the mean ---------------------------------------------------------------
def downscale_operator(size: int, scale: int) -> np.ndarray:
    """``(size/scale, size)`` matrix D of MATLAB's bicubic 1/``scale``: LR = D X D^T for a square patch X."""
    return resize_matrix(size, size // scale, 1 / scale)


def same_lr_candidates(patches: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """HR patches that all have exactly the LR patch of ``patches[0]``: ``(candidates, low)``.

    Candidate k keeps the part of ``patches[0]`` the LR patch determines (its projection
    on the row space of the downscaling, P X P with P = D^+ D) and takes the rest (the part
    the downscaling erases, X - P X P) from ``patches[k]``: real detail, invisible in the LR.
    """
    p = np.asarray(patches, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] != p.shape[2] or p.shape[1] % scale:
        raise SRError(f"expected (K, n, n) patches with n a multiple of {scale}, got shape {p.shape}")
    d = downscale_operator(p.shape[1], scale)
    proj = np.linalg.pinv(d) @ d  # symmetric projector on the row space of D
    seen = proj @ p[0] @ proj
    candidates = seen + (p - proj @ p @ proj)
    return candidates, d @ p[0] @ d.T


# ----- fine-tuning SRResNet with the losses of SRGAN ------------------------------------------
@dataclass
class FineTune:
    """One fine-tuning run of the generator (the quick defaults; the paper's in the notebook)."""

    content: str = "mse"  # "mse", or a VGG19 layer: "relu2_2" (VGG22), "relu5_4" (VGG54)
    adversarial_weight: float = 0.0  # SRGAN eq. (3): 1e-3
    steps: int = 20
    batch_size: int = 4
    lr: float = 1e-4  # Adam, beta1 0.9 (section 3.2)
    lr_drop_at: int | None = None  # SRGAN: 1e5 steps at 1e-4, then at 1e-5
    lr_disc: float | None = None  # the discriminator's learning rate (None: ``lr``)
    disc_warmup: int = 0  # steps that train only the discriminator, against the starting generator
    batchnorm_stats: bool = False  # re-estimate BatchNorm statistics (no: too few crops per batch)
    calibrate: bool = True  # random features: rescale so the content loss starts at the pixel MSE
    seed: int = 0


@dataclass
class Run:
    """The outcome of :func:`fine_tune`."""

    model: nn.Module  # the generator, in eval mode
    history: list[dict]  # losses per step
    discriminator: nn.Module | None  # trained alongside (adversarial runs only), in eval mode


def fine_tune(generator: nn.Module, data, cfg: FineTune, choice: VGGChoice | None = None,
              device: str | torch.device = "cpu") -> Run:
    """A copy of ``generator`` trained ``cfg.steps`` steps on ``data`` (``(low, hr)`` items, e.g.
    :class:`~srlib.data.SRGANPatches`) with ``cfg``'s losses; the original is left unchanged."""
    g = torch.Generator().manual_seed(cfg.seed)
    gen = copy.deepcopy(generator).to(device)
    gen.train(cfg.batchnorm_stats)
    if cfg.content == "mse":
        content = srgan_mse
    else:
        content = content_loss(cfg.content, choice or VGGChoice(None), cfg.seed).to(device)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    adversarial, disc = cfg.adversarial_weight > 0, None
    if adversarial:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            disc = Discriminator(size=data[0][1].shape[-1]).to(device).train()
        lr_d = cfg.lr_disc if cfg.lr_disc is not None else cfg.lr
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr_d, betas=(0.9, 0.999))

    def disc_step(sr: torch.Tensor, hr: torch.Tensor) -> float:  # -log D(hr) - log(1 - D(G(lr))), eq. (2)
        opt_d.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(disc(hr), disc(sr.detach()))
        d_loss.backward()
        opt_d.step()
        return d_loss.item()

    def batch():
        idx = torch.randint(len(data), (cfg.batch_size,), generator=g).tolist()
        lr_img, hr = zip(*(data[i] for i in idx), strict=True)
        return torch.stack(lr_img).to(device), torch.stack(hr).to(device)

    if cfg.content != "mse" and cfg.calibrate and not (choice and choice.imagenet):
        lr_img, hr = batch()  # random features have no meaningful scale: match the pixel MSE at the start
        with torch.no_grad():
            content.calibrate(gen(lr_img), hr)
    for _ in range(cfg.disc_warmup if adversarial else 0):
        lr_img, hr = batch()
        with torch.no_grad():
            sr = gen(lr_img)
        disc_step(sr, hr)
    history = []
    for step in range(cfg.steps):
        if step == cfg.lr_drop_at:
            for o in [opt] + ([opt_d] if adversarial else []):
                for group in o.param_groups:
                    group["lr"] *= 0.1
        lr_img, hr = batch()
        sr = gen(lr_img)
        row = {}
        if adversarial:
            row["d_loss"] = disc_step(sr, hr)
        opt.zero_grad(set_to_none=True)
        loss = content(sr, hr)  # l_X, eq. (4) or (5)
        row["content"] = loss.item()
        if adversarial:  # + 1e-3 l_Gen, eq. (3) and (6)
            fake_logits = disc(sr)
            loss = generator_loss(loss, fake_logits, cfg.adversarial_weight)
            row["adversarial"] = adversarial_loss(fake_logits).item()
        loss.backward()
        opt.step()
        if not math.isfinite(loss.item()):
            raise SRError(f"fine-tuning diverged (loss {loss.item()}); lower the learning rate")
        history.append(row)
    return Run(gen.eval(), history, disc.eval() if disc is not None else None)


def crop_grid(images: list[np.ndarray], size: int, count: int = 64) -> tuple[torch.Tensor, list[tuple]]:
    """About ``count`` ``size`` x ``size`` crops on a grid over ``images`` (RGB, uint8 or float in
    [0, 1]; grey images repeated to three channels), spread evenly over them: the batch
    ``(N, 3, size, size)`` in [0, 1] and the crops' ``(image, row, column)``. The same images'
    shapes give the same crops, so real and generated images can be compared crop for crop."""
    images = [im / 255.0 if im.dtype == np.uint8 else np.clip(im, 0, 1) for im in images]
    images = [im if im.ndim == 3 else np.repeat(im[..., None], 3, -1) for im in images]
    spots = [(i, r, c) for i, im in enumerate(images) for r in range(0, im.shape[0] - size + 1, size)
             for c in range(0, im.shape[1] - size + 1, size)]
    spots = spots[::max(1, len(spots) // count)]
    batch = np.stack([images[i][r:r + size, c:c + size].transpose(2, 0, 1) for i, r, c in spots])
    return torch.from_numpy(batch).float(), spots


@torch.no_grad()
def discriminator_verdict(disc: nn.Module, real: list[np.ndarray], generated: list[np.ndarray],
                          count: int = 64) -> dict[str, float]:
    """The discriminator's verdict (SRGAN section 2.1's game) on the same grid of crops of the
    real HR images and of generated ones: the mean probability of "real" it gives each
    (``d_real``, ``d_generated``) and the fraction of all crops it classifies right
    (``d_accuracy``; real when D > 0.5). Chance is 0.5.

    The discriminator judges as it does in training, where the generator meets it: its batch
    normalization uses the statistics of each batch, one of real crops and one of generated
    ones (its running averages mix both kinds of batch, and judging with them puts a
    discriminator that separates the two in training near chance). It judges a copy: the
    running statistics of ``disc`` are left as they are."""
    size = disc.config["size"]
    device = next(disc.parameters()).device
    judge = copy.deepcopy(disc).train()
    p_real = torch.sigmoid(judge(crop_grid(real, size, count)[0].to(device)).float())
    p_gen = torch.sigmoid(judge(crop_grid(generated, size, count)[0].to(device)).float())
    right = (p_real > 0.5).sum().item() + (p_gen <= 0.5).sum().item()
    return {"d_real": p_real.mean().item(), "d_generated": p_gen.mean().item(),
            "d_accuracy": right / (len(p_real) + len(p_gen))}
