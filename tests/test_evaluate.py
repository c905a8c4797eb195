import json
import subprocess
import sys

import numpy as np
import pytest

from srlib import SRError
from srlib.data import bicubic_degrade, bicubic_restore, builtin_images, modcrop, to_y
from srlib.evaluate import Method, bicubic, bicubic_rgb, colour_psnr, evaluate
from srlib.metrics import channel_psnr, psnr, ssim

# The bicubic row of the VDSR paper's Table 3 (Kim et al., CVPR 2016): PSNR / SSIM.
PAPER = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
    ("BSD100", 2): (29.56, 0.8431), ("BSD100", 3): (27.21, 0.7385), ("BSD100", 4): (25.96, 0.6675),
}


@pytest.mark.slow
def test_bicubic_reproduces_vdsr_table3(shared_data):
    results = evaluate(bicubic, ["Set5", "Set14", "BSD100"], [2, 3, 4])
    assert len(results) == 9
    for r in results:
        p, s = PAPER[(r.dataset, int(r.scale))]
        assert abs(r.psnr - p) <= 0.01, (r.dataset, r.scale, r.psnr, p)
        assert abs(r.ssim - s) <= 0.001, (r.dataset, r.scale, r.ssim, s)
        assert len(r.images) == {"Set5": 5, "Set14": 14, "BSD100": 100}[r.dataset]


def test_evaluate_on_builtin_equals_the_protocol_by_hand():
    (r,) = evaluate(bicubic, ["builtin"], [3])
    ps, ss = [], []
    for _, hr in builtin_images():
        y = to_y(modcrop(hr, 3)).astype(np.float64) / 255
        sr = bicubic_restore(bicubic_degrade(y, 3), y.shape)
        ps.append(psnr(sr, y, 3))
        ss.append(ssim(sr, y, 3))
    assert r.psnr == pytest.approx(np.mean(ps)) and r.ssim == pytest.approx(np.mean(ss))
    assert [i["name"] for i in r.images] == ["astronaut", "camera", "chelsea", "coffee", "rocket", "moon"]
    assert 25 < r.psnr < 35  # bicubic x3 on natural photos


def test_method_output_shape_is_checked():
    from srlib import SRError

    broken = Method("broken", lambda lr, shape, s: lr)
    with pytest.raises(SRError, match="broken returned"):
        evaluate(broken, ["builtin"], [2])


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "srlib", *args], capture_output=True, text=True, env=env)


def test_cli_table_and_json(tmp_path):
    out = tmp_path / "r.json"
    p = _cli("evaluate", "--model", "bicubic", "--data", "builtin", "--scale", "2", "4", "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "builtin" in p.stdout and "x2" in p.stdout and "x4" in p.stdout
    data = json.loads(out.read_text())
    assert data["model"] == "bicubic"
    assert [(r["dataset"], r["scale"]) for r in data["results"]] == [("builtin", 2), ("builtin", 4)]
    r = data["results"][0]
    assert set(r) == {"dataset", "scale", "psnr", "ssim", "seconds", "images", "skipped"} and r["skipped"] == []
    assert set(r["images"][0]) == {"name", "psnr", "ssim"}
    assert f"{r['psnr']:.2f}" in p.stdout


def test_cli_folder_data(tmp_path):
    from srlib.data import save_image

    for name, hr in builtin_images()[:2]:
        save_image(tmp_path / f"{name}.png", hr)
    p = _cli("evaluate", "--data", str(tmp_path), "--scale", "3")
    assert p.returncode == 0, p.stderr
    assert tmp_path.name in p.stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "nonsense"], "unknown model 'nonsense'"),
    (["--data", "NoSuchSet"], "unknown data set 'NoSuchSet'"),
    (["--scale", "0"], "scale 0.0 is not supported"),
    (["--scale", "9"], "scale 9.0 is not supported"),
    (["--scale", "two"], "invalid float value"),
    (["--data", "/no/such/folder"], "/no/such/folder: no such folder"),
])
def test_cli_bad_arguments_one_line_status_2(args, message):
    p = _cli("evaluate", *args)
    assert p.returncode == 2
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "Traceback" not in p.stderr


def test_cli_empty_folder(tmp_path):
    p = _cli("evaluate", "--data", str(tmp_path))
    assert p.returncode == 2 and "no images found" in p.stderr and "Traceback" not in p.stderr


def test_cli_unreadable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    p = _cli("evaluate", "--data", str(tmp_path), "--scale", "2")
    assert p.returncode == 2 and "broken.png" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1  # nothing readable: one error, no warnings before it


def test_cli_folder_skips_an_unreadable_image_with_one_warning(tmp_path, capsys):
    from srlib.cli import main
    from srlib.data import save_image

    for name, hr in builtin_images()[:2]:
        save_image(tmp_path / f"{name}.png", hr[:96, :96])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--data", str(tmp_path), "--scale", "2", "3", "--json", str(out)]) == 0
    cap = capsys.readouterr()
    (warning,) = cap.err.strip().splitlines()  # once, not once per scale
    assert "skipped" in warning and "broken.png" in warning
    assert "1 of 3 images skipped (unreadable): broken.png" in cap.out
    for r in json.loads(out.read_text())["results"]:
        assert r["skipped"] == ["broken.png"] and [i["name"] for i in r["images"]] == ["astronaut", "camera"]


def test_a_named_set_needs_every_image(tmp_path, monkeypatch):
    """The protocol averages over the whole set: a broken file of Set5 is an error, not skipped."""
    from srlib import SRError
    from srlib.data import save_image

    folder = tmp_path / "SelfExSR" / "Set5" / "image_SRF_2"
    folder.mkdir(parents=True)
    save_image(folder / "img_001_SRF_2_HR.png", builtin_images()[0][1][:96, :96])
    (folder / "img_002_SRF_2_HR.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))
    with pytest.raises(SRError, match="img_002_SRF_2_HR.png"):
        evaluate(bicubic, ["Set5"], [2])


def test_colour_psnr_is_the_per_channel_protocol():
    """The SRCNN paper's colour table, for bicubic on the builtin colour images by hand."""
    got = colour_psnr(bicubic_rgb, "builtin", 3)
    rows = []
    for _, hr in builtin_images():
        if hr.ndim == 3:
            hr = modcrop(hr, 3)
            sr = np.clip(bicubic_restore(bicubic_degrade(hr / 255.0, 3), hr.shape), 0, 1)
            rows.append(channel_psnr(sr, hr, 3))
    assert len(rows) == 4 and got == pytest.approx({k: np.mean([r[k] for r in rows]) for k in got})
    assert got["Y"] < got["Cb"] and got["Y"] < got["Cr"]  # chroma is smooth: bicubic restores it well
    with pytest.raises(SRError, match="rgb=True"):
        colour_psnr(bicubic, "builtin", 3)
