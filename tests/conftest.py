"""Shared test fixtures.

AiiDA and pyiron write to the home folder at import time unless told otherwise, so their
locations are pointed into a temporary folder here, before any test module imports them;
the folder is removed when the test process ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_SANDBOX = Path(tempfile.mkdtemp(prefix="mlip-tests-"))
atexit.register(shutil.rmtree, _SANDBOX, ignore_errors=True)  # leave no folder behind
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


@pytest.fixture
def cu_example() -> Path:
    """The bundled Cu/EMT data file (12 labelled configurations of fcc Cu)."""
    import mlip_plugin.data
    from mlip_plugin.cli import EXAMPLE_DATA

    return Path(mlip_plugin.data.__file__).parent / "examples" / EXAMPLE_DATA


@pytest.fixture
def write_ti_data():
    """Factory: write a few labelled hcp Ti configurations (an element with no obvious
    property suite) to a path, and return the path."""
    def write(path: Path) -> Path:
        import ase.io
        from ase.build import bulk
        from ase.calculators.singlepoint import SinglePointCalculator

        images = []
        for seed in range(3):
            atoms = bulk("Ti", "hcp", a=2.95).repeat(2)
            atoms.rattle(0.02, seed=seed)
            atoms.calc = SinglePointCalculator(atoms, energy=-5.0 * len(atoms) + 0.01 * seed,
                                               forces=np.zeros((len(atoms), 3)))
            images.append(atoms)
        ase.io.write(path, images, format="extxyz")
        return path

    return write


@pytest.fixture
def write_cuau_structures():
    """Factory: write ``n`` rattled fcc Cu–Au cells (4 atoms, 1–3 Au) to an extxyz path and
    return it.  Each frame carries deliberately wrong labels (energy 123 eV, zero forces),
    as a file of structures labelled by something else would."""
    def write(path: Path, n: int = 8) -> Path:
        import ase.io
        from ase.build import bulk
        from ase.calculators.singlepoint import SinglePointCalculator

        rng = np.random.default_rng(7)
        images = []
        for i in range(n):
            atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
            symbols = atoms.get_chemical_symbols()
            for j in rng.choice(len(atoms), size=1 + i % 3, replace=False):
                symbols[j] = "Au"
            atoms.set_chemical_symbols(symbols)
            atoms.rattle(0.05, seed=i)
            atoms.calc = SinglePointCalculator(atoms, energy=123.0,
                                               forces=np.zeros((len(atoms), 3)))
            images.append(atoms)
        ase.io.write(path, images, format="extxyz")
        return path

    return write
