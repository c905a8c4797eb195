import os
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
