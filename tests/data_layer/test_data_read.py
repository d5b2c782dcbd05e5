"""Reading every shared dataset: counts, units, ASE stress sign, E0."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from mlip_plugin.data import (
    hash_configs,
    isolated_atom_energies,
    read_configs,
    resolve_e0,
    write_extxyz,
)
from mlip_plugin.data.units import KBAR, KCAL_PER_MOL

COUNTS = [
    ("zuo2020/Si_train.extxyz", 214),
    ("zuo2020/Si_test.extxyz", 25),
    ("zuo2020/Mo_train.extxyz", 194),
    ("zuo2020/Mo_test.extxyz", 23),
    ("ace_fixtures/Si_tiny.xyz", 53),
    ("ace_fixtures/TiAl_tiny.xyz", 33),
    ("rmd17/ethanol_rmd17_train_01.npz", 1000),
    ("rmd17/ethanol_rmd17_test_01.npz", 1000),
    ("rmd17/uracil_rmd17_train_01.npz", 1000),
    ("si_gap18_reference/dft_test_configs.xyz", 28),
]


@pytest.mark.parametrize("name,count", COUNTS)
def test_counts(shared_data, name, count):
    configs = read_configs(shared_data / name)
    assert len(configs) == count
    assert all(c.energy is not None and c.forces is not None for c in configs)


def test_rmd17_units(shared_data):
    path = shared_data / "rmd17/ethanol_rmd17_train_01.npz"
    configs = read_configs(path)
    raw = np.load(path)
    assert str(raw["e_unit"]) == "kcal/mol"
    np.testing.assert_allclose(configs[3].forces, raw["F"][3] * KCAL_PER_MOL, rtol=1e-14)
    np.testing.assert_allclose(configs[3].energy, raw["E"][3, 0] * KCAL_PER_MOL, rtol=1e-14)
    # 1 kcal/mol = 0.0433641 eV
    assert KCAL_PER_MOL == pytest.approx(0.0433641, rel=1e-5)
    assert configs[0].symbols.count("H") == 6 and configs[0].stress is None


def test_zuo_stress_against_original_kbar(shared_data):
    configs = read_configs(shared_data / "zuo2020/Si_train.extxyz")
    for c in configs[:20]:
        # the original VASP value: kbar, pressure positive, order xx yy zz xy xz yz
        xx, yy, zz, xy, xz, yz = c.info["virial_stress_kbar_mlearn"]
        expected = -KBAR * np.array([xx, yy, zz, yz, xz, xy])
        np.testing.assert_allclose(c.stress, expected, rtol=1e-6, atol=1e-12)
    assert KBAR == pytest.approx(0.1 * units.GPa)


def test_stress_sign_is_ase(shared_data):
    """A compressed cell has a negative stress (ASE), i.e. positive pressure."""
    configs = read_configs(shared_data / "zuo2020/Si_train.extxyz")
    elastic = [c for c in configs if c.config_type == "Elastic"]
    vol = np.array([c.volume / c.n_atoms for c in elastic])
    pressure = np.array([-c.stress[:3].mean() for c in elastic])
    # smaller volume per atom -> higher pressure
    assert np.corrcoef(vol, pressure)[0, 1] < -0.8


def test_virial_is_minus_volume_times_stress(shared_data):
    configs = read_configs(shared_data / "ace_fixtures/Si_tiny.xyz")
    c = next(c for c in configs if c.stress is not None)
    import ase.io

    raw = ase.io.read(shared_data / "ace_fixtures/Si_tiny.xyz", index=configs.index(c))
    virial = np.asarray(raw.info["dft_virial"], float).reshape(3, 3)
    np.testing.assert_allclose(c.virial, virial[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]],
                               rtol=1e-12)


def test_e0_from_si_tiny(shared_data):
    configs = read_configs(shared_data / "ace_fixtures/Si_tiny.xyz")
    assert isolated_atom_energies(configs) == {"Si": pytest.approx(-158.54496821, abs=1e-8)}
    assert resolve_e0(configs, "auto")["Si"] == pytest.approx(-158.54496821, abs=1e-8)


def test_two_species_labels(shared_data):
    configs = read_configs(shared_data / "ace_fixtures/TiAl_tiny.xyz")
    assert {s for c in configs for s in c.symbols} == {"Ti", "Al"}
    assert all(c.stress is not None for c in configs)
    with pytest.warns(UserWarning, match="not determined by the data"):
        e0 = resolve_e0(configs, "fit")  # every TiAl configuration is 50/50
    assert set(e0) == {"Al", "Ti"} and e0["Al"] == pytest.approx(e0["Ti"])


@pytest.mark.parametrize("name", ["zuo2020/Si_test.extxyz", "ace_fixtures/Si_tiny.xyz",
                                  "ace_fixtures/TiAl_tiny.xyz",
                                  "rmd17/uracil_rmd17_test_01.npz"])
def test_round_trip_extxyz(shared_data, tmp_path, name):
    configs = read_configs(shared_data / name)
    out = write_extxyz(tmp_path / "out.extxyz", configs)
    again = read_configs(out)
    assert len(again) == len(configs)
    for a, b in zip(configs, again):
        np.testing.assert_array_equal(a.atoms.numbers, b.atoms.numbers)
        np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)
        np.testing.assert_array_equal(a.atoms.cell.array, b.atoms.cell.array)
        np.testing.assert_array_equal(a.atoms.pbc, b.atoms.pbc)
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.forces, b.forces)
        if a.stress is None:
            assert b.stress is None
        else:
            np.testing.assert_array_equal(a.stress, b.stress)
        assert a.config_type == b.config_type and a.weights == b.weights
    assert hash_configs(configs) == hash_configs(again)
