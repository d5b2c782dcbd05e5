"""Reload jobs in a fresh Python process and print what they give back, as JSON.

Usage: ``python pyiron_reload_probe.py PROJECT_PATH JOB_NAME...`` (with the same pyiron
environment variables as the process that ran the jobs).  Floats go through JSON with
Python's shortest round-trip repr, so a comparison with the first process is exact.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from ase.build import bulk


def probe_structures():
    """Structures the fitted models are evaluated on in both processes."""
    strained = bulk("Cu", "fcc", a=3.58, cubic=True).repeat((2, 1, 1))
    strained.rattle(0.04, seed=11)
    return [bulk("Cu", "fcc", a=3.63), strained]


def predictions(calculator) -> list[dict]:
    out = []
    for atoms in probe_structures():
        atoms.calc = calculator
        out.append({"energy": float(atoms.get_potential_energy()),
                    "forces": atoms.get_forces().tolist(),
                    "stress": atoms.get_stress().tolist()})
    return out


def describe(job) -> dict:
    doc = {"type": type(job).__name__, "status": job.status.string,
           "status_message": job.status_message, "parent_id": job.parent_id}
    name = type(job).__name__
    if name == "MLIPReferenceData":
        configs = job.configurations
        doc["energies"] = [c.energy for c in configs]
        doc["forces_sum"] = float(sum(np.abs(c.forces).sum() for c in configs))
        doc["failures"] = job.failures
    elif name == "MLIPFit":
        from mlip_plugin.calculators import MLIPCalculator

        doc["training_job"] = job.training_job
        doc["predictions"] = predictions(job.get_calculator())
        doc["predictions_from_file"] = predictions(MLIPCalculator(model=job.model_path))
        doc["metrics"] = job.output.metrics
    elif name == "MLIPValidation":
        doc["fit_job"] = job.fit_job
        doc["properties"] = job.properties
    return doc


def main(argv: list[str]) -> None:
    from pyiron_base import Project

    import mlip_plugin.workflows.pyiron  # noqa: F401 - registers the job classes

    project = Project(argv[0])
    docs = {name: describe(project.load(name)) for name in argv[1:]}
    sys.stdout.write("PROBE" + json.dumps(docs, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
