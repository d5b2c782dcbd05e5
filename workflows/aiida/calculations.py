"""Calcfunctions: thin wrappers that call the engine-free steps of :mod:`mlip_plugin.pipeline`.

Each one turns nodes into plain objects, calls one pipeline function, and turns the result
back into nodes, so every number of a run is an output of a recorded calculation.  Expected
failures (bad settings, a failed fit) return a named exit code instead of raising.  The work
chains run them through :func:`run_calculation`, which keeps failures out of AiiDA's cache.
"""

from __future__ import annotations

import json
import logging
import numbers

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from mlip_plugin.errors import InputError, MLIPError

from .data import ModelData, TrainingSetData, json_safe
from .exit_codes import exit_code

__all__ = ["generate_structures", "structure_stage", "collect_reference", "split_structures",
           "split_chunks", "merge_reference", "gather_reference", "fit_model", "evaluate_model",
           "reference_property", "validate_model", "run_calculation", "structure_spec",
           "check_reference_output"]

log = logging.getLogger(__name__)

#: Attribute of generate_structures' output: the structure generator's PROTOCOL_VERSION
PROTOCOL_ATTRIBUTE = "structure_protocol_version"


def run_calculation(function, **inputs):
    """Run the calcfunction ``function``; ``(result, node)`` as ``run_get_node`` gives them.

    A node that failed (an exit code) or lists structures in its output
    ``failed_structures`` is marked as an invalid cache source, so that with caching
    enabled an identical rerun computes again instead of reusing the failure (AiiDA would
    reuse it: the calcfunctions' exit codes are not declared on their spec).
    """
    result, node = function.run_get_node(**inputs)
    if (_failed(node) or _stale(node)) and node.base.caching.is_created_from_cache:
        # a failure stored before (by an older version, or a direct call of the
        # calcfunction), or structures of an older generator, is still a valid source:
        # invalidate it and compute again
        source = node.base.caching.get_cache_source()
        if source is not None:
            orm.load_node(source).base.caching.is_valid_cache = False
        node.base.caching.is_valid_cache = False
        result, node = function.run_get_node(**inputs)
    if _failed(node):
        node.base.caching.is_valid_cache = False
    return result, node


def _stale(node) -> bool:
    """Structures made by an older version of the structure generator than the one in which
    the structures of its settings last changed (:func:`~mlip_plugin.pipeline.structures.
    structures_version`: the node's inputs, and so its hash, are the same)."""
    from mlip_plugin.pipeline.structures import structures_version

    if node.process_label != "generate_structures" or "result" not in node.outputs:
        return False
    made_by = node.outputs.result.base.attributes.get(PROTOCOL_ATTRIBUTE, 1)
    try:
        needed = structures_version(structure_spec(node.inputs.settings.get_dict()))
    except InputError:  # settings this version does not take: compute again
        return True
    return made_by < needed


def _failed(node) -> bool:
    failed = node.outputs.failed_structures if "failed_structures" in node.outputs else []
    return not node.is_finished_ok or len(failed) > 0


def structure_spec(settings: dict):
    """The :class:`~mlip_plugin.pipeline.structures.StructureSpec` of ``settings``
    (``preset`` plus any StructureSpec field); :class:`InputError` naming the settings for
    any value it does not take (also a value of the wrong type)."""
    from mlip_plugin.pipeline.structures import StructureSpec

    doc = dict(settings)
    try:
        return StructureSpec.from_preset(doc.pop("preset", "tiny"), **doc)
    except MLIPError as err:
        raise InputError(f"structure_settings={settings!r} are not valid: {err}") from err
    except (TypeError, ValueError) as err:
        raise InputError(
            f"structure_settings={settings!r} are not valid: {type(err).__name__}: {err}; "
            "give `preset` and StructureSpec fields of their types (integers for counts and "
            "supercell, numbers for strains, a list of numbers for md_temperatures in K, a "
            "list of Miller-index triples for slabs)") from err


def check_reference_output(energy, forces, n_atoms: int) -> str | None:
    """Why the outputs ``total_energy`` (Float, eV) and ``forces`` (ArrayData with array
    ``forces`` of shape (n_atoms, 3), eV/Å) of a reference workflow cannot label a
    structure of ``n_atoms`` atoms; None when they can."""
    value = getattr(energy, "value", None)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"`total_energy` is a {type(energy).__name__}, not a Float (eV)"
    if not np.isfinite(value):
        return f"`total_energy`={value} eV is not finite"
    names = forces.get_arraynames() if isinstance(forces, orm.ArrayData) else None
    if names is None or "forces" not in names:
        return (f"`forces` ({type(forces).__name__}, arrays {names}) has no array "
                "'forces' (eV/Angstrom)")
    try:
        array = np.asarray(forces.get_array("forces"), dtype=float)
    except (TypeError, ValueError) as err:
        return f"`forces` array 'forces' is not numeric: {err}"
    if array.shape != (n_atoms, 3):
        return (f"`forces` array 'forces' has shape {array.shape}, expected ({n_atoms}, 3) "
                f"for a structure of {n_atoms} atoms")
    n_bad = int(np.size(array) - np.isfinite(array).sum())
    if n_bad:
        return f"`forces` array 'forces' has {n_bad} non-finite entries (NaN or inf)"
    return None


def _stage_documents(stages: dict) -> dict:
    """Stage name -> result of :func:`structure_stage` outputs (any labels)."""
    docs = {}
    for node in stages.values():
        doc = node.get_dict()
        docs[doc["stage"]] = json.loads(doc["result_json"])
    return docs


@calcfunction
def structure_stage(settings: orm.Dict, calculator: orm.Dict, stage: orm.Str, **earlier):
    """One stage of the structure protocol that runs the reference calculator (the lattice
    constant, or one NVT run; :func:`mlip_plugin.pipeline.structures.calculator_stages`),
    the stages before it taken from ``earlier`` (outputs of this calcfunction).  Output:
    ``{"stage", "result_json"}``, the stage's result as JSON text (the random generator's
    state in it holds integers of 128 bits), which :func:`generate_structures` takes."""
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.structures import structure_stage as compute

    try:
        spec = structure_spec(settings.get_dict())
        calc = CalculatorSpec.coerce(calculator.get_dict()).build()
        doc = compute(spec, calc, stage.value, _stage_documents(earlier))
    except MLIPError as err:
        return exit_code("ERROR_STRUCTURE_GENERATION_FAILED", message=str(err))
    except (TypeError, ValueError) as err:  # a value of the wrong type met late
        return exit_code("ERROR_STRUCTURE_GENERATION_FAILED",
                         message=f"{type(err).__name__}: {err}")
    return orm.Dict({"stage": stage.value, "result_json": json.dumps(doc)})


@calcfunction
def generate_structures(settings: orm.Dict, calculator: orm.Dict | None = None, **stages):
    """Training structures of a protocol (:func:`mlip_plugin.pipeline.structures.
    generate_structures`).

    ``settings``: ``preset`` plus any :class:`StructureSpec` field; ``calculator``: the
    reference calculator spec, which relaxes the lattice constant and drives NVT snapshots;
    ``stages`` (any labels): outputs of :func:`structure_stage`, not computed again.
    """
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.structures import PROTOCOL_VERSION
    from mlip_plugin.pipeline.structures import generate_structures as generate

    try:
        spec = structure_spec(settings.get_dict())
        calc = None if calculator is None else CalculatorSpec.coerce(
            calculator.get_dict()).build()
        structures = generate(spec, calc, stage_documents=_stage_documents(stages))
    except MLIPError as err:
        return exit_code("ERROR_STRUCTURE_GENERATION_FAILED", message=str(err))
    except (TypeError, ValueError) as err:  # a value of the wrong type met late
        return exit_code("ERROR_STRUCTURE_GENERATION_FAILED",
                         message=f"{type(err).__name__}: {err}")
    data = TrainingSetData.from_atoms(structures)
    data.base.attributes.set(PROTOCOL_ATTRIBUTE, PROTOCOL_VERSION)
    return data


@calcfunction
def collect_reference(structures: TrainingSetData, calculator: orm.Dict):
    """Label every structure with an in-process ASE calculator.

    Returns ``training_set`` (labelled structures; absent if none succeeded) and
    ``failed_structures`` (a list of ``{index, structure_id, error_type, message}``).
    """
    from mlip_plugin.pipeline.reference import collect_reference_data

    atoms = [structures.get_atoms(i) for i in range(structures.numsteps)]
    try:
        result = collect_reference_data(atoms, calculator.get_dict())
    except MLIPError as err:
        return exit_code("ERROR_REFERENCE_CALCULATION_FAILED", message=str(err))
    out = {"failed_structures": orm.List(json_safe(result.failures))}
    if result.configs:
        out["training_set"] = TrainingSetData.from_configurations(result.configs)
    return out


@calcfunction
def split_structures(structures: TrainingSetData):
    """One :class:`StructureData` per structure (``structure_0000``, ...), so that an
    external reference workflow can take each as its input with provenance."""
    return {f"structure_{i:04d}": structures.get_step_structure(i)
            for i in range(structures.numsteps)}


@calcfunction
def split_chunks(structures: TrainingSetData, chunk_size: orm.Int):
    """Consecutive chunks of at most ``chunk_size`` structures (``chunk_0000``, ...), each a
    TrainingSetData with its position in ``structures`` as attribute ``offset``."""
    configs = structures.get_configurations()
    n = chunk_size.value
    out = {}
    for k, start in enumerate(range(0, len(configs), n)):
        chunk = TrainingSetData.from_configurations(configs[start:start + n])
        chunk.base.attributes.set("offset", start)
        out[f"chunk_{k:04d}"] = chunk
    return out


@calcfunction
def merge_reference(**parts):
    """Merge the outputs of :func:`collect_reference` over chunks: ``chunk_NNNN`` (the
    input chunk), ``training_set_NNNN`` (absent if all of it failed) and
    ``failed_structures_NNNN``; failure indices become indices of the whole set."""
    keys = sorted(k.split("_", 1)[1] for k in parts if k.startswith("chunk_"))
    configs, failures = [], []
    for key in keys:
        offset = parts[f"chunk_{key}"].base.attributes.get("offset")
        if f"training_set_{key}" in parts:
            configs += parts[f"training_set_{key}"].get_configurations()
        failures += [{**f, "index": f["index"] + offset}
                     for f in parts[f"failed_structures_{key}"].get_list()]
    out = {"failed_structures": orm.List(failures)}
    if configs:
        out["training_set"] = TrainingSetData.from_configurations(configs)
    return out


@calcfunction
def gather_reference(structures: TrainingSetData, failures: orm.List, **labels):
    """Merge per-structure ``energy_NNNN`` (Float, eV) and ``forces_NNNN`` (ArrayData
    ``forces``, eV/Å) into one training set; ``failures`` lists the structures without
    labels.  Outputs as :func:`collect_reference`."""
    from mlip_plugin.data import Configuration

    configs = []
    for i in range(structures.numsteps):
        key = f"{i:04d}"
        if f"energy_{key}" not in labels:
            continue
        atoms = structures.get_atoms(i)
        forces = labels[f"forces_{key}"].get_array("forces")
        configs.append(Configuration(
            atoms=atoms, energy=labels[f"energy_{key}"].value, forces=np.asarray(forces),
            config_type=atoms.info["config_type"],
            info={"structure_id": atoms.info["structure_id"]}))
    out = {"failed_structures": orm.List(failures.get_list())}
    if configs:
        out["training_set"] = TrainingSetData.from_configurations(configs)
    return out


@calcfunction
def fit_model(training_set: TrainingSetData, settings: orm.Dict,
              validation: TrainingSetData | None = None):
    """Fit a model (:func:`mlip_plugin.pipeline.fit`); outputs ``model`` and ``metrics``."""
    from mlip_plugin.pipeline.config import FitSettings
    from mlip_plugin.pipeline.fit import fit

    try:
        result = fit(training_set.get_configurations(), FitSettings(**settings.get_dict()),
                     validation=None if validation is None else validation.get_configurations())
    except (MLIPError, TypeError) as err:
        return exit_code("ERROR_FIT_FAILED", message=str(err))
    return {"model": ModelData.from_model(result.model),
            "metrics": orm.Dict(json_safe(result.metrics))}


@calcfunction
def evaluate_model(model: ModelData, dataset: TrainingSetData):
    """Energy, force and virial errors of ``model`` on labelled ``dataset``
    (meV/atom, eV/Å, meV/atom), as in ``metrics.json``."""
    from mlip_plugin.pipeline.metrics import error_metrics

    try:
        configs = dataset.get_configurations()
        if not any(c.energy is not None or c.forces is not None for c in configs):
            raise InputError(f"the test set ({len(configs)} structures) has no energy or "
                             "force labels, so there is no error to measure; label it "
                             "(mlip.reference) or leave test_set out")
        errors = error_metrics(model.get_model(), configs)
    except MLIPError as err:
        return exit_code("ERROR_EVALUATION_FAILED", message=str(err))
    return orm.Dict(json_safe(errors))


@calcfunction
def reference_property(settings: orm.Dict, calculator: orm.Dict, unit: orm.Int):
    """One property of the reference calculator: unit ``unit`` (a property group, one
    interstitial site or one surface; :func:`mlip_plugin.pipeline.validate.reference_units`)
    of the suite of ``settings``, ValidateSettings fields with ``suite`` and ``symbol``
    resolved (:func:`~mlip_plugin.pipeline.validate.resolve_settings`).  Output: the unit's
    document (key, calculator, suite, settings, rows, timings_s, phonon_bands for phonons)
    that :func:`validate_model` takes instead of computing it again."""
    from mlip_plugin.pipeline.config import ValidateSettings
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import ReferenceSuites, reference_units

    try:
        s = ValidateSettings(**settings.get_dict())
        doc = ReferenceSuites().unit_document(CalculatorSpec.coerce(calculator.get_dict()),
                                              s.suite, reference_units(s)[unit.value])
    except (MLIPError, TypeError) as err:
        return exit_code("ERROR_VALIDATION_FAILED", message=str(err))
    return orm.Dict(json_safe(doc))


@calcfunction
def validate_model(model: ModelData, settings: orm.Dict, calculator: orm.Dict | None = None,
                   **reference_properties):
    """Property suite of ``model`` against the reference calculator or a published table
    (:func:`mlip_plugin.pipeline.validate`); output ``properties`` (rows with name, unit,
    model, reference, abs_error, error_percent).  ``reference_properties`` (any labels):
    outputs of :func:`reference_property` for this calculator, which are not recomputed."""
    from mlip_plugin.pipeline.config import ValidateSettings
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import validate

    try:
        reference = None if calculator is None else CalculatorSpec.coerce(calculator.get_dict())
        documents = [node.get_dict() for _, node in sorted(reference_properties.items())]
        result = validate(model.get_model(), ValidateSettings(**settings.get_dict()),
                          reference=reference, reference_documents=documents)
    except (MLIPError, TypeError) as err:
        return exit_code("ERROR_VALIDATION_FAILED", message=str(err))
    return orm.Dict(json_safe(result.to_dict()))
