"""srlib.export and ``srlib export``: networks as ONNX files that ONNX Runtime runs as PyTorch does."""

import hashlib
import json
import stat
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from srlib.data import builtin_images, imresize, rgb_to_y
from srlib.data.degrade import bicubic_restore
from srlib.errors import SRError
from srlib.export import TOLERANCE, check_onnx, export, export_onnx
from srlib.inference import margin, run_tiled
from srlib.models import SRCNN
from srlib.pretrained import index, load

pytestmark = pytest.mark.slow  # torch.export of three networks: minutes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return out, export(["srcnn-x3", "vdsr", "srresnet-x4-small"], out)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", ["srcnn-x3", "vdsr", "srresnet-x4-small"])
def test_onnx_runtime_gives_pytorchs_output_at_any_size(exported, name):
    folder, manifest = exported
    entry = manifest["models"][name]
    model, info = load(name)
    session = _session(folder / entry["file"])
    rgb = entry["input"] == "rgb"
    assert entry["max_difference"] <= TOLERANCE
    gen = torch.Generator().manual_seed(1)
    for h, w in [(1, 1), (13, 7), (33, 50), (80, 81)]:  # odd sizes, a single pixel, wider and taller
        x = torch.rand(1, 3 if rgb else 1, h, w, generator=gen)
        got = session.run(None, {"input": x.numpy()})[0]
        want = run_tiled(model, x[0].permute(1, 2, 0).numpy() if rgb else x[0, 0].numpy())
        want = np.moveaxis(want, -1, 0)[None] if rgb else want[None, None]
        assert got.shape == want.shape == (1, 3 if rgb else 1, h * entry["factor"], w * entry["factor"])
        assert np.abs(got - want).max() <= TOLERANCE, (name, h, w)


def test_a_benchmark_image_through_onnx_is_srlibs_result(exported):
    folder, manifest = exported
    hr = rgb_to_y(builtin_images()[0][1][:120, :123]).astype(np.float64) / 255  # colour image, odd width
    lr = imresize(hr, 1 / 3)
    up = bicubic_restore(lr, hr.shape)
    y = _session(folder / "srcnn-x3.onnx").run(None, {"input": up[None, None].astype(np.float32)})[0][0, 0]
    model, _ = load("srcnn-x3")
    assert np.abs(y - run_tiled(model, up)).max() <= TOLERANCE


def test_manifest_describes_every_file(exported):
    folder, manifest = exported
    assert set(manifest["models"]) == {"srcnn-x3", "vdsr", "srresnet-x4-small"}
    for name, e in manifest["models"].items():
        path = folder / e["file"]
        assert path.stat().st_size == e["bytes"] and stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by a server
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
        model, info = load(name)
        assert e["margin"] == margin(model) and e["set5_psnr"] == index()[name]["set5_psnr"]
        assert e["parameters"] == sum(p.numel() for p in model.parameters())
    assert manifest["models"]["vdsr"]["scales"] == [2.0, 3.0, 4.0] and manifest["models"]["vdsr"]["input"] == "y"
    assert manifest["models"]["srresnet-x4-small"]["input"] == "rgb"
    assert manifest["models"]["srresnet-x4-small"]["factor"] == 4
    white = np.array(manifest["ycbcr"]["matrix"]) @ [1, 1, 1] + manifest["ycbcr"]["offset"]
    assert np.allclose(white, [235, 128, 128])  # Y 235, Cb = Cr = 128, as MATLAB's rgb2ycbcr
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_a_checkpoint_exports_and_the_model_is_left_unchanged(tmp_path):
    model = SRCNN(padding="valid", n1=8, n2=4)  # as trained: no padding; exported as run on images
    torch.save({"kind": "srcnn", "model_config": model.config, "model": model.state_dict(), "scales": [2.0]},
               tmp_path / "mine.pt")
    export_onnx(model, "srcnn", tmp_path / "direct.onnx")
    assert model.padding == "valid"
    assert check_onnx(model, "srcnn", tmp_path / "direct.onnx") <= TOLERANCE
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({"models": {"old": {"file": "old.onnx"}}}))
    manifest = export([str(tmp_path / "mine.pt")], tmp_path / "out")
    assert set(manifest["models"]) == {"old", "mine"}  # entries exported before are kept
    assert manifest["models"]["mine"]["scales"] == [2.0] and manifest["models"]["mine"]["set5_psnr"] is None
    x = np.random.default_rng(0).random((1, 1, 21, 30), dtype=np.float32)
    assert _session(tmp_path / "out" / "mine.onnx").run(None, {"input": x})[0].shape == (1, 1, 21, 30)


def test_export_refuses_bad_input(tmp_path):
    with pytest.raises(SRError, match="neither shipped weights"):
        export(["no-such-model"], tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SRError, match="not a folder"):
        export(["srcnn-x2"], tmp_path / "file")
    with pytest.raises(SRError, match="no such folder"):
        export_onnx(SRCNN(), "srcnn", tmp_path / "missing" / "a.onnx")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_cli_export(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "srlib", "export", *a], capture_output=True, text=True)  # noqa: E731
    p = run("srcnn-x2", "--out", str(tmp_path / "onnx"))
    assert p.returncode == 0, p.stderr
    assert "srcnn-x2.onnx: srcnn, y input, x2" in p.stdout and "ONNX Runtime within" in p.stdout
    assert (tmp_path / "onnx" / "srcnn-x2.onnx").is_file()
    p = run("nope", "--out", str(tmp_path / "onnx"))
    assert p.returncode == 2 and p.stderr.startswith("srlib export: error: nope:") and len(p.stderr.splitlines()) == 1
