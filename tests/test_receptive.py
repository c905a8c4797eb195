"""Receptive fields: the theory from the layers, and the gradient support that must match it."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from srlib.models import SRCNN, VDSR, Discriminator, SRResNet
from srlib.receptive import (
    effective_rf,
    empirical_rf,
    gain_by_gradient,
    input_gradient,
    mass_width,
    receptive_field,
    support,
)


@pytest.mark.parametrize("preset, size", [("9-1-5", 13), ("9-3-5", 15), ("9-5-5", 17)])
def test_srcnn_theory(preset, size):
    assert receptive_field(SRCNN.preset(preset)).size == size
    assert receptive_field(SRCNN.preset(preset, padding="same")).size == size  # padding does not matter


@pytest.mark.parametrize("depth", [2, 3, 5, 10, 20])
def test_vdsr_theory_is_2d_plus_1(depth):
    rf = receptive_field(VDSR(depth))
    assert rf.size == 2 * depth + 1 and rf.jump == 1 and rf.depth == depth


def test_vdsr_20_sees_41_pixels():
    assert receptive_field(VDSR(20)).size == 41


@pytest.mark.parametrize("scale, blocks, size, jump", [(4, 16, 80, 0.25), (2, 16, 81, 0.5), (4, 2, 24, 0.25),
                                                       (3, 4, 31 + 2 / 3, 1 / 3)])
def test_srresnet_theory_in_lr_pixels(scale, blocks, size, jump):
    # head 9x9: 9; 2 B + 1 convs 3x3: + 2 (2B + 1); upsampling convs 3x3 at LR, then at x2 (x4 only);
    # the 9x9 tail on the HR grid adds 8 / scale LR pixels
    rf = receptive_field(SRResNet(scale, blocks))
    assert math.isclose(rf.size, size) and math.isclose(rf.jump, jump)


def test_strides_dilations_and_pooling():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, dilation=2))
    rf = receptive_field(net)  # 3; + 1 * 2 = 5; + 2 * 2 * 4 = 21
    assert (rf.size, rf.jump) == (21, 4)
    assert [x.size for x in rf.layers] == [3, 5, 21]


def test_discriminator_features_and_a_clear_error_for_dense_layers():
    assert receptive_field(Discriminator().features).size == 61  # 3 + 2 (1 + 2 + 2 + 4 + 4 + 8 + 8)
    with pytest.raises(ValueError, match="whole input"):
        receptive_field(Discriminator())


@pytest.mark.parametrize("model", [SRCNN(9, 1, 5), SRCNN(9, 5, 5, padding="same"), SRCNN(3, 3, 3, init="he"),
                                   VDSR(3), VDSR(5), VDSR(20), VDSR(6, residual=False)],
                         ids=["srcnn915", "srcnn955same", "srcnn333", "vdsr3", "vdsr5", "vdsr20", "vdsr6plain"])
def test_gradient_support_equals_theory(model):
    torch.manual_seed(0)
    size = receptive_field(model).size
    assert empirical_rf(model, size=56) == (size, size)


def test_support_of_a_corner_pixel_is_clipped_by_the_border():
    torch.manual_seed(0)
    assert empirical_rf(VDSR(5), size=32, position=(0, 31)) == (6, 6)  # 11 wide, 5 rows/columns outside


@pytest.mark.parametrize("upsample", ["subpixel", "nearest", "bilinear"])
def test_srresnet_support_is_the_theory_rounded_up_at_some_phase(upsample):
    # An HR pixel's field spans a fractional number of LR pixels; whole LR pixels cover it.
    torch.manual_seed(0)
    model = SRResNet(4, 2, upsample=upsample)
    size = receptive_field(model).size
    sides = [empirical_rf(model, size=32, channels=3, position=(64 + p, 64 + p))[0] for p in range(4)]
    assert max(sides) == math.ceil(size) and min(sides) >= math.ceil(size) - 1


def test_input_gradient_is_the_kernel_for_one_linear_convolution():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = torch.rand(1, 1, 9, 9)
    g = input_gradient(conv, x, (4, 4))
    expected = torch.zeros(9, 9, dtype=torch.float64)
    expected[3:6, 3:6] = conv.weight[0, 0].double()  # cross-correlation: y[4,4] = sum_k w[k] x[3 + k]
    assert torch.allclose(g, expected)
    assert g.dtype == torch.float64 and conv.weight.dtype == torch.float32  # the model was not touched


def test_support_tolerance():
    g = torch.zeros(10, 10)
    g[2, 3], g[6, 5], g[4, 9] = 1.0, 0.5, 1e-9
    assert support(g) == (5, 7) and support(g, tol=1e-6) == (5, 3) and support(torch.zeros(3, 3)) == (0, 0)


def test_effective_rf_is_normalised_and_narrower_than_the_theory():
    torch.manual_seed(0)
    model = VDSR(10, residual=False)
    erf = effective_rf(model, size=41, n=4)
    assert erf.shape == (41, 41) and math.isclose(float(erf.sum()), 1.0)
    assert support(erf) == (21, 21)
    assert mass_width(erf, 1.0) == 21 and mass_width(erf, 0.9) < 21  # Luo et al.: mass in a fraction of it


def test_mass_width_of_known_maps():
    e = torch.zeros(11, 11)
    e[5, 5] = 1.0
    assert mass_width(e, 0.99) == 1
    e[3:8, 3:8] = 1.0
    assert mass_width(e, 1.0) == 5 and mass_width(e, 0.3) == 3


def test_gain_by_gradient_puts_the_gain_where_it_is():
    ref = np.zeros((20, 20))
    ref[:, 10:] = 100.0  # one vertical edge
    a = ref + 5.0  # error everywhere
    b = ref.copy()
    b[:, 9:11] += 5.0  # no better than a on the edge columns (they have the largest gradient)
    bins = gain_by_gradient(ref, a, b, bins=10)  # 400 pixels: the top tenth is the 40 edge pixels
    assert [round(x[3], 6) for x in bins] == [round(1 / 9, 6)] * 9 + [0.0]  # the gain all in the flat part
    assert [x[2] for x in bins] == [25.0] * 9 + [0.0]  # 5^2 less per pixel
    assert bins[-1][1] == 50.0 and bins[0][1] == 0.0 and all(x[0] == 0.1 for x in bins)


def test_upsampling_the_receptive_field_cannot_follow_is_refused_with_a_clear_error():
    # each output between two inputs per side; three outputs at half the spacing: three inputs
    assert receptive_field(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(1, 1, 3))).size == 3
    for m in [nn.Upsample(scale_factor=2, mode="bicubic"), nn.Upsample(scale_factor=1.5),
              nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)]:
        with pytest.raises(ValueError, match="Upsample by a whole factor"):
            receptive_field(nn.Sequential(m))
