"""Data layer on in-memory data: errors, E0, splits, hashes, formats (no shared data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_plugin import InputError
from mlip_plugin.data import (
    Configuration,
    Weights,
    assign_weights,
    fit_e0,
    hash_configs,
    predefined_split,
    random_split,
    read_configs,
    repeated_splits,
    resolve_e0,
    write_extxyz,
)
from mlip_plugin.data.units import conversion_factor


def cu_configs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = bulk("Cu", cubic=True).repeat(2)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        out.append(Configuration(atoms=atoms.copy(), energy=atoms.get_potential_energy(),
                                 forces=atoms.get_forces(), stress=atoms.get_stress(),
                                 config_type="a" if i % 2 else "b"))
    return out


def write_raw(path, text):
    path.write_text(text)
    return path


XYZ_TWO_ENERGIES = """1
Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 dft_energy=-2.0 pbc="T T T"
Cu 0 0 0
"""


def test_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_configs(tmp_path / "missing.xyz")
    bad = write_raw(tmp_path / "bad.xyz", "this is not\nan xyz file\n")
    with pytest.raises(InputError, match="cannot read .*bad.xyz"):
        read_configs(bad)
    with pytest.raises(InputError, match="cannot tell the format"):
        read_configs(write_raw(tmp_path / "x.dat", "1"))


def test_ambiguous_and_explicit_keys(tmp_path):
    path = write_raw(tmp_path / "two.xyz", XYZ_TWO_ENERGIES)
    with pytest.raises(InputError, match="several energy labels"):
        read_configs(path)
    assert read_configs(path, energy_key="dft_energy")[0].energy == -2.0
    with pytest.raises(InputError, match="energy_key='nope' is not in"):
        read_configs(path, energy_key="nope")


def test_missing_label(tmp_path):
    path = write_raw(tmp_path / "nolabel.xyz", XYZ_TWO_ENERGIES.replace(
        " energy=-1.0 dft_energy=-2.0", ""))
    with pytest.raises(InputError, match="configuration 0: missing required label 'energy'"):
        read_configs(path)
    assert read_configs(path, require=())[0].energy is None


def test_nan_label(tmp_path):
    path = write_raw(tmp_path / "nan.xyz", XYZ_TWO_ENERGIES.replace(
        " dft_energy=-2.0", "").replace("-1.0", "nan"))
    with pytest.raises(InputError, match="energy contains NaN"):
        read_configs(path)


def test_shape_mismatch():
    c = cu_configs(1)[0]
    c.forces = np.zeros((3, 3))
    with pytest.raises(InputError, match=r"forces has shape \(3, 3\), expected \(32, 3\)"):
        c.validate("mem", 0)


def test_overlapping_atoms(tmp_path):
    text = """2
Lattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 pbc="T T T"
Cu 0 0 0
Cu 0.05 0 0
"""
    with pytest.raises(InputError, match="configuration 0: atoms are 0.05 Å apart"):
        read_configs(write_raw(tmp_path / "ov.xyz", text))
    # a periodic image counts too
    tiny = Configuration(atoms=Atoms("Cu", cell=[0.05, 5, 5], pbc=True), energy=0.0)
    with pytest.raises(InputError, match="overlapping"):
        tiny.validate()


def test_zero_volume_cell(tmp_path):
    text = """1
Lattice="5 0 0 0 5 0 0 0 0" Properties=species:S:1:pos:R:3 energy=-1.0 pbc="T T T"
Cu 0 0 0
"""
    with pytest.raises(InputError, match="zero volume"):
        read_configs(write_raw(tmp_path / "zv.xyz", text))


def test_unknown_units(tmp_path):
    path = write_raw(tmp_path / "u.xyz", XYZ_TWO_ENERGIES.replace(" dft_energy=-2.0", ""))
    with pytest.raises(InputError, match="unknown energy unit 'furlong'"):
        read_configs(path, units={"energy": "furlong"})
    with pytest.raises(InputError, match="units has unknown entries"):
        read_configs(path, units={"charge": "e"})
    assert read_configs(path, units={"energy": "meV"})[0].energy == pytest.approx(-1e-3)
    assert conversion_factor("forces", "Hartree/Bohr") == pytest.approx(51.42208619)
    npz = tmp_path / "bad_units.npz"
    np.savez(npz, R=np.zeros((1, 1, 3)), z=np.array([1]), E=np.zeros(1), e_unit="parsec")
    with pytest.raises(InputError, match="unknown energy unit 'parsec'"):
        read_configs(npz)


def test_bad_weights():
    with pytest.raises(InputError, match="weight energy=-1"):
        Weights(energy=-1)


def test_stress_and_virial_both(tmp_path):
    eye = '"1 0 0 0 1 0 0 0 1"'
    text = (f'1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 '
            f'stress={eye} virial={eye} pbc="T T T"\nCu 0 0 0\n')
    path = write_raw(tmp_path / "sv.xyz", text)
    with pytest.raises(InputError, match="both a stress"):
        read_configs(path)
    by_virial = read_configs(path, virial_key="virial")[0]
    np.testing.assert_allclose(by_virial.stress[:3], -1 / 125.0)
    np.testing.assert_allclose(by_virial.virial[:3], 1.0)


def test_ase_db_and_mlearn(tmp_path):
    configs = cu_configs(3)
    import ase.db

    with ase.db.connect(tmp_path / "x.db") as db:
        for c in configs:
            atoms = c.atoms.copy()
            from ase.calculators.singlepoint import SinglePointCalculator

            atoms.calc = SinglePointCalculator(atoms, energy=c.energy, forces=c.forces,
                                               stress=c.stress)
            db.write(atoms, config_type=c.config_type)
    from_db = read_configs(tmp_path / "x.db")
    assert hash_configs(from_db) == hash_configs(configs)
    assert [c.config_type for c in from_db] == [c.config_type for c in configs]

    docs = []
    for c in configs:
        s = c.stress  # ASE Voigt xx yy zz yz xz xy -> mlearn kbar xx yy zz xy xz yz, pressure +
        kbar = -np.array([s[0], s[1], s[2], s[5], s[4], s[3]]) / conversion_factor(
            "stress", "kbar")
        docs.append({
            "structure": {"lattice": {"matrix": c.atoms.cell.array.tolist()},
                          "sites": [{"species": [{"element": sym, "occu": 1}],
                                     "xyz": p.tolist()}
                                    for sym, p in zip(c.symbols, c.atoms.positions)]},
            "outputs": {"energy": c.energy, "forces": c.forces.tolist(),
                        "virial_stress": kbar.tolist()},
            "tag": c.config_type})
    (tmp_path / "m.json").write_text(json.dumps(docs))
    from_json = read_configs(tmp_path / "m.json")
    np.testing.assert_allclose(from_json[1].stress, configs[1].stress, rtol=1e-12)
    assert hash_configs(from_json) == hash_configs(configs)
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(InputError, match="not in the mlearn format"):
        read_configs(tmp_path / "bad.json")


def test_hash_sensitivity():
    configs = cu_configs(3)
    h = hash_configs(configs)
    assert h == hash_configs([c.copy() for c in configs])
    moved = [c.copy() for c in configs]
    moved[1].atoms.positions[0, 0] += 1e-6
    assert hash_configs(moved) != h
    relabel = [c.copy() for c in configs]
    relabel[2].energy += 1e-6
    assert hash_configs(relabel) != h
    assert hash_configs(configs[::-1]) != h


def test_e0_rules():
    configs = cu_configs(4)
    iso = Configuration(atoms=Atoms("Cu", cell=[10, 10, 10], pbc=True), energy=-0.5,
                        config_type="isolated_atom")
    assert resolve_e0([*configs, iso], "auto") == {"Cu": -0.5}
    fitted = fit_e0(configs)
    assert fitted["Cu"] == pytest.approx(np.mean([c.energy / c.n_atoms for c in configs]))
    # no isolated atom: energies on the free-atom scale (EMT, VASP) give 0, totals fit
    assert max(abs(c.energy) / c.n_atoms for c in configs) < 1.0
    assert resolve_e0(configs, "auto") == {"Cu": 0.0}
    shifted = [c.copy() for c in configs]
    for c in shifted:
        c.energy -= 150.0 * c.n_atoms  # a plane-wave code's total energies
    assert resolve_e0(shifted, "auto")["Cu"] == pytest.approx(fitted["Cu"] - 150.0)
    with pytest.raises(InputError, match="no isolated-atom configuration for"):
        resolve_e0(configs, "isolated")
    with pytest.raises(InputError, match="e0 has no entry for species"):
        resolve_e0(configs, {"Ag": 0.0})
    with pytest.raises(InputError, match="e0='magic' is not allowed"):
        resolve_e0(configs, "magic")


def test_splits():
    configs = cu_configs(20)
    s = random_split(configs, validation=0.2, test=0.1, seed=3)
    all_idx = np.concatenate([s.train, s.validation, s.test])
    assert sorted(all_idx) == list(range(20))
    assert len(s.validation) == 4 and len(s.test) == 2  # 10 per type: 2 val, 1 test each
    for part in (s.validation, s.test):
        types = [configs[i].config_type for i in part]
        assert types.count("a") == types.count("b")
    again = random_split(configs, validation=0.2, test=0.1, seed=3)
    np.testing.assert_array_equal(s.train, again.train)
    reps = repeated_splits(configs, 3, validation=0.2)
    assert len({tuple(r.validation) for r in reps}) == 3
    with pytest.raises(InputError, match="leaves no training data"):
        random_split(configs, validation=0.6, test=0.5)
    with pytest.raises(InputError, match="must be a fraction"):
        random_split(configs, validation=-0.1)
    for i, c in enumerate(configs):
        c.info["split"] = ["train", "val", "test"][i % 3]
    p = predefined_split(configs)
    assert list(p.validation) == list(range(1, 20, 3))
    configs[0].info["split"] = "holdout"
    with pytest.raises(InputError, match="is not one of"):
        predefined_split(configs)


def test_assign_weights_by_type(tmp_path):
    configs = assign_weights(cu_configs(4), by_config_type={"a": Weights(energy=100)})
    assert [c.weights.energy for c in configs] == [30, 100, 30, 100]
    again = read_configs(write_extxyz(tmp_path / "w.extxyz", configs))
    assert [c.weights.energy for c in again] == [30, 100, 30, 100]


def test_molecule_round_trip(tmp_path):
    mol = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    c = Configuration(atoms=mol, energy=-14.2, forces=np.ones((3, 3)))
    again = read_configs(write_extxyz(tmp_path / "m.extxyz", [c]))[0]
    assert not any(again.atoms.pbc) and again.stress is None
    np.testing.assert_array_equal(again.atoms.positions, mol.positions)


def test_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(InputError, match="it is a folder; give a data file"):
        read_configs(tmp_path)


def test_option_names_name_the_callers_settings(tmp_path):
    """Errors name a setting as the caller's user writes it (CLI option, configuration key);
    ``require`` is suggested only where the caller offers it."""
    names = {"format": "data.format", "energy_key": "data.energy_key"}
    with pytest.raises(InputError, match=r"give it with data.format, one of") as err:
        read_configs(write_raw(tmp_path / "notes.md", "1"), option_names=names)
    assert "format=" not in str(err.value)
    path = write_raw(tmp_path / "two.xyz", XYZ_TWO_ENERGIES)
    with pytest.raises(InputError, match="data.energy_key='nope' is not in"):
        read_configs(path, energy_key="nope", option_names=names)
    with pytest.raises(InputError, match="say which with data.energy_key"):
        read_configs(path, option_names=names)
    bare = write_raw(tmp_path / "nolabel.xyz", XYZ_TWO_ENERGIES.replace(
        " energy=-1.0 dft_energy=-2.0", ""))
    with pytest.raises(InputError, match="name its key with data.energy_key$"):
        read_configs(bare, option_names=names)
    with pytest.raises(InputError, match=r"name its key with energy_key or relax require="):
        read_configs(bare)
