"""MLIPReferenceData: registration, HDF5 round trip, failures in output and status,
executors, and input errors."""

from __future__ import annotations

import logging
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from mlip_plugin import InputError, ReferenceCalculationError
from mlip_plugin.pipeline.reference import collect_reference_data
from mlip_plugin.pipeline.structures import StructureSpec, generate_structures

FAILING = {"calculator": "pyiron_test_calculators.SelectivelyFailingEMT",
           "parameters": {"fail_natoms": [7]}}  # the vacancy cell of _structures()
NEVER = {"calculator": "pyiron_test_calculators.SelectivelyFailingEMT",
         "parameters": {"fail_natoms": "all"}}


def _structures():
    unit = bulk("Cu", "fcc", a=3.61, cubic=True)
    big = unit.repeat((2, 1, 1))
    big.rattle(0.05, seed=3)
    vacancy = big.copy()
    del vacancy[0]
    out = [unit, big, vacancy]
    for i, a in enumerate(out):
        a.info.update(config_type=["ground_state", "rattled", "vacancy"][i], structure_id=f"s{i}")
    return out


def test_jobs_are_registered_on_import(project):
    from mlip_plugin.workflows.pyiron import JOB_CLASSES, MLIPReferenceData

    assert {cls.__name__ for cls in JOB_CLASSES} == {"MLIPReferenceData", "MLIPFit",
                                                     "MLIPValidation"}
    for cls in JOB_CLASSES:
        assert cls.__name__ in dir(project.create.job)
        assert type(getattr(project.create.job, cls.__name__)(f"new_{cls.__name__}")) is cls
    job = project.create.job.MLIPReferenceData("registered")
    assert type(job) is MLIPReferenceData
    assert job.input.reference == {"calculator": "ase.calculators.emt.EMT", "parameters": {}}


def test_failing_structure_is_reported_and_status_is_warning(project):
    job = project.create.job.MLIPReferenceData("partly_failing")
    job.structures = _structures()
    job.reference = FAILING
    job.run()
    assert job.status.string == "warning"
    assert job.failures == [{"index": 2, "structure_id": "s2", "error_type": "RuntimeError",
                             "message": "simulated SCF failure for 7 atoms"}]
    assert job.input.reference["parameters"] == {"fail_natoms": [7]}
    assert "2 of 3 structures labelled; 1 failed" in job.status_message
    assert "'s2': RuntimeError" in job.status_message
    assert job.output.summary["n_failed"] == 1
    # the same numbers as the engine-free step, read back from the job's HDF5
    direct = collect_reference_data(_structures()[:2], "ase.calculators.emt.EMT")
    reloaded = project.load("partly_failing")
    assert reloaded.status.string == "warning"
    assert [c.info["structure_id"] for c in reloaded.configurations] == ["s0", "s1"]
    for a, b in zip(direct.configs, reloaded.configurations):
        assert b.energy == a.energy and b.config_type == a.config_type
        np.testing.assert_array_equal(b.forces, a.forces)
        np.testing.assert_array_equal(b.stress, a.stress)
    assert reloaded.failures == job.failures


def test_run_of_a_job_with_status_warning_loads_it_and_says_how_to_rerun(project, caplog):
    """pyiron did nothing for run() of a 'warning' job: no run, no message, and the edited
    input stayed in memory beside the output of the old one."""
    job = project.create.job.MLIPReferenceData("warning_run_again")
    job.structures = _structures()
    job.reference = FAILING
    job.run()
    job = project.load("warning_run_again")
    job.reference = "ase.calculators.emt.EMT"  # edited, then run() without repair
    with caplog.at_level(logging.WARNING, logger="mlip_plugin.workflows.pyiron"):
        job.run()
    assert "'warning_run_again' has status 'warning'" in caplog.text
    assert "job.run(repair=True)" in caplog.text
    assert job.status.string == "warning"
    assert job.input.reference == FAILING  # the input its output was made with
    assert len(job.configurations) == 2
    job.reference = "ase.calculators.emt.EMT"
    job.run(repair=True)
    assert project.load("warning_run_again").status.string == "finished"


def test_no_labelled_structure_aborts_with_the_reason(project):
    job = project.create.job.MLIPReferenceData("all_failing")
    job.structures = _structures()[:2]
    job.reference = NEVER
    with pytest.raises(ReferenceCalculationError,
                       match="none of the 2 structures could be labelled with "
                             "pyiron_test_calculators.SelectivelyFailingEMT") as info:
        job.run()
    assert "job.run(repair=True)" in str(info.value)  # what to do
    reloaded = project.load("all_failing")
    assert reloaded.status.string == "aborted"
    assert reloaded.output.error["type"] == "ReferenceCalculationError"
    assert [f["structure_id"] for f in reloaded.failures] == ["s0", "s1"]
    assert reloaded.configurations == []


def test_structures_generated_from_a_spec(project):
    job = project.create.job.MLIPReferenceData("generated")
    job.set_structure_spec(StructureSpec.from_preset("tiny", element="Cu", md_snapshots=0,
                                                     n_rattled=2))
    assert job.get_structure_spec().n_rattled == 2
    job.run()
    assert job.status.string == "finished"
    expected = generate_structures(job.get_structure_spec(), job.reference.build())
    stored = project.load("generated")
    ids = [c.info["structure_id"] for c in stored.configurations]
    assert ids == [a.info["structure_id"] for a in expected]
    assert len(stored.output.structures["n_atoms"]) == len(expected)
    cached = list((Path(job.working_directory) / "reference_cache").glob("*.json"))
    assert len(cached) == len(expected)


def test_runs_through_a_pyiron_executor(project):
    job = project.create.job.MLIPReferenceData("via_executor")
    job.structures = _structures()
    job.reference = FAILING
    with ProcessPoolExecutor(max_workers=1) as executor:
        job.server.executor = executor
        job.run()
        job.server.future.result()
    job.refresh_job_status()
    assert job.status.string == "warning"  # pyiron itself would report 'finished' here
    reloaded = project.load("via_executor")
    assert len(reloaded.configurations) == 2 and len(reloaded.failures) == 1


def test_runs_through_the_queue_wrapper(project, subprocess_env):
    """A queue (pysqa) job script runs ``python -m pyiron_base.cli wrapper -p WD -j ID``:
    the job is rebuilt from the job table and its HDF5 file in a fresh process."""
    job = project.create.job.MLIPReferenceData("via_wrapper")
    job.structures = _structures()
    job.reference = FAILING
    job.server.run_mode.manual = True  # saved and left 'submitted', as a queue would
    job.run()
    assert job.status.string == "submitted"
    done = subprocess.run(
        [sys.executable, "-m", "pyiron_base.cli", "wrapper", "-p", job.working_directory,
         "-j", str(job.job_id)], capture_output=True, text=True, env=subprocess_env,
        timeout=120, cwd=job.working_directory)
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = project.load("via_wrapper")
    assert reloaded.status.string == "warning"
    assert [f["structure_id"] for f in reloaded.failures] == ["s2"]


def test_bad_input_is_refused(project):
    job = project.create.job.MLIPReferenceData("bad_input")
    with pytest.raises(InputError, match=r"structures=\[\] is empty"):
        job.structures = []
    with pytest.raises(InputError, match=r"structures\[0\] is a int, not an ase.Atoms"):
        job.structures = [1]
    with pytest.raises(InputError, match="needs the key 'calculator'"):
        job.reference = {"parameters": {}}
    with pytest.raises(InputError, match="preset='huge' is not one of"):
        job.set_structure_spec({"preset": "huge"})
    with pytest.raises(InputError, match="must be a StructureSpec or a dict"):
        job.set_structure_spec("tiny")
    job.structures = _structures()
    job.structures = None  # back to generating them
    assert job.structures is None
    job.reference = "no_such_module.Calculator"
    with pytest.raises(InputError, match="unknown calculator class 'no_such_module"):
        job.run()
    assert project.load("bad_input").status.string == "aborted"


def test_a_repaired_job_keeps_no_output_of_its_earlier_runs(project):
    job = project.create.job.MLIPReferenceData("repaired")
    job.set_structure_spec(StructureSpec.from_preset(
        "tiny", element="Cu", md_snapshots=0, n_rattled=1, n_vacancy=1, n_volumetric=1,
        n_shear=0))
    job.reference = {**FAILING, "parameters": {"fail_natoms": [31]}}
    job.run()
    assert job.status.string == "warning" and "structures" in job.output
    # given structures and a calculator that fails for all: aborted, nothing generated
    job = project.load("repaired")
    job.structures = _structures()[:2]
    job.reference = NEVER
    with pytest.raises(ReferenceCalculationError, match="none of the 2 structures"):
        job.run(repair=True)
    aborted = project.load("repaired")
    assert aborted.status.string == "aborted"
    assert aborted.output.error["type"] == "ReferenceCalculationError"
    assert "structures" not in aborted.output  # generated by the first run only
    # repaired: no error left beside the new result
    job = project.load("repaired")
    job.reference = "ase.calculators.emt.EMT"
    job.run(repair=True)
    repaired = project.load("repaired")
    assert repaired.status.string == "finished"
    assert repaired.output.get("error") is None
    assert repaired.failures == [] and repaired.output.summary["n_structures"] == 2
    assert repaired.status_message == "2 of 2 structures labelled"


def test_the_reference_gets_the_starting_moments_of_the_structures(project, tmp_path,
                                                                   monkeypatch):
    """Given structures keep their starting magnetic moments through the job's input (and
    its HDF5), so a spin-polarised reference starts from them as in the CLI run."""
    import json

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "pipeline"))
    log = tmp_path / "calls.jsonl"
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    ni.set_initial_magnetic_moments([0.6, 0.6, -0.6, -0.6])
    cu = _structures()[0]
    job = project.create.job.MLIPReferenceData("starting_moments")
    job.structures = [ni, cu]
    job.reference = {"calculator": "pipeline_test_calculators.StartingMomentsEMT",
                     "parameters": {"log": str(log)}}
    job.run()
    assert job.status.string == "finished"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["magmoms"] for c in calls] == [[0.6, 0.6, -0.6, -0.6], [0.0] * 4]
    stored = project.load("starting_moments").structures
    assert stored[0].get_initial_magnetic_moments().tolist() == [0.6, 0.6, -0.6, -0.6]
    assert "initial_magmoms" not in stored[1].arrays


def test_a_repaired_job_reuses_the_finished_structure_stages(project):
    """The structure protocol's NVT run fails (a transient fault): the lattice constant it
    relaxed before is kept in the working directory, and the repaired job labels the
    structures without relaxing it again (it did, from scratch, before)."""
    from pyiron_test_calculators import TransientEMT

    from mlip_plugin.pipeline.structures import StructureGenerationError

    TransientEMT.failing, TransientEMT.calls = True, {}
    job = project.create.job.MLIPReferenceData("stages")
    job.set_structure_spec({"preset": "tiny", "element": "Cu", "md_snapshots": 1,
                            "md_with_vacancy": False, "n_vacancy": 0})
    job.reference = "pyiron_test_calculators.TransientEMT"
    with pytest.raises(StructureGenerationError, match="Finished stages are kept in"):
        job.run()
    assert TransientEMT.calls.get(4, 0) > 0  # the lattice constant, in the 4-atom cell
    stages = Path(job.working_directory) / "structure_stages"
    assert list(stages.rglob("*.json"))
    TransientEMT.failing, TransientEMT.calls = False, {}
    job = project.load("stages")
    job.run(repair=True)
    repaired = project.load("stages")
    assert repaired.status.string == "finished"
    n_four = int(np.sum(np.asarray(repaired.output.structures["n_atoms"]) == 4))
    assert TransientEMT.calls.get(4, 0) == n_four  # labelling them only


def test_settings_stored_by_hand_are_checked_by_name(project):
    """A string "false" for a boolean became True (bool("false")); a string where a mapping
    belongs gave "dictionary update sequence element #0 ..." naming no setting."""
    from dataclasses import asdict

    from mlip_plugin.pipeline.config import FitSettings

    fit = project.create.job.MLIPFit("by_hand")
    fit.input.fit = {**asdict(FitSettings()), "tsvd": "false"}
    with pytest.raises(InputError, match="fit.tsvd='false' .str. is not allowed"):
        _ = fit.settings
    fit.input.fit = {**asdict(FitSettings()), "tsvd": 0}  # what HDF5 gives back for False
    assert fit.settings.tsvd is False
    fit.input.fit = "omp"
    with pytest.raises(InputError, match="job.input.fit='omp' is not allowed"):
        _ = fit.settings
    job = project.create.job.MLIPReferenceData("by_hand_ref")
    with pytest.raises(InputError, match="md_with_vacancy='false' .str. is not allowed"):
        job.set_structure_spec({"preset": "tiny", "md_with_vacancy": "false"})
    job.input.structure_spec = "tiny"
    with pytest.raises(InputError, match="job.input.structure_spec='tiny' is not allowed: it "
                                         "must be a mapping"):
        job.get_structure_spec()
    job.input.reference = "ase.calculators.emt.EMT"  # a class path is a spec
    assert job.reference.calculator == "ase.calculators.emt.EMT"
