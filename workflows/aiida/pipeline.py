"""``mlip.pipeline``: structures → reference data → fit → property validation, one provenance
graph from every reference structure to the model and its property table."""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_

from mlip_plugin.errors import InputError

from .calculations import (
    generate_structures,
    run_calculation,
    structure_spec,
    structure_stage,
)
from .data import TrainingSetData, to_training_set
from .exit_codes import declare, kept_note, reason
from .fit import FitWorkChain
from .protocols import ProtocolMixin
from .reference import ReferenceWorkChain, refuse_calculator_beside_workflow
from .validate import ValidateWorkChain, validate_settings

__all__ = ["PipelineWorkChain"]


def _validate_inputs(inputs, _ctx=None):
    from mlip_plugin.properties.suites import suite_for

    if ("structures" in inputs) == ("structure_settings" in inputs):
        return ("give exactly one of `structures` and `structure_settings` (with "
                "get_builder_from_protocol: its keyword `structures=`, or none)")
    if "structure_settings" in inputs:
        try:
            structure_spec(inputs["structure_settings"].get_dict())
        except InputError as err:
            return str(err)
    validate = inputs.get("validate", {})
    run_validation = inputs.get("run_validation")
    settings = validate.get("settings", orm.Dict())
    if (run_validation is None or run_validation.value) and "structures" in inputs \
            and settings.get("suite") is None and settings.get("structure") is None \
            and suite_for(inputs["structures"].species) is None:
        return (f"the structures' species {inputs['structures'].species} have no obvious "
                "property suite (one fcc or bcc element, or Si): give the crystal to "
                "validate on as validate.settings.structure (suite 'bulk'; a compound or "
                "alloy), name validate.settings.suite, or set run_validation=False")
    if (run_validation is None or run_validation.value) and "calculator" not in validate \
            and "calculator" not in inputs.get("reference", {}) \
            and validate.get("settings", orm.Dict()).get("reference", "calculator") == "calculator":
        return ("the property validation compares with a calculator: give "
                "`validate.calculator` (needed with `reference.reference_workflow`), a table "
                "in `validate.settings.reference`, or `run_validation=False`")
    return None


def _element_and_lattice(element, lattice, structure_settings) -> tuple[str, str]:
    """``element`` and ``lattice`` of the pipeline builder: the arguments, else those of
    ``overrides["structure_settings"]``, else Cu and fcc; InputError when both name one
    and they differ (an override was silently replaced by the argument's default)."""
    out = []
    for name, given, default in (("element", element, "Cu"), ("lattice", lattice, "fcc")):
        other = structure_settings.get(name)
        if given is not None and other is not None and given != other:
            raise InputError(f"{name}={given!r} and overrides['structure_settings']"
                             f"['{name}']={other!r} disagree: give it once")
        out.append(given if given is not None else other if other is not None else default)
    return out[0], out[1]


class PipelineWorkChain(ProtocolMixin, WorkChain):
    """The whole chain: ``mlip.reference``, ``mlip.fit`` and ``mlip.validate``."""

    _protocol_file = "pipeline.yaml"
    _override_namespaces = ("reference", "fit", "validate")

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure_settings", valid_type=orm.Dict, required=False,
                   serializer=orm.to_aiida_type,
                   help="Training-structure protocol: `preset` ('tiny' or 'standard') plus "
                        "StructureSpec fields (element, lattice, a in Angstrom, strains as "
                        "fractions, md_temperatures in K, md_timestep_fs in fs, ...).")
        spec.input("structures", valid_type=TrainingSetData, required=False,
                   serializer=to_training_set,
                   help="Your own structures (Angstrom; a TrainingSetData or a list of "
                        "ase.Atoms), labelled by the reference, instead "
                        "of `structure_settings` (get_builder_from_protocol(structures=...)).")
        spec.input("run_validation", valid_type=orm.Bool, serializer=orm.to_aiida_type,
                   default=lambda: orm.Bool(True),
                   help="Run the property validation after the fit (true/false).")
        spec.expose_inputs(ReferenceWorkChain, namespace="reference", exclude=("structures",),
                           namespace_options={"help": "Inputs of mlip.reference."})
        spec.expose_inputs(FitWorkChain, namespace="fit", exclude=("training_set",),
                           namespace_options={"help": "Inputs of mlip.fit."})
        spec.expose_inputs(ValidateWorkChain, namespace="validate", exclude=("model",),
                           namespace_options={"help": "Inputs of mlip.validate; the "
                                              "calculator defaults to reference.calculator.",
                                              "validator": validate_settings})
        spec.inputs.validator = _validate_inputs
        spec.outline(
            if_(cls.needs_structures)(cls.generate),
            cls.run_reference, cls.inspect_reference,
            cls.run_fit, cls.inspect_fit,
            if_(cls.should_validate)(cls.run_validation, cls.inspect_validation),
        )
        spec.output("structures", valid_type=TrainingSetData,
                    help="The training structures (Angstrom).")
        spec.expose_outputs(ReferenceWorkChain)
        spec.expose_outputs(FitWorkChain)
        spec.expose_outputs(ValidateWorkChain)
        spec.outputs["properties"].required = False
        declare(spec, "ERROR_STRUCTURE_GENERATION_FAILED", "ERROR_SUB_PROCESS_FAILED")

    @classmethod
    def get_builder_from_protocol(cls, element: str | None = None, lattice: str | None = None,
                                  protocol: str | None = None, overrides: dict | None = None,
                                  *, structures=None, reference_workflow: str | None = None,
                                  reference_inputs: dict | None = None):
        """A builder for ``element``/``lattice`` with the settings of ``protocol``.

        ``element`` and ``lattice`` (default ``Cu``, ``fcc``) may also come in
        ``overrides["structure_settings"]``; given both ways, they must agree.

        ``overrides`` may hold ``structure_settings``, ``run_validation`` and the
        namespaces ``reference``, ``fit`` and ``validate`` (merged into each sub-protocol).
        Unless ``validate.settings.suite`` is given, the property suite is the one of
        ``element`` in ``lattice`` (:func:`~mlip_plugin.properties.suites.suite_for`:
        ``fcc``, ``bcc`` or ``silicon`` for diamond Si); for other lattices it is left to
        the validation, which chooses it from the model's species.  With
        ``validate.settings.structure`` (a crystal: inline, an ``ase.Atoms`` or a file) the
        suite is ``bulk``.

        ``structures`` (a :class:`~.data.TrainingSetData` or a list of ``ase.Atoms``): your
        own structures, labelled by the reference instead of generated ones; ``element``,
        ``lattice`` and ``structure_settings`` are then not used, and the suite is the one
        of the structures' species, or ``bulk`` with ``validate.settings.structure`` (what a
        compound or alloy needs)::

            builder = PipelineWorkChain.get_builder_from_protocol(
                protocol="fast", structures=[atoms, ...],
                overrides={"validate": {"settings": {"structure": cu3au_atoms}}})
        """
        from mlip_plugin.properties.suites import suite_for

        overrides = dict(overrides or {})
        subs = {name: overrides.pop(name, None) for name in ("reference", "fit", "validate")}
        if structures is not None and "structure_settings" in overrides:
            raise InputError("overrides hold `structure_settings` (how to generate structures) "
                             "or `structures` is given (your own): give one of them")
        element, lattice = _element_and_lattice(element, lattice,
                                                overrides.get("structure_settings") or {})
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        if structures is None:
            builder.structure_settings = {**inputs["structure_settings"], "element": element,
                                          "lattice": lattice}
        else:
            builder.structures = structures
        builder.run_validation = inputs.get("run_validation", True)
        ref = ReferenceWorkChain.get_protocol_inputs(protocol, subs["reference"])
        builder.reference.max_failed_fraction = ref["max_failed_fraction"]
        refuse_calculator_beside_workflow(subs["reference"], reference_workflow,
                                          "overrides['reference']")
        if reference_workflow is None:
            builder.reference.calculator = ref["calculator"]
        else:
            builder.reference.reference_workflow = reference_workflow
            builder.reference.reference_inputs = reference_inputs or {}
        builder.fit.settings = FitWorkChain.get_protocol_inputs(protocol, subs["fit"])["settings"]
        settings = ValidateWorkChain.get_protocol_settings(protocol, subs["validate"])
        if structures is None and settings.get("suite") is None \
                and settings.get("structure") is None:
            # the suite of the structures' lattice (bcc Mo, diamond Si, ...); None (hcp, ...)
            # leaves the choice to validate(), which takes it from the model's species; a
            # structure means suite 'bulk' (ValidateSettings)
            suite = suite_for([element], lattice)
            settings = {**settings, "suite": suite} if suite is not None else settings
        builder.validate.settings = settings
        return builder

    def needs_structures(self) -> bool:
        return "structures" not in self.inputs

    def generate(self):
        """Generate the structures, with the reference calculator if it is an ASE one: each
        stage that runs it (the lattice constant, each NVT run) in a ``structure_stage``
        calcfunction of its own, so that those finished stay stored when one fails and,
        with caching enabled, a rerun reuses them."""
        kwargs = {"settings": self.inputs.structure_settings}
        if "calculator" in self.inputs.reference:
            kwargs["calculator"] = self.inputs.reference.calculator
            failed = self._run_stages(kwargs)
            if failed is not None:
                return failed
        else:
            self._warn_without_calculator()
        structures, node = run_calculation(generate_structures, **kwargs)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED.format(
                message=reason("ERROR_STRUCTURE_GENERATION_FAILED", node.exit_message))
        self.ctx.structures = structures
        return None

    def _run_stages(self, kwargs: dict):
        """Add the calculator stages' results to ``kwargs``; the exit code if one fails."""
        from mlip_plugin.pipeline.structures import calculator_stages

        try:
            names = calculator_stages(structure_spec(self.inputs.structure_settings.get_dict()))
        except InputError as err:
            return self.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED.format(message=str(err))
        done = {}
        for i, name in enumerate(names):
            result, node = run_calculation(structure_stage, **kwargs, stage=orm.Str(name),
                                           **done)
            if not node.is_finished_ok:
                kept = kept_note("stages", ", ".join(
                    f"{r.get('stage')} <{r.creator.pk}>" for r in done.values()))
                return self.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED.format(
                    message=reason("ERROR_STRUCTURE_GENERATION_FAILED", node.exit_message)
                    + kept)
            done[f"stage_{i:02d}"] = result
        kwargs.update(done)
        return None

    def _warn_without_calculator(self) -> None:
        """Warn (log level WARNING, in ``verdi process report``) that the structures are
        generated without the reference method: a ``reference_workflow`` cannot run NVT
        MD or relax the lattice constant here."""
        spec = structure_spec(self.inputs.structure_settings.get_dict())
        skipped = []
        if spec.md_snapshots and spec.md_temperatures:
            skipped.append(f"the NVT snapshots (md_snapshots={spec.md_snapshots} at "
                           f"md_temperatures={list(spec.md_temperatures)} K) are skipped")
        if spec.a is None:
            skipped.append("the lattice constant is ASE's tabulated one (or a generic "
                           "guess), not relaxed with the reference method")
        if skipped:
            self.logger.warning(
                "reference.reference_workflow is not an in-process ASE calculator, so the "
                f"structures are generated without it: {'; '.join(skipped)}. Give "
                "structure_settings.a (Angstrom) and md_snapshots=0 to silence this, or "
                "label MD snapshots of your own as `structures`.")

    def run_reference(self):
        structures = self.ctx.get("structures") or self.inputs.structures
        self.out("structures", structures)
        inputs = AttributeDict(self.exposed_inputs(ReferenceWorkChain, namespace="reference"))
        inputs.structures = structures
        return ToContext(reference=self.submit(ReferenceWorkChain, **inputs))

    def _check(self, node):
        """Attach ``node``'s outputs; the exit code to return if it failed, else None."""
        self.out_many(self.exposed_outputs(node, node.process_class))
        if node.is_finished_ok:
            return None
        return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
            name=node.process_label, pk=node.pk, status=node.exit_status,
            message=node.exit_message or node.process_state.value)

    def inspect_reference(self):
        return self._check(self.ctx.reference)

    def run_fit(self):
        inputs = AttributeDict(self.exposed_inputs(FitWorkChain, namespace="fit"))
        inputs.training_set = self.ctx.reference.outputs.training_set
        return ToContext(fit=self.submit(FitWorkChain, **inputs))

    def inspect_fit(self):
        return self._check(self.ctx.fit)

    def should_validate(self) -> bool:
        return self.inputs.run_validation.value

    def run_validation(self):
        inputs = AttributeDict(self.exposed_inputs(ValidateWorkChain, namespace="validate"))
        inputs.model = self.ctx.fit.outputs.model
        if "calculator" not in inputs and "calculator" in self.inputs.reference:
            inputs.calculator = self.inputs.reference.calculator
        return ToContext(validate=self.submit(ValidateWorkChain, **inputs))

    def inspect_validation(self):
        return self._check(self.ctx.validate)
