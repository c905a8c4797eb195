"""srlib.checkpoint: the one format of training checkpoints and shipped weights."""

import pytest
import torch

from srlib import SRError, checkpoint
from srlib.inference import load_model
from srlib.models import SRCNN


def _state():
    net = SRCNN(9, 1, 5, n1=8, n2=4)
    opt = torch.optim.Adam(net.parameters())
    return {"kind": "srcnn", "model_config": net.config, "model": net.state_dict(), "scales": [3.0],
            "iteration": 40, "recipe": checkpoint.plain({"kind": "srcnn", "scales": (3,)}),
            "optimizer": opt.state_dict(), "scalers": [], "rng": {"torch": torch.get_rng_state()}, "best": 30.0}


def test_write_read_describe_slim(tmp_path):
    state = _state()
    path = checkpoint.write(state, tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    back = checkpoint.read(path)
    assert back["recipe"] == {"kind": "srcnn", "scales": [3]} and torch.equal(back["model"]["conv1.weight"],
                                                                                state["model"]["conv1.weight"])
    info = checkpoint.describe(back)
    assert "model" not in info and not set(checkpoint.TRAINING_STATE) & set(info) and info["best"] == 30.0
    rows = [{"iteration": float(i), "psnr_x3": 30 + i / 100} for i in (20, 40, 60)]  # 60: past the checkpoint
    slim = checkpoint.slim(back, rows)
    assert set(slim) == {"kind", "model_config", "model", "scales", "iteration", "recipe", "history"}
    assert [r["iteration"] for r in slim["history"]] == [20.0, 40.0]
    checkpoint.write(slim, tmp_path / "slim.pt")
    model, info = load_model(tmp_path / "slim.pt")  # shipped weights load as any checkpoint does
    assert isinstance(model, SRCNN) and info["history"] == slim["history"]


def test_read_says_why_a_file_is_not_a_checkpoint(tmp_path):
    with pytest.raises(SRError, match="no such checkpoint"):
        checkpoint.read(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(SRError, match="not an srlib checkpoint"):
        checkpoint.read(tmp_path / "text.pt")
    torch.save({"kind": "srcnn", "model": {}}, tmp_path / "noconfig.pt")
    with pytest.raises(SRError, match="model_config"):
        checkpoint.read(tmp_path / "noconfig.pt")
