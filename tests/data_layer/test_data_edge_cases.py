"""Data layer edge cases: labels a structure cannot carry, empty structures."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase import Atoms

from mlip_plugin import InputError
from mlip_plugin.data import Configuration, Weights, fit_e0, read_configs, resolve_e0
from mlip_plugin.data.configuration import with_full_rank_cell


def test_stress_on_a_cell_without_volume_has_no_virial():
    """A molecule without a cell has volume 0: its virial -V σ was a zero vector, a target
    that a fit would have pulled the model's virial towards."""
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    c = Configuration(molecule, energy=-1.0, stress=np.full(6, 0.01))
    with pytest.raises(InputError, match="stress label needs a cell with non-zero volume"):
        _ = c.virial
    with pytest.raises(InputError, match="mem, configuration 3: a stress label needs a cell"):
        c.validate("mem", 3)
    assert Configuration(molecule, energy=-1.0).virial is None
    boxed = Configuration(Atoms("Cu2", positions=molecule.positions, cell=[10, 10, 10]),
                          stress=np.full(6, 0.01))
    np.testing.assert_allclose(boxed.virial, np.full(6, -10.0))


def test_full_rank_cell_of_an_empty_structure():
    """An empty Atoms without a cell gave numpy's 'zero-size array' ValueError."""
    full = with_full_rank_cell(Atoms(), 5.0)
    assert full.cell.rank == 3 and len(full) == 0
    slab = with_full_rank_cell(Atoms(cell=[3, 3, 0], pbc=[True, True, False]), 5.0)
    np.testing.assert_allclose(slab.cell.array[:2], [[3, 0, 0], [0, 3, 0]])
    assert slab.cell.rank == 3


XYZ_ONE_WEIGHT = """1
Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 energy_weight={w} pbc="T T T"
Cu 0 0 0
"""


def test_weights_a_file_gives_in_part_are_kept(tmp_path):
    """A configuration with only some of the *_weight entries lost them all (read as
    Weights(), and left out of info)."""
    path = tmp_path / "w.xyz"
    path.write_text(XYZ_ONE_WEIGHT.format(w="0.0"))
    c = read_configs(path)[0]
    assert c.weights == Weights(energy=0.0, forces=1.0, virial=1.0)
    path.write_text(XYZ_ONE_WEIGHT.format(w="-2.0"))
    with pytest.raises(InputError, match=r"w.xyz, configuration 0: weight energy=-2.0 is not"):
        read_configs(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "x", None])
def test_e0_mapping_needs_finite_numbers(value):
    """NaN came back as E0 (every energy target NaN); a string gave float()'s ValueError."""
    configs = [Configuration(Atoms("CuNi", positions=[[0, 0, 0], [2.5, 0, 0]]), energy=-1.0)]
    assert resolve_e0(configs, {"Cu": -1, "Ni": 0.5}) == {"Cu": -1.0, "Ni": 0.5}
    with pytest.raises(InputError, match=r"e0\['Ni'\]=.* is not allowed; give a finite"):
        resolve_e0(configs, {"Cu": -1.0, "Ni": value})


def test_auto_e0_keeps_the_isolated_atoms_of_some_species():
    """With an isolated Cu atom but none of Ni, 'auto' dropped the Cu atom's energy: E0 of
    Cu was fitted (or 0), and the isolated atom's own energy row could not be fitted (a
    model gives a free atom exactly E0)."""
    rng = np.random.default_rng(3)
    e0 = {"Cu": -240.0, "Ni": -1350.0}  # total energies of a plane-wave code
    configs = []
    for n_cu, n_ni in [(1, 3), (2, 2), (3, 1), (4, 4), (2, 5)]:
        atoms = Atoms(f"Cu{n_cu}Ni{n_ni}", positions=rng.random((n_cu + n_ni, 3)) * 8,
                      cell=[8, 8, 8], pbc=True)
        energy = n_cu * e0["Cu"] + n_ni * e0["Ni"] - 4.0 * (n_cu + n_ni)  # binding -4 eV
        configs.append(Configuration(atoms, energy=energy))
    iso = Configuration(Atoms("Cu", cell=[12, 12, 12], pbc=True), energy=e0["Cu"],
                        config_type="isolated_atom")
    got = resolve_e0([*configs, iso], "auto")
    assert got["Cu"] == e0["Cu"]
    # least squares of E - n_Cu E0[Cu] = n_Ni E0[Ni] - 4 N on n_Ni
    n_ni = np.array([c.symbols.count("Ni") for c in configs], float)
    n = np.array([c.n_atoms for c in configs], float)
    assert got["Ni"] == pytest.approx(e0["Ni"] - 4.0 * (n_ni @ n) / (n_ni @ n_ni), abs=1e-9)
    assert got == fit_e0([*configs, iso], fixed={"Cu": e0["Cu"]})
    # energies referenced to free atoms: Cu keeps its isolated atom, Ni gets 0
    free = [Configuration(c.atoms, energy=-4.0 * c.n_atoms) for c in configs]
    iso_free = Configuration(iso.atoms, energy=-0.25, config_type="isolated_atom")
    assert resolve_e0([*free, iso_free], "auto") == {"Cu": -0.25, "Ni": 0.0}


def test_a_file_that_is_no_npz_archive_is_named(tmp_path):
    """np.load took a text or .npy file for a pickle and its message advised loading it
    with allow_pickle (or the context manager of a bare array failed)."""
    text = tmp_path / "frames.xyz"
    text.write_text(XYZ_ONE_WEIGHT.format(w="1.0"))
    npy = tmp_path / "R.npy"
    np.save(npy, np.zeros((2, 3, 3)))
    for path in (text, npy):
        with pytest.raises(InputError, match=r"as npz: it is not an npz archive") as err:
            read_configs(path, format="npz")
        assert "pickle" not in str(err.value)


def test_auto_e0_ignores_a_configuration_without_atoms():
    cu = Configuration(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.3]]), energy=-1.0)
    empty = Configuration(Atoms(), energy=0.0)
    assert resolve_e0([cu, empty], "auto") == {"Cu": 0.0}  # was ZeroDivisionError


def test_bad_split_summary_and_energy_arguments_are_named():
    from mlip_plugin.data import random_split, repeated_splits, summarize

    cu = Configuration(Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.3]]), energy=-1.0)
    with pytest.raises(InputError, match="no configurations to summarise"):
        summarize([])
    with pytest.raises(InputError, match="validation='0.1' must be a fraction"):
        random_split([cu] * 5, validation="0.1")
    with pytest.raises(InputError, match="k=2.5 must be a positive whole number"):
        repeated_splits([cu] * 5, k=2.5)
    with pytest.raises(InputError, match="must be one number"):
        Configuration(cu.atoms, energy=[1.0, 2.0])
    assert Configuration(cu.atoms, energy=np.float32(-1.5)).energy == -1.5


@pytest.mark.parametrize("z, shown", [([200, 1], "[200, 1]"), ([-1, 1], "[-1, 1]"),
                                      ([0, 1], "[0, 1]"), ([1.5, 1.0], "[1.5, 1.0]")])
def test_npz_atomic_numbers_outside_the_table_are_named(tmp_path, z, shown):
    """z = 200 gave ASE's IndexError, z = -1 read as oganesson (a negative index)."""
    path = tmp_path / "bad.npz"
    np.savez(path, R=np.zeros((2, 2, 3)) + [[0, 0, 0], [1, 0, 0]], z=np.array(z),
             E=np.zeros(2), F=np.zeros((2, 2, 3)))
    with pytest.raises(InputError, match=re.escape(f"its array z holds {shown}, not atomic "
                                                   "numbers (one whole number from 1 to 118")):
        read_configs(path)


@pytest.mark.parametrize("outputs", [None, [1.0, 2.0]])
def test_mlearn_outputs_that_are_no_object(tmp_path, outputs):
    """A null outputs is an entry without labels; a list is named (was AttributeError)."""
    import json

    doc = [{"structure": {"lattice": {"matrix": np.eye(3).tolist()},
                          "sites": [{"species": [{"element": "Cu"}], "xyz": [0, 0, 0]}]},
            "outputs": outputs}]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(doc))
    if outputs is None:
        [config] = read_configs(path, format="mlearn", require=())
        assert config.energy is None and config.forces is None
    else:
        with pytest.raises(InputError, match="an entry's 'outputs' is a list, not an object"):
            read_configs(path, format="mlearn")


def test_a_json_file_read_as_ase_database_is_named(tmp_path):
    """ase.db's UnknownFileTypeError (not an ASE JSON database) became a traceback."""
    path = tmp_path / "data.json"
    path.write_text('[{"structure": {}}]')
    with pytest.raises(InputError, match="cannot read .*data.json' as db: "
                                         "UnknownFileTypeError"):
        read_configs(path, format="db")


def test_npz_lattice_vectors_are_its_columns(tmp_path):
    """sGDML keeps the lattice vectors as the columns of `lattice` (its extxyz writer writes
    lattice.T); a triclinic cell was read transposed."""
    rows = np.array([[4.0, 0.0, 0.0], [1.0, 4.2, 0.0], [0.5, 0.7, 4.4]])
    path = tmp_path / "cell.npz"
    np.savez(path, R=np.array([[[0, 0, 0], [1.5, 1.0, 1.0]]]), z=np.array([1, 1]),
             E=np.zeros(1), F=np.zeros((1, 2, 3)), lattice=rows.T, e_unit="eV", r_unit="Ang")
    [config] = read_configs(path)
    np.testing.assert_array_equal(config.atoms.cell.array, rows)


def test_extxyz_round_trip_of_a_slab_with_an_empty_info_array_and_a_partial_cell(tmp_path):
    """An empty info array was written as key="" and ASE read the next field (pbc) into it:
    the slab came back periodic in z.  A molecule's partial cell (pbc False, rank 2) was not
    written and came back as zeros, changing the content hash."""
    from ase.build import fcc111

    from mlip_plugin.data import hash_configs
    from mlip_plugin.data.io import write_extxyz

    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.pbc = [True, True, False]
    configs = [Configuration(slab, energy=-1.0, forces=np.zeros((len(slab), 3)),
                             info={"constraint_idx": np.array([], dtype=int)}),
               Configuration(Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]],
                                   cell=[[6, 0, 0], [0, 6, 0], [0, 0, 0]], pbc=False),
                             energy=-1.0, forces=np.zeros((2, 3)))]
    path = tmp_path / "out.extxyz"
    write_extxyz(path, configs)
    back = read_configs(path)
    assert back[0].atoms.pbc.tolist() == [True, True, False]
    assert "constraint_idx" not in back[0].info
    np.testing.assert_array_equal(back[1].atoms.cell.array, configs[1].atoms.cell.array)
    assert hash_configs(back[1:]) == hash_configs(configs[1:])
