"""Exchanged yz / xz stress components per config type (mlip_plugin.pipeline.stress_order).

On EMT copper with one config type's shear components exchanged on purpose, and on the
shared Zuo et al. files: the Si files' ``Elastic`` configurations have yz and xz exchanged,
the other Si config types and all Mo configurations are stored in the documented order.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_plugin.data import Configuration, read_configs
from mlip_plugin.errors import InputError
from mlip_plugin.pipeline.stress_order import (
    apply_stress_order,
    detect_stress_order,
    swap_yz_xz,
)


def _sheared_cu(n: int, config_type: str, seed: int) -> list[Configuration]:
    """Cu cells under random triclinic strain (large shear stresses), EMT labels."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
        strain = np.eye(3) + 0.03 * rng.standard_normal((3, 3))
        atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
        atoms.rattle(0.05, seed=seed * 100 + i)
        atoms.calc = EMT()
        out.append(Configuration(atoms, energy=atoms.get_potential_energy(),
                                 forces=atoms.get_forces(), stress=atoms.get_stress(),
                                 config_type=config_type))
    return out


@pytest.fixture(scope="module")
def cu_configs():
    return _sheared_cu(12, "bulk", 1) + _sheared_cu(8, "elastic", 2)


def test_an_exchanged_config_type_is_found_and_repaired(cu_configs):
    configs = [Configuration(c.atoms.copy(), energy=c.energy, forces=c.forces,
                             stress=c.stress, config_type=c.config_type) for c in cu_configs]
    order, scores = detect_stress_order(configs, r_cut=4.5)
    assert order == {"bulk": "file", "elastic": "file"}
    swap_yz_xz(configs, {"elastic"})
    order, scores = detect_stress_order(configs, r_cut=4.5)
    assert order == {"bulk": "file", "elastic": "swap"}
    assert scores["elastic"]["swap"] < 0.1 * scores["elastic"]["file"]
    apply_stress_order(configs, order)
    for c, ref in zip(configs, cu_configs):
        np.testing.assert_array_equal(c.stress, ref.stress)


def test_too_few_stresses_change_nothing(cu_configs):
    order, scores = detect_stress_order(cu_configs[:4], r_cut=4.5)
    assert order == {"bulk": "file"} and scores == {}


@pytest.mark.parametrize("order,match", [("sideways", "'sideways' is not 'file'"),
                                         ({"bulk": "yes"}, "'yes'")])
def test_unknown_orders_are_refused(cu_configs, order, match):
    with pytest.raises(InputError, match=match):
        apply_stress_order(list(cu_configs), order)


@pytest.mark.parametrize("element,swapped", [("Si", {"Elastic"}), ("Mo", set())])
def test_detected_order_of_the_zuo_files(shared_data, element, swapped):
    configs = read_configs(shared_data / "zuo2020" / f"{element}_train.extxyz")
    order, scores = detect_stress_order(configs, r_cut=5.5)
    assert set(order) == {"AIMD-NVT", "Elastic", "Surface", "Vacancy"}
    assert {t for t, o in order.items() if o == "swap"} == swapped
    for t in swapped:  # a clear decision, not a tie
        assert scores[t]["swap"] < 0.1 * scores[t]["file"]


def test_swap_only_named_types(shared_data):
    configs = read_configs(shared_data / "zuo2020" / "Si_test.extxyz")
    before = [c.stress.copy() for c in configs]
    swap_yz_xz(configs, {"Elastic"})
    for c, s in zip(configs, before):
        expected = s[[0, 1, 2, 4, 3, 5]] if c.config_type == "Elastic" else s
        np.testing.assert_array_equal(c.stress, expected)


def test_a_run_repairs_the_order_it_is_told_or_finds(tmp_path, cu_configs, caplog):
    """data.stress_order of `mlip run`: by default the labels stay as stored and a warning
    names the exchanged config type; auto repairs it in the training and the test data; the
    run's data summary says which order was applied."""
    from mlip_plugin.data import write_extxyz
    from mlip_plugin.pipeline.config import RunConfig
    from mlip_plugin.pipeline.run import prepare_data, read_data

    stored = [Configuration(c.atoms.copy(), energy=c.energy, forces=c.forces,
                            stress=c.stress, config_type=c.config_type) for c in cu_configs]
    swap_yz_xz(stored, {"elastic"})
    write_extxyz(tmp_path / "train.extxyz", stored)
    write_extxyz(tmp_path / "test.extxyz", stored[-4:])

    def config(order):
        return RunConfig.from_dict({
            "data": {"train": "train.extxyz", "test": "test.extxyz", "stress_order": order},
            "fit": {"basis": {"correlation_order": 2, "total_degree": 6, "r_cut": 4.5}},
            "validate": None}, base_dir=tmp_path)

    train, test = read_data(config("file"))
    np.testing.assert_allclose(train[-1].stress, stored[-1].stress)
    with caplog.at_level(logging.WARNING, logger="mlip_plugin.pipeline.run"):
        train, test, summary = prepare_data(config(None), tmp_path)  # the default: a warning
    np.testing.assert_allclose(train[-1].stress, stored[-1].stress)
    assert summary["stress_order"] == "file"
    assert "['elastic']" in caplog.text and "data.stress_order: auto" in caplog.text
    train, test, summary = prepare_data(config("auto"), tmp_path)
    assert summary["stress_order"] == {"bulk": "file", "elastic": "swap"}
    for got, ref in zip([*train, *test], [*cu_configs, *cu_configs[-4:]]):
        np.testing.assert_allclose(got.stress, ref.stress, atol=1e-12)
    train, _ = read_data(config({"elastic": "swap"}))
    np.testing.assert_allclose(train[-1].stress, cu_configs[-1].stress, atol=1e-12)
    with pytest.raises(InputError, match="data.stress_order='sideways' is not one of"):
        config("sideways")
    with pytest.raises(InputError, match="data.stress_order.elastic='yes'"):
        config({"elastic": "yes"})
    with pytest.raises(InputError, match="a config type of data.stress_order.*quote numbers"):
        config({1: "swap"})
    with pytest.raises(InputError, match="names config types \\['elastc'\\].*did you mean "
                                         "'elastic'"):
        read_data(config({"elastc": "swap"}))


def test_the_probe_samples_about_n_sample_configurations(cu_configs, monkeypatch):
    """n_sample caps the probe's sample (at least one per config type), which is assembled
    a few configurations at a time."""
    import mlip_plugin.pipeline.stress_order as so

    seen = []
    real = so.design_matrix

    def spy(basis, configs, e0):
        seen.append(len(configs))
        return real(basis, configs, e0)

    monkeypatch.setattr(so, "design_matrix", spy)
    many_types = [Configuration(c.atoms, energy=c.energy, forces=c.forces, stress=c.stress,
                                config_type=f"t{i}") for i, c in enumerate(cu_configs)]
    detect_stress_order(cu_configs, r_cut=4.5, n_sample=6)
    assert sum(seen) == 6 and max(seen) <= so._CHUNK
    seen.clear()
    order, _ = detect_stress_order(many_types, r_cut=4.5, n_sample=6)
    assert sum(seen) == len(many_types) and set(order) == {f"t{i}" for i in range(20)}
