"""Links between jobs (the recorded chain) and the input errors of MLIPFit/MLIPValidation;
none of these runs a fit."""

from __future__ import annotations

import pytest
from ase.build import bulk

from mlip_plugin import InputError
from mlip_plugin.errors import MLIPError
from mlip_plugin.pipeline.config import FitSettings, ValidateSettings


@pytest.fixture(scope="module")
def reference_job(project):
    job = project.create.job.MLIPReferenceData("link_reference")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    job.structures = [atoms, atoms.repeat((2, 1, 1))]
    job.run()
    return job


def test_a_fit_job_records_its_training_job(project, reference_job):
    fit = project.create.job.MLIPFit("link_fit")
    fit.training_job = reference_job
    assert fit.input.training_job == {
        "job_id": reference_job.job_id, "job_name": "link_reference",
        "project": reference_job.project.path, "job_type": "MLIPReferenceData"}
    assert fit.parent_id == reference_job.job_id
    fit.save()
    table = project.job_table()
    assert table.set_index("job").loc["link_fit", "parentid"] == reference_job.job_id
    # the data it will train on are the reference job's
    assert len(fit.configurations) == 2
    assert fit.configurations[1].energy == reference_job.configurations[1].energy
    # by name or id as well; direct configurations replace the link
    fit.training_job = "link_reference"
    assert fit.training_job["job_id"] == reference_job.job_id
    fit.configurations = reference_job.configurations[:1]
    assert fit.training_job is None and len(fit.configurations) == 1


def _table_parent(project, job) -> int | None:
    return project.db.get_items_dict({"id": job.job_id})[0]["parentid"]


def test_the_job_table_records_the_parent_when_the_job_is_saved_and_run(project,
                                                                       reference_job):
    fit = project.create.job.MLIPFit("unlinked_before_save")
    fit.training_job = reference_job
    fit.configurations = reference_job.configurations
    assert fit.training_job is None and fit.parent_id is None
    fit.save()
    assert _table_parent(project, fit) is None
    # a saved job: the job table records the input as the job runs, not as it is edited
    fit = project.create.job.MLIPFit("unlinked_after_save")
    fit.training_job = reference_job
    fit.save()
    assert _table_parent(project, fit) == reference_job.job_id
    fit.configurations = reference_job.configurations
    assert _table_parent(project, fit) == reference_job.job_id
    fit.input.fit["solver"] = "nope"  # the run aborts at once, with this input recorded
    with pytest.raises(InputError, match="fit.solver='nope'"):
        fit.run()
    assert _table_parent(project, fit) is None
    assert project.load("unlinked_after_save").parent_id is None
    # only the training link is the parent: dropping the validation link keeps it
    fit = project.create.job.MLIPFit("validation_unlinked")
    fit.training_job = reference_job
    fit.validation_job = reference_job
    fit.validation_configurations = reference_job.configurations
    fit.save()
    assert fit.validation_job is None and fit.training_job is not None
    assert _table_parent(project, fit) == reference_job.job_id


def test_a_validation_job_records_its_fit_job(project, reference_job):
    fit = project.create.job.MLIPFit("link_fit_for_validation")
    fit.training_job = reference_job.job_id
    fit.save()
    val = project.create.job.MLIPValidation("link_validation")
    val.fit_job = fit
    assert val.fit_job["job_name"] == "link_fit_for_validation"
    assert val.parent_id == fit.job_id
    with pytest.raises(InputError, match="has status 'created'.*run it first"):
        val.run()
    assert project.load("link_validation").output.error["type"] == "InputError"


def test_bad_links_are_refused(project, reference_job):
    fit = project.create.job.MLIPFit("bad_links")
    with pytest.raises(InputError, match="no job of that name in project"):
        fit.training_job = "no_such_job"
    with pytest.raises(InputError, match="cannot be linked; give a job object"):
        fit.training_job = 2.5
    with pytest.raises(InputError, match=r"=job 'link_reference' \(id \d+\) is a "
                       "MLIPReferenceData; give a MLIPFit job"):
        project.create.job.MLIPValidation("inspected_link").fit_job = project.inspect(
            "link_reference")
    with pytest.raises(InputError, match="=99999: no job with that id in the job table"):
        fit.training_job = 99999
    unsaved = project.create.job.MLIPReferenceData("never_saved")
    with pytest.raises(InputError, match="'never_saved' has no job id yet"):
        fit.training_job = unsaved
    val = project.create.job.MLIPValidation("bad_validation_link")
    with pytest.raises(InputError, match="is a MLIPReferenceData; give a MLIPFit job"):
        val.fit_job = reference_job


def test_unfinished_training_job_and_missing_data_stop_the_fit(project):
    failed = project.create.job.MLIPReferenceData("failed_reference")
    failed.structures = [bulk("Cu", "fcc", a=3.6)]
    failed.reference = {"calculator": "pyiron_test_calculators.SelectivelyFailingEMT",
                        "parameters": {"fail_natoms": "all"}}
    with pytest.raises(MLIPError, match="none of the 1 structures could be labelled"):
        failed.run()
    fit = project.create.job.MLIPFit("fit_on_failed")
    fit.training_job = failed
    with pytest.raises(InputError, match="has status 'aborted'"):
        fit.run()
    assert project.load("fit_on_failed").status.string == "aborted"
    empty = project.create.job.MLIPFit("fit_without_data")
    with pytest.raises(InputError, match="MLIPFit has no training data"):
        empty.run()
    with pytest.raises(InputError, match=r"configurations=\[\] is empty"):
        empty.configurations = []


def test_a_deleted_training_job_is_reported(project, reference_job):
    doomed = project.create.job.MLIPReferenceData("doomed_reference")
    doomed.structures = reference_job.structures
    doomed.run()
    fit = project.create.job.MLIPFit("fit_on_deleted")
    fit.training_job = doomed
    project.remove_job("doomed_reference")
    with pytest.raises(InputError, match="'doomed_reference' .* no longer exists"):
        fit.run()


def test_settings_round_trip_and_are_checked(project):
    fit = project.create.job.MLIPFit("settings_fit")
    fit.settings = FitSettings(solver="asp", max_active=20, tsvd=False)
    assert fit.settings == FitSettings(solver="asp", max_active=20, tsvd=False)
    with pytest.raises(InputError, match="fit.solver='nope' is not one of"):
        fit.settings = {"solver": "nope"}
    with pytest.raises(InputError, match=r"unknown keys \['solvr'\] in job.input\['fit'\]"):
        fit.settings = {"solvr": "omp"}
    with pytest.raises(InputError, match="must be a FitSettings or a dict"):
        fit.settings = "omp"
    fit.save()
    reloaded = project.load("settings_fit")
    assert reloaded.settings == FitSettings(solver="asp", max_active=20, tsvd=False)
    assert reloaded.settings.tsvd is False  # HDF5 gives 0; the job gives the bool back
    val = project.create.job.MLIPValidation("settings_validation")
    val.settings = ValidateSettings(preset="fast", properties=["elastic"])
    val.reference = "ase.calculators.emt.EMT"
    val.save()
    reloaded = project.load("settings_validation")
    assert reloaded.settings.properties == ["elastic"]
    assert reloaded.reference.calculator == "ase.calculators.emt.EMT"


def test_an_inspected_job_can_be_linked(project, reference_job):
    fit = project.create.job.MLIPFit("inspected_training_job")
    fit.training_job = project.inspect("link_reference")  # a JobPath, not the job object
    assert fit.training_job["job_id"] == reference_job.job_id
    assert fit.training_job["job_type"] == "MLIPReferenceData"
    assert len(fit.configurations) == 2


def test_none_removes_optional_links_and_data(project, reference_job):
    fit = project.create.job.MLIPFit("none_unsets")
    fit.training_job = reference_job
    fit.validation_job = reference_job
    fit.test_configurations = reference_job.configurations
    fit.validation_job = None
    fit.test_configurations = None
    assert fit.validation_job is None and fit.validation_configurations is None
    assert fit.test_job is None and fit.test_configurations is None
    fit.validation_configurations = reference_job.configurations
    fit.validation_configurations = None  # the documented default: split off the training data
    fit.test_job = reference_job
    fit.test_configurations = None
    assert "validation_configurations" not in fit.input and fit.test_job is None
    fit.validation_job = None  # nothing to remove: no error either
    fit.save()
    reloaded = project.load("none_unsets")
    assert reloaded.validation_configurations is None and reloaded.test_job is None
    assert reloaded.training_job["job_id"] == reference_job.job_id
    fit.training_job = None
    assert fit.training_job is None and fit.configurations == []
    fit.configurations = reference_job.configurations
    fit.configurations = None
    assert fit.configurations == [] and "configurations" not in fit.input
    val = project.create.job.MLIPValidation("none_unsets_validation")
    val.fit_job = "none_unsets"
    val.fit_job = None
    assert val.fit_job is None and val.parent_id is None
    with pytest.raises(InputError, match="MLIPValidation has no model"):
        val.run()


def test_validation_settings_are_checked_when_set_and_when_run(project):
    val = project.create.job.MLIPValidation("checked_settings")
    with pytest.raises(InputError, match=r"validate.properties=\['eso'\] has unknown groups"):
        val.settings = {"suite": "fcc", "properties": ["eso"]}
    with pytest.raises(InputError, match=r"validate.along_path=\[3, 5\]: an MLIPValidation "
                       "job validates the fit job's final model only.*`mlip run` pipeline"):
        val.settings = {"suite": "fcc", "along_path": [3, 5],
                        "along_path_properties": ["elastic"]}
    assert val.settings == ValidateSettings()  # nothing stored
    val.input.validate["properties"] = ["eso"]  # edited directly: refused when run
    with pytest.raises(InputError, match=r"validate.properties=\['eso'\]"):
        val.run()
    assert "validate.properties" in project.load("checked_settings").output.error["message"]
    val = project.create.job.MLIPValidation("path_settings")
    val.input.validate["along_path"] = [3, 5]
    with pytest.raises(InputError, match=r"validate.along_path=\[3, 5\]"):
        val.run()
