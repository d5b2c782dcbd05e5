"""The whole chain in a temporary project: Cu/EMT reference → fit → validation; every job
reloads in a fresh Python process with identical model predictions, and each job's input
records the job that produced its data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyiron_reload_probe import predictions, probe_structures

from mlip_plugin.models import load_model
from mlip_plugin.pipeline.config import FitSettings, ValidateSettings

pytestmark = pytest.mark.slow  # the chain runs a fit and two property groups (~20 s)

PROBE = Path(__file__).with_name("pyiron_reload_probe.py")
FAST_FIT = FitSettings(basis={"correlation_order": 2, "total_degree": 6, "r_cut": 4.5},
                       max_active=20, validation_fraction=0.2)


@pytest.fixture(scope="module")
def chain(project):
    ref = project.create.job.MLIPReferenceData("chain_reference")
    ref.input.structure_spec = {"preset": "tiny", "element": "Cu", "lattice": "fcc",
                                "md_snapshots": 1}
    ref.run()
    held_out = project.create.job.MLIPReferenceData("chain_test_data")
    held_out.structures = probe_structures()
    held_out.run()
    fit = project.create.job.MLIPFit("chain_fit")
    fit.training_job = ref
    fit.test_job = held_out
    fit.settings = FAST_FIT
    fit.run()
    val = project.create.job.MLIPValidation("chain_validation")
    val.fit_job = fit
    val.settings = ValidateSettings(suite="fcc", preset="fast", properties=["eos", "elastic"])
    val.run()
    return ref, fit, val


@pytest.fixture(scope="module")
def reloaded(chain, project, subprocess_env):
    """What the three jobs give back when loaded in a fresh Python process."""
    names = [job.job_name for job in chain]
    done = subprocess.run([sys.executable, str(PROBE), project.path, *names],
                          capture_output=True, text=True, env=subprocess_env, timeout=120,
                          cwd=Path(subprocess_env["PYIRONSQLFILE"]).parent)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


def test_every_job_finishes(chain):
    for job in chain:
        assert job.status.string == "finished", (job.job_name, job.status_message)
    ref, fit, val = chain
    assert fit.output.training_data["n_configurations"] == len(ref.configurations)
    assert fit.output.metrics["errors"]["train"]["force_rmse_eV_per_A"] < 0.5
    assert fit.output.metrics["errors"]["test"]["n_configs"] == 2
    assert fit.output.training_data["n_test"] == 2
    assert {"name", "unit", "model", "reference", "abs_error", "error_percent"} <= set(
        val.properties[0])


def test_inputs_record_the_producing_jobs(chain, reloaded):
    ref, fit, val = chain
    assert reloaded["chain_fit"]["training_job"]["job_id"] == ref.job_id
    assert reloaded["chain_fit"]["training_job"]["job_name"] == "chain_reference"
    assert reloaded["chain_fit"]["parent_id"] == ref.job_id
    assert reloaded["chain_validation"]["fit_job"]["job_id"] == fit.job_id
    assert reloaded["chain_validation"]["parent_id"] == fit.job_id
    assert val.output.reference == ref.input.reference  # the chain's calculator was used


def test_reloaded_jobs_give_identical_results(chain, reloaded):
    ref, fit, val = chain
    assert reloaded["chain_reference"]["energies"] == [c.energy for c in ref.configurations]
    here = predictions(fit.get_calculator())  # the fitted model object itself
    assert reloaded["chain_fit"]["predictions"] == here
    assert reloaded["chain_fit"]["predictions_from_file"] == here
    assert reloaded["chain_fit"]["metrics"] == json.loads(json.dumps(fit.output.metrics))
    assert reloaded["chain_validation"]["properties"] == json.loads(json.dumps(val.properties))
    assert all(r["status"] == "finished" for r in reloaded.values())


def test_model_file_in_working_directory_matches_hdf5(chain):
    _, fit, _ = chain
    assert fit.model_path.read_text() == fit.output.model_json
    atoms = probe_structures()[1]
    a, b = load_model(fit.model_path).predict(atoms), fit.get_model().predict(atoms)
    np.testing.assert_array_equal(a.forces, b.forces)
