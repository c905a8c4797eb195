"""Checksummed, atomic downloads (pooch) and safe archive extraction.

Every file lands in its final place only after its hash was checked (pooch downloads to a
temporary file in the same folder and renames it); a whole data set folder appears only
once all of its files are there; archives are extracted into a staging folder, member
paths checked so that nothing escapes it, then renamed into place. An archive that cannot
be extracted is deleted, so that a retry downloads it again instead of failing on it.

Several processes may download the same set into one cache: a lock file next to the
destination (``.<name>.lock``, empty, left in place so that every process locks the same
file) lets one of them download while the others wait, then reuse its result.

Appendix: data sets (book/data_sets.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pooch
import requests
from filelock import FileLock, Timeout

from ..errors import SRError

__all__ = ["cache_dir", "fetch_file", "fetch_files", "fetch_archive", "lock_path", "safe_extract"]


def cache_dir() -> Path:
    """Where srlib keeps downloads and patch caches: ``$SRLIB_CACHE`` or the user cache."""
    return Path(os.environ.get("SRLIB_CACHE") or pooch.os_cache("srlib")).expanduser()


def fetch_file(url: str, dest: Path, known_hash: str | None, progress: bool = False) -> Path:
    """Download ``url`` to ``dest`` atomically, checking ``known_hash`` (sha256 hex, or
    ``"md5:..."``). A file already at ``dest`` with the right hash is not downloaded again."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=dest.name, path=dest.parent,
                                   progressbar=progress))
    except ValueError as e:  # pooch: hash mismatch; it has already removed the temporary file
        raise SRError(f"{url}: checksum mismatch, download rejected ({e})") from None
    except (requests.exceptions.RequestException, OSError) as e:
        raise SRError(f"{url}: download failed ({type(e).__name__}: {e})") from None


def lock_path(dest: Path) -> Path:
    """The lock file that guards the download of folder ``dest``."""
    return Path(dest).with_name(f".{Path(dest).name}.lock")


@contextmanager
def _locked(dest: Path, progress: bool) -> Iterator[None]:
    """Hold the lock of ``dest`` (waiting, and saying so, while another process has it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(dest))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"waiting for another process downloading {dest} ...", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def fetch_files(entries: Iterable[tuple[str, str, str]], dest: Path, progress: bool = True) -> Path:
    """Download many files into folder ``dest``: entries are ``(url, relative path, sha256)``.

    Files are collected in ``dest`` + ``.partial`` (already verified ones are kept, so an
    interrupted download resumes) and the folder is renamed to ``dest`` when complete. Under
    the lock of ``dest``, a ``dest`` that another process completed meanwhile is returned as is.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    staging = dest.with_name(dest.name + ".partial")
    entries = list(entries)
    with _locked(dest, progress):
        if dest.is_dir():
            missing = [rel for _, rel, _ in entries if not (dest / rel).is_file()]
            if missing:
                raise SRError(f"{dest} exists but lacks {missing[0]} ({len(missing)} files missing); "
                              f"remove the folder to download it again")
            return dest
        for url, rel, sha in tqdm(entries, desc=f"downloading {dest.name}", unit="file", disable=not progress):
            fetch_file(url, staging / rel, sha)
        os.replace(staging, dest)
    return dest


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into ``dest``, refusing members that would land outside
    it (absolute paths, ``..``, links): :class:`SRError` names the archive and the member."""
    archive, dest = Path(archive), Path(dest)
    root = dest.resolve()

    def check(name: str) -> None:
        target = (root / name).resolve()
        if os.path.isabs(name) or (target != root and root not in target.parents):
            raise SRError(f"{archive}: member {name!r} would be extracted outside {dest}; refused")

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    check(name)
                z.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    check(m.name)
                    if not (m.isfile() or m.isdir()):
                        raise SRError(f"{archive}: member {m.name!r} is a link or device; refused")
                t.extractall(dest, filter="data")
        else:
            raise SRError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as e:  # truncated or corrupted
        raise SRError(f"{archive}: damaged archive ({type(e).__name__}: {e})") from None


def fetch_archive(url: str, known_hash: str | None, dest: Path, progress: bool = True) -> Path:
    """Download an archive (hash checked), extract it safely, and move it into ``dest``.

    ``dest`` appears only when the extraction succeeded; the archive is deleted afterwards,
    and also when it could not be extracted (refused or damaged), so a retry downloads anew.
    Under the lock of ``dest``, a ``dest`` that another process made meanwhile is returned.
    """
    dest = Path(dest)
    with _locked(dest, progress):
        if dest.is_dir():
            return dest
        archive = fetch_file(url, dest.parent / ".downloads" / Path(url.split("?")[0]).name, known_hash, progress)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        try:
            safe_extract(archive, staging)
            os.replace(staging, dest)
        except SRError:
            archive.unlink(missing_ok=True)  # refused or damaged: a retry must download it anew
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return dest
