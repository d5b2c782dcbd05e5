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


def test_starting_moments_and_charges_round_trip_and_old_records_load():
    """The starting magnetic moments and charges a spin-polarised reference starts from:
    optional arrays, written only when some structure has them."""
    from mlip_plugin.workflows.pyiron.arrays import STRUCTURE_KEYS

    fe = bulk("Fe", "bcc", a=2.87, cubic=True)  # ASE's bulk: 2.3 μB per atom
    fe.set_initial_charges([0.5, -0.5])
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    ni.set_initial_magnetic_moments([0.0] * 4)  # all zero: as without
    arrays = structures_to_arrays([fe, cu, ni])
    assert arrays["initial_magmoms"].tolist() == [2.3, 2.3] + [0.0] * 8
    assert arrays["initial_charges"].tolist() == [0.5, -0.5] + [0.0] * 8
    back = arrays_to_structures(arrays)
    assert back[0].get_initial_magnetic_moments().tolist() == [2.3, 2.3]
    assert back[0].get_initial_charges().tolist() == [0.5, -0.5]
    assert not {"initial_magmoms", "initial_charges"} & {*back[1].arrays, *back[2].arrays}
    old = {k: arrays[k] for k in STRUCTURE_KEYS}  # a record written before they were kept
    assert all(set(a.arrays) == {"numbers", "positions"} for a in arrays_to_structures(old))
    assert set(structures_to_arrays([cu, ni])) == set(STRUCTURE_KEYS)
    bad = Atoms("Fe2", positions=[[0, 0, 0], [1.4, 1.4, 1.4]], cell=[2.87] * 3, pbc=True,
                magmoms=[[0, 0, 3], [0, 0, 3]])
    with pytest.raises(InputError, match=r"structures\[1\]: initial_magmoms of shape \(2, 3\)"):
        structures_to_arrays([cu, bad])
    arrays["initial_magmoms"] = arrays["initial_magmoms"][:-1]
    with pytest.raises(InputError, match="9 initial_magmoms"):
        arrays_to_structures(arrays)
