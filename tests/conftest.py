"""Shared test fixtures.

AiiDA and pyiron write to the home folder at import time unless told otherwise, so their
locations are pointed into a temporary folder here, before any test module imports them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SANDBOX = Path(tempfile.mkdtemp(prefix="mlip-tests-"))
os.environ.setdefault("AIIDA_PATH", str(_SANDBOX / "aiida"))
os.environ.setdefault("PYIRONSQLFILE", str(_SANDBOX / "pyiron.db"))
os.environ.setdefault("PYIRONPROJECTPATHS", str(_SANDBOX / "pyiron_projects"))
os.environ.setdefault("PYIRONRESOURCEPATHS", str(_SANDBOX / "pyiron_resources"))
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path | None:
    """``$MLIP_DATA`` if set, else ``../shared/data`` beside the project; None if absent."""
    env = os.environ.get("MLIP_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the public reference data; skips the test when it is absent."""
    path = find_shared_data()
    if path is None:
        pytest.skip("reference data not found: set MLIP_DATA or place shared/data beside the "
                    "project (a user's clone has none)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
