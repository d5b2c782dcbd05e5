"""Readers and writer on in-memory data: units, round trips, unreadable files, open cells."""

from __future__ import annotations

import json
import sqlite3
import zipfile

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, graphene

from mlip_plugin import InputError
from mlip_plugin.data import Configuration, random_split, read_configs, resolve_e0, write_extxyz
from mlip_plugin.data.configuration import min_distance
from mlip_plugin.data.units import KBAR, KCAL_PER_MOL

HARTREE_PER_BOHR = units.Hartree / units.Bohr


def labelled_cu(seed=1):
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.05, seed=seed)
    rng = np.random.default_rng(seed)
    return Configuration(atoms=atoms, energy=-10.0, forces=rng.normal(size=(len(atoms), 3)),
                         stress=rng.normal(size=6) * 1e-2)


# --- units -----------------------------------------------------------------------------------


def test_extxyz_forces_and_stress_follow_energy_and_length_units(tmp_path):
    raw = labelled_cu()
    path = write_extxyz(tmp_path / "raw.xyz", [raw])
    c = read_configs(path, units={"energy": "Hartree", "length": "Bohr"})[0]
    np.testing.assert_allclose(c.atoms.positions, raw.atoms.positions * units.Bohr, rtol=1e-15)
    np.testing.assert_allclose(c.atoms.cell.array, raw.atoms.cell.array * units.Bohr,
                               rtol=1e-15)
    assert c.energy == pytest.approx(-10.0 * units.Hartree, rel=1e-15)
    np.testing.assert_allclose(c.forces, raw.forces * HARTREE_PER_BOHR, rtol=1e-15)
    np.testing.assert_allclose(c.stress, raw.stress * units.Hartree / units.Bohr**3,
                               rtol=1e-15)
    # energy only: forces in kcal/mol/Å, stress in kcal/mol/Å³
    k = read_configs(path, units={"energy": "kcal/mol"})[0]
    np.testing.assert_allclose(k.forces, raw.forces * KCAL_PER_MOL, rtol=1e-15)
    np.testing.assert_allclose(k.stress, raw.stress * KCAL_PER_MOL, rtol=1e-15)
    np.testing.assert_array_equal(k.atoms.positions, raw.atoms.positions)
    # explicit force and stress units win over the derived ones
    e = read_configs(path, units={"energy": "kcal/mol", "forces": "eV/Ang",
                                  "stress": "GPa"})[0]
    np.testing.assert_array_equal(e.forces, raw.forces)
    np.testing.assert_allclose(e.stress, raw.stress * units.GPa, rtol=1e-15)


def test_extxyz_virial_is_an_energy(tmp_path):
    text = ('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 '
            'virial="1 0 0 0 1 0 0 0 1" pbc="T T T"\nCu 0 0 0\n')
    (tmp_path / "v.xyz").write_text(text)
    c = read_configs(tmp_path / "v.xyz", units={"energy": "Hartree", "length": "Bohr"})[0]
    volume = (5 * units.Bohr) ** 3
    np.testing.assert_allclose(c.stress[:3], -units.Hartree / volume, rtol=1e-14)
    np.testing.assert_allclose(c.virial[:3], units.Hartree, rtol=1e-14)


def mlearn_doc(stress=(1, 2, 3, 4, 5, 6), element="Si"):
    return [{"structure": {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                           "sites": [{"species": [{"element": element, "occu": 1}],
                                      "xyz": [0, 0, 0]},
                                     {"species": [{"element": "Si", "occu": 1}],
                                      "abc": [0.5, 0.5, 0.5]}]},
             "outputs": {"energy": -10.0, "forces": [[0.1, 0, 0], [-0.1, 0, 0]],
                         "virial_stress": list(stress)},
             "tag": "bulk"}]


def test_mlearn_applies_every_unit(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(mlearn_doc()))
    xx, yy, zz, xy, xz, yz = 1, 2, 3, 4, 5, 6
    voigt = -np.array([xx, yy, zz, yz, xz, xy], float)
    default = read_configs(path)[0]
    np.testing.assert_allclose(default.stress, voigt * KBAR, rtol=1e-15)
    bohr = read_configs(path, units={"length": "Bohr", "energy": "Ha"})[0]
    np.testing.assert_allclose(bohr.atoms.positions[1], [1.5 * units.Bohr] * 3, rtol=1e-15)
    np.testing.assert_allclose(bohr.atoms.cell.array, np.eye(3) * 3 * units.Bohr, rtol=1e-15)
    assert bohr.energy == pytest.approx(-10 * units.Hartree, rel=1e-15)
    np.testing.assert_allclose(bohr.forces[0, 0], 0.1 * HARTREE_PER_BOHR, rtol=1e-15)
    np.testing.assert_allclose(bohr.stress, voigt * KBAR, rtol=1e-15)  # still kbar
    gpa = read_configs(path, units={"stress": "GPa"})[0]
    np.testing.assert_allclose(gpa.stress, voigt * units.GPa, rtol=1e-15)
    with pytest.raises(InputError, match=r"units has unknown entries \['charge'\]"):
        read_configs(path, units={"charge": "e"})


def test_npz_checks_and_applies_every_unit(tmp_path):
    npz = tmp_path / "m.npz"
    F = np.arange(6.0).reshape(1, 2, 3)
    np.savez(npz, R=np.array([[[0, 0, 0], [1.0, 0, 0]]]), z=np.array([1, 1]),
             E=np.array([[2.0]]), F=F, e_unit="kcal/mol", r_unit="Ang")
    c = read_configs(npz)[0]
    np.testing.assert_allclose(c.forces, F[0] * KCAL_PER_MOL, rtol=1e-15)
    bohr = read_configs(npz, units={"length": "Bohr"})[0]
    np.testing.assert_allclose(bohr.forces, F[0] * KCAL_PER_MOL / units.Bohr, rtol=1e-15)
    assert bohr.atoms.positions[1, 0] == pytest.approx(units.Bohr, rel=1e-15)
    given = read_configs(npz, units={"forces": "eV/Ang"})[0]
    np.testing.assert_array_equal(given.forces, F[0])
    assert given.energy == pytest.approx(2.0 * KCAL_PER_MOL, rel=1e-15)
    with pytest.raises(InputError, match=r"units has unknown entries \['bogus'\]"):
        read_configs(npz, units={"energy": "eV", "bogus": "x"})
    with pytest.raises(InputError, match="units='eV' is not a mapping"):
        read_configs(npz, units="eV")


def test_npz_without_units_is_read_as_ev_with_a_warning(tmp_path, caplog):
    npz = tmp_path / "plain.npz"
    np.savez(npz, R=np.array([[[0, 0, 0], [1.0, 0, 0]]]), z=np.array([1, 1]),
             E=np.array([[2.0]]), F=np.zeros((1, 2, 3)))
    with caplog.at_level("WARNING", logger="mlip_plugin.data.io"):
        assert read_configs(npz)[0].energy == 2.0
    assert "names no unit of energy and length" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mlip_plugin.data.io"):
        c = read_configs(npz, units={"energy": "kcal/mol", "length": "Ang"})[0]
    assert c.energy == pytest.approx(2.0 * KCAL_PER_MOL, rel=1e-15) and not caplog.text


# --- unreadable files ------------------------------------------------------------------------


def test_corrupt_db_and_npz_are_named_input_errors(tmp_path):
    bad_db = tmp_path / "bad.db"
    bad_db.write_bytes(b"not a sqlite database " * 20)
    with pytest.raises(InputError, match=r"cannot read .*bad.db' as db: DatabaseError") as err:
        read_configs(bad_db)
    assert isinstance(err.value.__cause__, sqlite3.DatabaseError)
    empty_db = tmp_path / "empty.db"
    empty_db.write_bytes(b"")
    with pytest.raises(InputError, match="contains no configurations"):
        read_configs(empty_db)
    assert empty_db.stat().st_size == 0  # reading did not write a database into it
    empty_npz = tmp_path / "empty.npz"
    empty_npz.write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot read .*empty.npz' as npz: EOFError"):
        read_configs(empty_npz)
    good = tmp_path / "good.npz"
    np.savez_compressed(good, R=np.random.default_rng(0).random((50, 3, 3)),
                        z=np.array([1, 1, 1]), E=np.zeros(50))
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="as npz: BadZipFile") as err:
        read_configs(tmp_path / "cut.npz")
    assert isinstance(err.value.__cause__, zipfile.BadZipFile)
    flipped = bytearray(data)
    flipped[200:400] = bytes(b ^ 0x55 for b in flipped[200:400])
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="cannot read .*flip.npz' as npz"):
        read_configs(tmp_path / "flip.npz")


def test_unknown_element_is_named(tmp_path):
    (tmp_path / "x.xyz").write_text(
        '1\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3 energy=1.0 '
        'pbc="T T T"\nXx 0 0 0\n')
    with pytest.raises(InputError, match="'Xx' is not a chemical element symbol; .*'Si'"):
        read_configs(tmp_path / "x.xyz")
    (tmp_path / "x.json").write_text(json.dumps(mlearn_doc(element="Xx")))
    with pytest.raises(InputError, match="'Xx' is not a chemical element symbol"):
        read_configs(tmp_path / "x.json")


# --- extxyz round trip -----------------------------------------------------------------------


def test_strings_survive_the_extxyz_round_trip(tmp_path):
    c = labelled_cu()
    c.config_type = "T"
    info = {"tag": "F", "n": "007", "note": "1.5", "quote": 'say "hi" \\ there',
            "words": "two words", "empty": "", "flag": True, "count": 7, "x": 0.1,
            "vec": np.array([1.0, 2.5])}
    c.info = dict(info, REF_energy=3.0, dft_forces=1.0)
    again = read_configs(write_extxyz(tmp_path / "s.xyz", [c]))[0]
    assert again.config_type == "T" and isinstance(again.config_type, str)
    assert set(again.info) == set(info)  # label names are not written as metadata
    for key in ("tag", "n", "note", "quote", "words", "empty"):
        assert again.info[key] == info[key] and isinstance(again.info[key], str), key
    assert again.info["flag"] is True and again.info["count"] == 7 and again.info["x"] == 0.1
    np.testing.assert_array_equal(again.info["vec"], info["vec"])
    assert again.energy == c.energy
    np.testing.assert_array_equal(again.forces, c.forces)


def test_unchosen_labels_are_not_kept_as_info(tmp_path):
    (tmp_path / "two.xyz").write_text(
        '1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 '
        'REF_energy=-2.0 dft_virial="1 0 0 0 1 0 0 0 1" spacegroup="P 1" pbc="T T T"\n'
        'Cu 0 0 0\n')
    first = read_configs(tmp_path / "two.xyz", energy_key="energy")[0]
    assert first.info == {"spacegroup": "P 1"}
    again = read_configs(write_extxyz(tmp_path / "out.xyz", [first]))  # no ambiguity now
    assert again[0].energy == -1.0 and again[0].info == {"spacegroup": "P 1"}


# --- open (partly periodic) cells ------------------------------------------------------------


def test_partly_periodic_cells_validate_and_round_trip(tmp_path):
    g = graphene()  # pbc [T, T, F], c = 0
    assert g.cell.array[2].tolist() == [0, 0, 0] and g.pbc.tolist() == [True, True, False]
    again = read_configs(write_extxyz(tmp_path / "g.xyz", [Configuration(g, energy=-18.0)]))[0]
    np.testing.assert_array_equal(again.atoms.cell.array, g.cell.array)
    np.testing.assert_array_equal(again.atoms.pbc, g.pbc)
    assert min_distance(g, 2.0) == pytest.approx(2.46 / np.sqrt(3), rel=1e-12)  # C-C bond
    chain = Atoms("Cu2", positions=[[0, 0, 0], [1.2, 0, 0]], cell=[2.5, 0, 0],
                  pbc=[True, False, False])
    assert min_distance(chain, 2.0) == pytest.approx(1.2)
    Configuration(chain, energy=1.0).validate()
    # a close periodic image along the periodic directions still counts
    tight = Atoms("Cu", cell=[[0.05, 0, 0], [0, 3, 0], [0, 0, 0]], pbc=[True, True, False])
    with pytest.raises(InputError, match="0.05 Å apart"):
        Configuration(tight, energy=1.0).validate()
    slab = Atoms("Cu2", positions=[[0, 0, 0], [0.05, 0, 4.0]], cell=[3, 3, 0],
                 pbc=[True, True, False])
    assert min_distance(slab, 0.1) == np.inf  # 4 Å apart along the open direction
    # a zero vector along a periodic direction is a named error
    flat = Atoms("Cu", cell=[3, 3, 0], pbc=True)
    with pytest.raises(InputError, match="zero volume along its periodic directions"):
        Configuration(flat, energy=1.0).validate()
    with pytest.raises(InputError, match="linearly dependent"):
        min_distance(flat, 1.0)


# --- splits ----------------------------------------------------------------------------------


def h_config(config_type, symbol="H"):
    return Configuration(Atoms(symbol, cell=[5, 5, 5], pbc=True), energy=1.0,
                         config_type=config_type)


def test_split_keeps_a_training_member_of_every_type():
    s = random_split([h_config("a"), h_config("a")], validation=0.0, test=0.8)
    assert len(s.train) == 1 and len(s.test) == 1
    configs = [h_config(t) for t in "aabbbccccc"]
    for val, test in [(0.0, 0.8), (0.45, 0.5), (0.9, 0.05), (0.3, 0.3)]:
        for seed in range(5):
            s = random_split(configs, validation=val, test=test, seed=seed)
            assert sorted([*s.train, *s.validation, *s.test]) == list(range(len(configs)))
            assert {configs[i].config_type for i in s.train} == {"a", "b", "c"}


def test_isolated_atoms_always_go_to_training():
    iso = [Configuration(Atoms(el, cell=[12, 12, 12], pbc=True), energy=float(k),
                         config_type="isolated_atom") for k, el in enumerate("Cu Ag Au Ni".split())]
    bulk_cfgs = [Configuration(bulk("Cu", cubic=True), energy=-1.0, config_type="bulk")
                 for _ in range(12)]
    configs = [*iso, *bulk_cfgs]
    for seed in range(10):
        s = random_split(configs, validation=0.25, test=0.25, seed=seed)
        assert set(range(4)) <= set(s.train.tolist())
        assert len(s.validation) == 3 and len(s.test) == 3  # fractions of the others
        e0 = resolve_e0(s.take(configs, "train"), "isolated")
        assert e0 == {"Cu": 0.0, "Ag": 1.0, "Au": 2.0, "Ni": 3.0}
