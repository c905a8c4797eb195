"""Bad input to `srlib train` and `srlib evaluate`: one line on stderr naming the option or
file, exit status 2, before any work starts (srlib.cli.main in-process: no start-up cost)."""

import json
from pathlib import Path

import pytest

import srlib.evaluate
from srlib.cli import main

TRAIN = ["train", "vdsr", "--data", "builtin", "--val-data", "builtin", "--scale", "2", "--iterations", "2",
         "--batch-size", "4", "--model-set", "depth=3", "width=8", "--quiet"]


def _one_line(capsys) -> str:
    cap = capsys.readouterr()
    assert len(cap.err.strip().splitlines()) == 1 and "Traceback" not in cap.err, cap.err
    return cap.err


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "batch_size (--batch-size) must be a whole number of at least 1, got 0"),
    (["--lr", "-1"], "lr (--lr) must be a positive number"),
    (["--lr", "0"], "lr (--lr) must be a positive number"),
    (["--lr", "nan"], "lr (--lr) must be a positive number"),
    (["--scale", "0"], "scales (--scale) must be numbers greater than 1"),
    (["--scale", "1"], "scales (--scale) must be numbers greater than 1"),
    (["--scale", "-2"], "scales (--scale) must be numbers greater than 1"),
    (["--iterations", "-5"], "iterations (--iterations) must be a whole number of at least 1, got -5"),
    (["--iterations", "0"], "iterations (--iterations) must be a whole number of at least 1, got 0"),
    (["--epochs", "-1"], "epochs (--epochs) must be a positive number"),
    (["--minutes", "0"], "minutes (--minutes) must be a positive number"),
    (["--val-every", "0"], "val_every (--val-every) must be a whole number of at least 1"),
    (["--clip-value", "-1"], "clip_value (--clip-value) must be a positive number"),
    (["--workers", "-1"], "workers (--workers) must be a whole number of at least 0"),
    (["--patch-size", "1"], "patch (--patch-size) must be a size of at least 2 pixels"),
    (["--adversarial-weight=-1e-3"], "adversarial_weight (--adversarial-weight) must be a number of at least 0"),
])
def test_train_refuses_impossible_values_before_anything_starts(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out), *args]) == 2  # the last of a repeated option wins
    assert message in _one_line(capsys)
    assert not out.exists()  # refused before the run folder, the data or the model


SRGAN = ["train", "srgan", "--data", "builtin", "--val-data", "builtin", "--iterations", "2", "--batch-size", "4",
         "--vgg-weights", "none", "--model-set", "blocks=1", "width=8", "--quiet"]


@pytest.mark.parametrize("args, message", [
    (["--patch-size", "50"], "patch (--patch-size) must be a size that is a multiple of the scale and of 16"),
    (["--patch-size", "40"], "patch (--patch-size) must be a size that is a multiple of the scale and of 16"),
    (["--content-layer", "relu9_9"], "content_layer (--content-layer) must be 'mse' or a VGG19 layer"),
    (["--generator", "srresnet-x4-small"], "srresnet-x4-small: its network is SRResNet(scale=4 blocks=8 width=32), "
                                           "the recipe's is SRResNet(scale=4 blocks=1 width=8); give --model-set"),
])
def test_train_srgan_refuses_crops_and_generators_that_do_not_fit(tmp_path, capsys, args, message):
    assert main([*SRGAN, "--out", str(tmp_path / "run"), *args]) == 2
    assert message in _one_line(capsys)


def test_train_refuses_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main([*TRAIN, "--out", str(tmp_path / "notes.txt")]) == 2
    assert "--out" in _one_line(capsys) and (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("setting", ["depth=1", "width=0"])
def test_train_refuses_impossible_model_settings(tmp_path, capsys, setting):
    assert main([*TRAIN, "--model-set", setting, "--out", str(tmp_path / "run")]) == 2
    assert "bad settings for vdsr" in _one_line(capsys)


def test_evaluate_refuses_an_unwritable_json_path_before_evaluating(tmp_path, capsys):
    assert main(["evaluate", "--data", "builtin", "--scale", "2", "--json", str(tmp_path / "no" / "r.json")]) == 2
    err = capsys.readouterr()
    assert "--json" in err.err and "no such folder" in err.err and len(err.err.strip().splitlines()) == 1
    assert err.out == ""  # nothing was evaluated
    assert main(["evaluate", "--data", "builtin", "--json", str(tmp_path)]) == 2
    assert "is a folder" in _one_line(capsys)


def test_evaluate_keeps_the_results_when_the_json_path_fails_at_the_end(tmp_path, monkeypatch, capsys):
    target = tmp_path / "gone" / "r.json"
    target.parent.mkdir()
    evaluate = srlib.evaluate.evaluate

    def evaluate_then_lose_the_folder(*args, **kw):
        results = evaluate(*args, **kw)
        target.parent.rmdir()
        return results

    monkeypatch.setattr(srlib.evaluate, "evaluate", evaluate_then_lose_the_folder)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--data", "builtin", "--scale", "4", "--json", str(target)]) == 2
    err = _one_line(capsys)
    assert f"--json {target}: cannot write" in err
    kept = Path(err.split("the results are in ")[1].strip())
    assert kept.parent == tmp_path and kept.name.startswith("r-")
    assert [r["dataset"] for r in json.loads(kept.read_text())["results"]] == ["builtin"]
