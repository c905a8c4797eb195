"""Data sets by name: the benchmark test sets, the training sets, and ``builtin`` images.

A name resolves, in order, from ``$SRLIB_DATA`` (one or more folders separated by
``os.pathsep``), then from srlib's cache (``$SRLIB_CACHE`` or the user cache folder),
then by downloading it into the cache. Both places use one layout::

    SelfExSR/Set5/image_SRF_2/img_001_SRF_2_HR.png   (also Set14, BSD100)
    Urban100/image_SRF_2/img_001_SRF_2_HR.png
    T91/t1.bmp
    BSD200/100075.png
    DIV2K/DIV2K_train_HR/0001.png

Any folder path works as a data set too: a folder of images, or one in the SelfExSR layout
(``image_SRF_<s>/*_HR.png``). ``$SRLIB_MIRROR`` replaces the download servers by one that
serves that same layout (for a local mirror, and for the tests).

Appendix: data sets (book/data_sets.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import SRError
from .degrade import modcrop
from .download import cache_dir, fetch_archive, fetch_files
from .image import read_image

__all__ = ["DATASETS", "builtin_images", "dataset_dir", "have", "or_builtin", "image_paths",
           "load_images", "download", "BUILTIN_NAMES"]

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}

# Sources. Per-file downloads are pinned by the sha256 of every file (manifest.sha256); DIV2K by
# its published md5 only (no sha256 is published for it): md5 catches corruption, not tampering.
_SELFEXSR = "https://raw.githubusercontent.com/jbhuang0604/SelfExSR/18e00f2d1bd3941e9b8d4895d3541543ad86d5b2/data/"
_DCSCN = "https://raw.githubusercontent.com/jiny2001/dcscn-super-resolution/master/data/"


@dataclass(frozen=True)
class Spec:
    """Where a named data set lives locally (``folder``) and where it comes from."""

    folder: str  # relative to a data root
    about: str
    base_url: str = ""  # per-file source: base_url + remote name of each manifest entry
    remote_folder: str = ""  # the folder's name at base_url (e.g. "yang91" for T91)
    archive: str = ""  # archive source instead: its URL ...
    archive_hash: str | None = None  # ... and checksum ("md5:..." or sha256), None if unknown
    images: str = ""  # subfolder holding the images, inside the extracted archive
    hr_scale: float | None = None  # SelfExSR layout: the image_SRF_<s> whose HR files serve every scale


DATASETS: dict[str, Spec] = {
    "Set5": Spec("SelfExSR/Set5", "5 test images (Bevilacqua et al., BMVC 2012)", _SELFEXSR, "Set5"),
    "Set14": Spec("SelfExSR/Set14", "14 test images (Zeyde et al., 2010)", _SELFEXSR, "Set14"),
    "BSD100": Spec("SelfExSR/BSD100", "100 test images of BSDS300 (Martin et al., ICCV 2001)", _SELFEXSR, "BSD100"),
    # At the pinned commit, all 100 image_SRF_2 HR files are half the width and height of the
    # image_SRF_4 ones (img_001: 512x322 vs 1024x644), so both folders' LR files have one size.
    # The full-size HR serve every scale (the LR made by srlib's MATLAB bicubic, as for every set):
    # bicubic x2 gives 26.87 dB on them, the VDSR paper's 26.88, and 26.56 dB on the half-size ones.
    "Urban100": Spec("Urban100", "100 urban test images (Huang et al., CVPR 2015); the full-size HR of "
                     "image_SRF_4 at every scale", _SELFEXSR, "Urban100", hr_scale=4.0),
    "T91": Spec("T91", "91 training images (Yang et al., TIP 2010)", _DCSCN, "yang91"),
    "BSD200": Spec("BSD200", "200 training images of BSDS300", _DCSCN, "bsd200"),
    "DIV2K": Spec("DIV2K", "800 2K training images (Agustsson and Timofte, CVPRW 2017)",
                  archive="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                  archive_hash="md5:bdc2d9338d4e574fe81bf7d158758658", images="DIV2K_train_HR"),
}
ALIASES = {"B100": "BSD100", "Urban": "Urban100", "291": "T91+BSD200"}

# The usual names of the SelfExSR files (img_001 ...) of the two small test sets.
IMAGE_NAMES = {
    "Set5": ["baby", "bird", "butterfly", "head", "woman"],
    "Set14": ["baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna", "man",
              "monarch", "pepper", "ppt3", "zebra"],
}

# Natural photographs that ship inside scikit-image: real images with no download. Their central
# 256 x 256 crops: six of them hold 0.39 megapixels, a little less than Set5's 0.56, so that a chapter without
# the benchmark data runs in about the time it takes with Set5.
BUILTIN_NAMES = ("astronaut", "camera", "chelsea", "coffee", "rocket", "moon")
BUILTIN_SIZE = 256


@cache
def _manifest() -> dict[str, str]:
    lines = (Path(__file__).with_name("manifest.sha256")).read_text().splitlines()
    return {rel: sha for sha, rel in (line.split(maxsplit=1) for line in lines if line.strip())}


def _roots() -> list[Path]:
    roots = [Path(p).expanduser() for p in os.environ.get("SRLIB_DATA", "").split(os.pathsep) if p]
    return roots + [cache_dir()]


def _canonical(name: str) -> str:
    for key in list(DATASETS) + list(ALIASES):
        if key.lower() == name.lower():
            return ALIASES.get(key, key)
    return name


def download(name: str, root: Path | None = None, progress: bool = True) -> Path:
    """Download the named data set into ``root`` (default: srlib's cache); return its folder."""
    name = _canonical(name)
    if name not in DATASETS:
        raise SRError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    spec, root = DATASETS[name], Path(root or cache_dir())
    mirror = os.environ.get("SRLIB_MIRROR", "").rstrip("/")
    dest = root / spec.folder
    try:
        if spec.archive:
            url = f"{mirror}/{Path(spec.archive).name}" if mirror else spec.archive
            fetch_archive(url, spec.archive_hash, dest, progress)
        else:
            prefix = spec.folder + "/"
            entries = []
            for rel, sha in _manifest().items():
                if rel.startswith(prefix):
                    inner = rel[len(prefix):]
                    url = f"{mirror}/{rel}" if mirror else f"{spec.base_url}{spec.remote_folder}/{inner}"
                    entries.append((url, inner, sha))
            fetch_files(entries, dest, progress)
    except SRError as e:
        raise SRError(f"{name} is not on this machine and could not be downloaded: {e}. "
                      f"Put its files in {root / spec.folder} (or in a folder named by $SRLIB_DATA, "
                      f"as <SRLIB_DATA>/{spec.folder}), or pass a folder path instead of the name.") from None
    return dest


def dataset_dir(name: str, download_missing: bool = True) -> Path:
    """The local folder of a named data set (downloading it if needed), or of a folder path."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    canon = _canonical(name)
    if canon not in DATASETS:
        if os.sep in name or "/" in name:
            raise SRError(f"{name}: no such folder")
        raise SRError(f"unknown data set {name!r}: use one of {', '.join(list(DATASETS) + ['291', 'builtin'])}, "
                      f"or a folder path")
    spec = DATASETS[canon]
    for root in _roots():
        d = root / spec.folder
        if d.is_dir():
            return d / spec.images if spec.images else d
    if not download_missing:
        raise SRError(f"{canon} not found in {', '.join(str(r) for r in _roots())}")
    d = download(canon)
    return d / spec.images if spec.images else d


def have(name: str, download_missing: bool = False) -> bool:
    """Whether data set ``name`` is at hand (locally, or after a download if allowed); a
    union such as ``"291"`` (T91 and BSD200) when all its parts are."""
    try:
        for part in ALIASES.get(name, name).split("+"):
            dataset_dir(part, download_missing)
    except SRError:
        return False
    return True


def or_builtin(name: str, download_missing: bool = False) -> str:
    """``name`` where :func:`have` finds it, else ``"builtin"``: the one fallback that lets every
    chapter, validation and evaluation run with no data and no network."""
    return name if name == "builtin" or have(name, download_missing) else "builtin"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _selfexsr_scales(folder: Path) -> dict[float, Path]:
    out = {}
    for d in folder.glob("image_SRF_*"):
        try:
            out[float(d.name.split("_")[-1])] = d
        except ValueError:
            continue
    return out


def image_paths(name: str, scale: float | None = None) -> list[Path]:
    """The HR image files of a data set (for the SelfExSR layout: of ``image_SRF_<scale>``,
    or of its first scale folder when that scale has none, or of the named set's ``hr_scale``)."""
    if name == "builtin":
        raise SRError("the builtin images are not files; use load_images('builtin')")
    parts = _canonical(name).split("+")
    if len(parts) > 1:
        return [p for part in parts for p in image_paths(part, scale)]
    folder = dataset_dir(name)
    scales = _selfexsr_scales(folder)
    spec = DATASETS.get(_canonical(name))
    if spec is not None and spec.hr_scale in scales:
        scale = spec.hr_scale
    if scales:
        sub = scales.get(float(scale)) if scale is not None else None
        sub = sub or scales[min(scales)]
        paths = sorted(sub.glob("*_HR.*"))
    else:
        paths = _images_in(folder)
    if not paths:
        raise SRError(f"{folder}: no images found (expected .png/.bmp/.jpg files or image_SRF_<s>/*_HR.png)")
    return paths


def builtin_images() -> list[tuple[str, np.ndarray]]:
    """Natural photos shipped with scikit-image (colour and grayscale), their central
    ``BUILTIN_SIZE`` x ``BUILTIN_SIZE`` crops as uint8 arrays."""
    import skimage.data

    def centre(a: np.ndarray) -> np.ndarray:
        top, left = (a.shape[0] - BUILTIN_SIZE) // 2, (a.shape[1] - BUILTIN_SIZE) // 2
        return np.ascontiguousarray(a[top:top + BUILTIN_SIZE, left:left + BUILTIN_SIZE])

    return [(n, centre(getattr(skimage.data, n)())) for n in BUILTIN_NAMES]


def load_images(name: str, scale: float | None = None) -> list[tuple[str, np.ndarray]]:
    """``(name, HR image)`` pairs of a data set, uint8, cropped with :func:`modcrop` to ``scale``."""
    if name == "builtin":
        items = builtin_images()
    else:
        paths = image_paths(name, scale)
        names = [p.stem.split("_SRF_")[0].removesuffix("_HR") for p in paths]
        known = IMAGE_NAMES.get(_canonical(name), [])
        if [n for n in names if n.startswith("img_")] == names and len(known) == len(names):
            names = known
        items = [(n, read_image(p)) for n, p in zip(names, paths, strict=True)]
    return [(n, modcrop(im, scale) if scale else im) for n, im in items]

