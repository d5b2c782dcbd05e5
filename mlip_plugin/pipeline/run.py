"""The whole chain, engine-free: data → fit → validate → report, resumable.

Output folder layout::

    OUT/config.yaml            the resolved configuration
    OUT/structures.json        generated structures (reused on a rerun with the same spec)
    OUT/structure_stages/      finished stages of the structure protocol that ran the
                               reference calculator (lattice constant, NVT runs)
    OUT/reference_cache/       one JSON file per finished reference calculation
    OUT/reference_failures.json
    OUT/model.json             the fitted model (with provenance)
    OUT/metrics.json           errors, properties, timings, provenance
    OUT/report.md, report.html, *.png

A rerun with the same configuration reuses the structures (or the finished stages of
their generation) and every finished reference calculation, so killing ``mlip run``, or a
failing reference calculation, loses no finished work.  A cache file that cannot be read
(empty, truncated) is ignored with a warning and recomputed.  ``metrics.json`` is written
right after the fit and again after the validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from ase import Atoms

from ..data import read_configs
from .config import RunConfig
from .fit import FitResult, fit
from .metrics import predict_configs
from .reference import collect_reference_data, read_json_cache, write_json_atomic
from .report import (
    plot_learning_curve,
    plot_parity,
    plot_property_errors,
    write_metrics,
    write_report,
)
from .structures import generate_structures

__all__ = ["RunResult", "run_pipeline", "prepare_data"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Where everything went, and the fitted model."""

    output: Path
    fit: FitResult
    metrics: dict
    validation: object | None = None


def _spec_hash(config: RunConfig) -> str:
    doc = {"structures": config.structures.to_dict(), "reference": config.reference.to_dict()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _atoms_to_doc(atoms: Atoms) -> dict:
    return {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
            "info": {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))}}


def _atoms_from_doc(doc: dict) -> Atoms:
    atoms = Atoms(numbers=doc["numbers"], positions=doc["positions"], cell=doc["cell"],
                  pbc=doc["pbc"])
    atoms.info.update(doc["info"])
    return atoms


def _structures(config: RunConfig, out: Path, calc) -> list[Atoms]:
    """Generate the structures once; a rerun with the same spec reads them back exactly
    (JSON keeps every bit of the positions, so the reference cache keys match).  An
    unreadable ``structures.json`` is regenerated, from the finished stages kept in
    ``structure_stages/``."""
    path = out / "structures.json"
    key = _spec_hash(config)
    doc = read_json_cache(path, lambda d: [_atoms_from_doc(a) for a in d["structures"]])
    if doc is not None and doc.get("spec_sha256") == key:
        log.info("reusing the structures in %s", path)
        return [_atoms_from_doc(d) for d in doc["structures"]]
    structures = generate_structures(config.structures, calc,
                                     cache_dir=out / "structure_stages" / key[:16])
    write_json_atomic(path, {"spec_sha256": key,
                             "structures": [_atoms_to_doc(a) for a in structures]})
    return structures


def prepare_data(config: RunConfig, out: Path, progress: bool = False):
    """Training configurations, test configurations and the data summary of a run."""
    if config.data is not None:
        train = read_configs(config.data.train, **config.data.read_kwargs())
        test = (read_configs(config.data.test, **config.data.read_kwargs())
                if config.data.test else [])
        return train, test, {"source": "files", "n_train": len(train), "n_test": len(test)}
    calc = config.reference.build()
    structures = _structures(config, out, calc)
    result = collect_reference_data(structures, config.reference,
                                    cache_dir=out / "reference_cache", progress=progress)
    write_json_atomic(out / "reference_failures.json", result.failures, indent=1)
    summary = {"source": "generated", **result.summary()}
    return result.configs, [], summary


def run_pipeline(config: RunConfig, output: str | os.PathLike | None = None, *,
                 progress: bool = False) -> RunResult:
    """Run data → fit → validate → report into ``output`` (default ``config.output``)."""
    config.check_inputs()  # missing files fail now, not after the data and the fit
    out = Path(output or config.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    t0 = time.perf_counter()
    train, test, data_summary = prepare_data(config, out, progress)
    t_data = time.perf_counter() - t0
    result = fit(train, config.fit, test=test or None)
    model_path = result.model.save(out / "model.json")
    metrics = {"model_file": model_path.name, "model_family": result.model.family,
               "data": data_summary, "errors": result.metrics["errors"],
               "fit": {k: v for k, v in result.metrics.items() if k != "errors"},
               "properties": [], "timings": {"data_s": t_data, **result.timings},
               "provenance": result.model.provenance.to_dict()}
    write_metrics(out / "metrics.json", metrics)  # the fit's results, whatever comes next
    validation = None
    if config.validate is not None:
        from .validate import validate_run

        t1 = time.perf_counter()
        validation = validate_run(result, config)
        metrics.update(validation.metrics_entries())
        metrics["timings"]["validate_s"] = time.perf_counter() - t1
    plots = {"learning_curve": plot_learning_curve(
        result.metrics["path"], out / "learning_curve.png",
        getattr(validation, "property_curve", None))}
    parity_set = test or train
    plots["parity"] = plot_parity(predict_configs(result.model, parity_set), out / "parity.png",
                                  "test set" if test else "training set")
    plots["property_errors"] = plot_property_errors(metrics["properties"],
                                                    out / "property_errors.png")
    if validation is not None:
        plots.update(validation.plots(out))
    metrics["timings"]["total_s"] = time.perf_counter() - t0
    write_metrics(out / "metrics.json", metrics)
    write_report(out, metrics, plots)
    log.info("results in %s", out)
    return RunResult(output=out, fit=result, metrics=metrics, validation=validation)
