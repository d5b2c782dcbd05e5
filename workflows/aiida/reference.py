"""``mlip.reference``: label training structures with a reference method.

Two ways to get the labels:

* an in-process ASE calculator (default EMT; any importable class, e.g. GPAW), run by ONE
  calcfunction over all structures;
* ``reference_workflow``: the entry-point name of any AiiDA workflow that takes
  ``structure`` and returns ``total_energy`` (Float, eV) and ``forces`` (ArrayData with array
  ``forces``, eV/Å), the aiida-common-workflows convention; ``reference_inputs`` are passed
  to it unchanged.  A thin wrapper makes aiida-quantumespresso, VASP, ... fit in.

A structure whose calculation fails, or whose workflow outputs cannot label it (no array
``forces``, not one force per atom, NaN or inf: error type ``bad_output``), is listed in
``failed_structures``; the work chain fails only when too many do.  With caching enabled, a
calculation with failures is never reused, so a rerun tries those structures again: without
``chunk_size`` the one calcfunction labels every structure again, with it only the chunks
that had failures are computed again (the others are reused), so give ``chunk_size`` when
the reference is expensive.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiida import orm
from aiida.common.exceptions import EntryPointError
from aiida.engine import WorkChain, append_, if_, is_process_function
from aiida.plugins import WorkflowFactory
from plumpy.ports import UNSPECIFIED

from mlip_plugin.errors import InputError
from mlip_plugin.pipeline.reference import DEFAULT_REFERENCE, describe_failure

from .calculations import (
    check_reference_output,
    collect_reference,
    gather_reference,
    merge_reference,
    run_calculation,
    split_chunks,
    split_structures,
)
from .data import TrainingSetData, to_training_set
from .exit_codes import declare, reason
from .protocols import ProtocolMixin

__all__ = ["ReferenceWorkChain", "ReferenceChunkWorkChain"]


def _validate_inputs(inputs, _ctx=None):
    """Exactly one way of labelling; the workflow must load, be submittable, take
    ``structure`` and accept ``reference_inputs``."""
    if "reference_workflow" in inputs:
        if "calculator" in inputs:
            return ("give either `calculator` (in-process ASE) or `reference_workflow`, "
                    "not both")
        if "chunk_size" in inputs:
            return "`chunk_size` applies to the in-process ASE calculator only; drop it"
        message = _check_reference_workflow(inputs["reference_workflow"].value,
                                            inputs.get("reference_inputs"))
        if message is not None:
            return message
    elif inputs.get("reference_inputs"):
        return "`reference_inputs` are only used with `reference_workflow`; give it too"
    if "chunk_size" in inputs and inputs["chunk_size"].value < 1:
        return f"chunk_size={inputs['chunk_size'].value} must be a positive number of structures"
    fraction = inputs.get("max_failed_fraction")
    if fraction is not None and not 0.0 <= fraction.value <= 1.0:
        return f"max_failed_fraction={fraction.value} must lie in [0, 1]"
    return None


def _plain_copy(value):
    """Nested mappings copied (AiiDA nodes and other values shared, not copied)."""
    if isinstance(value, Mapping):
        return {k: _plain_copy(v) for k, v in value.items()}
    return value


def _check_reference_workflow(name: str, reference_inputs) -> str | None:
    """Why the work chain cannot launch ``name`` once per structure with
    ``reference_inputs`` (None if it can): checked against the workflow's input spec."""
    try:
        process = WorkflowFactory(name)
    except EntryPointError as err:
        return (f"reference_workflow={name!r} is not a loadable `aiida.workflows` entry "
                f"point ({err}); install the plugin that provides it or check "
                "`verdi plugin list aiida.workflows`")
    if is_process_function(process):
        return (f"reference_workflow={name!r} is a process function ({process.__name__}), "
                "which cannot be submitted; give a WorkChain that takes `structure` and "
                "returns `total_energy` and `forces` (wrap the function in one)")
    ports = process.spec().inputs
    if "structure" not in ports:
        return (f"reference_workflow={name!r} ({process.__name__}) has no input `structure` "
                f"(its inputs: {sorted(ports)}); give a workflow that takes `structure` "
                "(StructureData) and returns `total_energy` and `forces`, e.g. a thin wrapper")
    given = dict(reference_inputs or {})
    if "structure" in given:
        return ("`reference_inputs` must not contain `structure`: each structure of "
                "`structures` is passed as `structure`; drop it")
    unknown = sorted(set(given) - set(ports))
    if unknown and not ports.dynamic:
        return (f"reference_inputs {unknown} are not inputs of reference_workflow={name!r} "
                f"(its inputs: {sorted(ports)})")
    # pre_process fills in the workflow's defaults in place, nested namespaces too: on a
    # deep copy, or the defaults would become inputs of this process (and break a launch)
    values = ports.pre_process(_plain_copy(given))
    for key, port in ports.items():
        error = None if key == "structure" else port.validate(values.get(key, UNSPECIFIED))
        if error is not None:
            return (f"reference_inputs do not fit reference_workflow={name!r}: {error}; "
                    "give every input it requires except `structure`")
    error = ports.validate_dynamic_ports({k: given[k] for k in unknown})
    if error is not None:
        return f"reference_inputs do not fit reference_workflow={name!r}: {error}"
    return None


def refuse_calculator_beside_workflow(overrides, reference_workflow, where: str) -> None:
    """InputError when ``overrides`` name a ``calculator`` and ``reference_workflow`` is
    given: the workflow labels the structures, so the calculator would be dropped unseen."""
    if reference_workflow is not None and (overrides or {}).get("calculator") is not None:
        raise InputError(f"{where} name a calculator ({overrides['calculator']!r}) and "
                         f"reference_workflow={reference_workflow!r} is given: the workflow "
                         "labels the structures, so give one of them")


class ReferenceChunkWorkChain(WorkChain):
    """One chunk of ``mlip.reference`` with ``chunk_size``: a work chain (process functions
    cannot be submitted) so that daemon workers label chunks in parallel."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structures", valid_type=TrainingSetData,
                   help="The structures of this chunk (Angstrom).")
        spec.input("calculator", valid_type=orm.Dict,
                   help="ASE calculator spec {'calculator', 'parameters'} (results in eV, "
                        "eV/Angstrom, eV/Angstrom^3).")
        spec.outline(cls.run_calculator)
        spec.output("training_set", valid_type=TrainingSetData, required=False,
                    help="The labelled structures of this chunk.")
        spec.output("failed_structures", valid_type=orm.List,
                    help="Failures of this chunk (indices within the chunk).")
        declare(spec, "ERROR_REFERENCE_CALCULATION_FAILED")

    def run_calculator(self):
        """Label the chunk in one calcfunction."""
        result, node = run_calculation(collect_reference, structures=self.inputs.structures,
                                       calculator=self.inputs.calculator)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_REFERENCE_CALCULATION_FAILED.format(
                message=reason("ERROR_REFERENCE_CALCULATION_FAILED", node.exit_message))
        self.out_many(result)
        return None


class ReferenceWorkChain(ProtocolMixin, WorkChain):
    """Label structures with energies (eV), forces (eV/Å) and, from ASE, stresses (eV/Å³)."""

    _protocol_file = "reference.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structures", valid_type=TrainingSetData, serializer=to_training_set,
                   help="Structures to label, one TrainingSetData or a list of ase.Atoms "
                        "(positions and cells in Angstrom); labels they may already carry "
                        "are ignored.")
        spec.input("calculator", valid_type=orm.Dict, required=False,
                   serializer=orm.to_aiida_type,
                   help="In-process ASE calculator: {'calculator': class path, 'parameters': "
                        "{...}} (the calculator's own units; results in eV, eV/Angstrom, "
                        "eV/Angstrom^3). Default when `reference_workflow` is not given: "
                        f"{DEFAULT_REFERENCE['calculator']}.")
        spec.input("reference_workflow", valid_type=orm.Str, required=False,
                   serializer=orm.to_aiida_type,
                   help="Entry-point name (group aiida.workflows) of a workflow taking "
                        "`structure` (StructureData, Angstrom) and returning `total_energy` "
                        "(Float, eV) and `forces` (ArrayData 'forces', eV/Angstrom).")
        spec.input_namespace("reference_inputs", dynamic=True, required=False,
                             valid_type=orm.Data, populate_defaults=False,
                             help="Inputs passed unchanged to every `reference_workflow` "
                                  "launch (code, parameters, ...; units as that workflow "
                                  "documents them).")
        spec.input("max_failed_fraction", valid_type=orm.Float, serializer=orm.to_aiida_type,
                   default=lambda: orm.Float(0.5),
                   help="Largest fraction (dimensionless, 0 to 1) of structures whose "
                        "reference calculation may fail for the work chain to succeed.")
        spec.input("chunk_size", valid_type=orm.Int, required=False,
                   serializer=orm.to_aiida_type,
                   help="Label the structures in chunks of this many structures, each chunk "
                        "a process of its own (mlip.reference_chunk), so that daemon workers "
                        "label chunks in parallel and, with caching enabled, a rerun after "
                        "failures reuses the chunks without any. Default: one calcfunction "
                        "for all.")
        spec.inputs.validator = _validate_inputs
        spec.outline(
            if_(cls.uses_workflow)(cls.run_workflows, cls.gather_workflows)
            .elif_(cls.uses_chunks)(cls.run_chunks, cls.merge_chunks)
            .else_(cls.run_calculator),
            cls.check_failures,
        )
        spec.output("training_set", valid_type=TrainingSetData, required=False,
                    help="The structures that were labelled: energies (eV), forces "
                         "(eV/Angstrom), stresses (eV/Angstrom^3) where available.")
        spec.output("failed_structures", valid_type=orm.List,
                    help="One record per failed structure: index, structure_id, error_type, "
                         "message.")
        declare(spec, "ERROR_ALL_REFERENCE_FAILED", "ERROR_TOO_MANY_REFERENCE_FAILED",
                "ERROR_REFERENCE_CALCULATION_FAILED")

    @classmethod
    def get_builder_from_protocol(cls, structures, protocol: str | None = None,
                                  overrides: dict | None = None, *,
                                  reference_workflow: str | None = None,
                                  reference_inputs: dict | None = None):
        """A builder filled from ``protocol`` (``fast``, ``balanced``, ``stringent``) for
        ``structures`` (a :class:`TrainingSetData` or a list of ``ase.Atoms``).

        With ``reference_workflow`` the protocol's ASE calculator is dropped and
        ``reference_inputs`` are passed through.
        """
        refuse_calculator_beside_workflow(overrides, reference_workflow, "overrides")
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.structures = structures
        builder.max_failed_fraction = inputs["max_failed_fraction"]
        if reference_workflow is None:
            builder.calculator = inputs["calculator"]
        else:
            builder.reference_workflow = reference_workflow
            builder.reference_inputs = reference_inputs or {}
        return builder

    def uses_workflow(self) -> bool:
        return "reference_workflow" in self.inputs

    def uses_chunks(self) -> bool:
        return "chunk_size" in self.inputs

    def _calculator(self) -> orm.Dict:
        return self.inputs.get("calculator") or orm.Dict(DEFAULT_REFERENCE)

    def run_calculator(self):
        """One calcfunction runs the ASE calculator over all structures."""
        result, node = run_calculation(collect_reference, structures=self.inputs.structures,
                                       calculator=self._calculator())
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_REFERENCE_CALCULATION_FAILED.format(
                message=reason("ERROR_REFERENCE_CALCULATION_FAILED", node.exit_message))
        self.ctx.result = result
        return None

    def run_chunks(self):
        """Submit one chunk work chain per chunk of structures."""
        calculator = self._calculator().store()
        chunks = split_chunks(self.inputs.structures, self.inputs.chunk_size)
        for _, chunk in sorted(chunks.items()):
            node = self.submit(ReferenceChunkWorkChain, structures=chunk, calculator=calculator)
            self.to_context(chunks=append_(node))
        self.report(f"submitted {len(chunks)} reference chunks")

    def merge_chunks(self):
        """Merge the chunks' training sets and failures (indices of the whole set)."""
        parts = {}
        for node in self.ctx.chunks:
            if not node.is_finished_ok:
                why = reason("ERROR_REFERENCE_CALCULATION_FAILED", node.exit_message)
                return self.exit_codes.ERROR_REFERENCE_CALCULATION_FAILED.format(
                    message=f"{node.process_label}<{node.pk}>: "
                            f"{why or node.process_state.value}")
            chunk = node.inputs.structures
            key = f"{chunk.base.attributes.get('offset'):06d}"
            parts[f"chunk_{key}"] = chunk
            parts[f"failed_structures_{key}"] = node.outputs.failed_structures
            if "training_set" in node.outputs:
                parts[f"training_set_{key}"] = node.outputs.training_set
        self.ctx.result, _ = run_calculation(merge_reference, **parts)
        return None

    def run_workflows(self):
        """Launch the reference workflow once per structure."""
        process = WorkflowFactory(self.inputs.reference_workflow.value)
        passed = dict(self.inputs.get("reference_inputs", {}))
        self.ctx.index_of = {}
        for key, structure in sorted(split_structures(self.inputs.structures).items()):
            node = self.submit(process, structure=structure, **passed)
            self.ctx.index_of[str(node.pk)] = int(key.rsplit("_", 1)[1])
            self.to_context(references=append_(node))
        self.report(f"launched {len(self.ctx.index_of)} {process.__name__} workflows")

    def gather_workflows(self):
        """Collect `total_energy` and `forces` of the finished ones; list the others and
        those whose outputs cannot label their structure."""
        structures = self.inputs.structures
        ids, n_atoms = structures.structure_ids, structures.get_array("n_atoms")
        labels, failures = {}, []
        for node in self.ctx.references:
            i = self.ctx.index_of[str(node.pk)]
            failure = _workflow_failure(node, int(n_atoms[i]))
            if failure is None:
                labels[f"energy_{i:04d}"] = node.outputs.total_energy
                labels[f"forces_{i:04d}"] = node.outputs.forces
                continue
            error_type, message = failure
            failures.append({"index": i, "structure_id": ids[i], "process_pk": node.pk,
                             "error_type": error_type, "message": message})
        self.ctx.result, _ = run_calculation(gather_reference, structures=structures,
                                             failures=orm.List(failures), **labels)

    def check_failures(self):
        """Attach the outputs; fail if no or too many structures were labelled."""
        failed = self.ctx.result["failed_structures"]
        self.out("failed_structures", failed)
        n, n_failed = self.inputs.structures.numsteps, len(failed)
        for record in failed.get_list():
            self.report(f"reference structure {record['index']} ({record['structure_id']}) "
                        f"failed: {record['error_type']}: {record['message']}")
        if "training_set" not in self.ctx.result:
            example = describe_failure(failed.get_list()[0] if n_failed else {})
            return self.exit_codes.ERROR_ALL_REFERENCE_FAILED.format(n=n, example=example)
        self.out("training_set", self.ctx.result["training_set"])
        limit = self.inputs.max_failed_fraction.value
        if n_failed > limit * n:
            return self.exit_codes.ERROR_TOO_MANY_REFERENCE_FAILED.format(
                n_failed=n_failed, n=n, max_failed_fraction=limit)
        return None


def _workflow_failure(node, n_atoms: int) -> tuple[str, str] | None:
    """``(error_type, message)`` when the reference workflow ``node`` gives no usable labels
    for a structure of ``n_atoms`` atoms, None when it does."""
    if not node.is_finished_ok:
        return ("excepted" if node.is_excepted else f"exit_status_{node.exit_status}",
                node.exit_message or f"process {node.process_state.value}")
    if not {"total_energy", "forces"} <= set(node.outputs):
        return (f"exit_status_{node.exit_status}",
                "finished without `total_energy` and `forces` outputs")
    problem = check_reference_output(node.outputs.total_energy, node.outputs.forces, n_atoms)
    return None if problem is None else ("bad_output", problem)
