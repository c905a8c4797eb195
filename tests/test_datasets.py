import functools
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from srlib import SRError
from srlib.data import builtin_images, dataset_dir, image_paths, load_images, read_image, save_image
from srlib.data import datasets as ds
from srlib.data.download import fetch_archive, lock_path, safe_extract

_SERVED: list[str] = []  # the paths the test server was asked for


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        _SERVED.append(self.path)
        if self.path.startswith("/truncated/"):  # promise 100 kB, send 1 kB, hang up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (root folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    _SERVED.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _zip_of_images(path: Path, prefix: str = "imgs/") -> list[str]:
    names = []
    with zipfile.ZipFile(path, "w") as z:
        for name, im in builtin_images()[:2]:
            buf = io.BytesIO()
            from PIL import Image

            Image.fromarray(im).save(buf, format="PNG")
            z.writestr(prefix + name + ".png", buf.getvalue())
            names.append(name + ".png")
    return names


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _leftovers(folder: Path) -> list[Path]:
    """Files under ``folder``, except the empty ``.<set>.lock`` files that downloads leave by design."""
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return [p for p in files if not (re.fullmatch(r"\..+\.lock", p.name) and p.stat().st_size == 0)]


def test_archive_good_checksum(server, tmp_path):
    www, url = server
    names = _zip_of_images(www / "small.zip")
    dest = tmp_path / "cache" / "Small"
    fetch_archive(f"{url}/small.zip", _sha256(www / "small.zip"), dest, progress=False)
    assert sorted(p.name for p in (dest / "imgs").iterdir()) == sorted(names)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if p.name != ".downloads") == [".Small.lock", "Small"]
    assert _leftovers(tmp_path / "cache" / ".downloads") == []  # archive removed after extraction


def test_archive_bad_checksum_leaves_nothing(server, tmp_path):
    www, url = server
    _zip_of_images(www / "small.zip")
    dest = tmp_path / "cache" / "Small"
    with pytest.raises(SRError, match="checksum mismatch"):
        fetch_archive(f"{url}/small.zip", "0" * 64, dest, progress=False)
    assert not dest.exists()
    assert _leftovers(tmp_path / "cache") == []


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    _, url = server
    dest = tmp_path / "cache" / "Small"
    with pytest.raises(SRError, match="download failed"):
        fetch_archive(f"{url}/truncated/small.zip", "0" * 64, dest, progress=False)
    assert not dest.exists()
    assert _leftovers(tmp_path / "cache") == []


def test_archive_path_escape_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../escaped.txt", "bad")
    with pytest.raises(SRError, match="outside"):
        safe_extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()

    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    with pytest.raises(SRError, match="link"):
        safe_extract(tar, tmp_path / "out2")


def test_named_set_downloads_from_mirror_with_manifest_checksums(server, shared_data, tmp_path, monkeypatch):
    """The real download path of a named set (per-file sha256 from srlib's manifest)."""
    www, url = server
    shutil.copytree(shared_data / "SelfExSR" / "Set5", www / "SelfExSR" / "Set5")
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRLIB_DATA", "")
    monkeypatch.setenv("SRLIB_CACHE", str(cache))
    monkeypatch.setenv("SRLIB_MIRROR", url)
    images = load_images("Set5", 4)
    assert len(images) == 5 and images[0][1].shape == (512, 512, 3)
    assert len(list((cache / "SelfExSR" / "Set5").rglob("*.png"))) == 30
    assert dataset_dir("Set5") == cache / "SelfExSR" / "Set5"


def test_named_set_with_a_corrupted_file_is_rejected(server, shared_data, tmp_path, monkeypatch):
    www, url = server
    shutil.copytree(shared_data / "SelfExSR" / "Set5", www / "SelfExSR" / "Set5")
    bad = www / "SelfExSR" / "Set5" / "image_SRF_3" / "img_002_SRF_3_HR.png"
    bad.write_bytes(bad.read_bytes()[:-10] + b"0123456789")
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRLIB_DATA", "")
    monkeypatch.setenv("SRLIB_CACHE", str(cache))
    monkeypatch.setenv("SRLIB_MIRROR", url)
    with pytest.raises(SRError, match="checksum mismatch"):
        dataset_dir("Set5")
    assert not (cache / "SelfExSR" / "Set5").exists()
    assert not any(p.name == "img_002_SRF_3_HR.png" for p in cache.rglob("*"))


def _served_count(name: str) -> int:
    return sum(p.rsplit("/", 1)[-1] == name for p in _SERVED)


def _junk(path: Path) -> None:
    path.write_bytes(b"this is not an archive\n" * 50)


def _truncated_zip(path: Path) -> None:
    _zip_of_images(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _truncated_tgz(path: Path) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, im in builtin_images()[:2]:
            data = np.random.default_rng(0).integers(0, 256, im.size, dtype=np.uint8).tobytes()
            info = tarfile.TarInfo(f"imgs/{name}.raw")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _escaping_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ok.txt", "fine")
        z.writestr("../escaped.txt", "bad")


@pytest.mark.parametrize("make, error", [(_junk, "not a zip or tar"), (_truncated_zip, "not a zip or tar"),
                                         (_truncated_tgz, "damaged archive"), (_escaping_zip, "outside")])
def test_refused_or_damaged_archive_is_deleted_so_a_retry_downloads_again(server, tmp_path, make, error):
    """An archive that cannot be extracted must not stay in .downloads/ to be reused by the retry
    (with no digest to check, pooch would keep the file it already has)."""
    www, url = server
    name = "set.tar.gz" if make is _truncated_tgz else "set.zip"
    make(www / name)
    dest = tmp_path / "cache" / "Small"
    with pytest.raises(SRError, match=error):
        fetch_archive(f"{url}/{name}", None, dest, progress=False)
    assert not dest.exists() and _leftovers(tmp_path / "cache") == []
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "cache" / "escaped.txt").exists()
    # The server now has a good archive under the same name: the retry downloads and installs it.
    if name.endswith(".zip"):
        with zipfile.ZipFile(www / name, "w") as z:
            z.writestr("imgs/a.txt", "good")
    else:
        with tarfile.open(www / name, "w:gz") as t:
            info = tarfile.TarInfo("imgs/a.txt")
            info.size = 4
            t.addfile(info, io.BytesIO(b"good"))
    fetch_archive(f"{url}/{name}", None, dest, progress=False)
    assert (dest / "imgs" / "a.txt").read_text() == "good"
    assert _served_count(name) == 2 and _leftovers(tmp_path / "cache" / ".downloads") == []


def _fake_urban100(www: Path) -> dict[str, str]:
    """A one-image Urban100 in the SelfExSR layout under www; returns its manifest entries."""
    manifest = {}
    for s in (2, 4):  # as in SelfExSR: HR 12s x 16s (so x2's is half-size), LR 12 x 16 in both
        for kind, shape in (("HR", (12 * s, 16 * s, 3)), ("LR", (12, 16, 3))):
            rel = f"Urban100/image_SRF_{s}/img_001_SRF_{s}_{kind}.png"
            (www / rel).parent.mkdir(parents=True, exist_ok=True)
            save_image(www / rel, np.random.default_rng(s).integers(0, 256, shape, dtype=np.uint8))
            manifest[rel] = _sha256(www / rel)
    return manifest


@pytest.fixture
def urban_env(server, tmp_path, monkeypatch):
    """A fake one-image Urban100 served as a mirror, srlib's manifest replaced by its digests."""
    www, url = server
    manifest = _fake_urban100(www)
    monkeypatch.setattr(ds, "_manifest", lambda: manifest)
    monkeypatch.setenv("SRLIB_DATA", "")
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SRLIB_MIRROR", url)
    return www, url, tmp_path / "cache"


def test_urban100_downloads_per_file_checked_against_the_manifest(urban_env):
    www, _, cache = urban_env
    images = load_images("Urban100", 4)
    assert [n for n, _ in images] == ["img_001"] and images[0][1].shape == (48, 64, 3)
    got = sorted(str(p.relative_to(cache)) for p in _leftovers(cache))
    assert got == sorted(ds._manifest())
    assert all(_sha256(cache / rel) == sha for rel, sha in ds._manifest().items())
    # every scale reads the full-size HR of image_SRF_4 (image_SRF_2's are half-size), cropped to the scale
    full = read_image(cache / "Urban100" / "image_SRF_4" / "img_001_SRF_4_HR.png")
    for scale in (2, 3):
        (_, hr), = load_images("Urban100", scale)
        assert hr.shape == (48, 63 if scale == 3 else 64, 3) and (hr == full[:, :hr.shape[1]]).all()


def test_urban100_file_with_other_bytes_is_rejected(urban_env):
    www, _, cache = urban_env
    bad = www / "Urban100" / "image_SRF_4" / "img_001_SRF_4_LR.png"
    bad.write_bytes(bad.read_bytes() + b"\0")  # still a valid PNG, but not the pinned file
    with pytest.raises(SRError, match="img_001_SRF_4_LR.png: checksum mismatch"):
        dataset_dir("Urban100")
    assert not (cache / "Urban100").exists()
    assert not any(p.name == bad.name for p in cache.rglob("*"))


def test_truncated_file_of_a_set_leaves_no_partial_file(urban_env, monkeypatch):
    _, url, cache = urban_env
    monkeypatch.setenv("SRLIB_MIRROR", f"{url}/truncated")
    with pytest.raises(SRError, match="download failed"):
        dataset_dir("Urban100")
    assert not (cache / "Urban100").exists() and _leftovers(cache) == []


def test_urban100_comes_per_file_from_the_pinned_selfexsr_commit(monkeypatch):
    spec = ds.DATASETS["Urban100"]
    assert not spec.archive and spec.base_url == ds._SELFEXSR and spec.remote_folder == "Urban100"
    assert re.search(r"/SelfExSR/[0-9a-f]{40}/data/$", ds._SELFEXSR)
    seen = {}
    monkeypatch.delenv("SRLIB_MIRROR", raising=False)
    monkeypatch.setattr(ds, "fetch_files", lambda entries, dest, progress: seen.update(e=list(entries)))
    ds.download("Urban100", Path("/nonexistent"))
    url, rel, sha = seen["e"][0]
    assert url == ds._SELFEXSR + "Urban100/" + rel and len(seen["e"]) == 400
    assert sha == ds._manifest()["Urban100/" + rel]


def test_manifest_pins_every_urban100_file_and_every_set_has_a_digest():
    manifest = ds._manifest()
    urban = {rel for rel in manifest if rel.startswith("Urban100/")}
    assert urban == {f"Urban100/image_SRF_{s}/img_{i:03d}_SRF_{s}_{k}.png"
                     for s in (2, 4) for i in range(1, 101) for k in ("HR", "LR")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in manifest.values())
    for name, spec in ds.DATASETS.items():  # no download without a digest
        if spec.archive:
            assert spec.archive_hash, name
        else:
            assert any(rel.startswith(spec.folder + "/") for rel in manifest), name


_RACER = """
import json, sys
from pathlib import Path
from srlib.data.download import fetch_archive, fetch_files
kind, arg, dest = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
if kind == "files":
    fetch_files([tuple(e) for e in arg], dest, progress=True)
else:
    fetch_archive(arg[0], arg[1], dest, progress=True)
"""


@pytest.mark.parametrize("kind", ["files", "archive"])
def test_two_processes_downloading_one_set_both_succeed(server, tmp_path, kind):
    """Two processes start while the set's lock is held (so they surely race), then both succeed:
    one downloads, the other waits and reuses its result; nothing but the set and the lock stays."""
    from filelock import FileLock

    www, url = server
    cache, dest = tmp_path / "cache", tmp_path / "cache" / "Small"
    if kind == "files":
        for i in range(8):
            (www / "Small" / "sub").mkdir(parents=True, exist_ok=True)
            (www / "Small" / "sub" / f"{i}.bin").write_bytes(np.random.default_rng(i).bytes(50_000))
        arg = [(f"{url}/Small/sub/{i}.bin", f"sub/{i}.bin", _sha256(www / "Small" / "sub" / f"{i}.bin"))
               for i in range(8)]
        expected = {rel: sha for _, rel, sha in arg}
    else:
        _zip_of_images(www / "small.zip")
        arg = [f"{url}/small.zip", _sha256(www / "small.zip")]
        with zipfile.ZipFile(www / "small.zip") as z:
            expected = {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}
    cache.mkdir()
    lock = FileLock(lock_path(dest))
    lock.acquire()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, kind, json.dumps(arg), str(dest)],
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]) for _ in range(2)]
    try:
        for p in procs:  # both are waiting for the lock
            line = ""
            while "waiting for another process" not in line:
                line = p.stderr.readline()
                assert line, "the racer ended before waiting for the lock"
    finally:
        lock.release()
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert {p.relative_to(dest).as_posix(): _sha256(p) for p in files} == expected  # complete, verified
    assert {p.name for p in cache.iterdir()} - {".downloads"} == {"Small", ".Small.lock"}
    assert sorted(_leftovers(cache)) == sorted(files)  # no temporary file, no *.partial, no archive
    assert len(_SERVED) == (len(arg) if kind == "files" else 1)  # the loser downloaded nothing


def test_offline_and_absent_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLIB_DATA", "")
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SRLIB_MIRROR", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(SRError) as e:
        dataset_dir("Set14")
    msg = str(e.value)
    assert "could not be downloaded" in msg and str(tmp_path / "cache" / "SelfExSR" / "Set14") in msg
    assert "SRLIB_DATA" in msg


def test_names_resolve_from_srlib_data(shared_data):
    assert len(image_paths("Set5", 2)) == 5
    assert len(image_paths("B100", 3)) == 100 and len(image_paths("bsd100", 3)) == 100
    assert len(image_paths("T91")) == 91 and len(image_paths("BSD200")) == 200
    assert len(image_paths("291")) == 291
    # Set14's "bridge" is a grayscale file and stays one; images carry their usual names.
    set14 = load_images("Set14", 2)
    assert set14[2][0] == "bridge" and set14[2][1].ndim == 2
    assert [n for n, _ in load_images("Set5", 3)] == ["baby", "bird", "butterfly", "head", "woman"]
    assert load_images("BSD100", 4)[0][0] == "img_001"
    # An SelfExSR-layout folder given as a path, at a scale it has no folder for.
    imgs = load_images(str(shared_data / "SelfExSR" / "Set5"), 5)
    assert all(im.shape[0] % 5 == 0 and im.shape[1] % 5 == 0 for _, im in imgs)


def test_folder_of_images_and_builtin(tmp_path):
    for name, im in builtin_images()[:3]:
        save_image(tmp_path / f"{name}.png", im)
    (tmp_path / "notes.txt").write_text("ignored")
    imgs = load_images(str(tmp_path), 3)
    assert [n for n, _ in imgs] == ["astronaut", "camera", "chelsea"]
    assert all(im.shape[0] % 3 == 0 and im.shape[1] % 3 == 0 for _, im in imgs)
    b = load_images("builtin")
    assert len(b) == 6 and {im.ndim for _, im in b} == {2, 3} and all(im.dtype == np.uint8 for _, im in b)


def test_have_says_whether_a_set_is_at_hand(shared_data, tmp_path, monkeypatch):
    from srlib.data import have

    assert have("Set5") and have(str(tmp_path))
    assert not have("no-such-set") and not have(str(tmp_path / "missing"))
    assert have("291") and have("T91") and have("BSD200")  # a union: at hand when all its parts are
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))  # nowhere to find it, and no download allowed
    assert not have("Set14") and not have("291")
    (tmp_path / "T91").symlink_to(shared_data / "T91")
    assert have("T91") and not have("291")  # BSD200 is still missing


def test_notebooks_train_on_builtin_images_without_data(shared_data, tmp_path, monkeypatch, capsys):
    from srlib.notebook import setup

    session = setup(verbose=False)
    assert session.train_set("T91") == "T91" and session.train_set("291") == "291"
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))  # no data, and no download allowed off Colab
    monkeypatch.setenv("SRLIB_CACHE", str(tmp_path / "cache"))
    assert session.train_set("T91") == "builtin"
    assert "training images: builtin (T91 not found" in capsys.readouterr().out
