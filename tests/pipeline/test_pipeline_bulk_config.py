"""validate.structure (suite 'bulk'): read from a file relative to the configuration, given
inline or as ase.Atoms, stored in a JSON-ready form, and refused where it cannot work."""

from __future__ import annotations

import json
from dataclasses import asdict

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlip_plugin import InputError
from mlip_plugin.pipeline.config import ValidateSettings, load_config
from mlip_plugin.properties.suites import structure_to_dict


def cu3au(a: float = 3.75) -> Atoms:
    return Atoms("AuCu3", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                            [0, 0.5, 0.5]], cell=[a, a, a], pbc=True)


def write(path, text):
    path.write_text(text)
    return path


def test_structure_file_is_read_relative_to_the_configuration(tmp_path, monkeypatch):
    """The path is the configuration's folder's, the first frame is read, the suite is
    bulk, and the settings hold the inline form (JSON-ready, exact)."""
    sub = tmp_path / "sub"
    sub.mkdir()
    hcp = bulk("Cu", "hcp", a=2.55)
    ase.io.write(sub / "crystal.extxyz", [hcp, bulk("Cu", "fcc", a=3.6)])
    monkeypatch.chdir(tmp_path)  # not the configuration's folder
    cfg = load_config(write(sub / "run.yaml", "structures: {element: Cu}\n"
                                              "validate: {structure: crystal.extxyz}\n"))
    v = cfg.validate
    assert v.suite == "bulk"
    expected = structure_to_dict(hcp)  # extxyz keeps 8 decimals
    assert {k: v.structure[k] for k in ("symbols", "pbc")} == {
        k: expected[k] for k in ("symbols", "pbc")}
    np.testing.assert_allclose(v.structure["positions"], expected["positions"], atol=1e-8)
    np.testing.assert_allclose(v.structure["cell"], expected["cell"], atol=1e-8)
    assert json.loads(json.dumps(asdict(v))) == asdict(v)
    assert ValidateSettings(**json.loads(json.dumps(asdict(v)))).structure == v.structure


def test_inline_mapping_and_atoms_give_the_same_settings():
    atoms = cu3au()
    from_atoms = ValidateSettings(structure=atoms)
    inline = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
              "cell": atoms.cell.tolist()}  # numbers for symbols, pbc defaults to True
    from_inline = ValidateSettings(suite="bulk", structure=inline)
    assert from_atoms.suite == from_inline.suite == "bulk"
    assert from_atoms.structure == from_inline.structure
    assert from_atoms.structure["symbols"] == ["Au", "Cu", "Cu", "Cu"]
    assert from_atoms.structure["pbc"] == [True, True, True]
    np.testing.assert_array_equal(from_atoms.structure["positions"], atoms.positions)


def test_suite_settings_of_bulk_carry_the_structure():
    from mlip_plugin.pipeline.validate import suite_settings

    for preset in ("fast", "default"):
        v = ValidateSettings(structure=cu3au(), preset=preset, properties=["eos"])
        s = suite_settings(v, None)
        assert s.groups == ("eos",) and s.structure.get_chemical_formula() == "AuCu3"
        np.testing.assert_array_equal(s.structure.positions, cu3au().positions)


def _open() -> dict:
    doc = structure_to_dict(cu3au())
    return {**doc, "pbc": [True, True, False]}


def _overlapping() -> dict:
    doc = structure_to_dict(cu3au())
    doc["positions"][1] = [0.02, 0.0, 0.0]
    return doc


@pytest.mark.parametrize("settings, match", [
    ({"suite": "bulk"}, r"validate.suite='bulk' computes a crystal you give.*--structure"),
    ({"suite": "fcc", "structure": structure_to_dict(cu3au())},
     r"validate.structure is given, and validate.suite='fcc' builds its own crystal"),
    ({"structure": structure_to_dict(cu3au()), "symbol": "Cu"},
     r"validate.symbol='Cu' is for the cubic suites"),
    ({"structure": _open()}, r"validate.structure must be a bulk crystal, periodic in 3"),
    ({"structure": _overlapping()}, r"validate.structure \(AuCu3\) has atoms 0.02 Å apart"),
    ({"structure": {"symbols": ["Cu"], "cell": np.eye(3).tolist()}},
     r"validate.structure has keys .*missing: \['positions'\]"),
    ({"structure": 3.0}, r"validate.structure=3.0 \(float\) is not allowed"),
    ({"structure": "no_such_file.cif"}, r"validate.structure: cannot read .*no such file"),
])
def test_bulk_settings_refusals(settings, match):
    with pytest.raises(InputError, match=match):
        ValidateSettings(**settings)


def test_bulk_refuses_defect_and_surface_groups():
    with pytest.raises(InputError, match=r"suite 'bulk' has no group \['vacancy'\] "
                                         r"\(vacancy: .*chemical potential"):
        ValidateSettings(structure=cu3au(), properties=["eos", "vacancy"]).check_groups()
    ValidateSettings(structure=cu3au(), along_path_properties=["vacancy"]).check_groups()
    with pytest.raises(InputError, match=r"validate.along_path_properties=.*'surfaces'"):
        ValidateSettings(structure=cu3au(), along_path=[5]).check_groups()


def test_unreadable_structure_file_is_named(tmp_path):
    write(tmp_path / "bad.extxyz", "not a structure\n")
    with pytest.raises(InputError, match=r"validate.structure: cannot read a structure from "
                                         r".*bad.extxyz"):
        load_config(write(tmp_path / "run.yaml", "structures: {element: Cu}\n"
                                                 "validate: {structure: bad.extxyz}\n"))


def test_structure_species_must_be_training_species(tmp_path):
    ase.io.write(tmp_path / "cu3au.extxyz", cu3au())
    with pytest.raises(InputError, match=r"validate.structure has species \['Au'\] that are "
                                         r"not among the training species \['Cu'\].*"
                                         r"validate: null"):
        load_config(write(tmp_path / "run.yaml", "structures: {element: Cu}\n"
                                                 "validate: {structure: cu3au.extxyz}\n"))
    cfg = load_config(write(tmp_path / "data.yaml", "data: {train: t.xyz}\n"
                                                    "validate: {structure: cu3au.extxyz}\n"))
    cfg.resolve_validation(["Au", "Cu"])  # a Cu-Au model computes it
    assert cfg.validate.suite == "bulk"


def test_several_species_without_a_suite_point_to_bulk(tmp_path):
    cfg = load_config(write(tmp_path / "data.yaml", "data: {train: t.xyz}\n"))
    with pytest.raises(InputError, match=r"\['Au', 'Cu'\] have no obvious property suite.*"
                                         r"'suite: bulk' with 'structure:'.*validate: null"):
        cfg.resolve_validation(["Au", "Cu"])
