"""Tiled inference and `srlib upscale` on photos as people have them."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from srlib import SRError
from srlib.data import bicubic_degrade, bicubic_restore, builtin_images, imresize, quantize, rgb_to_ycbcr, ycbcr_to_rgb
from srlib.data.image import Photo, read_photo, save_photo
from srlib.inference import as_method, margin, run_tiled, tile_size, upscale, upscale_photo
from srlib.models import SRCNN, VDSR, SRResNet
from srlib.pretrained import load


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "srlib", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def nets():
    return {name: load(name) for name in ("srcnn-x3", "vdsr", "srresnet-x4-small")}


def test_margin_is_the_receptive_radius(nets):
    assert margin(nets["srcnn-x3"][0]) == 8  # 9-5-5: 17 pixels wide
    assert margin(nets["vdsr"][0]) == 20  # twenty 3x3 layers: 41 pixels wide
    assert margin(VDSR(depth=5)) == 5


@pytest.mark.parametrize("name", ["srcnn-x3", "vdsr"])
def test_tiles_give_the_whole_image_to_the_last_bit(nets, name):
    model, _ = nets[name]
    x = np.random.default_rng(1).random((123, 97))  # odd sizes: tiles of every shape at the edges
    with torch.no_grad():
        whole = model.eval()(torch.from_numpy(x).float()[None, None])[0, 0].numpy()
    assert np.array_equal(run_tiled(model, x), whole)
    for tile in (16, 33, 50):
        assert np.array_equal(run_tiled(model, x, tile), whole), tile
    # Only some rows: the others are context, and the rows kept equal the whole image's.
    assert np.array_equal(run_tiled(model, x, 40, rows=(30, 71)), whole[30:71])


def test_tiles_of_an_rgb_network_give_the_whole_image_within_rounding(nets):
    model, _ = nets["srresnet-x4-small"]
    x = np.random.default_rng(2).random((40, 33, 3))
    whole = run_tiled(model, x)
    assert whole.shape == (160, 132, 3)
    for tile in (13, 25):
        np.testing.assert_allclose(run_tiled(model, x, tile), whole, atol=1e-5)


def test_tile_size_follows_the_memory_budget(nets):
    model, _ = nets["vdsr"]
    small = tile_size(model, max_memory=16 << 20)
    assert small < 192  # 16 MiB: 3 x 64 channels x 4 bytes x (side + 40)^2 fits
    assert 3 * 64 * 4 * (small + 2 * margin(model)) ** 2 <= 16 << 20 < 3 * 64 * 4 * (small + 1 + 40) ** 2
    assert tile_size(model, max_memory=8 << 30) == 192  # on a CPU never above the fastest size
    with pytest.raises(SRError, match="too small for this network"):
        tile_size(model, max_memory=1 << 20)


@pytest.mark.parametrize("name, scale", [("srcnn-x3", 3), pytest.param("vdsr", 2, marks=pytest.mark.slow),
                                         ("srresnet-x4-small", 4)])
def test_upscale_in_tiles_equals_the_whole_image(nets, name, scale):
    model, info = nets[name]
    for _, img in builtin_images()[:2]:  # colour and grayscale
        img = img[:70, :91]
        whole = upscale(img, model, info["kind"], scale, tile=1 << 20)
        assert np.array_equal(upscale(img, model, info["kind"], scale, tile=17), whole)
        assert whole.ndim == img.ndim and whole.dtype == np.uint8


def test_upscale_is_the_papers_pipeline(nets):
    """Bicubic Y through the network, Cb and Cr bicubic: as computed with srlib.data's functions
    (which differ only by float rounding in the bicubic: at most one grey level, rarely)."""
    model, info = nets["srcnn-x3"]
    img = builtin_images()[2][1][:60, :80]
    up = bicubic_restore(rgb_to_ycbcr(img / 255.0), (180, 240))
    up[..., 0] = run_tiled(model, up[..., 0])
    ref = quantize(ycbcr_to_rgb(up) * 255.0)
    out = upscale(img, model, info["kind"], 3, tile=40)
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("colour", ["rgb", "ycbcr"])
def test_colour_srcnn_upscales_its_three_channels(colour):
    """An SRCNN on RGB or YCbCr (section 4.4): the network on the bicubic image in its colour
    space, in tiles, the same as evaluate's method; a grey photo goes through as three equal channels."""
    torch.manual_seed(0)
    model = SRCNN(9, 1, 5, colour=colour, init="he", padding="same").eval()
    img = builtin_images()[2][1][:40, :50]
    up = bicubic_restore(img / 255.0, (120, 150))
    x = up if colour == "rgb" else rgb_to_ycbcr(up)
    sr = run_tiled(model, x)
    ref = quantize(np.clip(sr if colour == "rgb" else ycbcr_to_rgb(sr), 0, 1) * 255.0)
    out = upscale(img, model, "srcnn", 3, tile=32)
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    method = as_method(model, "srcnn", "c", (3.0,))
    assert method.rgb  # evaluate gives it the LR RGB image: the same numbers as upscale's
    evaluated = quantize(method.run(img / 255.0, (120, 150), 3) * 255.0)
    assert np.abs(evaluated.astype(int) - ref).max() <= 1
    grey = builtin_images()[1][1][:30, :30]
    g = upscale(grey, model, "srcnn", 3)
    up = np.repeat(bicubic_restore(grey / 255.0, (90, 90))[..., None], 3, -1)
    sr = run_tiled(model, up if colour == "rgb" else rgb_to_ycbcr(up))
    ref = quantize(np.clip((sr if colour == "rgb" else ycbcr_to_rgb(sr)).mean(-1), 0, 1) * 255.0)
    assert g.shape == (90, 90) and np.abs(g.astype(int) - ref).max() <= 1


def test_y_network_as_an_rgb_method_keeps_cb_and_cr_bicubic(nets):
    model, info = nets["srcnn-x3"]
    img = builtin_images()[2][1][:60, :81] / 255.0
    lr = bicubic_degrade(img, 3)
    out = as_method(model, "srcnn", "s", (3.0,), rgb=True).run(lr, (60, 81), 3)
    ycc, bic = rgb_to_ycbcr(out), rgb_to_ycbcr(bicubic_restore(lr, (60, 81)))
    inside = (out > 0).all(-1) & (out < 1).all(-1)  # clipping to [0, 1] moves the chroma of a few pixels
    np.testing.assert_allclose(ycc[inside][:, 1:], bic[inside][:, 1:], atol=1e-9)
    y_only = as_method(model, "srcnn", "s", (3.0,)).run(rgb_to_ycbcr(lr)[..., 0], (60, 81), 3)
    np.testing.assert_allclose(ycc[inside][:, 0], y_only[inside], atol=1e-9)


def test_alpha_16_bit_and_float_photos_keep_what_they_are(nets):
    model, info = nets["vdsr"]
    rgb = builtin_images()[3][1][:40, :50]
    alpha = np.tile(np.linspace(0, 255, 50), (40, 1)).round().astype(np.uint8)
    out8 = upscale_photo(Photo(rgb), model, "vdsr", 2)
    with_alpha = upscale_photo(Photo(rgb, alpha), model, "vdsr", 2, tile=24)
    assert np.array_equal(with_alpha.pixels, out8.pixels)  # alpha does not change the colour
    assert np.abs(with_alpha.alpha.astype(int) - quantize(imresize(alpha / 255.0, 2) * 255)).max() <= 1
    deep = upscale_photo(Photo(rgb.astype(np.uint16) * 257), model, "vdsr", 2)  # the same image in 16 bits
    assert deep.pixels.dtype == np.uint16 and deep.pixels.max() > 255
    assert np.abs(deep.pixels / 257.0 - out8.pixels).max() <= 1
    hdr = np.tile(np.linspace(0.2, 1.5, 50, dtype=np.float32), (40, 1))  # float, up to 1.5: kept, not clipped
    out = upscale_photo(Photo(hdr), model, "vdsr", 2)
    assert out.pixels.dtype == np.float32 and out.pixels.max() > 1.2


def test_grayscale_stays_grayscale_with_an_rgb_network(nets):
    model, info = nets["srresnet-x4-small"]
    gray = builtin_images()[1][1][:20, :30]
    assert upscale(gray, model, info["kind"], 4).shape == (80, 120)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_photo(tmp_path):
    """A 6-megapixel output through a 64-channel network: whole, its layers would need 1.5 GB
    each; in tiles the process grows by a few hundred MB at most."""
    script = textwrap.dedent("""
        import json, resource, sys
        import numpy as np, torch
        from srlib.data.image import Photo
        from srlib.inference import upscale_photo
        from srlib.models import VDSR
        torch.manual_seed(0)
        model = VDSR(depth=3).eval()
        img = np.random.default_rng(0).integers(0, 256, (1000, 1500, 3), dtype=np.uint8)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = upscale_photo(Photo(img), model, "vdsr", 2, max_memory=int(sys.argv[1]))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"grew_mib": (after - before) / 1024, "shape": out.pixels.shape}))
    """)
    p = subprocess.run([sys.executable, "-c", script, str(256 << 20)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["shape"] == [2000, 3000, 3]
    assert r["grew_mib"] < 400, r  # the output itself is 17 MiB; a whole-image layer 1,465 MiB


# ----- the command line ---------------------------------------------------------------
@pytest.mark.slow
def test_cli_folder_in_folder_out_skips_what_exists(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name, im in builtin_images()[:3]:
        Image.fromarray(im[:24, :32]).save(src / f"{name}.png")
    (src / "broken.png").write_bytes(b"not a png")
    (src / "notes.txt").write_text("not an image: ignored")
    p = _cli("upscale", str(src), str(dst), "--model", "srcnn-x3", "--quiet")
    assert p.returncode == 2, p.stderr  # one file failed: said, and the others done
    assert "broken.png" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "3 upscaled, 0 skipped" in p.stdout and "1 failed" in p.stdout
    assert sorted(f.name for f in dst.iterdir()) == ["astronaut.png", "camera.png", "chelsea.png"]
    assert read_photo(dst / "camera.png").pixels.shape == (72, 96)  # grayscale stays grayscale
    (src / "broken.png").unlink()
    stamp = (dst / "camera.png").stat().st_mtime_ns
    p = _cli("upscale", str(src), str(dst), "--model", "srcnn-x3", "--quiet")
    assert p.returncode == 0 and "0 upscaled, 3 skipped" in p.stdout
    assert (dst / "camera.png").stat().st_mtime_ns == stamp
    p = _cli("upscale", str(src), str(dst), "--model", "srcnn-x3", "--quiet", "--overwrite")
    assert p.returncode == 0 and "3 upscaled, 0 skipped" in p.stdout


@pytest.mark.slow
def test_cli_never_overwrites_the_input_or_an_existing_file(tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray(builtin_images()[0][1][:20, :20]).save(img)
    before = img.read_bytes()
    for args in (["--overwrite"], []):
        p = _cli("upscale", str(img), str(img), "--model", "vdsr", "--scale", "2", *args)
        assert p.returncode == 2 and "is the input file" in p.stderr and img.read_bytes() == before
    p = _cli("upscale", str(tmp_path), str(tmp_path), "--model", "vdsr", "--scale", "2")
    assert p.returncode == 2 and "is the input folder" in p.stderr
    (tmp_path / "out.png").write_bytes(b"keep me")
    p = _cli("upscale", str(img), str(tmp_path / "out.png"), "--model", "vdsr", "--scale", "2")
    assert p.returncode == 2 and "--overwrite" in p.stderr and (tmp_path / "out.png").read_bytes() == b"keep me"


@pytest.mark.slow
def test_cli_photo_orientation_alpha_and_depth(tmp_path):
    rgba = np.dstack([builtin_images()[2][1][:20, :30], np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    p = _cli("upscale", str(tmp_path / "rgba.png"), str(tmp_path / "rgba_x2.png"), "--model", "vdsr", "--scale", "2")
    assert p.returncode == 0, p.stderr
    out = read_photo(tmp_path / "rgba_x2.png")
    assert out.pixels.shape == (40, 60, 3) and out.alpha is not None and (out.alpha == 128).all()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display": a portrait photo from a phone
    Image.fromarray(builtin_images()[2][1][:20, :30]).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    p = _cli("upscale", str(tmp_path / "phone.jpg"), str(tmp_path / "phone_x3.png"), "--model", "srcnn-x3")
    assert p.returncode == 0, p.stderr
    assert read_photo(tmp_path / "phone_x3.png").pixels.shape == (90, 60, 3)  # upright: 30 wide -> 30 tall
    save_photo(tmp_path / "deep.png", Photo(builtin_images()[1][1][:20, :20].astype(np.uint16) * 257))
    p = _cli("upscale", str(tmp_path / "deep.png"), str(tmp_path / "deep_x2.png"), "--model", "vdsr", "--scale", "2")
    assert p.returncode == 0, p.stderr
    assert read_photo(tmp_path / "deep_x2.png").pixels.dtype == np.uint16
    p = _cli("upscale", str(tmp_path / "deep.png"), str(tmp_path / "deep_x2.jpg"), "--model", "vdsr", "--scale", "2")
    assert p.returncode == 2 and "deep_x2.jpg" in p.stderr and not (tmp_path / "deep_x2.jpg").exists()


@pytest.mark.parametrize("args, message", [
    (["--max-memory", "lots"], "--max-memory 'lots'"),
    (["--max-memory", "1M"], "too small for this network"),
    (["--tile", "2"], "--tile 2"),
    (["--half"], "--half needs a GPU"),
    (["--scale", "0.5"], "scale 0.5"),
])
def test_cli_upscale_bad_options(tmp_path, args, message):
    Image.fromarray(builtin_images()[0][1][:30, :30]).save(tmp_path / "in.png")
    p = _cli("upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--model", "srcnn-x3", "--device", "cpu",
             *args)
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.png").exists()


def test_cli_upscale_refuses_a_decompression_bomb(tmp_path):
    import struct
    import zlib

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "bomb.png")
    data = bytearray((tmp_path / "bomb.png").read_bytes())
    data[16:24] = struct.pack(">II", 30000, 30000)  # the header claims 900 megapixels
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    p = _cli("upscale", str(tmp_path / "bomb.png"), str(tmp_path / "out.png"), "--model", "srcnn-x3")
    assert p.returncode == 2 and "bomb.png" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_rgb_network_on_a_tiny_model_upscales_by_its_factor():
    model = SRResNet(scale=2, blocks=1, width=8).eval()
    out = upscale(builtin_images()[0][1][:10, :12], model, "srresnet", 2, tile=4)
    assert out.shape == (20, 24, 3)


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_resize_convolution_srresnet_goes_in_tiles_like_the_whole_image(upsample):
    """Nearest-neighbour or bilinear upsampling stages: the factor and the receptive radius the tiles
    need come from them too (a tile's output is where the whole image's is, within float rounding)."""
    torch.manual_seed(0)
    model = SRResNet(scale=4, blocks=1, width=8, upsample=upsample).eval()
    lr = np.random.default_rng(4).random((30, 37, 3))
    tiled = as_method(model, "srresnet", "tiled", (4.0,), tile=12).run(lr, (120, 148, 3), 4)
    whole = as_method(model, "srresnet", "whole", (4.0,), tile=1000).run(lr, (120, 148, 3), 4)
    assert tiled.shape == (120, 148, 3) and np.abs(tiled - whole).max() < 1e-5


def test_evaluation_goes_in_tiles_with_the_same_numbers(nets):
    model, _ = nets["srcnn-x3"]
    lr = np.random.default_rng(3).random((40, 45))
    tiled = as_method(model, "srcnn", "tiled", (3.0,), tile=16).run(lr, (120, 135), 3)  # larger than two tiles
    whole = as_method(model, "srcnn", "whole", (3.0,), tile=1000).run(lr, (120, 135), 3)
    assert np.array_equal(tiled, whole) and tiled.dtype == np.float64


def test_running_a_network_on_images_leaves_the_callers_model_as_it_was():
    torch.manual_seed(0)
    model = SRResNet(scale=2, blocks=1, width=8)  # batch norm: train and eval mode compute differently
    with torch.no_grad():
        model(torch.rand(4, 3, 12, 12))  # running statistics away from their initial values
    model.train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    low = np.random.default_rng(4).random((10, 12, 3))
    got = as_method(model, "srresnet", "net", (2.0,)).run(low, (20, 24), 2)
    assert model.training and all(m.training for m in model.modules())  # the caller's mode came back
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())  # statistics untouched
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(low).float().permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=1e-6)  # computed in eval mode


def test_freed_memory_is_kept_for_the_next_tile_on_glibc():
    import platform

    from srlib.inference import keep_freed_memory

    assert keep_freed_memory() == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
