"""Sparse-coding super-resolution (Yang et al., TIP 2010) and the same computation as a network.

Section 3.2 of the SRCNN paper (Dong et al., TPAMI 2016) reads the sparse-coding pipeline as
a convolutional network. This module builds both sides, so that they can be compared:

- :func:`training_pairs`, :func:`learn_dictionaries`: coupled LR/HR dictionaries learned
  jointly on concatenated patch pairs (FISTA codes, least-squares update, unit-norm atoms).
- :func:`sparse_code_sr`: the pipeline on a whole image, patch by patch: mean removal, K ISTA
  steps on the LR dictionary, HR patch synthesis, overlap averaging.
- ``features="gradients"``: Yang et al.'s LR features instead of raw pixels, the first and
  second derivatives of the interpolated patch in both directions (:func:`gradient_features`),
  each patch's features coded at unit norm and its detail scaled back by that norm. Closer to
  their method; not a convolutional network any more (the division by the norm).
- :class:`SparseCodingNet`: the same numbers from convolutions: LR atoms as filters, K
  unrolled ISTA steps as 1x1 convolutions with soft-thresholding (two shifted ReLUs, LISTA),
  a transposed convolution with the HR atoms divided by the overlap count, plus the input.
- :func:`srcnn_from_dictionaries`: an SRCNN p-1-p whose weights reproduce one ISTA step, the
  starting point for end-to-end training.

Images are Y in [0, 1], the bicubic-interpolated LR image as input (SRCNN's input).

Chapter: SRCNN (notebook 01, sections 1 to 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from torch import nn

from .data import bicubic_degrade, bicubic_restore, load_images, modcrop, to_y
from .errors import SRError
from .models import SRCNN

__all__ = ["Dictionaries", "GRADIENTS", "gradient_features",
           "soft", "ista", "fista", "lipschitz", "training_pairs", "learn_dictionaries",
           "sparse_code_sr", "back_project", "overlap_count", "SparseCodingNet", "srcnn_from_dictionaries",
           "interpolated"]


@dataclass
class Dictionaries:
    """Coupled dictionaries: LR atoms ``dl`` and HR atoms ``dh`` (p*p, n), column k is atom k;
    ``lam`` is the sparsity weight of the codes (lambda of eq. (8) in Yang et al.); ``features``
    says what the LR atoms describe: ``"pixels"`` (mean-removed patches, p*p rows) or
    ``"gradients"`` (:func:`gradient_features` of the patch at unit norm, 4*p*p rows)."""

    dl: torch.Tensor
    dh: torch.Tensor
    lam: float
    features: str = "pixels"

    @property
    def p(self) -> int:
        return int(round(self.dh.shape[0] ** 0.5))

    @property
    def n(self) -> int:
        return self.dl.shape[1]

    def to(self, dtype: torch.dtype) -> Dictionaries:
        return Dictionaries(self.dl.to(dtype), self.dh.to(dtype), self.lam, self.features)

    def save(self, path) -> None:
        """Write the dictionaries to ``path`` (``.npz``)."""
        np.savez_compressed(path, dl=self.dl.numpy(), dh=self.dh.numpy(), lam=self.lam, features=self.features)

    @classmethod
    def load(cls, path) -> Dictionaries:
        with np.load(path) as f:
            return cls(torch.from_numpy(f["dl"]), torch.from_numpy(f["dh"]), float(f["lam"]), str(f["features"]))


#: Yang et al.'s LR features (section III-B of their paper): first and second derivatives,
#: across and down, of the interpolated image.
GRADIENTS = (np.array([[-1.0, 0.0, 1.0]]), np.array([[-1.0], [0.0], [1.0]]),
             np.array([[1.0, 0.0, -2.0, 0.0, 1.0]]), np.array([[1.0], [0.0], [-2.0], [0.0], [1.0]]))


def gradient_features(image: np.ndarray) -> np.ndarray:
    """The four derivative maps of an (H, W) image, (4, H, W) float64: each of :data:`GRADIENTS`
    correlated with the image, its borders extended by repeating the edge pixels."""
    return np.stack([ndimage.correlate(np.asarray(image, dtype=np.float64), k, mode="nearest") for k in GRADIENTS])


def _feature_patches(image: np.ndarray, p: int, features: str, where=None) -> np.ndarray:
    """The LR feature vector of p x p patches of an interpolated image, one row each: every
    position in raster order, or the positions ``where = (rows, cols)``. ``"pixels"``: the patch
    minus its mean; ``"gradients"``: the four derivative maps' patches, concatenated."""
    maps = image[None] if features == "pixels" else gradient_features(image)
    views = [sliding_window_view(m, (p, p)) for m in maps]
    x = np.concatenate([(v[where] if where is not None else v).reshape(-1, p * p) for v in views], axis=1)
    return x - x.mean(1, keepdims=True) if features == "pixels" else x


def _unit(x: torch.Tensor, features: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x / norm, norm)`` per column for gradient features (Yang et al. code unit-norm features,
    and scale the synthesised detail back by the same norm); raw pixels are coded as they are."""
    if features == "pixels":
        return x, torch.ones(1, x.shape[1], dtype=x.dtype, device=x.device)
    norm = x.norm(dim=0, keepdim=True).clamp_min(1e-6)
    return x / norm, norm


def soft(u: torch.Tensor, theta: float | torch.Tensor) -> torch.Tensor:
    """Soft-thresholding, the proximal operator of ``theta * |.|_1``: ``sign(u) max(|u| - theta, 0)``."""
    return torch.sign(u) * torch.clamp(u.abs() - theta, min=0)


def lipschitz(d: torch.Tensor) -> float:
    """``L = ||D||_2^2``, the Lipschitz constant of the gradient of ``0.5 ||x - D z||^2``."""
    return float(torch.linalg.matrix_norm(d.double(), 2) ** 2)


def ista(d: torch.Tensor, x: torch.Tensor, lam: float, steps: int, z: torch.Tensor | None = None) -> torch.Tensor:
    """``steps`` ISTA iterations for ``min_z 0.5 ||x - D z||^2 + lam |z|_1``; ``x`` (m, N) -> codes (n, N).

    From z = 0 the first step is soft(D^T x / L, lam / L); every step is
    z <- soft(z + D^T (x - D z) / L, lam / L) (Daubechies et al. 2004; Gregor and LeCun's form
    z <- soft(W x + S z) with W = D^T / L, S = I - D^T D / L is the same arithmetic).
    """
    L = lipschitz(d)
    z = torch.zeros(d.shape[1], x.shape[1], dtype=x.dtype, device=x.device) if z is None else z
    for _ in range(steps):
        z = soft(z + d.T @ (x - d @ z) / L, lam / L)
    return z


def fista(d: torch.Tensor, x: torch.Tensor, lam: float, steps: int, z: torch.Tensor | None = None) -> torch.Tensor:
    """FISTA (Beck and Teboulle 2009): ISTA with Nesterov momentum, for learning the dictionaries."""
    L = lipschitz(d)
    z = torch.zeros(d.shape[1], x.shape[1], dtype=x.dtype, device=x.device) if z is None else z
    y, t = z, 1.0
    for _ in range(steps):
        z_next = soft(y + d.T @ (x - d @ y) / L, lam / L)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = z_next + (t - 1) / t_next * (z_next - z)
        z, t = z_next, t_next
    return z


def interpolated(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hr, lr_up)``: the HR Y in [0, 1] (cropped to a multiple of ``scale``) and its bicubic
    degradation restored to the HR size (SRCNN's input), both float64 (H, W)."""
    y = to_y(modcrop(hr, scale)).astype(np.float64) / 255.0
    return y, bicubic_restore(bicubic_degrade(y, scale), y.shape)


def training_pairs(data: str = "T91", scale: int = 3, p: int = 7, count: int = 5000, seed: int = 0,
                   features: str = "pixels") -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random co-located patch pairs from the images of ``data``, one per column
    (float64): the interpolated patch's LR feature (``"pixels"``: the patch minus its mean,
    p*p rows; ``"gradients"``: its derivatives at unit norm, 4*p*p rows), and the detail the
    interpolated patch lacks, the HR patch minus it (p*p rows; divided by the same norm).

    With ``"gradients"``, flat patches (feature norm under 0.01, nothing to code) are skipped,
    as Yang et al. skip smooth patches: the count is of the patches kept."""
    if features not in ("pixels", "gradients"):
        raise SRError(f"features must be 'pixels' or 'gradients', not {features!r}")
    rng = np.random.default_rng(seed)
    images = load_images(data)
    xs, ys = [], []
    for k, (_, im) in enumerate(images):
        hr, low = interpolated(im, scale)
        n = count // len(images) + (k < count % len(images))  # an even share from every image
        draws = n if features == "pixels" else 4 * n  # room for the flat patches skipped
        i, j = rng.integers(0, hr.shape[0] - p + 1, draws), rng.integers(0, hr.shape[1] - p + 1, draws)
        x = _feature_patches(low, p, features, (i, j))
        keep = np.arange(n) if features == "pixels" else np.flatnonzero(np.linalg.norm(x, axis=1) >= 0.01)[:n]
        xs.append(x[keep])
        ys.append((sliding_window_view(hr, (p, p)) - sliding_window_view(low, (p, p)))[i[keep], j[keep]]
                  .reshape(len(keep), p * p))  # the detail the interpolated patch lacks
    x, norm = _unit(torch.from_numpy(np.concatenate(xs)).T.contiguous(), features)
    return x, torch.from_numpy(np.concatenate(ys)).T.contiguous() / norm


def learn_dictionaries(x: torch.Tensor, y: torch.Tensor, n_atoms: int = 128, lam: float = 0.01,
                       rounds: int = 20, code_steps: int = 30, seed: int = 0,
                       history: list | None = None, features: str = "pixels") -> Dictionaries:
    """Joint dictionary training (Yang et al., eq. (24)): one dictionary for the concatenated
    pairs [x; y], so that LR and HR patches share their sparse code.

    Alternates FISTA codes (warm-started) and the least-squares dictionary
    D = X Z^T (Z Z^T)^-1 with every atom scaled to unit norm; an unused atom is replaced by a
    random training pair. ``history`` (a list) receives the objective after every round.
    ``features`` names what ``x`` holds (as given to :func:`training_pairs`). Computes in the
    pairs' dtype (float32 halves the time of a large dictionary) and on their device (a GPU's, in
    the notebook's full mode); the dictionaries are returned on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    xy = torch.cat([x, y])
    pick = torch.randperm(xy.shape[1], generator=g)[:n_atoms].to(xy.device)
    d = xy[:, pick] / xy[:, pick].norm(dim=0).clamp_min(1e-12)
    z = None
    for _ in range(rounds):
        z = fista(d, xy, lam, code_steps, z)
        used = z.abs().sum(1) > 0
        gram = (z @ z.T).double() + 1e-8 * torch.eye(n_atoms, dtype=torch.float64, device=z.device)
        d_new = torch.linalg.solve(gram, (z @ xy.T).double()).T.to(xy.dtype)  # least squares: argmin_D ||XY - D Z||^2
        fresh = xy[:, torch.randint(xy.shape[1], (n_atoms,), generator=g).to(xy.device)]
        d_new = torch.where(used, d_new, fresh)
        d = d_new / d_new.norm(dim=0).clamp_min(1e-12)  # unit-norm atoms (the constraint of eq. (24))
        if history is not None:
            r = xy - d @ z
            history.append(float(0.5 * (r * r).sum() / xy.shape[1] + lam * z.abs().sum() / xy.shape[1]))
    m = x.shape[0]
    return Dictionaries(d[:m].cpu().contiguous(), d[m:].cpu().contiguous(), lam, features)


def overlap_count(shape: tuple[int, int], p: int) -> np.ndarray:
    """How many p x p patches (all positions inside the image) cover each pixel: (H, W)."""
    h, w = shape
    rows = np.minimum(np.minimum(np.arange(h) + 1, h - np.arange(h)), min(p, h - p + 1))
    cols = np.minimum(np.minimum(np.arange(w) + 1, w - np.arange(w)), min(p, w - p + 1))
    return np.outer(rows, cols).astype(np.float64)


def sparse_code_sr(lr_up: np.ndarray, dicts: Dictionaries, steps: int = 10, chunk: int = 20000,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """Sparse-coding SR of an interpolated image (H, W) in [0, 1], patch by patch (Yang et al.,
    section III): every overlapping p x p patch's LR feature (its pixels minus their mean, or
    its derivatives at unit norm: ``dicts.features``) is coded by ``steps`` ISTA steps on ``dl``
    (from zero), its HR patch is the LR patch plus the detail ``dh z`` (times the norm), and the
    overlaps are averaged (the LR patches average back to ``lr_up`` itself).

    Computes in the dictionaries' dtype (float64 for exact comparisons), on ``device`` (a GPU's in
    the notebook's full mode: large dictionaries code whole images in seconds there).
    """
    p, dtype = dicts.p, dicts.dl.dtype
    dl, dh = dicts.dl.to(device), dicts.dh.to(device)
    patches = torch.from_numpy(_feature_patches(np.asarray(lr_up, dtype=np.float64), p, dicts.features))
    rows, cols = lr_up.shape[0] - p + 1, lr_up.shape[1] - p + 1
    hr = np.empty((len(patches), p * p))
    for i in range(0, len(patches), chunk):
        x, norm = _unit(patches[i:i + chunk].to(device, dtype).T, dicts.features)
        z = ista(dl, x, dicts.lam, steps)  # the sparse code of every patch
        hr[i:i + chunk] = (dh @ z * norm).T.double().cpu().numpy()  # the HR detail of every patch
    out = np.zeros(lr_up.shape)
    hr = hr.reshape(rows, cols, p, p)
    for a in range(p):  # each patch adds its pixels at its place ...
        for b in range(p):
            out[a:a + rows, b:b + cols] += hr[:, :, a, b]
    return out / overlap_count(lr_up.shape, p) + lr_up  # ... the overlaps are averaged, the LR patches added back


def back_project(sr: np.ndarray, low: np.ndarray, scale: int, iters: int = 20) -> np.ndarray:
    """Yang et al.'s global reconstruction constraint (section II-C): the SR image is moved by
    iterative back-projection towards the images whose degradation is ``low``,
    x <- x + U(low - D(x)), with D and U the protocol's bicubic down- and up-scaling (Yang et al.'s
    code blurs the residual with a Gaussian instead). Not part of the network of section 2."""
    for _ in range(iters):
        sr = sr + bicubic_restore(low - bicubic_degrade(sr, scale), sr.shape)
    return sr


class SparseCodingNet(nn.Module):
    """The sparse-coding pipeline as a convolutional network (SRCNN paper, section 3.2).

    - layer 1: a p x p convolution with the n LR atoms, made zero-mean (that is the mean
      removal), divided by L: u = W * x;
    - K unrolled ISTA steps: z_1 = soft(u), z_{k+1} = soft(u + S z_k), S = I - D_l^T D_l / L a
      1x1 convolution, soft(v) = relu(v - theta) - relu(-v - theta) (LISTA, Gregor and LeCun 2010);
    - last layer: a transposed p x p convolution with the HR atoms (every patch added at its
      place), divided by the fixed overlap count, plus the input (the LR patches, averaged
      back over their overlaps, are the interpolated image itself).

    With the weights of :meth:`from_dictionaries` its output is :func:`sparse_code_sr`'s.
    """

    def __init__(self, p: int = 7, n: int = 128, steps: int = 10):
        super().__init__()
        self.p, self.n, self.steps = p, n, steps
        self.extract = nn.Conv2d(1, n, p, bias=False)  # W: zero-mean LR atoms / L
        self.mutual = nn.Conv2d(n, n, 1, bias=False)  # S = I - D_l^T D_l / L
        self.theta = nn.Parameter(torch.tensor(0.01))  # lambda / L
        self.atoms = nn.ConvTranspose2d(n, 1, p, bias=False)  # HR atoms

    @classmethod
    def from_dictionaries(cls, dicts: Dictionaries, steps: int = 10) -> SparseCodingNet:
        if dicts.features != "pixels":
            raise SRError("the network form codes raw pixels: dictionaries of gradient features divide each "
                          "patch by its norm, which no convolution does")
        p, n, dl = dicts.p, dicts.n, dicts.dl
        net = cls(p, n, steps).to(dl.dtype)
        L = lipschitz(dl)
        with torch.no_grad():
            zero_mean = dl - dl.mean(0, keepdim=True)  # <a, x - mean(x)> = <a - mean(a), x>
            net.extract.weight.copy_((zero_mean / L).T.reshape(n, 1, p, p))
            net.mutual.weight.copy_((torch.eye(n, dtype=dl.dtype) - dl.T @ dl / L)[:, :, None, None])
            net.theta.fill_(dicts.lam / L)
            net.atoms.weight.copy_(dicts.dh.T.reshape(n, 1, p, p))
        return net

    def soft(self, v: torch.Tensor) -> torch.Tensor:
        return torch.relu(v - self.theta) - torch.relu(-v - self.theta)  # soft threshold from two ReLUs

    def codes(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """The sparse code of every patch: (B, n, H - p + 1, W - p + 1)."""
        k = self.steps if steps is None else steps
        return self.codes_along(x, [k])[k]

    def codes_along(self, x: torch.Tensor, steps: list[int]) -> dict[int, torch.Tensor]:
        """:meth:`codes` after each number of ISTA steps in ``steps``, in one pass of the largest:
        the same tensors as one call per number, for the cost of one."""
        if not steps or min(steps) < 1:
            raise SRError(f"ISTA steps must be at least 1, not {sorted(steps)}")
        u = self.extract(x)
        z = self.soft(u)
        out = {1: z} if 1 in steps else {}
        for k in range(2, max(steps) + 1):
            z = self.soft(u + self.mutual(z))  # one ISTA step: z <- soft(W x + S z)
            if k in steps:
                out[k] = z
        return out

    def reconstruct(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The HR image from ``x`` and the codes ``z`` of its patches: every patch's HR detail
        (the HR atoms) added at its place, averaged over the overlaps, on the input."""
        p = self.p
        box = torch.ones(1, 1, p, p, dtype=x.dtype, device=x.device)
        ones = torch.ones(1, 1, x.shape[-2] - p + 1, x.shape[-1] - p + 1, dtype=x.dtype, device=x.device)
        count = F.conv_transpose2d(ones, box)  # how many patches cover each pixel
        return self.atoms(z) / count + x

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return self.reconstruct(x, self.codes(x, steps))


def srcnn_from_dictionaries(dicts: Dictionaries) -> SRCNN:
    """An SRCNN p-1-p (n1 = n2 = 2n + 1, 'same' padding, float32) that computes one ISTA step of
    the sparse-coding pipeline away from the borders:

    - conv1: the atoms for relu(u - theta), their negatives for relu(-u - theta), and a centred
      delta that passes the input (a positive image passes a ReLU unchanged); biases -theta, 0;
    - conv2: the identity (1x1), ReLU does nothing on these non-negative maps;
    - conv3: the HR atoms (flipped: conv2d correlates) and their negatives over p^2 (the overlap
      count away from the borders), and the delta for the input.
    """
    p, n = dicts.p, dicts.n
    net = SparseCodingNet.from_dictionaries(dicts.to(torch.float64), steps=1)
    w = net.extract.weight.detach()
    delta = torch.zeros(1, 1, p, p, dtype=torch.float64)
    delta[..., p // 2, p // 2] = 1.0
    srcnn = SRCNN(p, 1, p, n1=2 * n + 1, n2=2 * n + 1, padding="same", init="he")
    hr = net.atoms.weight.detach().flip(-2, -1)  # (n, 1, p, p)
    with torch.no_grad():
        srcnn.conv1.weight.copy_(torch.cat([w, -w, delta]))
        srcnn.conv1.bias.copy_(torch.cat([-net.theta.detach().expand(2 * n), torch.zeros(1, dtype=w.dtype)]))
        srcnn.conv2.weight.copy_(torch.eye(2 * n + 1)[:, :, None, None])
        srcnn.conv2.bias.zero_()
        srcnn.conv3.weight.copy_(torch.cat([hr / (p * p), -hr / (p * p), delta]).transpose(0, 1))
        srcnn.conv3.bias.zero_()
    return srcnn
