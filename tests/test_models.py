import pytest
import torch

from srlib import SRError
from srlib.losses import ContentLoss, adversarial_loss, discriminator_loss, generator_loss, mse, srgan_mse
from srlib.models import SRCNN, VDSR, Discriminator, SRResNet, VGG19Features
from srlib.models.vgg import layer_names


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_srcnn_sizes_and_parameter_counts():
    assert n_params(SRCNN.preset("9-1-5")) == 8129  # the paper's 9-1-5 on one channel
    assert n_params(SRCNN.preset("9-5-5")) == 64 * 81 + 64 + 32 * 64 * 25 + 32 + 32 * 25 + 1
    m = SRCNN.preset("9-5-5")
    assert m.shrink == 8 and m(torch.rand(2, 1, 33, 33)).shape == (2, 1, 17, 17)
    m.padding = "same"
    assert m.shrink == 0 and m(torch.rand(1, 1, 30, 20)).shape == (1, 1, 30, 20)
    # Section 4.1's initialisation: N(0, 0.001), zero bias.
    w = SRCNN(n1=128).conv1.weight
    assert abs(w.std().item() - 1e-3) < 1e-4 and SRCNN().conv2.bias.abs().max() == 0
    with pytest.raises(ValueError):
        SRCNN.preset("9-9-9")


def test_srcnn_four_layers_and_colour():
    # Section 4.3.3's 9-1-1-5 (n1 = 64, n2 = 32, n2b = 16): one more 1x1 mapping layer.
    m = SRCNN(9, 1, 5, f2b=1, n2b=16)
    assert [tuple(c.weight.shape) for c in m.convs()] == [(64, 1, 9, 9), (32, 64, 1, 1), (16, 32, 1, 1), (1, 16, 5, 5)]
    assert n_params(m) == 8129 - (32 * 25 + 1) + (16 * 32 + 16) + (16 * 25 + 1)
    assert m.shrink == 6 and m(torch.rand(1, 1, 33, 33)).shape == (1, 1, 21, 21)
    x = torch.rand(1, 1, 20, 20)
    with torch.no_grad():  # the fourth layer is on the path: zeroing it changes the output to B3
        m.conv2b.weight.zero_(), m.conv2b.bias.zero_()
        assert torch.allclose(m(torch.rand(1, 1, 33, 33)), m.conv3.bias.view(1, 1, 1, 1).expand(1, 1, 21, 21))
    # Three-layer configurations record nothing new, so the shipped weights' configurations rebuild them.
    assert SRCNN().config == dict(f1=9, f2=1, f3=5, n1=64, n2=32, channels=1, init="gaussian")
    assert "conv2b" not in SRCNN().state_dict().keys().__repr__()
    # Section 4.4: three channels in and out, the colour space recorded.
    for colour in ("rgb", "ycbcr"):
        c = SRCNN(colour=colour, padding="same")
        assert c.config["channels"] == 3 and c.config["colour"] == colour
        assert c(x.repeat(1, 3, 1, 1)).shape == (1, 3, 20, 20)
    assert SRCNN(channels=3).colour == "rgb" and SRCNN(**SRCNN(colour="ycbcr").config).colour == "ycbcr"
    with pytest.raises(ValueError, match="colour"):
        SRCNN(colour="lab")
    with pytest.raises(ValueError, match="channels"):
        SRCNN(colour="ycbcr", channels=1)


def test_vdsr():
    assert n_params(VDSR(20)) == 665_921
    m = VDSR(5)
    x = torch.rand(2, 1, 23, 31)
    assert m(x).shape == x.shape
    # Residual learning: the output is the input plus the last layer's output.
    torch.nn.init.zeros_(m.body[-1].weight)
    torch.nn.init.zeros_(m.body[-1].bias)
    assert torch.equal(m(x), x)
    assert VDSR(5, residual=False)(x).shape == x.shape


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_scales(scale):
    m = SRResNet(scale, blocks=2)
    assert m(torch.rand(1, 3, 12, 10)).shape == (1, 3, 12 * scale, 10 * scale)
    n_shuffles = sum(isinstance(x, torch.nn.PixelShuffle) for x in m.upsample)
    assert n_shuffles == {2: 1, 3: 1, 4: 2}[scale]


def test_srresnet_resize_convolution_keeps_a_flat_region_flat():
    """A flat LR image: the paper's sub-pixel stages give each position of a 4 x 4 output block its
    own value (a grid of period 4, even at initialisation); resize-convolution cannot."""
    flat = torch.full((1, 3, 48, 48), 0.5)
    for upsample, grid in [("subpixel", True), ("nearest", False), ("bilinear", False)]:
        torch.manual_seed(0)
        m = SRResNet(4, blocks=2, width=16, upsample=upsample).eval()
        with torch.no_grad():
            inner = m(flat)[0, :, 88:104, 88:104]  # far from the borders' zero padding
        assert m.config["upsample"] == upsample
        assert (inner.std((1, 2)).max().item() > 1e-4) == grid, upsample  # spatial, in each channel
        if grid:  # the pattern repeats every 4 pixels, exactly
            assert torch.allclose(inner[:, :4, :4].repeat(1, 4, 4), inner, atol=1e-6)
    with pytest.raises(ValueError, match="upsample"):
        SRResNet(4, blocks=1, upsample="bicubic")


def test_srresnet_bilinear_stages_keep_a_ramp_a_ramp_where_nearest_makes_steps():
    """A linear ramp: after a bilinear enlargement and the stage's convolution the features are still
    a ramp (no pattern of period 2), after a nearest one a staircase, whose second difference
    alternates in sign every pixel."""
    ramp = (torch.arange(24.0) / 24).expand(1, 4, 24, 24)  # varies along the width only
    for mode, steps in [("nearest", True), ("bilinear", False)]:
        torch.manual_seed(0)
        stage = SRResNet(2, blocks=1, width=4, upsample=mode).upsample
        with torch.no_grad():
            inner = stage[1](stage[0](ramp))[0, :, 24, 4:-4]  # the enlargement and the convolution, inside
        second = inner[:, 2:] - 2 * inner[:, 1:-1] + inner[:, :-2]
        assert (second.abs().max().item() > 1e-3) == steps, mode


def test_discriminator():
    d = Discriminator(96)
    assert d(torch.rand(3, 3, 96, 96)).shape == (3,)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    assert d.classifier[1].out_features == 1024


def test_vgg19_layout_matches_imagenet_state_dict_keys():
    names = layer_names()
    assert names.index("relu2_2") == 8 and names.index("relu5_4") == 35 and len(names) == 37
    v = VGG19Features("relu5_4", weights=None)
    keys = list(v.state_dict())
    assert keys[0] == "features.0.weight" and keys[-1] == "features.34.bias" and len(keys) == 32
    assert all(not p.requires_grad for p in v.parameters())
    v.train()
    assert not v.training
    assert VGG19Features("relu2_2", weights=None)(torch.rand(1, 3, 32, 32)).shape == (1, 128, 16, 16)


def test_vgg19_weights_from_file_and_clear_errors(tmp_path, monkeypatch):
    src = VGG19Features("relu5_4", weights=None)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # published files carry the classifier too
    torch.save(state, tmp_path / "vgg19.pth")
    v = VGG19Features("relu2_2", weights=tmp_path / "vgg19.pth")
    assert torch.equal(v.features[0].weight, src.features[0].weight)
    with pytest.raises(SRError, match="no such VGG19 weights file"):
        VGG19Features(weights=tmp_path / "missing.pth")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(SRError, match="not a VGG19 state_dict"):
        VGG19Features(weights=tmp_path / "other.pth")
    with pytest.raises(SRError, match="unknown VGG19 layer"):
        VGG19Features("relu9_9", weights=None)
    # Offline with nothing cached: one clear message saying how to provide the file.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SRLIB_VGG19", raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _offline)
    with pytest.raises(SRError, match="SRLIB_VGG19=PATH"):
        VGG19Features()


def _offline(*args, **kwargs):
    raise OSError("network unreachable")


def test_losses():
    x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert mse(x, y).item() == pytest.approx(((x - y) ** 2).mean().item())
    # SRGAN's MSE is on images scaled to [-1, 1] (its section 3.2): the weight 1e-3 of eq. (3) is against it.
    assert srgan_mse(x, y).item() == pytest.approx(((2 * x - 1 - (2 * y - 1)) ** 2).mean().item(), rel=1e-6)
    logits = torch.tensor([-30.0, 0.0, 30.0])
    # -log sigmoid(l), stable for large |l|
    assert torch.allclose(adversarial_loss(logits), torch.tensor([30.0, 0.6931472, 0.0]).mean(), atol=1e-6)
    assert discriminator_loss(torch.tensor([30.0]), torch.tensor([-30.0])).item() < 1e-6
    c = ContentLoss("relu2_2", weights=None)
    assert c(x, x).item() == 0 and c(x, y).item() > 0
    content, fake = c(x, y), torch.zeros(2)  # D(G(x)) = 1/2: -log D = log 2
    assert generator_loss(content, fake).item() == pytest.approx(content.item() + 1e-3 * 0.6931472, rel=1e-5)


def test_random_vgg19_features_still_depend_on_the_input():
    torch.manual_seed(0)
    v = VGG19Features("relu5_4", weights=None)
    x = torch.rand(1, 3, 64, 64)
    a, b = v(x), v((x + 0.1 * torch.randn_like(x)).clamp(0, 1))
    assert a.abs().mean() > 1e-3  # the signal survives 16 random layers
    assert ((a - b).norm() / a.norm()).item() > 1e-3
