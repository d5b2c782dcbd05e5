"""The whole chain, engine-free: data → fit → validate → report, resumable.

Output folder layout::

    OUT/config.yaml            the resolved configuration
    OUT/structures.json        generated structures (reused on a rerun with the same spec),
                               or those read from a structures file, with their starting
                               magnetic moments and charges when they have any
    OUT/structure_stages/      finished stages of the structure protocol that ran the
                               reference calculator (lattice constant, NVT runs)
    OUT/reference_cache/       one JSON file per finished reference calculation
    OUT/reference_failures.json
    OUT/reference_properties/  one JSON file per finished property of the reference
                               calculator in the validation (reused on a rerun)
    OUT/model.json             the fitted model (with provenance)
    OUT/metrics.json           errors, properties, timings, provenance
    OUT/report.md, report.html, *.png

A rerun with the same configuration reuses the structures (or the finished stages of
their generation) and every finished reference calculation, so killing ``mlip run``, or a
failing reference calculation, loses no finished work.  A cache file that cannot be read
(empty, truncated) is ignored with a warning and recomputed.  ``metrics.json`` is written
right after the fit and again after the validation.  The folder is locked while a run
writes into it (a second run into it is refused); when it holds the results of another
configuration (or of the same one on edited data or structures files, or results without
a ``config.yaml``), those move to ``OUT/previous/N/`` before the new run starts, so results
of two configurations are never mixed.  A structures file is identified by the sha256 of
its bytes (``data.sha256`` in ``metrics.json``, and the key of ``structures.json``): an
edited file is read again, and the structures it shares with the old one keep their cached
labels (the cache is keyed by structure and calculator).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from ase import Atoms

from .._files import write_text_atomic
from ..data import Configuration, hash_configs, read_configs
from ..errors import InputError, ReferenceCalculationError
from .config import RunConfig
from .fit import FitResult, fit, unknown_config_types
from .metrics import predict_configs
from .reference import (
    STARTING_ARRAYS,
    collect_reference_data,
    read_json_cache,
    starting_values,
    structure_key,
    write_json_atomic,
)
from .report import (
    plot_learning_curve,
    plot_parity,
    plot_property_errors,
    write_metrics,
    write_report,
)
from .stress_order import apply_stress_order, detect_stress_order
from .structure_file import FileStructures, StructureFile, read_structure_file
from .structures import StructureSpec, generate_structures, structures_key

__all__ = ["RunResult", "run_pipeline", "prepare_data", "read_data", "read_structures",
           "check_run", "check_output"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """Where everything went, and the fitted model."""

    output: Path
    fit: FitResult
    metrics: dict
    validation: object | None = None


def _spec_hash(config: RunConfig, source: FileStructures | None = None) -> str:
    """What identifies the structures of a run: the protocol, its version and the reference
    (which runs the NVT snapshots); for a structures file, the content of the file
    (``source``) and the frames taken from it."""
    if source is None:
        return structures_key(config.structures, config.reference.to_dict())
    doc = {"file_sha256": source.sha256, "index": config.structures.index,
           "format": config.structures.format}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _atoms_to_doc(atoms: Atoms) -> dict:
    """A structure of ``structures.json``: numbers, positions, cell, pbc, info, and the
    starting magnetic moments and charges (:func:`starting_values`) only when it has
    any, so a structure without them is written as before they were kept."""
    doc = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
           "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
           "info": {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))}}
    doc.update({k: v.tolist() for k, v in starting_values(atoms).items()})
    return doc


def _atoms_from_doc(doc: dict) -> Atoms:
    atoms = Atoms(numbers=doc["numbers"], positions=doc["positions"], cell=doc["cell"],
                  pbc=doc["pbc"])
    atoms.info.update(doc["info"])
    for name in STARTING_ARRAYS:  # optional: files without them read as before
        if doc.get(name) is not None:
            atoms.set_array(name, np.asarray(doc[name], dtype=float))
    return atoms


def _stored_structures(config: RunConfig, out: Path,
                       source: FileStructures | None = None) -> list[Atoms] | None:
    """The structures in ``OUT/structures.json`` when they are those of this run (its
    protocol, or the content of its structures file ``source``), else None."""
    doc = read_json_cache(out / "structures.json",
                          lambda d: [_atoms_from_doc(a) for a in d["structures"]])
    if doc is None or doc.get("spec_sha256") != _spec_hash(config, source):
        return None
    return [_atoms_from_doc(d) for d in doc["structures"]]


def _structures(config: RunConfig, out: Path, calc,
                source: FileStructures | None = None) -> list[Atoms]:
    """Generate the structures once (or take those read from a structures file,
    ``source``) and store them in ``structures.json``; a rerun with the same spec (the
    same file content) reads them back exactly (JSON keeps every bit of the positions, so
    the reference cache keys match).  An unreadable ``structures.json`` is made again,
    from the finished stages of the protocol kept in ``structure_stages/``."""
    path = out / "structures.json"
    key = _spec_hash(config, source)
    stored = _stored_structures(config, out, source)
    if stored is not None:
        log.info("reusing the structures in %s", path)
        return stored
    if source is not None:
        structures = source.structures
    else:
        structures = generate_structures(config.structures, calc,
                                         cache_dir=out / "structure_stages" / key[:16])
    write_json_atomic(path, {"spec_sha256": key,
                             "structures": [_atoms_to_doc(a) for a in structures]})
    return structures


def read_data(config: RunConfig) -> tuple[list, list]:
    """The training and test configurations of ``config.data``, read as a run reads them
    (with ``data.stress_order`` applied, see :func:`read_data_order`), and
    ``validate.suite`` chosen (or checked) from the training species
    (:meth:`RunConfig.resolve_validation`): every error a run meets reading its data."""
    train, test, _ = read_data_order(config)
    return train, test


def read_data_order(config: RunConfig) -> tuple[list, list, str | dict]:
    """:func:`read_data` and the yz / xz stress order applied to both sets: ``data.stress_order``
    as given, for ``"auto"`` what :func:`~mlip_plugin.pipeline.stress_order.
    detect_stress_order` found in the training data (with the fit's cutoff), and for the
    default (None) ``"file"`` after the same check, which warns of what it found."""
    kwargs = config.data.read_kwargs()
    train = read_configs(config.data.train, **kwargs)
    test = read_configs(config.data.test, **kwargs) if config.data.test else []
    config.resolve_validation({x for c in train for x in c.symbols})
    order = config.data.stress_order
    if order in (None, "auto"):
        r_cut = float((config.fit.basis or {}).get("r_cut", 5.0))
        found, _ = detect_stress_order(train, r_cut=r_cut)
        swapped = sorted(t for t, o in found.items() if o == "swap")
        if swapped and order == "auto":
            log.warning("data.stress_order auto: yz and xz stress components exchanged in "
                        "config types %s of %s (repaired in the training and test data)",
                        swapped, config.data.train)
        elif swapped:
            log.warning("the yz and xz stress components of config types %s of %s look "
                        "exchanged (an energy+force fit predicts them the other way round); "
                        "set data.stress_order: auto to repair them, or file to keep them "
                        "as stored without this check", swapped, config.data.train)
        order = found if order == "auto" else "file"
    elif isinstance(order, dict):
        unknown, present, hints = unknown_config_types(order, train)
        if unknown:
            said = ", ".join(repr(v) for v in hints.values())
            raise InputError(
                f"data.stress_order names config types {unknown} that no training "
                f"configuration of {config.data.train} has (present: {present})"
                + (f"; did you mean {said}?" if said else ""))
    apply_stress_order(train, order)
    apply_stress_order(test, order)
    return train, test, order


def read_structures(config: RunConfig) -> FileStructures:
    """The structures of ``config.structures`` (a :class:`StructureFile`), read and checked
    as a run reads them (:func:`~mlip_plugin.pipeline.structure_file.read_structure_file`),
    and ``validate.suite`` chosen (or checked) from their species: every error a run meets
    before its reference calculator starts (for a kernel fit, also what the fit refuses
    of the frames themselves: several molecules, atoms in another order)."""
    source = read_structure_file(config.structures)
    config.resolve_validation(source.species)
    if config.fit.model == "kernel":  # the labels are not known yet: zeros stand for them
        _check_kernel_fit(config, [Configuration(atoms=a, energy=0.0,
                                                 forces=np.zeros((len(a), 3)))
                                   for a in source.structures])
    return source


def _check_kernel_fit(config: RunConfig, configs) -> None:
    """What the kernel fit of ``configs`` would refuse, before it trains."""
    from .fit import split_for_fit
    from .fit_kernel import check_kernel_fit

    check_kernel_fit(*split_for_fit(configs, None, config.fit), config.fit)


def _read_inputs(config: RunConfig) -> FileStructures | None:
    """What a run reads and checks before anything in its folder changes: the structures
    of a structures file (returned), or the element of a protocol (None)."""
    if isinstance(config.structures, StructureFile):
        return read_structures(config)
    if isinstance(config.structures, StructureSpec):
        config.resolve_validation([config.structures.element])
    return None


def check_run(config: RunConfig,
              output: str | os.PathLike | None = None) -> tuple[Path, list[str]]:
    """Everything a run checks before its work (``--dry-run``): the settings' files and
    calculator classes, the output folder (and that no run holds its lock), and the data
    files, read with the reader and settings of the run.  Returns the output folder and
    what the run would reuse and move aside there (:func:`reuse_plan`)."""
    config.check_inputs()
    out = check_output(output or config.output)
    _check_unlocked(out)
    data_sha256 = None
    if config.data is not None:
        train, test = read_data(config)
        data_sha256 = hash_configs([*train, *test])
        if config.fit.model == "kernel":
            _check_kernel_fit(config, train)
    source = _read_inputs(config)
    return out, reuse_plan(config, out, data_sha256, source)


def prepare_data(config: RunConfig, out: Path, progress: bool = False,
                 source: FileStructures | None = None):
    """Training configurations, test configurations and the data summary of a run.

    ``source``: the structures of a structures file as :func:`read_structures` read them
    (read here when not given).  Its summary records the file and the sha256 of its bytes
    (``sha256``, as a data run records that of its configurations)."""
    if config.data is not None:
        train, test, order = read_data_order(config)
        return train, test, {"source": "files", "n_train": len(train), "n_test": len(test),
                             "sha256": hash_configs([*train, *test]), "stress_order": order}
    if isinstance(config.structures, StructureFile) and source is None:
        source = read_structures(config)
    calc = config.reference.build()
    structures = _structures(config, out, calc, source)
    result = collect_reference_data(structures, config.reference,
                                    cache_dir=out / "reference_cache", progress=progress)
    write_json_atomic(out / "reference_failures.json", result.failures, indent=1)
    summary = ({"source": "generated"} if source is None else
               {"source": "structures file", "structures_file": source.file,
                "sha256": source.sha256})
    summary.update(result.summary())
    if not result.configs:
        reasons = "; ".join(list(dict.fromkeys(
            f"{f['error_type']}: {f['message']}" for f in result.failures))[:3])
        raise ReferenceCalculationError(
            f"the reference calculator {config.reference.calculator} failed on all "
            f"{len(result.failures)} structures ({reasons}); each failure is listed "
            f"in {str(out / 'reference_failures.json')!r}. Check the calculator and its "
            "parameters (section 'reference'); a rerun tries the failed structures again")
    return result.configs, [], summary


#: Files of a finished run that describe one configuration (caches are keyed by content and
#: stay): moved to ``OUT/previous/N/`` when a run with another configuration starts.
RESULT_FILES = ("config.yaml", "model.json", "metrics.json", "report.md", "report.html",
                "reference_failures.json")
LOCK_FILE = ".mlip-run.lock"


def check_output(out: str | os.PathLike,
                 option: str = "--output (or output: in the configuration)") -> Path:
    """``out`` is, or can be made, a folder this process can write into (a named error
    that asks for another ``option``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {str(out)!r} exists and is not a folder; give another "
                         f"{option}")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output {str(out)!r} cannot be written: {str(parent)!r} is not a "
                         f"writable folder; give another {option}")
    return out


@contextmanager
def _locked(out: Path):
    """Hold an exclusive lock on the output folder: two runs writing one folder would mix
    their results."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / LOCK_FILE, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise _busy(out) from err
        except OSError as err:  # a file system without locks (e.g. Lustre without flock)
            log.warning("cannot lock %s (%s); running without the lock", out, err)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _busy(out: Path) -> InputError:
    return InputError(f"another mlip run is writing into {str(out)!r} (it holds {LOCK_FILE}); "
                      "wait for it to finish or give another --output")


def _check_unlocked(out: Path) -> None:
    """InputError when a run holds the lock of ``out`` (what ``--dry-run`` checks, without
    taking the lock or writing anything)."""
    try:
        import fcntl

        fh = open(out / LOCK_FILE)
    except (ImportError, OSError):  # not POSIX, or no lock file: no run holds it
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise _busy(out) from err
        except OSError:  # a file system without locks: the run goes on without one
            return
        fcntl.flock(fh, fcntl.LOCK_UN)


def reuse_plan(config: RunConfig, out: Path, data_sha256: str | None = None,
               source: FileStructures | None = None) -> list[str]:
    """What a run of ``config`` into ``out`` would reuse and move aside, one line each (what
    ``--dry-run`` prints; ``data_sha256`` as :func:`_start_output` takes it, ``source`` the
    structures of a structures file as :func:`read_structures` read them); reads the
    folder and writes nothing."""
    if not out.is_dir():
        return [f"{out} does not exist yet: everything is computed"]
    lines = []
    if source is not None:
        data_sha256 = source.sha256
    moved, why = _results_to_move(out, config, data_sha256)
    if moved:
        lines.append(f"the results in {out} ({why}) would move to {_next_previous(out)}")
    elif why is None:
        lines.append(f"{out} holds the results of this configuration: they are replaced")
    if config.structures is None:
        return lines
    if source is not None:
        structures = source.structures
        what = f"structures read from {source.file}: {len(structures)}"
    else:
        structures = _stored_structures(config, out)
        if structures is None:
            return [*lines, "structures: generated (none reusable in structures.json)"]
        what = f"structures: {len(structures)} reused from structures.json"
    cache = out / "reference_cache"
    n_cached = sum((cache / f"{structure_key(a, config.reference)}.json").is_file()
                   for a in structures)
    return [*lines, f"{what}; reference labels: {n_cached} of {len(structures)} cached, "
                    f"{len(structures) - n_cached} to compute"]


def _results_to_move(out: Path, config: RunConfig,
                     data_sha256: str | None) -> tuple[list[Path], str | None]:
    """The result files ``_start_output`` moves to ``previous/N`` (config.yaml last) and
    why; none, and why None, when the folder holds the results of this configuration on
    these data (they stay)."""
    old_path = out / "config.yaml"
    why = "another configuration"
    if old_path.is_file() and _same_configuration(old_path, config):
        if not _data_changed(out / "metrics.json", data_sha256):
            return [], None
        why = "the same configuration on data files that changed since"
    elif not old_path.exists():
        why = "an unknown configuration (no config.yaml)"
    old = [out / name for name in RESULT_FILES if name != old_path.name and (out / name).exists()]
    if not (old or old_path.exists()):
        return [], ""
    return old + sorted(out.glob("*.png")) + [old_path] * old_path.exists(), why


def _next_previous(out: Path) -> Path:
    n = 1 + max((int(p.name) for p in (out / "previous").glob("*") if p.name.isdigit()),
                default=0)
    return out / "previous" / str(n)


def _start_output(out: Path, config: RunConfig, data_sha256: str | None = None) -> None:
    """Write the resolved ``config.yaml``.  When the folder holds the results of another
    configuration, of the same one with other data (``data_sha256``, the content hash of
    a data run's configurations or of a structures file, differs from the one in
    ``metrics.json``), or results without a ``config.yaml`` (of an unknown configuration),
    they are moved to ``OUT/previous/N/`` first (never mixed with, nor overwritten by, the
    new ones); the same configuration leaves ``config.yaml`` as it is (with the user's
    comments, if it is the file being run)."""
    old, why = _results_to_move(out, config, data_sha256)
    if why is None:  # this configuration's results: config.yaml stays as it is
        return
    # config.yaml moves last: a run killed while moving leaves it with the results not
    # moved yet, and the next run moves those too
    if old:
        keep = _next_previous(out)
        keep.mkdir(parents=True)
        for path in old:
            os.replace(path, keep / path.name)
        log.warning("%s held the results of %s; moved them to %s", out, why, keep)
    write_text_atomic(out / "config.yaml",
                      yaml.safe_dump(config.to_dict(relative_to=out), sort_keys=False))


def _data_changed(metrics_path: Path, data_sha256: str | None) -> bool:
    """Whether the run's ``metrics.json`` records data other than ``data_sha256``."""
    if data_sha256 is None or not metrics_path.is_file():
        return False
    try:
        old = json.loads(metrics_path.read_text())["data"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no record of the data (an older run, a partial file)
    return old != data_sha256


def _same_configuration(path: Path, config: RunConfig) -> bool:
    """Whether the configuration file ``path`` (in the output folder: relative paths in it
    are taken from there, as when it is the file being run) describes the same run as
    ``config``, whatever its formatting, comments, defaults left out or ``output``."""
    try:
        old = RunConfig.from_dict(yaml.safe_load(path.read_text()) or {}, base_dir=path.parent)
    except (OSError, ValueError, yaml.YAMLError, InputError):  # ValueError: not UTF-8
        return False

    def comparable(c: RunConfig) -> dict:
        doc = yaml.safe_load(yaml.safe_dump(c.to_dict()))  # tuples as lists, plain types
        doc.pop("output", None)
        return doc

    return comparable(old) == comparable(config)


def run_pipeline(config: RunConfig, output: str | os.PathLike | None = None, *,
                 progress: bool = False) -> RunResult:
    """Run data → fit → validate → report into ``output`` (default ``config.output``).

    The output folder is locked for the run (a second run into it is an InputError).  A
    file system error while the run reads or writes its folder (a full disk, a file where
    a folder should be) is an InputError that names the file; the work finished before
    it is kept for a rerun.  An error that names a file outside the folder (a calculator's
    own file) is raised as it is."""
    config.check_inputs()  # missing files fail now, not after the data and the fit
    out = check_output(output or config.output)
    source = _read_inputs(config)  # a data run's suite comes with its data (read_data)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder {str(out)!r}: {err}") from err
    try:
        with _locked(out):
            t0 = time.perf_counter()
            # data files are read (and checked) before anything in the folder changes
            data = prepare_data(config, out, progress) if config.data is not None else None
            _start_output(out, config, data[2]["sha256"] if data is not None
                          else getattr(source, "sha256", None))
            if data is None:
                data = prepare_data(config, out, progress, source)
            return _run(config, out, data, time.perf_counter() - t0)
    except OSError as err:  # the reference calculators' own errors are handled inside
        if not _in_folder(err, out):  # not the folder's: a calculator's file, say
            raise
        raise InputError(_file_error(err, out)) from err


def _in_folder(err: OSError, out: Path) -> bool:
    """Whether ``err`` may be the run's own file system error in ``out``: it names no file
    (a full disk on write) or a file inside ``out``; an error naming a file elsewhere (a
    calculator's missing potential file) is not reported as one of the output folder."""
    names = [f for f in (err.filename, err.filename2) if isinstance(f, (str, bytes, os.PathLike))]
    root = Path(os.path.realpath(out))
    return not names or any(Path(os.path.realpath(os.fsdecode(f))).is_relative_to(root)
                            for f in names)


def _file_error(err: OSError, out: Path) -> str:
    """The message of a file system error met while a run writes into ``out`` (a full
    disk, a file where a folder should be, no permission): what failed, where, and that
    a rerun resumes."""
    where = f" {str(err.filename)!r}" if err.filename else ""
    return (f"cannot write{where} in the output folder {str(out)!r}: "
            f"{err.strerror or err} ({type(err).__name__}). The work finished before is "
            f"kept in {str(out)!r}: free disk space, move aside what is in the way (a file "
            "where the run needs a folder) or fix the permissions, then rerun the same "
            "command to resume (or give another --output)")


def _run(config: RunConfig, out: Path, data, t_data: float) -> RunResult:
    t0 = time.perf_counter() - t_data
    train, test, data_summary = data
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
        validation = validate_run(result, config, cache_dir=out / "reference_properties")
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
