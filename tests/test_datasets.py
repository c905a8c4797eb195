import functools
import hashlib
import io
import shutil
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from srlib import SRError
from srlib.data import builtin_images, dataset_dir, image_paths, load_images, save_image
from srlib.data.download import fetch_archive, safe_extract


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
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
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_archive_good_checksum(server, tmp_path):
    www, url = server
    names = _zip_of_images(www / "small.zip")
    dest = tmp_path / "cache" / "Small"
    fetch_archive(f"{url}/small.zip", _sha256(www / "small.zip"), dest, progress=False)
    assert sorted(p.name for p in (dest / "imgs").iterdir()) == sorted(names)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name != ".downloads"] == ["Small"]
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
    monkeypatch.setenv("SRLIB_DATA", str(tmp_path))  # nowhere to find it, and no download allowed
    assert not have("Set14")
