import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Keep downloads and patch caches of the test run out of the user's cache.
    if "SRLIB_CACHE" not in os.environ:
        import tempfile

        os.environ["SRLIB_CACHE"] = tempfile.mkdtemp(prefix="srlib-test-cache-")


def _shared_data() -> Path | None:
    p = os.environ.get("SRLIB_DATA")
    if p and (Path(p) / "SelfExSR" / "Set5").is_dir():
        return Path(p)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder ($SRLIB_DATA); tests that need it skip without it."""
    p = _shared_data()
    if p is None:
        pytest.skip("SRLIB_DATA is not set to a folder with SelfExSR/Set5 (e.g. ../shared/data): "
                    "benchmark data tests skipped")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """The book built once per test session, as `make book` does (-W: warnings are errors).

    Used by tests/test_book.py (the pages' contents) and tests/test_browser.py (the pages in
    a browser). Returns the folder of the HTML pages. ``SRLIB_BOOK_HTML=path/_build/html``
    reuses a book built with these sources (for working on the tests themselves).
    """
    if os.environ.get("SRLIB_BOOK_HTML"):
        return Path(os.environ["SRLIB_BOOK_HTML"])
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    p = subprocess.run([str(jb), "build", "-W", "--keep-going", "--path-output", str(out), str(ROOT)],
                       capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-6000:]
    assert not re.search(r"WARNING: (?!Kernel is running over TCP)", log), log[-6000:]
    return out / "_build" / "html"
