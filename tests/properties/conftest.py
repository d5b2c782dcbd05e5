"""Fixtures of the property tests: calculators (EMT, Stillinger-Weber) and crystals.

BLAS is pinned to one thread: the property code works on tiny matrices (BFGS Hessians of a
few hundred entries), where threads only add overhead on a shared two-core machine.
"""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture
def emt():
    return EMT()


@pytest.fixture
def sw():
    """matscipy's Stillinger-Weber silicon (the original 1985 parameters)."""
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
    )

    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))


@pytest.fixture
def sw_params():
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
    )

    return Stillinger_Weber_PRB_31_5262_Si


@pytest.fixture
def copper():
    return bulk("Cu", "fcc", a=3.6, cubic=True)


@pytest.fixture
def silicon():
    return bulk("Si", "diamond", a=5.43)


class NoStressEMT(EMT):
    """EMT that declares no stress (a calculator without stress, for the error paths)."""

    implemented_properties = ["energy", "forces", "energies"]


@pytest.fixture
def no_stress_calc():
    return NoStressEMT()
