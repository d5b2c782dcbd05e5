"""Cu/EMT as a chain of pyiron jobs: reference data → fit → validation.

Run: ``python examples/pyiron_pipeline.py`` (needs ``pip install mlip-plugin[pyiron]``).

By default everything happens in a temporary folder: the project, pyiron's job database
(SQLite) and its log, so the example leaves nothing behind and never touches a pyiron
configuration in your home folder.  ``--project PATH`` keeps the jobs in a project of your
own pyiron installation instead (with its usual configuration and database); there the
jobs stay, so ``pr.load("cu_fit").get_calculator()`` works in any later session.

Each job's inputs and outputs are in its HDF5 file; the job table records the chain
(``parentid``: the fit's reference job, the validation's fit job).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path


def sandbox_pyiron(folder: Path) -> None:
    """Point pyiron's database, project and resource paths into ``folder`` (before
    pyiron_base is imported) and open its log file there."""
    os.environ["PYIRONSQLFILE"] = str(folder / "pyiron.db")
    os.environ["PYIRONPROJECTPATHS"] = str(folder)
    os.environ["PYIRONRESOURCEPATHS"] = str(folder / "resources")
    os.chdir(folder)  # pyiron writes pyiron.log into the working directory


def run_chain(project_path: str, quick: bool = False) -> dict:
    """Run the three jobs in ``project_path``; return a summary of what they produced."""
    from ase.build import bulk
    from pyiron_base import Project

    import mlip_plugin.workflows.pyiron  # noqa: F401 - registers MLIPReferenceData, ...
    from mlip_plugin.pipeline.config import FitSettings, ValidateSettings

    pr = Project(project_path)

    reference = pr.create.job.MLIPReferenceData("cu_reference", delete_existing_job=True)
    reference.input.structure_spec = {"preset": "tiny", "element": "Cu", "lattice": "fcc"}
    reference.reference = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}
    reference.run()

    fit = pr.create.job.MLIPFit("cu_fit", delete_existing_job=True)
    fit.training_job = reference  # recorded in fit.input and as parentid in the job table
    fit.settings = FitSettings(
        basis={"correlation_order": 2 if quick else 3, "total_degree": 8 if quick else 10,
               "r_cut": 5.0},
        solver="omp", max_active=40 if quick else 150)
    fit.run()

    validation = pr.create.job.MLIPValidation("cu_validation", delete_existing_job=True)
    validation.fit_job = fit  # the reference calculator comes from the chain (EMT)
    validation.settings = ValidateSettings(  # --quick: no phonons, no MD
        suite="fcc", preset="fast",
        properties=["eos", "elastic", "vacancy", "surfaces"] if quick else None)
    validation.run()

    # a job reloaded from the project gives back the model and its ASE calculator
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = pr.load("cu_fit").get_calculator()
    table = pr.job_table()[["id", "job", "hamilton", "status", "parentid"]]
    return {"job_table": table.to_string(index=False),
            "errors": fit.output.metrics.get("errors", {}),
            "properties": validation.properties,
            "energy_per_atom_eV": atoms.get_potential_energy() / len(atoms)}


def report(summary: dict) -> str:
    lines = ["Job table:", summary["job_table"], "", "Fit errors:"]
    for split, errors in summary["errors"].items():
        text = ", ".join(f"{k} = {v:.4g}" for k, v in errors.items() if v is not None)
        lines.append(f"  {split}: {text}")
    lines += ["", f"{'property':<28}{'unit':<10}{'model':>12}{'reference':>12}{'error %':>10}"]
    for row in summary["properties"]:
        err = row["error_percent"]
        lines.append(f"{row['name']:<28}{row['unit']:<10}{row['model']:>12.4g}"
                     f"{row['reference']:>12.4g}{'' if err is None else f'{err:10.2f}'}")
    lines.append(f"\nreloaded model, fcc Cu at a = 3.6 Å: "
                 f"{summary['energy_per_atom_eV']:.4f} eV/atom")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="pyiron project path to keep the jobs in "
                        "(default: a temporary, self-contained folder)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller basis and fewer properties (about a minute)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()  # each job logs its outcome (pyiron's logger: warnings)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("mlip_plugin").addHandler(handler)
    logging.getLogger("mlip_plugin").setLevel(logging.INFO)
    if args.project:
        print(report(run_chain(os.path.abspath(args.project), args.quick)))
        return
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="mlip-pyiron-") as tmp:
        sandbox_pyiron(Path(tmp))
        try:
            print(report(run_chain(str(Path(tmp) / "cu_emt"), args.quick)))
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    main()
