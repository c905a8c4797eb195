import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# `make test` runs the tests in pytest-xdist workers, one per core: each worker (and the notebooks, the
# book build and the commands it starts) computes on its share of the cores instead of all of them,
# as two processes that each run two threads on two cores are slower than one at a time.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


def pytest_configure(config):
    # Keep downloads and patch caches of the test run out of the user's cache; one cache per worker.
    if "SRLIB_CACHE" not in os.environ or os.environ.get("SRLIB_TEST_CACHE_FOR") not in (None, _worker()):
        import tempfile

        os.environ["SRLIB_CACHE"] = tempfile.mkdtemp(prefix="srlib-test-cache-")
        os.environ["SRLIB_TEST_CACHE_FOR"] = _worker()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# The tests that read the built book (the session fixture `built`, built once per worker that asks for it).
BOOK_TESTS = ("tests/test_book.py::", "tests/test_browser.py::",
              "tests/test_notebooks.py::test_checked_outputs_are_what_the_book_build_computed")


def pytest_itemcollected(item):
    if "built" in getattr(item, "fixturenames", ()) and not item.nodeid.startswith(BOOK_TESTS):
        raise pytest.UsageError(f"{item.nodeid} reads the built book: add it to BOOK_TESTS in tests/conftest.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's load balancing, with every test that reads the book in one worker (the book is
    built once): its tests form one unit of work, sent first, and every other test is a unit of its own."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BookInOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "book" if nodeid.startswith(BOOK_TESTS) else nodeid

    return BookInOneWorker(config, log)


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
