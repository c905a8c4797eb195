"""srlib.spectrum and srlib.perceptual: spectra, same-LR candidates, the VGG choice, fine-tuning."""

import numpy as np
import pytest
import torch

from srlib.data import imresize
from srlib.errors import SRError
from srlib.losses import ContentLoss
from srlib.models import SRResNet
from srlib.perceptual import (
    FineTune,
    VGGChoice,
    choose_vgg,
    content_loss,
    crop_grid,
    discriminator_verdict,
    fine_tune,
    same_lr_candidates,
    vgg_features,
)
from srlib.spectrum import (
    band_energy,
    high_frequency_ratio,
    periodic_energy_ratio,
    radial_power_spectrum,
    streak_map,
    streak_ratio,
)


def test_radial_spectrum_of_a_sinusoid_peaks_at_its_frequency():
    x = np.arange(128)
    img = 0.5 + 0.4 * np.sin(2 * np.pi * 0.25 * x)[None, :].repeat(128, 0)  # 0.25 cycles/pixel
    f, p = radial_power_spectrum(img, bins=32)
    assert abs(f[np.argmax(p)] - 0.25) < 0.5 / 32
    white = np.random.default_rng(0).random((128, 128))
    f, p = radial_power_spectrum(white, bins=8)
    assert p.max() / p.min() < 1.2  # white noise: flat


def test_high_frequency_ratio(rng):
    hr = rng.random((96, 96, 3))
    assert high_frequency_ratio(hr, hr, 4) == pytest.approx(1.0)
    blurry = imresize(imresize(hr, 1 / 4), 4)
    assert high_frequency_ratio(blurry, hr, 4) < 0.05  # bicubic invents almost nothing above the LR Nyquist
    u8 = (hr * 255).round().astype(np.uint8)
    assert high_frequency_ratio(u8, hr, 4) == pytest.approx(1.0, abs=0.01)  # uint8 and float on the same scale
    assert band_energy(hr, 0.0) > band_energy(hr, 0.25) > 0
    with pytest.raises(SRError, match="differ in size"):
        high_frequency_ratio(hr[:64], hr, 4)


def test_same_lr_candidates_share_their_lr_patch_exactly(rng):
    patches = rng.random((5, 32, 32))
    cands, lr = same_lr_candidates(patches, 4)
    assert cands.shape == (5, 32, 32) and lr.shape == (8, 8)
    assert np.allclose(cands[0], patches[0])  # the first candidate is the real patch itself
    for c in cands:
        assert np.abs(imresize(c, 1 / 4) - lr).max() < 1e-10  # MATLAB bicubic of every candidate: the same LR
    assert not np.allclose(cands[1], cands[2])
    mean = cands.mean(0)
    # The mean has the lowest average squared error to the candidates, and less detail than any of them.
    err = lambda e: np.mean([((e - c) ** 2).mean() for c in cands])  # noqa: E731
    assert all(err(mean) < err(c) for c in cands)
    assert all(band_energy(mean, 0.125) < band_energy(c, 0.125) for c in cands)
    with pytest.raises(SRError):
        same_lr_candidates(patches[:, :30, :30], 4)


def test_choose_vgg_falls_back_to_random_features(monkeypatch, tmp_path):
    monkeypatch.setenv("SRLIB_VGG19", str(tmp_path / "missing.pth"))
    c = choose_vgg()
    assert not c.imagenet and c.weights is None and "missing.pth" in c.reason
    assert c.label == "random VGG features" and "Warning" in c._repr_html_() and "RANDOM VGG FEATURES" in repr(c)
    # A file with VGG19's keys is taken (here random weights saved like the ImageNet file).
    from srlib.models import VGG19Features

    vgg = VGG19Features("relu5_4", weights=None)
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, tmp_path / "vgg19.pth")
    monkeypatch.setenv("SRLIB_VGG19", str(tmp_path / "vgg19.pth"))
    c = choose_vgg()
    assert c.imagenet and c.label == "ImageNet VGG features" and "Note" in c._repr_html_()
    assert torch.equal(vgg_features("relu2_2", c).features[0].weight, vgg.features[0].weight)
    assert choose_vgg(None).weights is None


def test_random_features_keep_their_scale_and_see_the_input():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    default = VGGChoice(None)
    vgg = vgg_features("relu5_4", default)
    fx, fy = vgg(x), vgg(y)
    assert 0.05 < fx.abs().mean() < 20  # He initialisation: neither vanishing nor exploding
    assert ((fx - fy) ** 2).mean() / (fx ** 2).mean() > 1e-4  # the features depend on the input
    a, b = vgg_features("relu1_1", default, seed=1), vgg_features("relu1_1", default, seed=1)
    assert torch.equal(a.features[0].weight, b.features[0].weight) and not a.features[0].bias.any()
    assert not torch.equal(a.features[0].weight, vgg_features("relu1_1", default, seed=2).features[0].weight)
    assert content_loss("relu2_2", default)(x, x).item() == 0.0


def test_fine_tune_changes_a_copy_and_trains_a_discriminator():
    torch.manual_seed(0)
    g = SRResNet(4, blocks=1, width=8).eval()
    hr = torch.rand(6, 3, 32, 32)
    data = [(torch.from_numpy(imresize(h.permute(1, 2, 0).double().numpy(), 1 / 4)).permute(2, 0, 1).float(), h)
            for h in hr]
    before = {k: v.clone() for k, v in g.state_dict().items()}
    run = fine_tune(g, data, FineTune("relu2_2", adversarial_weight=1e-3, steps=3, batch_size=2, lr=1e-3))
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())  # the original is untouched
    assert not torch.equal(run.model.tail.weight, g.tail.weight)
    assert len(run.history) == 3 and {"content", "adversarial", "d_loss"} <= set(run.history[0])
    assert run.discriminator is not None and not run.discriminator.training
    # Random features are calibrated: the content loss starts at SRGAN's pixel MSE (on [-1, 1]) of the first batch.
    run0 = fine_tune(g, data[:1], FineTune("relu2_2", steps=1, batch_size=2, lr=0.0))  # the same batch twice
    with torch.no_grad():
        pixel = torch.nn.functional.mse_loss(2 * g(data[0][0][None]) - 1, 2 * hr[:1] - 1).item()
    assert run0.history[0]["content"] == pytest.approx(pixel, rel=1e-3)
    assert fine_tune(g, data, FineTune("mse", steps=2, batch_size=2)).discriminator is None


def test_fine_tune_learning_rate_drop():
    torch.manual_seed(0)
    g = SRResNet(4, blocks=1, width=8).eval()
    data = [(torch.rand(3, 8, 8), torch.rand(3, 32, 32)) for _ in range(4)]
    dropped = fine_tune(g, data, FineTune("mse", steps=3, batch_size=2, lr=1e-2, lr_drop_at=0)).model
    small = fine_tune(g, data, FineTune("mse", steps=3, batch_size=2, lr=1e-3)).model
    big = fine_tune(g, data, FineTune("mse", steps=3, batch_size=2, lr=1e-2)).model
    assert torch.allclose(dropped.tail.weight, small.tail.weight) and not torch.allclose(dropped.tail.weight,
                                                                                         big.tail.weight)


def test_discriminator_warmup_trains_only_the_discriminator():
    torch.manual_seed(0)
    g = SRResNet(4, blocks=1, width=8).eval()
    data = [(torch.rand(3, 4, 4), torch.rand(3, 16, 16)) for _ in range(4)]
    cold = fine_tune(g, data, FineTune("mse", adversarial_weight=1e-3, steps=0, batch_size=2))
    warm = fine_tune(g, data, FineTune("mse", adversarial_weight=1e-3, steps=0, batch_size=2, disc_warmup=3,
                                       lr_disc=1e-3))
    assert torch.equal(warm.model.tail.weight, g.tail.weight) and warm.history == []
    assert not torch.equal(warm.discriminator.classifier[-1].weight, cold.discriminator.classifier[-1].weight)


def test_calibrated_content_loss_starts_at_srgans_pixel_mse():
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 32, 32)
    sr = hr + 0.05 * torch.randn_like(hr)
    loss = ContentLoss("relu2_2", None)
    assert abs(loss(sr, hr).item() / torch.nn.functional.mse_loss(sr, hr).item() - 1) > 0.5  # 1/12.75: another scale
    rescale = loss.calibrate(sr, hr)
    assert loss.rescale == rescale
    # SRGAN's pixel MSE: on images scaled to [-1, 1] (section 3.2), 4 times that of [0, 1] images.
    assert loss(sr, hr).item() == pytest.approx(torch.nn.functional.mse_loss(2 * sr - 1, 2 * hr - 1).item(), rel=1e-4)


def test_crop_grid_cuts_the_same_crops_of_images_of_the_same_shapes(rng):
    colour = (rng.random((100, 70, 3)) * 255).astype(np.uint8)
    grey = rng.random((64, 64))
    batch, spots = crop_grid([colour, grey], 32, count=64)
    assert spots == [(0, r, c) for r in (0, 32, 64) for c in (0, 32)] + [(1, r, c) for r in (0, 32) for c in (0, 32)]
    assert batch.shape == (10, 3, 32, 32) and batch.dtype == torch.float32
    assert torch.allclose(batch[1], torch.from_numpy(colour[:32, 32:64] / 255.0).float().permute(2, 0, 1))
    assert torch.equal(batch[6][0], batch[6][2]) and torch.equal(batch[6][0], torch.from_numpy(grey[:32, :32]).float())
    assert crop_grid([colour, grey], 32, count=3)[1] == [spots[0], spots[3], spots[6], spots[9]]  # spread evenly


class _Brightness(torch.nn.Module):
    """A discriminator that calls bright crops real: logit = 20 x (mean - 0.5)."""

    config = {"size": 16}

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x):
        return self.gain * (x.mean((1, 2, 3)) - 0.5)


def test_discriminator_verdict_counts_right_calls_on_real_and_generated_crops():
    bright, dark = np.full((32, 48, 3), 0.9), np.full((32, 48), 0.1)
    v = discriminator_verdict(_Brightness(), [bright], [dark])  # 6 real crops, 6 generated ones
    assert v["d_accuracy"] == 1.0 and v["d_real"] > 0.99 and v["d_generated"] < 0.01
    v = discriminator_verdict(_Brightness(), [bright], [bright])  # fooled: every crop called real
    assert v["d_accuracy"] == 0.5 and v["d_real"] == v["d_generated"]
    half = np.concatenate([np.full((16, 48, 3), 0.9), np.full((16, 48, 3), 0.1)])
    assert discriminator_verdict(_Brightness(), [bright], [half])["d_accuracy"] == 9 / 12


def test_discriminator_verdict_judges_with_batch_statistics_and_leaves_the_discriminator_alone(rng):
    from srlib.models import Discriminator

    torch.manual_seed(0)
    disc = Discriminator(size=16, width=4).eval()
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    images = [rng.random((32, 32, 3))]
    v = discriminator_verdict(disc, images, [im * 0.5 for im in images])
    assert 0 <= v["d_accuracy"] <= 1
    assert not disc.training and all(torch.equal(before[k], v_) for k, v_ in disc.state_dict().items())
    # as in training: each batch normalised by its own statistics, not by the running averages
    with torch.no_grad():
        train_mode = torch.sigmoid(disc.train()(crop_grid(images, 16)[0])).mean().item()
    disc.load_state_dict(before)
    assert v["d_real"] == pytest.approx(train_mode, abs=1e-6)


def test_periodic_energy_ratio_finds_a_grid(rng):
    from scipy.ndimage import gaussian_filter

    hr = gaussian_filter(rng.random((98, 130)), 1.0)  # not a multiple of 4: cropped
    grid = np.zeros_like(hr)
    grid[::4, ::4] = 0.05  # a dot every 4 pixels, as a x4 sub-pixel stage can make
    assert periodic_energy_ratio(hr, hr, 4) == pytest.approx(1.0)
    assert periodic_energy_ratio(hr + grid, hr, 4) > 10
    assert periodic_energy_ratio(gaussian_filter(hr, 2.0), hr, 4) < 0.5  # a blur removes energy there
    assert periodic_energy_ratio(hr + grid, hr, 3) < 2  # another period does not see it
    with pytest.raises(SRError, match="no whole period"):
        periodic_energy_ratio(hr[:2], hr, 4)


def test_streak_ratio_finds_stripes_beside_edges_and_nothing_else(rng):
    from scipy.ndimage import gaussian_filter

    n, edge = 128, 64
    x = np.arange(n)[None, :].repeat(n, 0).astype(float)
    texture = gaussian_filter(rng.random((n, n)), 1.0) - 0.5  # the HR's own fine detail
    hr = np.clip(np.where(x < edge, 0.25, 0.75) + 0.2 * texture, 0, 1)  # a vertical edge
    beside = ((np.abs(x - edge) >= 3) & (np.abs(x - edge) <= 12)).astype(float)
    parallel = 0.05 * np.sin(2 * np.pi * x / 3.5) * beside  # stripes that run along the edge
    across = 0.05 * np.sin(2 * np.pi * x.T / 3.5) * beside  # the same stripes turned by 90 degrees
    noise = 0.05 * (rng.random((n, n)) - 0.5)
    assert streak_ratio(hr, hr, 4) == pytest.approx(0.0, abs=1e-12)
    assert streak_ratio(hr + parallel, hr, 4) > 1
    assert streak_ratio(hr + across, hr, 4) < -1  # stripes across the edges count against
    assert abs(streak_ratio(hr + noise, hr, 4)) < 0.05  # detail without a direction
    bicubic = imresize(imresize(hr, 1 / 4), 4)
    assert 0 < streak_ratio(bicubic, hr, 4) < 0.2  # its ringing beside a clean step: a little
    assert streak_ratio(bicubic + parallel, hr, 4) > 1
    where = streak_map(hr + parallel, hr, 4)  # NaN where it does not look: far from the edge, on it
    assert np.isnan(where[:, :edge - 14]).all() and np.isnan(where[:, edge - 2:edge + 2]).all()
    assert np.nanmean(where) == pytest.approx(streak_ratio(hr + parallel, hr, 4))
    assert np.nanmean(where[:, edge + 3:edge + 13]) > 1  # the stripes are found where they are
    shifted = np.roll(hr, 1, axis=0)  # the HR's detail, moved along the edge: not invented parallel stripes
    assert streak_ratio(shifted, hr, 4) < 0.1
    with pytest.raises(SRError, match="differ in size"):
        streak_ratio(hr[:64], hr, 4)
    with pytest.raises(SRError, match="at least 32"):
        streak_ratio(hr[:16, :16], hr[:16, :16], 4)
    with pytest.raises(SRError, match="no edge"):
        streak_ratio(texture * 0.01 + 0.5, texture * 0.01 + 0.5, 4)
