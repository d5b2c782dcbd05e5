"""The model file format and the ASE calculator, on an exact test model family."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError, get_calculator_class
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from model_test_family import SmoothPairModel

from mlip_plugin import InputError, ModelFormatError, load_model
from mlip_plugin.calculators import MLIPCalculator
from mlip_plugin.models import Provenance
from mlip_plugin.models.fileformat import _checksum


@pytest.fixture
def model():
    prov = Provenance(training_data_sha256="ab" * 32, solver="omp", seed=3,
                      selected_support=[0, 5, 7], validation_metrics={"e": 1.0})
    return SmoothPairModel(["Al", "Ti"], [[0.3, 0.2], [0.2, 0.5]], provenance=prov)


@pytest.fixture
def tial(rng):
    atoms = bulk("Al", "fcc", a=4.0, cubic=True).repeat((2, 2, 1))
    atoms.symbols[::3] = "Ti"
    atoms.rattle(0.1, seed=1)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))),
                   scale_atoms=True)
    return atoms


def test_forces_and_stress_equal_finite_differences(model, tial):
    tial.calc = MLIPCalculator(model)
    f = tial.get_forces()
    s = tial.get_stress()
    f_fd = calculate_numerical_forces(tial, eps=1e-5)
    s_fd = calculate_numerical_stress(tial, eps=1e-6)
    np.testing.assert_allclose(f, f_fd, rtol=1e-6, atol=1e-8 * np.abs(f).max())
    np.testing.assert_allclose(s, s_fd, rtol=1e-6, atol=1e-8 * np.abs(s).max())
    assert tial.get_potential_energies().sum() == pytest.approx(tial.get_potential_energy(),
                                                                rel=1e-13)
    assert tial.get_potential_energy() == tial.calc.get_property("free_energy")


def test_cache_and_invalidation(model, tial):
    calls = []
    predict = model.predict
    model.predict = lambda *a, **k: calls.append(1) or predict(*a, **k)
    tial.calc = MLIPCalculator(model)
    e1 = tial.get_potential_energy()
    tial.get_forces()
    tial.get_stress()
    assert len(calls) == 1  # one evaluation serves energy, forces and stress
    tial.positions[0, 0] += 0.01
    assert tial.get_potential_energy() != e1 and len(calls) == 2


def test_round_trip_is_bit_identical(model, tial, tmp_path):
    path = model.save(tmp_path / "model.json")
    again = load_model(path)
    assert again.provenance.selected_support == [0, 5, 7]
    assert again.provenance.training_data_sha256 == "ab" * 32
    for m in (model, again):
        tial.calc = MLIPCalculator(m)
        tial.calc.reset()
    a = tial.copy()
    a.calc = MLIPCalculator(model)
    b = tial.copy()
    b.calc = MLIPCalculator(str(path))
    assert a.get_potential_energy() == b.get_potential_energy()
    assert np.array_equal(a.get_forces(), b.get_forces())
    assert np.array_equal(a.get_stress(), b.get_stress())


def test_bad_model_files(model, tmp_path):
    path = model.save(tmp_path / "m.json")
    doc = json.loads(path.read_text())
    newer = dict(doc, format_version=doc["format_version"] + 1)
    (tmp_path / "new.json").write_text(json.dumps(newer))
    with pytest.raises(ModelFormatError, match="newer than this mlip-plugin understands"):
        load_model(tmp_path / "new.json")
    edited = json.loads(path.read_text())
    edited["params"]["rc"] = 6.0
    (tmp_path / "edit.json").write_text(json.dumps(edited))
    with pytest.raises(ModelFormatError, match="corrupted: its checksum"):
        load_model(tmp_path / "edit.json")
    (tmp_path / "trunc.json").write_text(path.read_text()[:200])
    with pytest.raises(ModelFormatError, match="corrupted JSON"):
        load_model(tmp_path / "trunc.json")
    with pytest.raises(ModelFormatError, match="cannot read model file"):
        load_model(tmp_path / "none.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")  # was a UnicodeDecodeError
    with pytest.raises(ModelFormatError, match="is not a valid model file .not UTF-8 text"):
        load_model(tmp_path / "binary.json")
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ModelFormatError, match="not an mlip-plugin model file"):
        load_model(tmp_path / "other.json")


def test_object_arrays_are_refused():
    from mlip_plugin.models.fileformat import decode_array, encode_array

    with pytest.raises(ModelFormatError, match="dtype object"):
        encode_array(np.array([{}], dtype=object))
    with pytest.raises(ModelFormatError, match="disallowed dtype"):
        decode_array({"dtype": "|O", "shape": [1], "data": ""})


def test_unknown_species_fails_before_work(model):
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = MLIPCalculator(model)
    with pytest.raises(InputError, match=r"species \['Cu'\] that the model was not fitted"):
        atoms.get_potential_energy()


def test_stress_of_a_molecule_is_not_implemented(model):
    from ase import Atoms

    mol = Atoms("AlTi", positions=[[0, 0, 0], [0, 0, 2.5]])
    mol.calc = MLIPCalculator(model)
    assert np.isfinite(mol.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError, match="three-dimensional periodic"):
        mol.get_stress()


@pytest.mark.parametrize("cell, pbc, match", [
    (None, True, "periodic along xyz"),
    ([[4, 0, 0], [0, 4, 0], [0, 0, 0]], True, "periodic along xyz"),
    ([[4, 0, 0], [8, 0, 0], [0, 0, 9]], [True, True, False], "periodic along xy"),
])
def test_periodic_structure_without_a_cell_is_a_named_error(model, cell, pbc, match):
    from ase import Atoms

    atoms = Atoms("AlTi", positions=[[0, 0, 0], [0, 0, 2.5]], cell=cell, pbc=pbc)
    atoms.calc = MLIPCalculator(model)
    with pytest.raises(InputError, match=match):
        atoms.get_potential_energy()


def test_non_finite_positions_are_a_named_error(model, tial):
    tial.positions[2, 1] = np.nan
    tial.calc = MLIPCalculator(model)
    with pytest.raises(InputError, match="non-finite"):
        tial.get_potential_energy()


def test_registered_with_ase():
    assert get_calculator_class("mlip") is MLIPCalculator


def test_bad_model_argument():
    with pytest.raises(InputError, match="neither a fitted mlip-plugin model"):
        MLIPCalculator(model=42)


def test_ase_plugin_listing():
    proc = subprocess.run([sys.executable, "-m", "ase", "info", "--plugins"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "mlip" in proc.stdout and "mlip_plugin" in proc.stdout


@pytest.mark.parametrize("key, value, match", [
    ("format_version", 0, "format_version 0, which no mlip-plugin writes"),
    ("format_version", -1, "format_version -1, which no mlip-plugin writes"),
    ("format_version", True, "format_version True, which no mlip-plugin writes"),
    ("format_version", "1", "format_version '1', which no mlip-plugin writes"),
    ("family", None, "names no model family"),
    ("params", [1, 2], "'params' entry of type list"),
    ("arrays", "x", "'arrays' entry of type str"),
])
def test_model_files_with_impossible_entries(model, tmp_path, key, value, match):
    """A file with a valid checksum but entries no writer produces is a named error, not a
    silent load or a raw KeyError."""
    doc = json.loads(model.save(tmp_path / "m.json").read_text())
    doc[key] = value
    doc["checksum"] = _checksum(doc)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match=match):
        load_model(tmp_path / "bad.json")
