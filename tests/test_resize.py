import numpy as np
import pytest
import torch

from srlib import SRError
from srlib.data import image_paths, imresize, imresize_torch, read_image
from srlib.data.resize import cubic, output_shape, resize_matrix


def test_cubic_kernel_values():
    # Keys' kernel with a = -0.5: interpolating (1 at 0, 0 at the integers), C1, support [-2, 2].
    np.testing.assert_allclose(cubic(np.array([0.0, 1, 2, 2.5, -1])), [1, 0, 0, 0, 0])
    np.testing.assert_allclose(cubic(np.array([0.5, 1.5])), [0.5625, -0.0625])


def test_matrix_rows_sum_to_one_and_mirror_borders():
    for n_in, n_out in [(10, 5), (9, 3), (7, 14), (12, 30), (100, 40), (5, 13)]:
        m = resize_matrix(n_in, n_out)
        assert m.shape == (n_out, n_in)
        np.testing.assert_allclose(m.sum(1), 1, atol=1e-12)
    # x2 upscaling of 4 pixels: output pixel 1 sits at input 0.75 (1-based); its taps at
    # -1, 0, 1, 2 mirror to pixels 2, 1, 1, 2 (..., 2, 1, 1, 2, ...).
    m = resize_matrix(4, 8)
    w = cubic(0.75 - np.array([-1.0, 0, 1, 2]))
    np.testing.assert_allclose(m[0], [w[1] + w[2], w[0] + w[3], 0, 0])


def test_output_size_is_matlab_ceil():
    assert output_shape((255, 256), 1 / 3) == (85, 86)
    assert output_shape((10, 11), 2.5) == (25, 28)
    assert imresize(np.zeros((255, 100)), 1 / 3).shape == (85, 34)


def test_constants_and_linear_ramps_are_preserved(rng):
    c = np.full((17, 23), 0.3)
    for s in (0.25, 1 / 3, 0.5, 2, 2.5, 3, 4):
        np.testing.assert_allclose(imresize(c, s), 0.3, atol=1e-12)
    ramp = np.tile(np.arange(40.0), (8, 1))
    up = imresize(ramp, size=(8, 80))  # away from the mirrored borders a cubic keeps lines
    u = (np.arange(1, 81) / 2 + 0.25) - 1
    np.testing.assert_allclose(up[:, 4:-4], np.tile(u, (8, 1))[:, 4:-4], atol=1e-12)


def test_uint8_in_uint8_out_and_float_not_rounded(rng):
    a = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    assert imresize(a, 0.5).dtype == np.uint8
    f = imresize(a / 255.0, 0.5)
    assert f.dtype == np.float64 and not np.allclose(f * 255, np.round(f * 255))


def test_matches_matlab_made_lr_images(shared_data):
    """The SelfExSR LR files were made by MATLAB's imresize on the uint8 HR images.

    Away from the borders (where that code mirrors slightly differently) they must match
    bit for bit; over whole images, at least 99% of all pixels.
    """
    equal = total = 0
    for name in ("Set5", "Set14"):
        for s in (2, 3, 4):
            for p in image_paths(name, s):
                hr, ref = read_image(p), read_image(str(p).replace("_HR", "_LR"))
                lr = imresize(hr, 1 / s)
                assert lr.shape == ref.shape
                b = s + 2
                np.testing.assert_array_equal(lr[b:-b, b:-b], ref[b:-b, b:-b], err_msg=f"{p}")
                equal += int((lr == ref).sum())
                total += lr.size
    assert equal / total > 0.99, equal / total


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.4, 2, 3, 4, 2.5, 1.7])
def test_torch_matches_numpy(rng, scale):
    img = rng.random((2, 3, 37, 29)) * 255
    ref = np.stack([np.stack([imresize(c, scale) for c in im]) for im in img])
    out = imresize_torch(torch.tensor(img, dtype=torch.float32), scale).numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-4


def test_torch_size_and_gradient():
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert imresize_torch(x, size=(12, 9)).shape == (1, 1, 12, 9)
    assert torch.autograd.gradcheck(lambda t: imresize_torch(t, 0.5), (x,))


def test_bad_arguments():
    with pytest.raises(SRError, match="positive"):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(SRError, match="exactly one"):
        imresize(np.zeros((4, 4)))
    with pytest.raises(SRError, match="floating-point"):
        imresize_torch(torch.zeros(4, 4, dtype=torch.uint8), 2)
