"""Reference data: run a reference calculator on structures, cached per structure.

The reference is a calculator spec: ``{"calculator": "ase.calculators.emt.EMT",
"parameters": {}}`` or any importable ASE calculator class (``"gpaw.GPAW"`` with its
parameters, ...).  Every finished structure is written to ``cache_dir`` under a key built
from the structure and the calculator spec, so an interrupted run resumes without
recomputing; a structure whose calculation fails is recorded with its error and the run
goes on.

Per-atom starting values the structure carries for the calculator
(:data:`STARTING_ARRAYS`: ``initial_magmoms``, read by spin-polarised calculators such as
GPAW, or ASE's Vasp for MAGMOM, and ``initial_charges``) go to the calculator with the
structure and are part of its cache key (only when present and not all zero, so the key of
a structure without them is the same as before they were keyed).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .._files import write_text_atomic
from ..data import Configuration
from ..errors import InputError

__all__ = ["CalculatorSpec", "CollectionResult", "collect_reference_data", "structure_key",
           "write_json_atomic", "read_json_cache", "STARTING_ARRAYS", "starting_values",
           "stacked_starting_values"]

log = logging.getLogger(__name__)

DEFAULT_REFERENCE = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}

#: Per-atom arrays of an ``ase.Atoms`` that a reference calculator takes as starting values
#: (``atoms.get_initial_magnetic_moments()``, ``atoms.get_initial_charges()``).
STARTING_ARRAYS = ("initial_magmoms", "initial_charges")


def starting_values(atoms: Atoms, where: str = "") -> dict[str, np.ndarray]:
    """The :data:`STARTING_ARRAYS` of ``atoms`` that are present and not all zero (an
    all-zero array is what ASE assumes without one), as float arrays of one value per atom.

    Only collinear moments are supported: (N, 3) magnetic moments (non-collinear) or
    non-finite values are an InputError that names the structure (``where``; default:
    its ``info["structure_id"]``).
    """
    if not where:
        sid = atoms.info.get("structure_id")
        where = "a structure" if sid is None else f"structure {sid!r}"
    out = {}
    for name in STARTING_ARRAYS:
        if name not in atoms.arrays:
            continue
        values = np.asarray(atoms.arrays[name], dtype=float)
        if values.shape != (len(atoms),):
            raise InputError(
                f"{where}: {name} of shape {values.shape}: only collinear "
                f"starting values (one number per atom, shape ({len(atoms)},)) are supported; "
                "give one scalar per atom (non-collinear moments are not supported)")
        if not np.all(np.isfinite(values)):
            raise InputError(f"{where}: {name} contains NaN or inf; give "
                             "finite starting values")
        if np.any(values):
            out[name] = values
    return out


def stacked_starting_values(structures, where: str = "structures[{i}]") -> dict:
    """The :func:`starting_values` of every ``ase.Atoms`` in ``structures``, concatenated
    into one (N,) array per name (N atoms in all; zeros for a structure without), for each
    name that some structure has: the flat form the AiiDA and pyiron stores keep.
    ``where``: how an error names structure ``i``."""
    starting = [starting_values(a, where.format(i=i)) for i, a in enumerate(structures)]
    return {name: np.concatenate([values.get(name, np.zeros(len(a)))
                                  for a, values in zip(structures, starting)])
            for name in STARTING_ARRAYS if any(name in values for values in starting)}


@dataclass(frozen=True)
class CalculatorSpec:
    """An importable ASE calculator class and its keyword parameters."""

    calculator: str = DEFAULT_REFERENCE["calculator"]
    parameters: Mapping = field(default_factory=dict)

    @classmethod
    def coerce(cls, spec) -> CalculatorSpec:
        """Accept a CalculatorSpec, a mapping with ``calculator``/``parameters`` or a class
        path string."""
        if isinstance(spec, CalculatorSpec):
            return spec
        if isinstance(spec, str):
            return cls(calculator=spec)
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"calculator", "parameters"}
            if unknown or "calculator" not in spec:
                raise InputError(
                    f"a reference calculator spec needs the key 'calculator' (and optional "
                    f"'parameters'); got keys {sorted(map(str, spec))}"
                )
            if not isinstance(spec["calculator"], str):
                raise InputError(
                    f"reference.calculator={spec['calculator']!r} is not a class path; give "
                    "a string such as 'ase.calculators.emt.EMT'")
            parameters = spec.get("parameters")
            if parameters is None:
                parameters = {}
            if not isinstance(parameters, Mapping) or not all(
                    isinstance(k, str) for k in parameters):
                raise InputError(
                    f"reference.parameters={parameters!r} ({type(parameters).__name__}) is not "
                    "a mapping of keyword arguments; give the calculator's parameters as "
                    "name: value pairs, e.g. {xc: PBE}, or {} for none")
            return cls(calculator=spec["calculator"], parameters=dict(parameters))
        raise InputError(f"cannot use {spec!r} as a reference calculator spec; give a class "
                         "path such as 'ase.calculators.emt.EMT' or a mapping with "
                         "'calculator' and 'parameters'")

    def to_dict(self) -> dict:
        return {"calculator": self.calculator, "parameters": dict(self.parameters)}

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    def build(self):
        """Import the class and instantiate it with the parameters."""
        cls = self.load_class()
        log.debug("building the calculator %s with %s", self.calculator, dict(self.parameters))
        try:
            return cls(**dict(self.parameters))
        except TypeError as err:
            raise InputError(
                f"calculator {self.calculator!r} rejected its parameters "
                f"{dict(self.parameters)}: {err}"
            ) from err
        except OSError as err:  # a file it reads on construction (a potential file)
            raise InputError(
                f"calculator {self.calculator!r} with parameters {dict(self.parameters)} "
                f"could not be built: {type(err).__name__}: {err}; check the files and "
                "programs its parameters name"
            ) from err

    def load_class(self):
        """Import the calculator class (without building it): a named error if it cannot
        be imported."""
        module_name, _, class_name = self.calculator.rpartition(".")
        if not module_name:
            raise InputError(
                f"calculator={self.calculator!r} is not a full class path; write e.g. "
                "'ase.calculators.emt.EMT'"
            )
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise InputError(
                f"unknown calculator class {self.calculator!r} ({err}); give an importable "
                "ASE calculator such as 'ase.calculators.emt.EMT' and install its package"
            ) from err


def structure_key(atoms: Atoms, spec: CalculatorSpec) -> str:
    """sha256 of the structure (numbers, positions, cell, pbc, and the starting values of
    :func:`starting_values` when there are any) and the calculator spec.

    A structure without starting values (or with all-zero ones) has the key it had before
    they were keyed, so existing reference caches stay valid."""
    h = hashlib.sha256(spec.key().encode())
    h.update(np.asarray(atoms.numbers, np.int64).tobytes())
    h.update(np.round(atoms.positions, 10).tobytes())
    h.update(np.round(atoms.cell.array, 10).tobytes())
    h.update(np.asarray(atoms.pbc, np.int8).tobytes())
    for name, values in starting_values(atoms).items():
        h.update(name.encode())
        h.update(np.round(values, 10).tobytes())
    return h.hexdigest()[:32]


@dataclass
class CollectionResult:
    """Labelled configurations, the structures that failed, and how many came from cache."""

    configs: list[Configuration]
    failures: list[dict]
    n_cached: int = 0
    n_computed: int = 0

    def summary(self) -> dict:
        reasons = Counter(f["error_type"] for f in self.failures)
        return {"n_structures": len(self.configs) + len(self.failures),
                "n_labelled": len(self.configs), "n_failed": len(self.failures),
                "n_cached": self.n_cached, "n_computed": self.n_computed,
                "failure_reasons": dict(reasons)}


def describe_failure(failure: Mapping) -> str:
    """One failed structure of :func:`collect_reference_data` (or of a workflow's record of
    the same keys), as messages quote it: ``structure 'ID': ErrorType: message``."""
    return (f"structure {failure.get('structure_id')!r}: {failure.get('error_type')}: "
            f"{failure.get('message')}")


def _label(atoms: Atoms, calc) -> dict:
    atoms = atoms.copy()
    atoms.calc = calc
    out = {"energy": float(atoms.get_potential_energy()),
           "forces": atoms.get_forces().tolist()}
    if all(atoms.pbc):
        out["stress"] = atoms.get_stress(voigt=True).tolist()
    return out


def write_json_atomic(path: str | os.PathLike, doc, **dumps_kwargs) -> Path:
    """Write ``doc`` as JSON to ``path`` through a temporary file in the same folder and
    :func:`os.replace`, so a killed run never leaves a half-written file behind."""
    return write_text_atomic(path, json.dumps(doc, **dumps_kwargs))


def read_json_cache(path: Path, check=None):
    """The JSON document cached in ``path``, or None when it is missing or unusable.

    An unreadable file (empty, truncated, not JSON) or one that ``check`` rejects (it
    raises KeyError, TypeError or ValueError) is a cache miss: a warning names the file and
    the caller recomputes and overwrites it.
    """
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        if check is not None:
            check(doc)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        log.warning("ignoring the unusable cache file %s (%s: %s); recomputing it", path,
                    type(err).__name__, err)
        return None
    return doc


def _check_labels(atoms: Atoms):
    """A check for :func:`read_json_cache`: the labels of ``atoms``, complete and finite."""
    def check(doc):
        forces = np.asarray(doc["forces"], dtype=float)
        if forces.shape != (len(atoms), 3):
            raise ValueError(f"forces of shape {forces.shape}, expected ({len(atoms)}, 3)")
        if doc.get("stress") is not None and np.asarray(doc["stress"], float).shape != (6,):
            raise ValueError("stress is not a Voigt 6-vector")
        float(doc["energy"])  # present, a number
        bad = _non_finite(doc)
        if bad:
            raise ValueError(f"non-finite {' and '.join(bad)}")
    return check


def _non_finite(labels: Mapping) -> list[str]:
    """The labels among energy, forces and stress that hold NaN or inf."""
    return [name for name in ("energy", "forces", "stress") if labels.get(name) is not None
            and not np.all(np.isfinite(np.asarray(labels[name], dtype=float)))]


def _to_config(atoms: Atoms, labels: dict) -> Configuration:
    clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    info = {k: v for k, v in atoms.info.items() if k != "config_type"}
    return Configuration(atoms=clean, energy=labels["energy"],
                         forces=np.asarray(labels["forces"]),
                         stress=None if labels.get("stress") is None else
                         np.asarray(labels["stress"]),
                         config_type=str(atoms.info.get("config_type", "default")),
                         info=info)


def collect_reference_data(
    structures: Sequence[Atoms],
    reference=DEFAULT_REFERENCE,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> CollectionResult:
    """Label ``structures`` with the reference calculator.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        ``info["config_type"]`` and ``info["structure_id"]`` are carried over.
    reference : CalculatorSpec, mapping or str
        The reference calculator (see :class:`CalculatorSpec`).
    cache_dir : path-like, optional
        Folder of per-structure results; finished structures found there are not
        recomputed.  Failures are not cached, so a rerun tries them again; the structure
        after a failure gets a new calculator (the failed one may be left half set up).
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    CollectionResult
        Configurations in the order of ``structures`` (failures left out) and one record
        per failure: index, structure_id, error type and message.
    """
    spec = CalculatorSpec.coerce(reference)
    calc = spec.build()
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    result = CollectionResult(configs=[], failures=[])
    items = enumerate(structures)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, total=len(structures), desc="reference", unit="structure")
    for i, atoms in items:
        path = cache / f"{structure_key(atoms, spec)}.json" if cache is not None else None
        labels = None if path is None else read_json_cache(path, _check_labels(atoms))
        if labels is not None:
            result.n_cached += 1
        else:
            try:
                labels = _label(atoms, calc)
                bad = _non_finite(labels)
                if bad:
                    raise FloatingPointError(
                        f"the calculator returned NaN or inf in its {' and '.join(bad)}")
            except Exception as err:  # noqa: BLE001 - any calculator failure is recorded
                result.failures.append({
                    "index": i, "structure_id": atoms.info.get("structure_id", str(i)),
                    "error_type": type(err).__name__, "message": str(err)})
                log.warning("reference calculation %d (%s) failed: %s: %s", i,
                            atoms.info.get("structure_id", i), type(err).__name__, err)
                # a calculator that raised may be left half set up (EMT without its
                # neighbour list answers the next structure with an AttributeError)
                calc = spec.build()
                continue
            result.n_computed += 1
            if path is not None:
                write_json_atomic(path, labels)
        result.configs.append(_to_config(atoms, labels))
    s = result.summary()
    log.info("reference data: %d labelled (%d from cache), %d failed %s", s["n_labelled"],
             s["n_cached"], s["n_failed"], s["failure_reasons"] or "")
    return result
