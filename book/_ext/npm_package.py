"""JavaScript packages from the npm registry for the built book: fetched, checked, cached.

The book's pages use a few JavaScript packages: MathJax, the ipywidgets renderer and
RequireJS (book/_ext/offline_assets.py), ONNX Runtime Web (book/_ext/upscale_page.py). The
build serves them from the site itself, so that the book reads offline and where a CDN is
blocked: each package's tarball comes from the npm registry, is checked against the SHA-512
that the registry publishes for it (its ``integrity``), and is kept in srlib's download
cache for the next build. Where the registry cannot be reached, :func:`tarball` returns
None and the caller leaves the page on a CDN, saying so in the build log.
"""

from __future__ import annotations

import base64
import fnmatch
import shutil
import tarfile
from pathlib import Path

from sphinx.util import logging

log = logging.getLogger(__name__)

REGISTRY = "https://registry.npmjs.org"


def tarball(name: str, version: str, integrity: str, why: str) -> Path | None:
    """The package's tarball in the cache (downloaded and checked if missing), or None if the
    registry could not give it; then the build log says so, and ``why`` it was wanted."""
    from srlib.data.download import cache_dir, fetch_file
    from srlib.errors import SRError

    file = f"{name.rpartition('/')[2]}-{version}.tgz"
    url = f"{REGISTRY}/{name}/-/{file}"
    algo, _, digest = integrity.partition("-")
    try:
        return fetch_file(url, cache_dir() / "npm" / name / file, f"{algo}:{base64.b64decode(digest).hex()}")
    except SRError as e:
        log.info(f"{name} {version} could not be fetched from the npm registry ({e}): {why}")
        return None


def copy(tgz: Path, root: str, files: list[str] | None, dest: Path) -> None:
    """Copy ``files`` from the package's folder ``root`` (e.g. ``"dist"``; ``""``: the package
    itself) into ``dest``, at the same paths relative to ``root``; a name ending in ``/``
    copies that whole folder, a pattern (``*.woff2``) the files that match it (if any), and
    ``files=None`` all of ``root``."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = "package/" + (f"{root.strip('/')}/" if root.strip("/") else "")
    with tarfile.open(tgz) as tar:
        members = {m.name.removeprefix(prefix): m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)}
        for want in files if files is not None else [""]:
            if want.endswith("/") or not want:
                chosen = [k for k in members if k.startswith(want)]
            else:
                chosen = fnmatch.filter(members, want) if "*" in want else [want]
            if (not chosen and "*" not in want) or any(k not in members for k in chosen):  # a pattern may match none
                raise FileNotFoundError(f"{tgz.name}: no {root}/{want}")
            for key in chosen:
                if ".." in Path(key).parts:
                    raise ValueError(f"{tgz.name}: unsafe path {key}")
                (dest / key).parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(members[key]) as src, open(dest / key, "wb") as out:
                    shutil.copyfileobj(src, out)
