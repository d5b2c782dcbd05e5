"""Kernel models through the pipeline, the model file and the ASE calculator (rMD17)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces

from mlip_plugin import InputError, load_model
from mlip_plugin.calculators import MLIPCalculator
from mlip_plugin.cli import main
from mlip_plugin.data import read_configs
from mlip_plugin.pipeline import fit


@pytest.fixture(scope="module")
def ethanol(shared_data):
    train = read_configs(shared_data / "rmd17" / "ethanol_rmd17_train_01.npz")[:60]
    test = read_configs(shared_data / "rmd17" / "ethanol_rmd17_test_01.npz")[:40]
    return train, test


@pytest.fixture(scope="module")
def kernel_fit(ethanol):
    train, test = ethanol
    return fit(train, {"model": "kernel", "validation_fraction": 0.2,
                       "kernel": {"sigma": 20.0, "lam": 1e-10, "solver": "pcg"}}, test=test)


def test_kernel_fit_through_the_pipeline(kernel_fit, ethanol):
    err = kernel_fit.metrics["errors"]
    mean_abs_force = np.mean([np.abs(c.forces).mean() for c in ethanol[1]])
    # 48 training frames: a rough but real model (1000 frames reach ~0.02 eV/Å)
    assert err["test"]["force_mae_eV_per_A"] < 0.25 * mean_abs_force
    assert err["train"]["force_mae_eV_per_A"] < err["test"]["force_mae_eV_per_A"]
    assert err["test"]["virial_mae_meV_per_atom"] is None
    prov = kernel_fit.model.provenance
    assert prov.solver == "pcg" and prov.solver_parameters["record"]["n_iter"] > 0


def test_round_trip_and_calculator(kernel_fit, ethanol, tmp_path):
    path = kernel_fit.model.save(tmp_path / "kernel.json")
    atoms = ethanol[1][0].atoms.copy()
    a = kernel_fit.model.predict(atoms)
    b = load_model(path).predict(atoms)
    assert a.energy == b.energy and np.array_equal(a.forces, b.forces)
    atoms.calc = MLIPCalculator(path)
    f = atoms.get_forces()
    fd = calculate_numerical_forces(atoms, eps=1e-4)
    assert np.linalg.norm(fd - f) <= 1e-6 * np.linalg.norm(f)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_potential_energies()


def test_wrong_molecule_is_refused(kernel_fit, ethanol):
    atoms = ethanol[1][0].atoms.copy()
    atoms.calc = MLIPCalculator(kernel_fit.model)
    # the same atoms, C and O swapped (ethanol is C C O H…: swapping the two C atoms would
    # give the same numbers and test nothing)
    swapped = atoms[[2, 1, 0, *range(3, len(atoms))]]
    assert sorted(swapped.numbers) == sorted(atoms.numbers)
    assert not np.array_equal(swapped.numbers, atoms.numbers)
    swapped.calc = MLIPCalculator(kernel_fit.model)
    with pytest.raises(InputError, match="same atoms in the same order"):
        swapped.get_potential_energy()
    shorter = atoms[:-1]
    shorter.calc = MLIPCalculator(kernel_fit.model)
    with pytest.raises(InputError, match="trained on the molecule"):
        shorter.get_potential_energy()


def test_kernel_settings_errors(ethanol):
    with pytest.raises(InputError, match="unknown keys \\['sigmaa'\\] in fit.kernel"):
        fit(ethanol[0], {"model": "kernel", "kernel": {"sigmaa": 3}})
    with pytest.raises(InputError, match="fit.model='gp' is not one of"):
        fit(ethanol[0], {"model": "gp"})


def test_mlip_fit_kernel_config(shared_data, tmp_path, capsys):
    doc = {"data": {"train": str(shared_data / "rmd17" / "uracil_rmd17_test_01.npz")},
           "fit": {"model": "kernel", "validation_fraction": 0.0,
                   "kernel": {"sigma": 20.0, "solver": "analytic"}},
           "validate": None, "output": str(tmp_path / "out")}
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    # keep it small: a config pointing at 1000 frames would be slow; use a subset file
    from mlip_plugin.data import write_extxyz

    sub = tmp_path / "uracil40.extxyz"
    write_extxyz(sub, read_configs(doc["data"]["train"])[:40])
    doc["data"]["train"] = str(sub)
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["fit", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "1440 kernel coefficients (σ = 20.0, λ = 1e-10) solved by analytic" in out
    assert main(["info", str(tmp_path / "out" / "model.json")]) == 0
    out = capsys.readouterr().out
    assert "kernel model for C, H, N, O" in out
    # its size and σ, λ too (they were only in the provenance lines)
    assert "kernel coefficients: 1440 (40 training frames; σ = 20, λ = 1e-10)" in out
    assert main(["info", "--json", str(tmp_path / "out" / "model.json")]) == 0
    kernel = json.loads(capsys.readouterr().out)["kernel"]
    assert kernel == {"n_coefficients": 1440, "n_train": 40, "sigma": 20.0, "lam": 1e-10}


def test_molecule_wrapped_in_a_periodic_cell_is_made_whole(kernel_fit, ethanol):
    """A molecule in a periodic box with atoms wrapped across the boundary is the same
    molecule (it used to get a wrong energy: +49 eV); a box too small to tell is an error."""
    atoms = ethanol[1][0].atoms.copy()
    ref = kernel_fit.model.predict(atoms)
    boxed = atoms.copy()
    boxed.cell, boxed.pbc = [[10, 0, 0], [1, 11, 0], [0, 0, 12]], True
    boxed.positions[0] += [10, 0, 0]
    boxed.positions[3] -= [1, 11, 0]
    got = kernel_fit.model.predict(boxed)
    assert got.energy == pytest.approx(ref.energy, abs=1e-9)
    np.testing.assert_allclose(got.forces, ref.forces, atol=1e-9)
    slab = atoms.copy()
    slab.cell, slab.pbc = [[10, 0, 0], [0, 10, 0], [0, 0, 0]], [True, True, False]
    slab.positions[0] -= [0, 10, 0]
    assert kernel_fit.model.predict(slab).energy == pytest.approx(ref.energy, abs=1e-9)
    snug = atoms.copy()  # whole, in a box less than twice its size: nothing to unwrap
    snug.center(vacuum=1.5)
    snug.pbc = True
    assert kernel_fit.model.predict(snug).energy == pytest.approx(ref.energy, abs=1e-9)
    small = atoms.copy()
    small.cell, small.pbc = [3.0, 10, 10], True
    small.wrap()
    with pytest.raises(InputError, match="spans 0.*of the periodic cell along axis x"):
        kernel_fit.model.predict(small)


def test_kernel_run_without_validate_section_skips_the_crystal_suite(tmp_path):
    from mlip_plugin.pipeline.config import RunConfig

    doc = {"data": {"train": "t.npz"}, "fit": {"model": "kernel"}}
    assert RunConfig.from_dict(doc, tmp_path).validate is None
    with pytest.raises(InputError, match="fit.model is 'kernel'"):
        RunConfig.from_dict({**doc, "validate": {"suite": "fcc"}}, tmp_path)
    # mlip fit ignores the validate section, as before
    fit_only = RunConfig.from_dict({**doc, "validate": {"suite": "fcc"}}, tmp_path,
                                   fit_only=True)
    assert fit_only.validate is None


def test_kernel_model_is_refused_by_the_crystal_suites_before_any_reference_work(kernel_fit):
    from ase.calculators.emt import EMT

    from mlip_plugin.pipeline.validate import validate

    calls = []

    class Counting(EMT):
        def calculate(self, *args, **kwargs):
            calls.append(1)
            super().calculate(*args, **kwargs)

    for suite in ("silicon", "fcc"):
        with pytest.raises(InputError, match="describes one molecule"):
            validate(kernel_fit.model, {"suite": suite}, reference=Counting())
    assert not calls


def test_misordered_frame_is_named_by_its_place_in_the_data(ethanol):
    from dataclasses import replace

    train = list(ethanol[0][:10])
    order = [3, *range(3), *range(4, len(train[3].atoms))]  # ethanol: C C O H ...: O first
    train[3] = replace(train[3], atoms=train[3].atoms[order], forces=train[3].forces[order])
    with pytest.raises(InputError, match="configuration 3 orders its atoms"):
        fit(train, {"model": "kernel", "validation_fraction": 0.3})


def test_silicon_suite_refuses_a_model_without_si_before_reference_work(tmp_path):
    """validate_run used to compute the reference on the model's element (diamond carbon)
    before the model was checked."""
    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.models.linear_ace import LinearACEModel
    from mlip_plugin.pipeline.config import RunConfig
    from mlip_plugin.pipeline.fit import FitResult
    from mlip_plugin.pipeline.validate import validate_run

    basis = ACEBasis(["C"], 2, 6, 4.5)
    model = LinearACEModel(basis, np.zeros(basis.size), {"C": 0.0})
    doc = {"structures": {"element": "Cu"}, "validate": {
        "suite": "silicon", "properties": ["vacancy"],
        "reference": "tests_no_such_module.Calculator"}}
    with pytest.raises(InputError, match="silicon"):  # a Cu run is refused at load already
        RunConfig.from_dict(doc, tmp_path)
    doc["structures"]["element"] = "Si"
    cfg = RunConfig.from_dict(doc, tmp_path)
    result = FitResult(model=model, metrics={}, path_fit=None, timings={})
    # the reference class does not even import: reaching it would be a different error
    with pytest.raises(InputError, match="suite 'silicon' computes Si, which is not a species"):
        validate_run(result, cfg)


def test_training_on_wrapped_frames_equals_training_on_whole_ones(ethanol):
    """Training made no molecule whole (prediction did): frames in a periodic box with atoms
    wrapped across the boundary trained on broken geometries (train force MAE ~200 eV/Å,
    no error). Now they give the model of the whole frames; a box too small is named."""
    from mlip_plugin.data import Configuration

    train = ethanol[0][:20]
    wrapped = []
    for c in train:
        atoms = c.atoms.copy()
        atoms.cell, atoms.pbc = [20.0, 20.0, 20.0], True
        atoms.positions -= atoms.positions[0]  # atom 0 at the corner: the rest wraps
        atoms.wrap()
        wrapped.append(Configuration(atoms, energy=c.energy, forces=c.forces))
    assert any(not np.allclose(w.atoms.positions - w.atoms.positions[0],
                               c.atoms.positions - c.atoms.positions[0])
               for w, c in zip(wrapped, train))
    settings = {"model": "kernel", "validation_fraction": 0.0,
                "kernel": {"sigma": 20.0, "lam": 1e-10, "solver": "analytic"}}
    whole, boxed = fit(train, settings), fit(wrapped, settings)
    err = boxed.metrics["errors"]["train"]["force_mae_eV_per_A"]
    assert err == pytest.approx(whole.metrics["errors"]["train"]["force_mae_eV_per_A"],
                                rel=1e-6, abs=1e-9)
    probe = ethanol[1][0].atoms
    np.testing.assert_allclose(boxed.model.predict(probe).forces,
                               whole.model.predict(probe).forces, atol=1e-8)
    small = [Configuration(c.atoms.copy(), energy=c.energy, forces=c.forces) for c in train]
    small[3].atoms.cell, small[3].atoms.pbc = [3.0, 10.0, 10.0], True
    small[3].atoms.wrap()
    with pytest.raises(InputError, match="configuration 3: the molecule spans"):
        fit(small, settings)


@pytest.mark.parametrize(("kernel", "fraction", "match"), [
    ({"sigmas": []}, 0.2, "fit.kernel.sigmas is empty"),
    ({"sigmas": [10, 20]}, 0.0, "fit.kernel.sigmas needs validation data"),
    ({"solver": "pcg", "k": 100000}, 0.0, "fit.kernel.k: preconditioner rank k=100000"),
])
def test_dry_run_checks_what_the_kernel_fit_refuses(shared_data, tmp_path, capsys, kernel,
                                                     fraction, match):
    """--dry-run said "configuration OK" for kernel settings the fit refuses at once."""
    from mlip_plugin.data import write_extxyz

    sub = tmp_path / "ethanol12.extxyz"
    write_extxyz(sub, read_configs(shared_data / "rmd17" / "ethanol_rmd17_train_01.npz")[:12])
    doc = {"data": {"train": str(sub)}, "validate": None, "output": str(tmp_path / "out"),
           "fit": {"model": "kernel", "validation_fraction": fraction, "kernel": kernel}}
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["fit", str(cfg), "--dry-run"]) == 2
    assert match in capsys.readouterr().err
    assert main(["fit", str(cfg)]) == 2  # the run refuses it the same way, before training
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.json").exists()


def test_dry_run_names_a_misordered_kernel_frame(ethanol, tmp_path, capsys):
    from mlip_plugin.data import Configuration, write_extxyz

    frames = [Configuration(c.atoms.copy(), energy=c.energy, forces=c.forces)
              for c in ethanol[0][:8]]
    bad = frames[5]
    order = [2, 0, 1, *range(3, len(bad.atoms))]
    frames[5] = Configuration(bad.atoms[order], energy=bad.energy, forces=bad.forces[order])
    sub = tmp_path / "misordered.extxyz"
    write_extxyz(sub, frames)
    doc = {"data": {"train": str(sub)}, "validate": None, "output": str(tmp_path / "out"),
           "fit": {"model": "kernel", "validation_fraction": 0.0}}
    cfg = tmp_path / "k.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["fit", str(cfg), "--dry-run"]) == 2
    assert "configuration 5 orders its atoms" in capsys.readouterr().err
