"""The losses of the book: MSE and Caffe's Euclidean, VDSR's per-scale log-MSE, SRGAN's content and
adversarial losses.

Chapters: SRCNN and VDSR (the MSE), SRGAN (book/srgan.md, notebook 04: the other losses), the
performance appendix (the per-scale log-MSE of the ``vdsr-cpu`` preset).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .models.vgg import VGG19Features

__all__ = ["mse", "srgan_mse", "euclidean", "log_mse_per_scale", "log_l1_per_scale", "ContentLoss", "adversarial_loss",
           "generator_loss", "discriminator_loss"]


def mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Pixel-wise mean squared error (SRCNN eq. 4, VDSR, SRResNet)."""
    return F.mse_loss(sr, hr)


def srgan_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """SRGAN's pixel MSE (eq. 4, the content loss of SRGAN-MSE): the paper computes it on images
    scaled to [-1, 1] (section 3.2), 4 x the MSE of our [0, 1] images. The factor is what sets the
    adversarial loss's weight of 1e-3 against the content loss: on [0, 1] it would weigh 4 times
    the paper's (Adam is blind to the scale of the whole loss, not to this ratio)."""
    return 4 * F.mse_loss(sr, hr)


def euclidean(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Caffe's EuclideanLoss, which the SRCNN and VDSR papers trained with: the sum of squares
    over 2 x the batch size (the MSE times the pixels per sample over 2: larger gradients)."""
    return (sr - hr).pow(2).sum() / (2 * sr.shape[0])


def _mean_log_per_scale(err: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The mean over the scales in the batch of the log of each scale's mean of ``err`` (one per sample)."""
    return torch.stack([err[scales == s].mean().log() for s in torch.unique(scales)]).mean()


def log_mse_per_scale(sr: torch.Tensor, hr: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The mean, over the scales in the batch, of the log of each scale's MSE: minimising it
    maximises the mean PSNR across scales (PSNR is -10 log10 MSE), where the plain MSE of a
    mixed-scale batch (VDSR) is dominated by the large errors of x4 and learns x2 last. Its
    gradient is each scale's MSE gradient divided by that MSE. ``scales``: each sample's scale."""
    err = (sr - hr).pow(2).flatten(1).mean(1)
    return _mean_log_per_scale(err, scales)


def log_l1_per_scale(sr: torch.Tensor, hr: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """:func:`log_mse_per_scale` with the mean absolute error (L1) in place of the MSE: the same
    balance between scales, with the L1 error that Zhao et al. (2017) and EDSR (Lim et al., 2017)
    train restoration networks with, an option of the ``vdsr-cpu`` preset tested in the
    performance appendix."""
    err = (sr - hr).abs().flatten(1).mean(1)
    return _mean_log_per_scale(err, scales)


class ContentLoss(nn.Module):
    """SRGAN eq. (5): MSE between VGG19 feature maps of SR and HR (``relu2_2``: VGG22,
    ``relu5_4``: VGG54), the features rescaled by 1/12.75 as in the paper so that the
    loss is of the order of the pixel MSE."""

    def __init__(self, layer: str = "relu5_4", weights="imagenet", rescale: float = 1 / 12.75):
        super().__init__()
        self.vgg = VGG19Features(layer, weights)
        self.rescale = rescale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.vgg(hr) * self.rescale
        return F.mse_loss(self.vgg(sr) * self.rescale, target)

    @torch.no_grad()
    def calibrate(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        """Set ``rescale`` so that the loss on ``(sr, hr)`` equals their pixel MSE as SRGAN computes it
        (:func:`srgan_mse`), and return it. Random VGG features have no meaningful scale: the
        paper's 1/12.75 puts ImageNet's at that of its pixel MSE."""
        self.rescale = 1.0
        self.rescale = math.sqrt(srgan_mse(sr, hr).item() / max(self(sr, hr).item(), 1e-20))
        return self.rescale


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """SRGAN eq. (6): mean of -log D(G(x)), computed from logits (softplus(-l) = -log sigmoid(l))."""
    return F.softplus(-fake_logits).mean()


def generator_loss(content: torch.Tensor, fake_logits: torch.Tensor, weight: float = 1e-3) -> torch.Tensor:
    """SRGAN eq. (3): the perceptual loss, content loss + ``weight`` x adversarial loss (1e-3 in the paper)."""
    return content + weight * adversarial_loss(fake_logits)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's side of eq. (2): -log D(real) - log(1 - D(fake)), from logits."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
