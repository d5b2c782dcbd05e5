"""Fixtures of the ACE tests: small bases (built once per session) and test structures."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111

from mlip_plugin.ace import ACEBasis

R_CUT = 4.5


@pytest.fixture(scope="session")
def si_basis() -> ACEBasis:
    """Si, correlation order 4 (5-body), small degree: every code path, quickly."""
    return ACEBasis(["Si"], correlation_order=4, total_degree=9, r_cut=R_CUT)


@pytest.fixture(scope="session")
def si_basis5() -> ACEBasis:
    """Si, correlation order 5 (6-body)."""
    return ACEBasis(["Si"], correlation_order=5, total_degree=7, r_cut=R_CUT)


@pytest.fixture(scope="session")
def tial_basis() -> ACEBasis:
    """Two species with distinct radial parameters per species pair."""
    return ACEBasis(["Ti", "Al"], correlation_order=3, total_degree=7, r_cut=5.0,
                    r0={"Ti-Ti": 2.9, "Al-Al": 2.8, "Ti-Al": 2.85})


def _rattled(atoms: Atoms, seed: int, amount: float = 0.08) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return atoms


@pytest.fixture(scope="session")
def structures() -> dict[str, Atoms]:
    """Bulk, surface, vacancy, a cell smaller than 2 r_cut, a cluster, and TiAl."""
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    vac = si.copy()
    del vac[3]
    slab = fcc111("Al", size=(2, 2, 3), vacuum=6.0, a=4.05)
    slab.set_chemical_symbols(["Si"] * len(slab))
    slab.positions *= 0.95
    tial = bulk("Al", "fcc", a=4.0, cubic=True)
    tial.set_chemical_symbols(["Ti", "Al", "Ti", "Al"])
    cluster = Atoms("Si5", positions=np.array(
        [[0, 0, 0], [2.3, 0.1, 0], [0.2, 2.2, 0.3], [-0.1, 0.4, 2.4], [1.9, 2.0, 1.4]]))
    return {
        "bulk": _rattled(si, 1),
        "surface": _rattled(slab, 2),
        "vacancy": _rattled(vac, 3),
        "small_cell": _rattled(bulk("Si", "diamond", a=5.43), 4),  # primitive, 2 atoms
        "cluster": cluster,
        "tial": _rattled(tial, 5),
    }


@pytest.fixture
def rotation(rng) -> np.ndarray:
    """A random proper rotation matrix (3, 3)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
