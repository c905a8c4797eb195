"""The GPU paths of the training engine and of inference: CUDA, mixed precision (bf16, or
fp16 with a gradient scaler), channels_last and torch.compile.

They run where CUDA is available and are skipped elsewhere (CI has no GPU); the CPU paths
are tested in test_train.py.
"""

import numpy as np
import pytest
import torch

import srlib.device
from srlib.evaluate import evaluate
from srlib.inference import as_method, load_model
from srlib.pretrained import pretrained
from srlib.recipes import recipe
from srlib.train import Trainer, read_history

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

SMALL = {
    "srcnn": recipe("srcnn-fast", data="builtin", batch_size=64, iterations=20),
    "vdsr": recipe("vdsr", model_config=dict(depth=6), data="builtin", scales=(2, 3), batch_size=64, epochs=None,
                   iterations=20, lr_step=10),
    "srresnet": recipe("srresnet", model_config=dict(scale=4, blocks=2), data="builtin", batch_size=8, iterations=20,
                       patch=dict(size=48, stride=48)),
}
COMMON = dict(val_data="builtin", val_every=10, checkpoint_every=5)


def _first_weight(model: torch.nn.Module) -> torch.Tensor:
    return next(p for n, p in model.named_parameters() if n.endswith("weight") and p.ndim == 4)


@pytest.mark.parametrize("kind", list(SMALL))
def test_recipes_train_on_cuda_with_mixed_precision_and_channels_last(tmp_path, kind):
    t = Trainer(SMALL[kind].replace(**COMMON), tmp_path, progress=False)
    bf16 = torch.cuda.get_device_capability()[0] >= 8  # Ampere and newer; a V100 or T4 computes in fp16
    assert t.device.type == "cuda" and t.use_amp and t.amp_dtype == (torch.bfloat16 if bf16 else torch.float16)
    assert t.scalers[0].is_enabled() == (not bf16)  # fp16 needs loss scaling, bf16 does not
    w = _first_weight(t.model)
    assert w.is_contiguous(memory_format=torch.channels_last)
    w0 = w.detach().clone()
    last = t.fit()
    assert not torch.equal(w0, _first_weight(t.model).detach())
    model, info = load_model(last)  # written on the GPU, loads on the CPU
    assert info["iteration"] == 20 and next(model.parameters()).device.type == "cpu"
    last_row = open(tmp_path / "history.csv").read().splitlines()[-1]
    assert "nan" not in last_row.lower()  # validation PSNR finite


def test_fp16_uses_the_gradient_scaler_and_resumes_with_it(tmp_path, monkeypatch):
    monkeypatch.setattr(srlib.device, "cuda_has_native_bf16", lambda *a, **k: False)  # as on a T4 or V100
    r = SMALL["vdsr"].replace(**COMMON, clip="adjustable")
    t = Trainer(r.replace(iterations=10), tmp_path, progress=False)
    assert t.amp_dtype == torch.float16 and t.scalers[0].is_enabled()
    t.fit()
    scale = t.scalers[0].get_scale()
    assert np.isfinite(scale) and scale > 0
    t2 = Trainer(r, tmp_path, resume=True, progress=False)
    assert t2.iteration == 10 and t2.scalers[0].get_scale() == scale  # the scaler's state came back
    t2.fit()
    assert t2.iteration == 20
    skipped = [row["skipped"] for row in read_history(tmp_path / "history.csv")]  # updates skipped so far
    assert skipped == sorted(skipped) and skipped[-1] == t2.skipped["skipped"] < 20


def test_resume_on_cuda_continues_the_run(tmp_path):
    """On the GPU, cuDNN's algorithm choice makes runs non-bitwise; a resumed run must still
    follow the straight one closely (the CPU test asserts bitwise equality)."""
    r = SMALL["vdsr"].replace(**COMMON, amp=False)
    straight = Trainer(r, tmp_path / "a", progress=False)
    straight.fit()
    Trainer(r.replace(iterations=10), tmp_path / "b", progress=False).fit()
    resumed = Trainer(r, tmp_path / "b", resume=True, progress=False)
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    rel = max(((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)).item() for k in a if k.endswith("weight"))
    assert rel < 1e-2


def test_compiled_training(tmp_path):
    t = Trainer(SMALL["vdsr"].replace(**COMMON, compile=True, iterations=6), tmp_path, progress=False)
    t.fit()
    assert t.iteration == 6 and torch.isfinite(_first_weight(t.model)).all()


def test_inference_on_cuda_equals_the_cpu():
    cpu = evaluate(as_method(pretrained("vdsr"), "vdsr", "vdsr", (2.0,)), ["builtin"], [2.0])
    gpu = evaluate(as_method(pretrained("vdsr", device="cuda"), "vdsr", "vdsr", (2.0,)), ["builtin"], [2.0])
    assert abs(cpu[0].psnr - gpu[0].psnr) < 0.01


def test_tiled_upscale_on_cuda_in_full_and_half_precision():
    from srlib.data import builtin_images
    from srlib.data.image import Photo
    from srlib.inference import run_tiled, upscale_photo

    cpu, gpu = pretrained("vdsr"), pretrained("vdsr", device="cuda")
    x = np.random.default_rng(0).random((150, 130))
    ref = run_tiled(cpu, x)
    assert np.abs(run_tiled(gpu, x, 40) - ref).max() < 1e-3  # cuDNN's algorithms: float rounding only
    half = run_tiled(gpu, x, 40, half=True)  # bf16 where the GPU has it, else fp16
    assert np.abs(half - ref).mean() < 5e-3
    img = builtin_images()[0][1][:100, :120]
    out = upscale_photo(Photo(img), gpu, "vdsr", 2, half=True)
    assert out.pixels.shape == (200, 240, 3) and out.pixels.dtype == np.uint8


def test_sparse_coding_dictionaries_learn_on_cuda_as_on_the_cpu():
    """Notebook 01's full mode learns its dictionaries on the GPU: the same algorithm, returned on the CPU."""
    from srlib import sparse

    x, y = sparse.training_pairs("builtin", 3, 7, 2000, seed=0)
    cpu = sparse.learn_dictionaries(x, y, 64, rounds=3, seed=0)
    gpu = sparse.learn_dictionaries(x.cuda(), y.cuda(), 64, rounds=3, seed=0)
    assert gpu.dl.device.type == "cpu" and gpu.dl.dtype == torch.float64
    assert torch.allclose(gpu.dl, cpu.dl, atol=1e-6) and torch.allclose(gpu.dh, cpu.dh, atol=1e-6)


def test_sparse_coding_codes_an_image_on_cuda_as_on_the_cpu():
    """Notebook 01's full mode codes whole images with 512 atoms on the GPU, in float64."""
    from srlib import sparse
    from srlib.data import builtin_images

    x, y = sparse.training_pairs("builtin", 3, 7, 2000, seed=0)
    d = sparse.learn_dictionaries(x, y, 64, rounds=2, seed=0)
    _, lr_up = sparse.interpolated(builtin_images()[0][1][:96, :96], 3)
    cpu = sparse.sparse_code_sr(lr_up, d, 5)
    assert np.abs(sparse.sparse_code_sr(lr_up, d, 5, device="cuda") - cpu).max() < 1e-10
    net = sparse.SparseCodingNet.from_dictionaries(d, steps=5).cuda()
    with torch.no_grad():
        out = net(torch.from_numpy(lr_up)[None, None].cuda()).squeeze().cpu().numpy()
    assert np.abs(out - cpu).max() < 1e-10
