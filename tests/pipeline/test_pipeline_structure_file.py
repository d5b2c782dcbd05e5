"""`structures: {file: ...}`: the user's own structures, labelled by the reference calculator.

Settings, reading and checking the file, an end-to-end run of a Cu–Au alloy labelled with
EMT, resuming after a failed reference calculation, and an edited file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_plugin import InputError
from mlip_plugin.cli import main
from mlip_plugin.pipeline.config import RunConfig, load_config
from mlip_plugin.pipeline.reference import CalculatorSpec, structure_key
from mlip_plugin.pipeline.structure_file import StructureFile, read_structure_file

FAST_FIT = {"solver": "omp", "max_active": 20,
            "basis": {"correlation_order": 2, "total_degree": 6, "r_cut": 4.5}}
EMT_SPEC = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}


def _config(tmp_path: Path, structures: dict, reference=None, **extra) -> Path:
    doc = {"output": str(tmp_path / "out"), "structures": structures,
           "reference": reference or EMT_SPEC, "fit": FAST_FIT, "validate": None, **extra}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _emt(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_potential_energy(), atoms.get_forces()


# -- settings -----------------------------------------------------------------------------

def test_file_settings_and_relative_path(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.yaml"
    path.write_text("structures: {file: alloys.extxyz}\nvalidate: null\n")
    cfg = load_config(path)
    assert cfg.structures == StructureFile(file=str(tmp_path / "sub" / "alloys.extxyz"))
    assert (cfg.structures.index, cfg.structures.format) == (":", None)
    assert cfg.reference.calculator == "ase.calculators.emt.EMT"
    again = RunConfig.from_dict(cfg.to_dict())  # as config.yaml in the run folder
    assert again.structures == cfg.structures
    cfg = RunConfig.from_dict({"structures": {"file": "a.traj", "index": -1, "format": "traj"},
                               "validate": None}, tmp_path)
    assert (cfg.structures.index, cfg.structures.format) == ("-1", "traj")
    assert cfg.structures.selection() == -1


@pytest.mark.parametrize("structures,extra,match", [
    ({"file": "a.xyz", "preset": "tiny"}, {},
     r"both 'file' .* and the generation settings \['preset'\]: give one or the other"),
    ({"file": "a.xyz", "element": "Cu", "n_rattled": 2}, {},
     r"generation settings \['element', 'n_rattled'\]"),
    ({"file": "a.xyz"}, {"data": {"train": "a.xyz"}}, "either 'structures' or 'data'"),
    ({"file": "a.xyz", "fromat": "xyz"}, {}, r"unknown key 'fromat'.*did you mean 'format'"),
    ({"file": "a.xyz", "index": "abc"}, {}, r"structures.index='abc' is not allowed"),
    ({"file": "a.xyz", "index": 1.5}, {}, r"structures.index=1.5 is not allowed"),
    ({"file": "a.xyz", "format": "extxzy"}, {}, r"structures.format='extxzy'.*'extxyz'"),
    ({"file": ""}, {}, r"structures.file='' is not allowed"),
])
def test_bad_file_settings(tmp_path, structures, extra, match):
    with pytest.raises(InputError, match=match):
        RunConfig.from_dict({"structures": structures, "validate": None, **extra}, tmp_path)


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "structures.file: cannot read .*no such file"),
    (lambda p: p.mkdir(), "structures.file: cannot read .*it is a folder"),
])
def test_dry_run_checks_the_structures_file(tmp_path, capsys, make, match):
    make(tmp_path / "alloys.extxyz")
    cfg = _config(tmp_path, {"file": "alloys.extxyz"})
    for command in ("run", "fit"):
        assert main([command, str(cfg), "--dry-run"]) == 2
        out = capsys.readouterr()
        assert "configuration OK" not in out.out
        assert re.search(match, out.err), out.err
    assert not (tmp_path / "out").exists()


def test_kernel_fit_of_several_molecules_is_refused_before_labelling(tmp_path, capsys):
    """A kernel fit needs frames of one molecule: a file that mixes molecules is refused by
    --dry-run and by the run before the reference labels anything (the check of a data
    run's kernel fit; it came after all the reference calculations)."""
    from ase.build import molecule

    frames = [molecule("CH3CH2OH") for _ in range(6)] + [molecule("H2O")]
    for i, atoms in enumerate(frames):
        atoms.rattle(0.02, seed=i)
    _write(tmp_path / "molecules.extxyz", frames)
    doc = {"output": str(tmp_path / "out"), "structures": {"file": "molecules.extxyz"},
           "reference": EMT_SPEC, "fit": {"model": "kernel"}}
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    for args in (["--dry-run"], []):
        assert main(["fit", str(cfg), *args]) == 2
        err = capsys.readouterr().err
        assert "has 3 atoms but configuration 0 has 9" in err, err
    assert not (tmp_path / "out").exists()


# -- reading and checking -----------------------------------------------------------------

def _write(path: Path, images) -> Path:
    ase.io.write(path, images, format="extxyz")
    return path


def test_read_keeps_ids_and_types_and_drops_labels(tmp_path, write_cuau_structures, caplog):
    path = write_cuau_structures(tmp_path / "alloys.extxyz", n=6)
    images = ase.io.read(path, ":")
    images[1].info.update(config_type="bulk", structure_id="mine")
    images[2].info["structure_id"] = images[3].info["structure_id"] = "twice"
    images[4].calc = None  # one without labels
    _write(path, images)
    with caplog.at_level("WARNING"):
        got = read_structure_file(StructureFile(file=str(path)))
    assert "5 of the 6 structures" in caplog.text and "data: {train: FILE}" in caplog.text
    assert [a.info["structure_id"] for a in got.structures] == [
        "frame-0", "mine", "frame-2", "frame-3", "frame-4", "frame-5"]
    assert [a.info["config_type"] for a in got.structures] == ["file", "bulk", *["file"] * 4]
    assert all(a.calc is None for a in got.structures)
    assert got.species == ["Au", "Cu"]
    assert np.array_equal(got.structures[3].positions, images[3].positions)
    every_other = read_structure_file(StructureFile(file=str(path), index="1::2"))
    assert [a.info["structure_id"] for a in every_other.structures] == [
        "mine", "frame-3", "frame-5"]
    assert every_other.sha256 == got.sha256


def _overlapping(images):
    images[2].positions[1] = images[2].positions[0] + [0.05, 0, 0]


def _nan(images):
    images[1].positions[0, 0] = np.nan


def _zero_cell_vector(images):
    images[3].cell[2] = 0.0


@pytest.mark.parametrize("spoil,match", [
    (_overlapping, r"alloys.extxyz, configuration 2: atoms are 0.05 Å apart"),
    (_nan, r"alloys.extxyz, configuration 1: positions contain NaN"),
    (_zero_cell_vector, r"alloys.extxyz, configuration 3: the cell has zero volume"),
])
def test_unusable_structures_are_named_by_position(tmp_path, write_cuau_structures, spoil,
                                                   match):
    path = write_cuau_structures(tmp_path / "alloys.extxyz", n=5)
    images = ase.io.read(path, ":")
    spoil(images)
    _write(path, images)
    with pytest.raises(InputError, match=match):
        read_structure_file(StructureFile(file=str(path)))


def test_unreadable_file_empty_selection_and_not_atoms(tmp_path, write_cuau_structures,
                                                       monkeypatch):
    bad = tmp_path / "bad.xyz"
    bad.write_text("this is not\nan xyz file\n")
    with pytest.raises(InputError, match=r"cannot read .*bad.xyz.*structures.format"):
        read_structure_file(StructureFile(file=str(bad)))
    path = write_cuau_structures(tmp_path / "alloys.extxyz", n=3)
    with pytest.raises(InputError, match=r"cannot read .*alloys.extxyz' as vasp"):
        read_structure_file(StructureFile(file=str(path), format="vasp"))
    for index in ("5", "3:"):
        with pytest.raises(InputError, match=rf"structures.index='{index}' selects no "
                                             r"structure .* which holds 3"):
            read_structure_file(StructureFile(file=str(path), index=index))
    monkeypatch.setattr(ase.io, "read", lambda *args, **kwargs: [{"not": "atoms"}])
    with pytest.raises(InputError, match=r"structure 0: ASE read a dict, not a structure"):
        read_structure_file(StructureFile(file=str(path)))


def test_validation_suite_from_the_species_in_the_file(tmp_path, capsys,
                                                       write_cuau_structures):
    """An alloy needs validate: null or a suite, said before any work; a file of one
    element gets that element's suite."""
    path = write_cuau_structures(tmp_path / "alloys.extxyz")
    cfg = _config(tmp_path, {"file": "alloys.extxyz"})
    doc = yaml.safe_load(cfg.read_text())
    del doc["validate"]
    cfg.write_text(yaml.safe_dump(doc))
    for extra in (["--dry-run"], []):
        assert main(["run", str(cfg), *extra]) == 2
        err = capsys.readouterr().err
        assert "species ['Au', 'Cu'] have no obvious property suite" in err
        assert "validate: null" in err
    assert not (tmp_path / "out").exists()
    _write(path, [bulk("Cu", "fcc", a=3.6, cubic=True)])
    assert main(["run", str(cfg), "--dry-run"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out.split("configuration OK")[0])
    assert shown["validate"]["suite"] == "fcc"


# -- runs -----------------------------------------------------------------------------------

def test_run_labels_an_alloy_file_with_the_reference(tmp_path, capsys, write_cuau_structures):
    """mlip run on a Cu–Au file: the model has both species, and the fit data are EMT's
    labels, not the (wrong) ones in the file."""
    from mlip_plugin.models import load_model
    from mlip_plugin.pipeline.run import prepare_data

    path = write_cuau_structures(tmp_path / "alloys.extxyz")
    cfg = _config(tmp_path, {"file": "alloys.extxyz"})
    assert main(["-q", "run", str(cfg)]) == 0
    out = tmp_path / "out"
    assert sorted(load_model(out / "model.json").species) == ["Au", "Cu"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "structures file"
    assert metrics["data"]["n_labelled"] == 8 and metrics["data"]["n_computed"] == 8
    stored = json.loads((out / "structures.json").read_text())["structures"]
    assert [s["info"]["structure_id"] for s in stored] == [f"frame-{i}" for i in range(8)]
    spec = CalculatorSpec.coerce(EMT_SPEC)
    for atoms in ase.io.read(path, ":"):
        energy, forces = _emt(atoms)
        cached = json.loads((out / "reference_cache" /
                             f"{structure_key(atoms, spec)}.json").read_text())
        assert cached["energy"] == pytest.approx(energy, abs=1e-10)
        assert np.allclose(cached["forces"], forces, atol=1e-10)
    configs, _, summary = prepare_data(load_config(cfg), out)  # what the fit got
    assert summary["n_cached"] == 8 and summary["n_computed"] == 0
    expected = [_emt(a)[0] for a in ase.io.read(path, ":")]
    assert [c.energy for c in configs] == pytest.approx(expected, abs=1e-10)
    assert all(abs(c.energy - 123.0) > 1 for c in configs)
    assert {c.config_type for c in configs} == {"file"}


def test_failed_structure_is_the_only_one_recomputed(tmp_path, capsys, write_cuau_structures):
    from pipeline_test_calculators import FailAtCallEMT

    write_cuau_structures(tmp_path / "alloys.extxyz")
    cfg = _config(tmp_path, {"file": "alloys.extxyz"},
                  reference={"calculator": "pipeline_test_calculators.FailAtCallEMT"})
    out = tmp_path / "out"
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 3  # the third structure fails
    assert main(["-q", "fit", str(cfg)]) == 0
    failures = json.loads((out / "reference_failures.json").read_text())
    assert [(f["index"], f["structure_id"]) for f in failures] == [(2, "frame-2")]
    assert json.loads((out / "metrics.json").read_text())["data"]["n_labelled"] == 7
    capsys.readouterr()
    assert main(["fit", str(cfg), "--dry-run"]) == 0
    assert (f"structures read from {tmp_path / 'alloys.extxyz'}: 8; reference labels: 7 of "
            "8 cached, 1 to compute") in capsys.readouterr().out
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    assert main(["-q", "fit", str(cfg)]) == 0
    data = json.loads((out / "metrics.json").read_text())["data"]
    assert (data["n_cached"], data["n_computed"], data["n_failed"]) == (7, 1, 0)
    assert FailAtCallEMT.calls == 1
    assert json.loads((out / "reference_failures.json").read_text()) == []
    assert not (out / "previous").exists()  # the same configuration on the same file


def test_edited_file_moves_the_results_aside(tmp_path, capsys, write_cuau_structures):
    """The same configuration on an edited structures file: the old results move to
    previous/1 and the structures are read again, not reused from structures.json."""
    path = write_cuau_structures(tmp_path / "alloys.extxyz")
    cfg = _config(tmp_path, {"file": "alloys.extxyz"})
    out = tmp_path / "out"
    assert main(["-q", "fit", str(cfg)]) == 0
    first_model = (out / "model.json").read_text()
    first_sha = json.loads((out / "metrics.json").read_text())["data"]["sha256"]
    images = ase.io.read(path, ":")
    images[0].positions[0] += [0.1, 0.0, 0.0]
    _write(path, images)
    capsys.readouterr()
    assert main(["fit", str(cfg), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"would move to {out / 'previous' / '1'}" in text
    assert "reference labels: 7 of 8 cached, 1 to compute" in text
    assert main(["-q", "fit", str(cfg)]) == 0
    assert (out / "previous" / "1" / "model.json").read_text() == first_model
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["sha256"] != first_sha
    assert (metrics["data"]["n_cached"], metrics["data"]["n_computed"]) == (7, 1)
    stored = json.loads((out / "structures.json").read_text())["structures"]
    assert np.allclose(stored[0]["positions"], images[0].positions)
    assert main(["-q", "fit", str(cfg)]) == 0  # unchanged since: nothing more moves
    assert not (out / "previous" / "2").exists()


def test_a_project_moved_elsewhere_keeps_its_results(tmp_path, capsys, write_cuau_structures):
    """config.yaml of the run folder names the files it read relative to the folder: a
    project (configuration, structures file, output) copied elsewhere is the same run, not
    'another configuration' whose results move to previous/1 (its absolute paths did)."""
    import shutil

    project = tmp_path / "project"
    project.mkdir()
    write_cuau_structures(project / "alloys.extxyz")
    cfg = _config(project, {"file": "alloys.extxyz"})
    assert main(["-q", "fit", str(cfg)]) == 0
    stored = yaml.safe_load((project / "out" / "config.yaml").read_text())
    assert stored["structures"]["file"] == str(Path("..") / "alloys.extxyz")
    moved = tmp_path / "elsewhere"
    shutil.move(project, moved)
    capsys.readouterr()
    assert main(["fit", str(moved / "run.yaml"), "--output", str(moved / "out"),
                 "--dry-run"]) == 0
    assert "would move" not in capsys.readouterr().out
    assert main(["-q", "fit", str(moved / "run.yaml"), "--output", str(moved / "out")]) == 0
    assert not (moved / "out" / "previous").exists()
    metrics = json.loads((moved / "out" / "metrics.json").read_text())
    assert (metrics["data"]["n_cached"], metrics["data"]["n_computed"]) == (8, 0)


# -- starting magnetic moments and charges ------------------------------------------------

#: structure_key of the rattled bcc Fe cell of _fe_cell() with EMT, computed before starting
#: moments were keyed: a structure without them must keep its key (and its cached labels).
FE_KEY_BEFORE_MOMENTS = "b8506aa83951f8fb793fd505e3e7faca"


def _fe_cell():
    atoms = bulk("Fe", "bcc", a=2.87, cubic=True)
    del atoms.arrays["initial_magmoms"]  # ASE's bulk sets Fe's moments (2.3 per atom)
    atoms.rattle(0.01, seed=1)
    return atoms


def test_structure_key_keys_starting_values_only_when_there_are_any():
    spec = CalculatorSpec.coerce(EMT_SPEC)
    atoms = _fe_cell()
    assert structure_key(atoms, spec) == FE_KEY_BEFORE_MOMENTS
    atoms.set_initial_magnetic_moments([0.0, 0.0])  # all zero: what ASE assumes anyway
    atoms.set_initial_charges([0.0, 0.0])
    assert structure_key(atoms, spec) == FE_KEY_BEFORE_MOMENTS
    keys = set()
    for magmoms, charges in [([3, 3], [0, 0]), ([3, -3], [0, 0]), ([0, 0], [1, -1]),
                             ([3, 3], [1, -1])]:
        atoms.set_initial_magnetic_moments(magmoms)
        atoms.set_initial_charges(charges)
        keys.add(structure_key(atoms, spec))
    assert len(keys) == 4 and FE_KEY_BEFORE_MOMENTS not in keys


def test_structures_json_keeps_starting_values_and_reads_old_documents():
    from mlip_plugin.pipeline.run import _atoms_from_doc, _atoms_to_doc

    plain = _fe_cell()
    plain.info["structure_id"] = "plain"
    doc = _atoms_to_doc(plain)
    assert set(doc) == {"numbers", "positions", "cell", "pbc", "info"}  # as before
    back = _atoms_from_doc(json.loads(json.dumps(doc)))
    assert set(back.arrays) == {"numbers", "positions"}
    magnetic = plain.copy()
    magnetic.set_initial_magnetic_moments([2.5, -2.5])
    magnetic.set_initial_charges([0.5, -0.5])
    back = _atoms_from_doc(json.loads(json.dumps(_atoms_to_doc(magnetic))))
    assert back.get_initial_magnetic_moments().tolist() == [2.5, -2.5]
    assert back.get_initial_charges().tolist() == [0.5, -0.5]
    spec = CalculatorSpec.coerce(EMT_SPEC)
    assert structure_key(back, spec) == structure_key(magnetic, spec)


def test_non_collinear_moments_are_refused_by_name(tmp_path):
    images = [_fe_cell(), Atoms("Fe2", positions=[[0, 0, 0], [1.4, 1.4, 1.4]],
                                cell=[2.87] * 3, pbc=True,
                                magmoms=[[0, 0, 3], [0, 0, 3]])]
    path = _write(tmp_path / "fe.extxyz", images)
    with pytest.raises(InputError, match=r"fe.extxyz', structure 1: initial_magmoms of shape "
                                         r"\(2, 3\): only collinear"):
        read_structure_file(StructureFile(file=str(path)))


def test_run_gives_the_reference_the_starting_moments_of_the_file(tmp_path, capsys,
                                                                  write_cuau_structures):
    """Spin-polarised references (GPAW, VASP's MAGMOM) start from the structure's initial
    moments: a structures file's moments and charges reach the calculator, are stored in
    structures.json, key the cache, and a rerun reuses every label."""
    path = write_cuau_structures(tmp_path / "alloys.extxyz", n=4)
    images = ase.io.read(path, ":")
    images[0].set_initial_magnetic_moments([1.0, -1.0, 0.5, 0.0])
    images[1].set_initial_charges([0.2, 0.0, 0.0, -0.2])
    images[2].set_initial_magnetic_moments([0.0] * 4)  # all zero: as without
    _write(path, images)
    got = read_structure_file(StructureFile(file=str(path))).structures
    assert got[0].get_initial_magnetic_moments().tolist() == [1.0, -1.0, 0.5, 0.0]
    assert got[1].get_initial_charges().tolist() == [0.2, 0.0, 0.0, -0.2]
    assert "initial_magmoms" not in got[2].arrays and "initial_magmoms" not in got[3].arrays
    log = tmp_path / "calls.jsonl"
    reference = {"calculator": "pipeline_test_calculators.StartingMomentsEMT",
                 "parameters": {"log": str(log)}}
    cfg = _config(tmp_path, {"file": "alloys.extxyz"}, reference=reference)
    assert main(["-q", "fit", str(cfg)]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["magmoms"] for c in calls] == [[1.0, -1.0, 0.5, 0.0], *[[0.0] * 4] * 3]
    assert [c["charges"] for c in calls] == [[0.0] * 4, [0.2, 0.0, 0.0, -0.2],
                                             *[[0.0] * 4] * 2]
    out = tmp_path / "out"
    stored = json.loads((out / "structures.json").read_text())["structures"]
    assert stored[0]["initial_magmoms"] == [1.0, -1.0, 0.5, 0.0]
    assert stored[1]["initial_charges"] == [0.2, 0.0, 0.0, -0.2]
    assert not {"initial_magmoms", "initial_charges"} & {*stored[2], *stored[3]}
    spec = CalculatorSpec.coerce(reference)
    for atoms in got:
        assert (out / "reference_cache" / f"{structure_key(atoms, spec)}.json").is_file()
    plain = images[0].copy()
    del plain.arrays["initial_magmoms"]
    assert not (out / "reference_cache" / f"{structure_key(plain, spec)}.json").exists()
    assert main(["-q", "fit", str(cfg)]) == 0
    assert len(log.read_text().splitlines()) == 4  # every label reused
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["data"]["n_cached"], metrics["data"]["n_computed"]) == (4, 0)
