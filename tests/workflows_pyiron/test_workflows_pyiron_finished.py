"""A finished fit: editing its input changes nothing stored; the jobs pyiron derives from it
(copy_template, an input-only copy, restart) record the parent of their own input; and a
validation whose reference calculator fails says which calculator failed on what."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.build import bulk

from mlip_plugin.errors import ReferenceCalculationError
from mlip_plugin.pipeline.config import FitSettings

TINY_FIT = FitSettings(basis={"correlation_order": 2, "total_degree": 6, "r_cut": 4.5},
                       max_active=5, validation_fraction=0.0)


def _reference(project, name: str, seed: int):
    job = project.create.job.MLIPReferenceData(name)
    structures = []
    for i in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed + i)
        structures.append(atoms)
    job.structures = structures
    job.run()
    return job


@pytest.fixture(scope="module")
def finished(project):
    """(reference job, another reference job, the finished fit on the first)."""
    ref = _reference(project, "finished_reference", 0)
    other = _reference(project, "other_reference", 10)
    fit = project.create.job.MLIPFit("finished_fit")
    fit.training_job = ref
    fit.settings = TINY_FIT
    fit.run()
    assert fit.status.string == "finished", fit.status_message
    return ref, other, fit


def _table_parent(project, name: str):
    return project.db.get_items_dict({"id": project.get_job_id(name)})[0]["parentid"]


def test_editing_a_finished_job_changes_nothing_stored(project, finished):
    ref, other, _ = finished
    fit = project.load("finished_fit")
    fit.training_job = other  # not run
    assert _table_parent(project, "finished_fit") == ref.job_id
    assert fit.parent_id == ref.job_id
    fit.configurations = other.configurations
    assert _table_parent(project, "finished_fit") == ref.job_id
    reloaded = project.load("finished_fit")
    assert reloaded.training_job["job_id"] == ref.job_id
    assert reloaded.output.training_data["source"] == f"job 'finished_reference' (id {ref.job_id})"


@pytest.mark.parametrize("derive", ["copy_template", "input_only_copy", "restart"])
def test_derived_jobs_record_the_parent_of_their_input(project, finished, derive):
    ref, _, _ = finished
    fit = project.load("finished_fit")  # as in a later session
    name = f"derived_{derive}"
    if derive == "copy_template":
        job = fit.copy_template(new_job_name=name)
    elif derive == "input_only_copy":
        job = fit.copy_to(new_job_name=name, input_only=True, new_database_entry=False)
    else:
        job = fit.restart(job_name=name)
    assert job.training_job["job_id"] == ref.job_id
    job.run()
    assert job.status.string == "finished", job.status_message
    assert _table_parent(project, name) == ref.job_id
    assert project.load(name).parent_id == ref.job_id


def test_a_template_relinked_before_it_runs_records_the_new_parent(project, finished):
    _, other, _ = finished
    job = project.load("finished_fit").copy_template(new_job_name="derived_relinked")
    job.training_job = other
    job.run()
    assert _table_parent(project, "derived_relinked") == other.job_id


def test_a_failing_reference_calculator_is_named_in_the_validation_error(project, finished):
    val = project.create.job.MLIPValidation("failing_reference")
    val.fit_job = "finished_fit"
    val.reference = {"calculator": "pyiron_test_calculators.SelectivelyFailingEMT",
                     "parameters": {"fail_natoms": "all"}}
    val.settings = {"suite": "fcc", "properties": ["eos"]}
    with pytest.raises(ReferenceCalculationError,
                       match="reference calculator pyiron_test_calculators."
                             "SelectivelyFailingEMT failed on the property group 'eos' of "
                             "suite 'fcc': RuntimeError: simulated SCF failure") as info:
        val.run()
    assert isinstance(info.value.__cause__, RuntimeError)
    reloaded = project.load("failing_reference")
    assert reloaded.status.string == "aborted"
    assert reloaded.output.error["type"] == "ReferenceCalculationError"
    assert "SelectivelyFailingEMT failed on the property group 'eos'" in (
        reloaded.status_message)


def test_a_repaired_validation_does_not_recompute_the_reference_properties_it_had(
        project, finished, monkeypatch):
    """The reference failed on the vacancy after the EOS was computed: the EOS is kept in
    the job's working directory, the error says so, and the repaired job reuses it."""
    from pyiron_test_calculators import TransientEMT

    monkeypatch.setattr(TransientEMT, "failing", True)
    monkeypatch.setattr(TransientEMT, "calls", {})
    val = project.create.job.MLIPValidation("transient_reference")
    val.fit_job = "finished_fit"
    val.reference = {"calculator": "pyiron_test_calculators.TransientEMT", "parameters": {}}
    val.settings = {"suite": "fcc", "preset": "fast", "properties": ["eos", "vacancy"]}
    with pytest.raises(ReferenceCalculationError, match="property group 'vacancy'.*are kept in"):
        val.run()
    first = dict(TransientEMT.calls)  # the EOS and the vacancy's bulk cell: 4 atoms
    kept = Path(val.working_directory) / "reference_properties"
    assert len(list(kept.glob("*.json"))) == 1  # the EOS
    TransientEMT.failing = False
    TransientEMT.calls = {}
    val = project.load("transient_reference")
    val.run(repair=True)
    assert val.status.string == "finished", val.status_message
    # only the vacancy group's 4-atom bulk cell again, not the EOS
    assert 0 < TransientEMT.calls[4] < first[4], (first, TransientEMT.calls)
    assert len(list(kept.glob("*.json"))) == 2
    assert any(row["name"].startswith("vacancy") for row in val.properties)


def test_a_validation_job_runs_the_bulk_suite_on_a_structure_it_records(project, finished):
    """Suite 'bulk' on an ase.Atoms given in the settings: the job's input holds the
    structure's inline form (stored and reloaded with the job), the rows are the suite's."""
    from mlip_plugin.properties.suites import structure_to_dict

    crystal = bulk("Cu", "fcc", a=3.6)  # the one-atom primitive cell, not a cubic suite's
    val = project.create.job.MLIPValidation("bulk_validation")
    val.fit_job = "finished_fit"
    val.reference = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}
    val.settings = {"structure": crystal, "properties": ["eos"]}
    assert val.input.validate["suite"] == "bulk"
    val.run()
    assert val.status.string == "finished", val.status_message
    assert [r["name"] for r in val.properties] == ["volume_per_atom", "bulk_modulus",
                                                   "energy_per_atom"]
    assert all(r["reference"] is not None for r in val.properties)
    reloaded = project.load("bulk_validation")
    assert reloaded.settings.structure == structure_to_dict(crystal)
    assert reloaded.settings.suite == "bulk"
