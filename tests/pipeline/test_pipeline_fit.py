"""Fitting linear ACE to Cu/EMT reference data through the whole stack."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from mlip_plugin import InputError, load_model
from mlip_plugin.calculators import MLIPCalculator
from mlip_plugin.data import hash_configs
from mlip_plugin.pipeline.fit import fit
from mlip_plugin.pipeline.reference import collect_reference_data
from mlip_plugin.pipeline.structures import StructureSpec, generate_structures

BASIS = {"correlation_order": 3, "total_degree": 9, "r_cut": 4.5}


@pytest.fixture(scope="module")
def cu_data():
    spec = StructureSpec.from_preset("tiny", n_rattled=8, md_snapshots=3)
    configs = collect_reference_data(generate_structures(spec, EMT())).configs
    test = collect_reference_data(generate_structures(
        StructureSpec.from_preset("tiny", seed=11, md_snapshots=0), EMT())).configs
    return configs, test


@pytest.fixture(scope="module")
def omp_fit(cu_data):
    configs, test = cu_data
    return fit(configs, {"solver": "omp", "max_active": 60, "basis": BASIS}, test=test)


def test_omp_fit_is_accurate(omp_fit):
    err = omp_fit.metrics["errors"]
    assert err["test"]["force_mae_eV_per_A"] < 0.02
    assert err["test"]["energy_mae_meV_per_atom"] < 5.0
    assert omp_fit.metrics["n_selected"] <= 60
    summary = omp_fit.metrics["path"]
    assert [row["n_active"] for row in summary] == sorted(row["n_active"] for row in summary)
    assert all("validation_rmse" in row for row in summary)


def test_model_has_only_selected_functions(omp_fit, cu_data):
    model = omp_fit.model
    assert model.n_functions == omp_fit.metrics["n_selected"]
    prov = model.provenance
    support = np.asarray(prov.selected_support)
    assert len(support) == model.n_functions == len(np.unique(support))
    assert prov.solver == "omp" and len(prov.training_data_sha256) == 64
    # every configuration is in the training or the validation part, both non-empty
    assert prov.n_train + prov.n_validation == len(cu_data[0])
    assert prov.n_train > 0 and prov.n_validation > 0
    assert prov.training_data_sha256 != hash_configs(cu_data[0])  # the training part only


def test_fitted_calculator_forces_stress_fd(omp_fit, cu_data):
    atoms = cu_data[1][8].atoms.copy()
    atoms.calc = MLIPCalculator(omp_fit.model)
    f = atoms.get_forces()
    np.testing.assert_allclose(f, calculate_numerical_forces(atoms, eps=1e-5), rtol=1e-6,
                               atol=1e-7)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-6),
                               rtol=1e-6, atol=1e-8)
    assert atoms.get_potential_energies().sum() == pytest.approx(
        atoms.get_potential_energy(), abs=1e-10)


def test_model_round_trip_bit_identical(omp_fit, cu_data, tmp_path):
    path = omp_fit.model.save(tmp_path / "model.json")
    again = load_model(path)
    atoms = cu_data[1][3].atoms
    a, b = omp_fit.model.predict(atoms), again.predict(atoms)
    assert a.energy == b.energy
    assert np.array_equal(a.forces, b.forces) and np.array_equal(a.stress, b.stress)


def test_models_along_the_path(omp_fit, cu_data):
    small = omp_fit.path_fit.model_at(10)
    assert small.n_functions <= 10
    atoms = cu_data[1][0].atoms.copy()
    atoms.calc = EMT()
    e_ref = atoms.get_potential_energy()
    assert abs(small.predict(atoms).energy - e_ref) / len(atoms) < 0.05


@pytest.mark.parametrize("solver", ["asp", "rrqr", "blr", "ard", "ridge"])
def test_other_solvers(cu_data, solver):
    configs, test = cu_data
    res = fit(configs, {"solver": solver, "max_active": 60, "basis": BASIS}, test=test)
    assert res.metrics["errors"]["test"]["force_mae_eV_per_A"] < 0.05
    assert (res.path_fit is not None) == (solver in ("asp", "ard"))  # paths, selected on
    if solver == "blr":
        pred = res.model.predict(test[0].atoms)
        assert pred.extras["energy_std"] > 0 and pred.extras["forces_std"].shape == (
            test[0].n_atoms, 3)


def test_fit_bad_input(cu_data):
    with pytest.raises(InputError, match="at least one training configuration"):
        fit([], {})
    with pytest.raises(InputError, match="unknown key 'solvr'"):
        fit(cu_data[0], {"solvr": "omp"})
    with pytest.raises(InputError, match="fit.basis"):
        fit(cu_data[0], {"basis": {"correlation_orderr": 2}})


def test_fit_refuses_a_stress_label_without_cell_volume(cu_data):
    """A molecule's stress label gave a zero virial target (and the core's share of it a
    division by the zero volume)."""
    from ase import Atoms

    from mlip_plugin.data import Configuration

    molecule = Configuration(Atoms("Cu2", positions=[[0, 0, 0], [0.8, 0, 0]]), energy=1.0,
                             forces=np.zeros((2, 3)), stress=np.ones(6))
    configs = [*cu_data[0][:3], molecule]
    with pytest.raises(InputError, match=r"configs \[3\] have a stress label but a cell "
                                         "without volume"):
        fit(configs, {"basis": BASIS})
    with pytest.raises(InputError, match=r"validation \[0\] have a stress label"):
        fit(cu_data[0][:3], {"basis": BASIS}, validation=[molecule])


def test_fit_names_an_empty_configuration_by_its_position_in_the_callers_data(cu_data):
    """fit met it in resolve_e0 (ZeroDivisionError of E / N) or, with isolated atoms of
    every species, in design_matrix on a chunk of the shuffled training split, whose
    refusal named another position than the one in ``configs``."""
    from ase import Atoms

    from mlip_plugin.data import Configuration

    empty = Configuration(Atoms(cell=[5, 5, 5], pbc=True), energy=0.0)
    configs = [*cu_data[0][:8], empty, *cu_data[0][8:12]]
    with pytest.raises(InputError, match=r"configs \[8\] have no atoms; remove them"):
        fit(configs, {"basis": BASIS})
    with pytest.raises(InputError, match=r"validation \[1\] have no atoms"):
        fit(cu_data[0][:8], {"basis": BASIS}, validation=[cu_data[0][8], empty])


def test_core_repulsion_is_taken_out_of_close_pair_labels():
    from ase import Atoms

    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.ace.model_eval import CoreRepulsion, energy_forces_virial
    from mlip_plugin.data import Configuration
    from mlip_plugin.pipeline.fit import without_core

    basis = ACEBasis(["Cu"], 2, 6, 4.5)
    r_in = CoreRepulsion.for_basis(basis).radius[("Cu", "Cu")]
    close = Atoms("Cu2", positions=[[0, 0, 0], [0.8 * r_in, 0, 0]], cell=[8, 8, 8], pbc=True)
    far = Atoms("Cu2", positions=[[0, 0, 0], [1.2 * r_in, 0, 0]], cell=[8, 8, 8], pbc=True)
    labelled = [Configuration(atoms=a, energy=1.0, forces=np.zeros((2, 3)),
                              stress=np.zeros(6)) for a in (close, far)]
    adjusted = without_core(labelled, basis)
    assert adjusted[1] is labelled[1]  # no pair inside the core: untouched
    core = energy_forces_virial(basis.prune([0])[0], close, np.zeros(1),
                                CoreRepulsion.for_basis(basis))
    assert core.energy > 0
    assert adjusted[0].energy == pytest.approx(1.0 - core.energy)
    np.testing.assert_allclose(adjusted[0].forces, -core.forces)
    np.testing.assert_allclose(adjusted[0].stress, core.virial / close.get_volume())
    assert labelled[0].energy == 1.0  # the caller's data are not changed


def test_fit_reads_r0_from_the_training_data(omp_fit, cu_data):
    """By default the basis takes r0 (distance transform, core radius) from the data: the
    median nearest-neighbour distance of the training configurations; ``r0: covalent``
    keeps the covalent radii."""
    from ase.data import atomic_numbers, covalent_radii

    from mlip_plugin.ace import r0_from_data

    configs, _ = cu_data
    expected = r0_from_data(configs, ["Cu"], BASIS["r_cut"])["Cu-Cu"]
    assert omp_fit.model.basis.r0[("Cu", "Cu")] == pytest.approx(expected)
    assert 2.3 < expected < 2.6  # fcc Cu (EMT): a/√2 = 2.55 Å; rattled, strained, MD
    res = fit(configs, {"solver": "omp", "max_active": 10,
                        "basis": {**BASIS, "r0": "covalent"}})
    assert res.model.basis.r0[("Cu", "Cu")] == pytest.approx(
        2 * covalent_radii[atomic_numbers["Cu"]])


def test_isolated_atoms_stay_in_training_and_fix_e0(caplog):
    """With more isolated atoms than the validation fraction rounds away, none goes to
    validation: e0='isolated' finds all of them, and r0 is read from the data although the
    isolated atoms (and the species seen only as one) have no neighbour pairs."""
    import logging

    from ase import Atoms
    from ase.build import bulk

    from mlip_plugin.ace import r0_from_data
    from mlip_plugin.data import Configuration

    elements = ["Cu", "Ag", "Au", "Ni"]
    configs = []
    for el in elements:
        a = Atoms(el, cell=[12, 12, 12], pbc=True)
        a.calc = EMT()
        configs.append(Configuration(a.copy(), energy=a.get_potential_energy(),
                                     forces=a.get_forces(), config_type="isolated_atom"))
    for k in range(12):
        b = bulk("Cu", "fcc", a=3.6, cubic=True)
        b.symbols = [elements[i % 4] for i in range(len(b))]
        b.rattle(0.05, seed=k)
        b.calc = EMT()
        configs.append(Configuration(b.copy(), energy=b.get_potential_energy(),
                                     forces=b.get_forces(), config_type="bulk"))
    iso = {c.symbols[0]: c.energy for c in configs[:4]}
    res = fit(configs, {"e0": "isolated", "max_active": 10, "validation_fraction": 0.15,
                        "basis": {"correlation_order": 2, "total_degree": 4, "r_cut": 4.5}})
    assert res.model.provenance.extra["e0"] == pytest.approx(iso, abs=0)
    auto = fit(configs, {"e0": "auto", "max_active": 10, "validation_fraction": 0.15,
                         "basis": {"correlation_order": 2, "total_degree": 4, "r_cut": 4.5}})
    assert auto.model.provenance.extra["e0"] == pytest.approx(iso, abs=0)
    # only the isolated Au atom: no Au pair within r_cut, Au-* keep the covalent default
    with caplog.at_level(logging.INFO, logger="mlip_plugin.ace.basis"):
        r0 = r0_from_data([configs[2], *configs[4:]], ["Cu", "Au"], 4.5)
    assert set(r0) == {"Cu-Au", "Cu-Cu", "Au-Au"}
    lone = [configs[2], Configuration(bulk("Cu", cubic=True), energy=0.0)]
    with caplog.at_level(logging.INFO, logger="mlip_plugin.ace.basis"):
        r0 = r0_from_data(lone, ["Cu", "Au"], 4.5)
    assert set(r0) == {"Cu-Cu"} and r0["Cu-Cu"] == pytest.approx(3.61 / np.sqrt(2))
    assert "no pair within r_cut=4.5 Å for Cu-Au, Au-Au" in caplog.text


SMALL = {"correlation_order": 2, "total_degree": 6, "r_cut": 4.5}


def test_partial_config_type_weights_keep_the_configured_ones(cu_data, caplog):
    from mlip_plugin.data import Weights

    configs, _ = cu_data
    kind = configs[0].config_type
    before = [c.weights for c in configs]
    res = fit(configs, {"solver": "ridge", "basis": SMALL, "validation_fraction": 0.0,
                        "weights": {"energy": 5.0, "forces": 1.0, "virial": 0.0},
                        "by_config_type": {kind: {"forces": 10.0}}})
    assert [c.weights for c in configs] == before  # the caller's objects are not touched
    assert not caplog.records  # configurations with the default weights: nothing to say
    configs[1].weights = Weights(energy=100.0, forces=1.0, virial=0.0)
    with caplog.at_level("WARNING"):
        fit(configs[:6], {"solver": "ridge", "basis": SMALL, "validation_fraction": 0.0})
    assert "replace the configurations' own weights" in caplog.text
    configs[1].weights = before[1]
    same = fit(configs, {"solver": "ridge", "basis": SMALL, "validation_fraction": 0.0,
                         "weights": {"energy": 5.0, "forces": 1.0, "virial": 0.0},
                         "by_config_type": {kind: {"energy": 5.0, "forces": 10.0,
                                                   "virial": 0.0}}})
    np.testing.assert_array_equal(res.model.coef, same.model.coef)


def test_config_type_weights_of_no_configuration_are_named(cu_data):
    """A by_config_type key matching no configuration (a typo, 'Strained' for 'strained')
    was ignored without a word, the model the same as without it."""
    configs, _ = cu_data
    kind = configs[0].config_type
    typo = kind.upper() if kind != kind.upper() else kind + "x"
    with pytest.raises(InputError, match=rf"fit.by_config_type names \['{typo}'\], the "
                                         rf"config_type of no training or validation "
                                         rf"configuration .theirs: .*'{kind}'.*did you mean"):
        fit(configs, {"solver": "ridge", "basis": SMALL, "validation_fraction": 0.0,
                      "by_config_type": {typo: {"energy": 1000.0}}})


def test_zero_weight_rows_are_not_observations(cu_data):
    """BLR/ARD's noise estimate divides by the number of observations: rows of weight zero
    (a config type weighted 0) must count like rows that are not there."""
    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.ace.design import gram_form
    from mlip_plugin.data import Weights, assign_weights

    configs = [c.copy() for c in cu_data[0]]
    kind = configs[0].config_type
    basis = ACEBasis(["Cu"], 2, 6, 4.5)
    assign_weights(configs, Weights(), {kind: Weights(0.0, 0.0, 0.0)})
    zeroed = gram_form(basis, configs, {"Cu": 0.0})
    dropped = gram_form(basis, [c for c in configs if c.config_type != kind], {"Cu": 0.0})
    assert zeroed.n_rows == dropped.n_rows < sum(1 + 3 * c.n_atoms + 6 for c in configs)
    np.testing.assert_allclose(zeroed.AtWA, dropped.AtWA, rtol=1e-12, atol=1e-12)


def test_species_missing_from_training_is_named_before_the_fit(cu_data):
    configs, test = cu_data
    from dataclasses import replace

    atoms = configs[-1].atoms.copy()
    atoms.symbols[0] = "Ag"
    alien = replace(configs[-1], atoms=atoms)
    with pytest.raises(InputError, match=r"species \['Ag'\] appear in validation"):
        fit(configs[:-1], {"basis": SMALL, "e0": {"Cu": 0.0, "Ag": 0.0}},
            validation=[alien])
    with pytest.raises(InputError, match=r"species \['Ag'\] appear in test"):
        fit(configs[:-1], {"basis": SMALL}, test=[alien])


def test_dependent_basis_functions_are_logged_once_not_warned(cu_example, caplog):
    """Skipping numerically dependent basis functions along the path is expected (a large
    basis on little data): the fit logs their number instead of a warning for each."""
    import warnings

    from mlip_plugin.data import read_configs
    from mlip_plugin.errors import ConvergenceWarning

    configs = read_configs(cu_example)[:3]
    settings = {"max_active": 60, "validation_fraction": 0,
                "basis": {"correlation_order": 2, "total_degree": 8, "r_cut": 4.5}}
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("INFO"):
        warnings.simplefilter("always")
        result = fit(configs, settings)
    n_skipped = result.path_fit.path.info.n_skipped
    assert n_skipped > 0
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert f"omp skipped {n_skipped} basis functions numerically dependent" in caplog.text
