"""Structures and configurations as flat arrays (the layout the pyiron jobs store)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlip_plugin import InputError
from mlip_plugin.data import Configuration, Weights
from mlip_plugin.workflows.pyiron.arrays import (
    arrays_to_configurations,
    arrays_to_structures,
    configurations_to_arrays,
    structures_to_arrays,
)


@pytest.fixture
def configs(rng):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    cu.rattle(0.05, seed=1)
    water = molecule("H2O")
    slab = bulk("Cu", "fcc", a=3.6, cubic=True)
    slab.pbc = (True, True, False)
    return [
        Configuration(cu, energy=-3.25, forces=rng.normal(size=(8, 3)),
                      stress=rng.normal(size=6), config_type="rattled",
                      weights=Weights(10.0, 2.0, 0.5), info={"structure_id": "rattled-0"}),
        Configuration(water, energy=-14.2, forces=rng.normal(size=(3, 3)),
                      config_type="molécule"),  # not periodic, no stress, non-ASCII label
        Configuration(slab, energy=None, forces=None, stress=None, config_type="surface"),
    ]


def test_configurations_round_trip_exactly(configs):
    arrays = configurations_to_arrays(configs)
    assert arrays["n_atoms"].tolist() == [8, 3, 4]
    assert arrays["positions"].shape == arrays["forces"].shape == (15, 3)
    assert arrays["cells"].shape == (3, 3, 3) and arrays["stresses"].shape == (3, 6)
    back = arrays_to_configurations(arrays)
    for a, b in zip(configs, back):
        assert b.atoms.get_chemical_symbols() == a.atoms.get_chemical_symbols()
        np.testing.assert_array_equal(b.atoms.positions, a.atoms.positions)
        np.testing.assert_array_equal(b.atoms.cell.array, a.atoms.cell.array)
        np.testing.assert_array_equal(b.atoms.pbc, a.atoms.pbc)
        assert b.energy == a.energy and b.config_type == a.config_type
        assert b.weights == a.weights and b.info == a.info
        for name in ("forces", "stress"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or np.array_equal(x, y)
    assert back[0].info["structure_id"] == "rattled-0"
    assert back[2].energy is None and back[2].forces is None and back[2].stress is None


def test_structures_round_trip_and_keep_labels_out():
    atoms = [bulk("Si", "diamond", a=5.43), molecule("CH4")]
    atoms[0].info.update(config_type="bulk", structure_id="si-0", temperature=300.0)
    arrays = structures_to_arrays(atoms)
    assert "energies" not in arrays and arrays["config_types"].dtype.kind == "S"
    back = arrays_to_structures(arrays)
    assert back[0].info == {"config_type": "bulk", "structure_id": "si-0"}
    assert back[1].info == {"config_type": "default"}
    assert back[1].get_chemical_formula() == "CH4" and not back[1].pbc.any()


def test_empty_lists_give_empty_arrays():
    arrays = configurations_to_arrays([])
    assert arrays["positions"].shape == (0, 3) and arrays["stresses"].shape == (0, 6)
    assert arrays_to_configurations(arrays) == []


def test_bad_items_are_refused(configs):
    with pytest.raises(InputError, match=r"structures\[1\] is a str, not an ase.Atoms"):
        structures_to_arrays([Atoms("H"), "H2O"])
    with pytest.raises(InputError, match=r"configurations\[0\] is a Atoms, not a "):
        configurations_to_arrays([Atoms("H")])


def test_inconsistent_or_incomplete_arrays_are_refused(configs):
    arrays = configurations_to_arrays(configs)
    broken = dict(arrays, n_atoms=np.array([8, 3, 5]))
    with pytest.raises(InputError, match="n_atoms sums to 16 but there are 15 numbers"):
        arrays_to_structures(broken)
    short = dict(arrays, forces=arrays["forces"][:-1])
    with pytest.raises(InputError, match="label arrays do not match 3 configurations"):
        arrays_to_configurations(short)
    missing = {k: v for k, v in arrays.items() if k != "energies"}
    with pytest.raises(InputError, match=r"lack the arrays \['energies'\]"):
        arrays_to_configurations(missing)
