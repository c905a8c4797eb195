"""srlib.spectrum and srlib.perceptual: spectra, same-LR candidates, the VGG choice, fine-tuning."""

import numpy as np
import pytest
import torch

from srlib.data import imresize
from srlib.errors import SRError
from srlib.models import SRResNet
from srlib.perceptual import (
    FineTune,
    VGGChoice,
    choose_vgg,
    content_loss,
    fine_tune,
    same_lr_candidates,
    vgg_features,
)
from srlib.spectrum import band_energy, high_frequency_ratio, radial_power_spectrum


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
    # Random features are calibrated: the content loss starts at the pixel MSE of the first batch.
    run0 = fine_tune(g, data[:1], FineTune("relu2_2", steps=1, batch_size=2, lr=0.0))  # the same batch twice
    with torch.no_grad():
        pixel = torch.nn.functional.mse_loss(g(data[0][0][None]), hr[:1]).item()
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
