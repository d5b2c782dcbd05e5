"""LinearACEModel built from a solver's support: coefficients, committee, file round trip."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from mlip_plugin.ace import ACEBasis
from mlip_plugin.models.linear_ace import LinearACEModel

E0 = {"Al": -0.3, "Ni": -0.7}


@pytest.fixture(scope="module")
def alni_basis() -> ACEBasis:
    return ACEBasis(["Al", "Ni"], correlation_order=2, total_degree=5, r_cut=4.5,
                    r0={"Al-Al": 2.8, "Al-Ni": 2.6, "Ni-Ni": 2.5})


@pytest.fixture(scope="module")
def alni():
    atoms = bulk("Al", "fcc", a=4.0).repeat((2, 2, 1))
    atoms.symbols[[0, 3]] = "Ni"
    atoms.rattle(0.05, seed=4)
    return atoms


def test_from_support_takes_committee_columns_in_the_order_of_values(alni_basis, alni):
    """The fit passes a committee of shape (members, len(support)), aligned with ``values``;
    from_support indexed it with column numbers of the full basis (IndexError, or wrong
    columns when the support is not the whole basis)."""
    rng = np.random.default_rng(7)
    support = np.array([20, 3, 11, 40])
    values = rng.normal(size=4)
    committee = values + 0.1 * rng.normal(size=(3, 4))
    model = LinearACEModel.from_support(alni_basis, support, values, E0, committee=committee)
    for member, row in zip(committee, model.committee):
        alone = LinearACEModel.from_support(alni_basis, support, member, E0)
        assert np.array_equal(row, alone.coef)
    energies = [LinearACEModel.from_support(alni_basis, support, m, E0).predict(alni).energy
                for m in committee]
    assert model.predict(alni).extras["energy_std"] == pytest.approx(np.std(energies),
                                                                     rel=1e-10)
