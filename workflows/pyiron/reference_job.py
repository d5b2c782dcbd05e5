"""``MLIPReferenceData``: label structures with a reference calculator, as a pyiron job.

A thin wrapper of :func:`mlip_plugin.pipeline.structures.generate_structures` and
:func:`mlip_plugin.pipeline.reference.collect_reference_data`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from mlip_plugin.data import Configuration
from mlip_plugin.errors import InputError, ReferenceCalculationError
from mlip_plugin.pipeline.reference import (
    DEFAULT_REFERENCE,
    CalculatorSpec,
    collect_reference_data,
    describe_failure,
)
from mlip_plugin.pipeline.structures import StructureSpec, generate_structures, structures_key

from .arrays import (
    arrays_to_configurations,
    arrays_to_structures,
    configurations_to_arrays,
    structures_to_arrays,
)
from .base import MLIPJob, input_mapping, input_reference, stored_bool

__all__ = ["MLIPReferenceData"]

DEFAULT_STRUCTURE_SPEC = {"preset": "tiny", "element": "Cu", "lattice": "fcc"}
CACHE_FOLDER = "reference_cache"
#: Folder in the working directory with the structure protocol's calculator stages (the
#: lattice constant, each NVT run): kept when a later stage fails, for a repaired job.
STAGES_FOLDER = "structure_stages"
_FAILURE_KEYS = ("index", "structure_id", "error_type", "message")


class MLIPReferenceData(MLIPJob):
    """Structures plus a reference calculator spec → labelled configurations.

    Input (``job.input``)
    ---------------------
    structures : arrays, optional
        Set with ``job.structures = [atoms, ...]`` (see :mod:`.arrays` for the layout).
        Without them, structures are generated from ``structure_spec``.
    structure_spec : dict
        ``preset`` (``"tiny"`` or ``"standard"``) plus any
        :class:`~mlip_plugin.pipeline.structures.StructureSpec` field (``element``,
        ``lattice``, ``supercell``, ...).  The NVT snapshots run with the reference
        calculator.  Default ``{"preset": "tiny", "element": "Cu", "lattice": "fcc"}``.
    reference : dict
        ``{"calculator": "ase.calculators.emt.EMT", "parameters": {}}``: an importable ASE
        calculator class and its keyword arguments; set it with ``job.reference = ...``.
    use_cache : bool
        Keep each finished structure's result, and each finished calculator stage of the
        structure protocol (the lattice constant, each NVT run), in the working directory,
        so a repaired or re-run job does not recompute them (default True).

    Output (``job.output``)
    -----------------------
    configurations : arrays
        The labelled configurations (energies eV, forces eV/Å, stresses eV/Å³);
        ``job.configurations`` gives them as :class:`~mlip_plugin.data.Configuration`.
    failures : dict of columns
        ``index``, ``structure_id``, ``error_type``, ``message`` of every structure whose
        calculation failed; ``job.failures`` gives a list of dicts.
    structures : arrays
        The generated structures (only when they were generated), failed ones included.
    summary : dict
        Counts of structures, labelled, failed, cached, and failures by error type.

    The status is ``finished`` when every structure was labelled, ``warning`` when some
    failed, ``aborted`` when none could be labelled (``run()`` raises
    :class:`~mlip_plugin.errors.ReferenceCalculationError`, naming the calculator).
    """

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.structure_spec = dict(DEFAULT_STRUCTURE_SPEC)
        self.input.reference = copy.deepcopy(DEFAULT_REFERENCE)
        self.input.use_cache = True

    # -- input -----------------------------------------------------------------------
    @property
    def structures(self) -> list | None:
        """The given input structures (list of ase.Atoms), or None to generate them."""
        arrays = self.input.get("structures")
        return None if arrays is None else arrays_to_structures(arrays)

    @structures.setter
    def structures(self, structures) -> None:
        if structures is None:
            if "structures" in self.input:
                del self.input["structures"]
            return
        arrays = structures_to_arrays(structures)
        if len(arrays["n_atoms"]) == 0:
            raise InputError("structures=[] is empty; give at least one ase.Atoms, or set "
                             "job.structures = None to generate them from structure_spec")
        self.input.structures = arrays

    @property
    def reference(self) -> CalculatorSpec:
        """The reference calculator spec."""
        return input_reference(self.input.reference)

    @reference.setter
    def reference(self, spec) -> None:
        self.input.reference = CalculatorSpec.coerce(spec).to_dict()

    def get_structure_spec(self) -> StructureSpec:
        """``input.structure_spec`` as a validated :class:`StructureSpec`."""
        doc = input_mapping(self.input.structure_spec, "structure_spec")
        preset = doc.pop("preset", "tiny")
        if "md_with_vacancy" in doc:
            doc["md_with_vacancy"] = stored_bool(doc["md_with_vacancy"])
        if preset == "custom":  # a full spec stored from a StructureSpec object
            return StructureSpec.from_preset("tiny", preset="custom", **doc)
        return StructureSpec.from_preset(preset, **doc)

    def set_structure_spec(self, spec: StructureSpec | dict) -> None:
        """Store a :class:`StructureSpec` (or a dict of its fields plus ``preset``)."""
        if isinstance(spec, StructureSpec):
            spec = spec.to_dict()
        if not isinstance(spec, dict):
            raise InputError(f"structure_spec={spec!r} must be a StructureSpec or a dict "
                             "such as {'preset': 'tiny', 'element': 'Cu', 'lattice': 'fcc'}")
        previous = self.input.structure_spec
        self.input.structure_spec = dict(spec)
        try:
            self.get_structure_spec()  # validate now rather than at run time
        except InputError:
            self.input.structure_spec = previous
            raise

    # -- output ----------------------------------------------------------------------
    @property
    def configurations(self) -> list[Configuration]:
        """The labelled configurations (empty before the job ran)."""
        arrays = self.output.get("configurations")
        return [] if arrays is None else arrays_to_configurations(arrays)

    @property
    def failures(self) -> list[dict]:
        """One dict (index, structure_id, error_type, message) per failed structure."""
        columns = self.output.get("failures")
        if columns is None:
            return []
        rows = zip(*(columns[k] for k in _FAILURE_KEYS))
        return [{"index": int(i), "structure_id": _text(s), "error_type": _text(t),
                 "message": _text(m)} for i, s, t, m in rows]

    # -- the step --------------------------------------------------------------------
    def _run_step(self) -> tuple[str, str]:
        reference = self.reference
        structures = self.structures
        if structures is None:  # the calculator stages are kept for a repaired job
            spec = self.get_structure_spec()
            stages = (Path(self.working_directory) / STAGES_FOLDER
                      / structures_key(spec, reference.to_dict())[:16]
                      if self.input.use_cache else None)
            structures = generate_structures(spec, calculator=reference.build(),
                                             cache_dir=stages)
            self.output.structures = structures_to_arrays(structures)
        cache = Path(self.working_directory) / CACHE_FOLDER if self.input.use_cache else None
        result = collect_reference_data(structures, reference, cache_dir=cache)
        self.output.configurations = configurations_to_arrays(result.configs)
        self.output.failures = _failure_columns(result.failures)
        summary = result.summary()
        self.output.summary = summary
        n, n_ok = summary["n_structures"], summary["n_labelled"]
        if n_ok == 0:
            example = (f", e.g. {describe_failure(result.failures[0])}" if result.failures
                       else "")
            raise ReferenceCalculationError(
                f"none of the {n} structures could be labelled with {reference.calculator} "
                f"(failures by type: {summary['failure_reasons']}{example}); see "
                "output/failures. Check the calculator and its parameters (job.reference), "
                "then job.run(repair=True) tries them again")
        message = f"{n_ok} of {n} structures labelled"
        if result.failures:
            return "warning", (f"{message}; {len(result.failures)} failed, e.g. "
                               f"{describe_failure(result.failures[0])} (see output/failures)")
        return "finished", message


def _failure_columns(failures: list[dict]) -> dict:
    return {"index": np.array([f["index"] for f in failures], dtype=np.int64),
            **{k: np.array([str(f[k]).encode("utf-8") for f in failures], dtype=np.bytes_)
               for k in _FAILURE_KEYS[1:]}}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
