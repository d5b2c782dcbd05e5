"""``mlip.validate``: physical properties of a model compared with its reference."""

from __future__ import annotations

from collections.abc import Mapping

from aiida import orm
from aiida.engine import WorkChain, if_

from mlip_plugin.errors import InputError

from .calculations import reference_property, run_calculation, validate_model
from .data import ModelData
from .exit_codes import declare, kept_note, reason
from .fit import check_settings
from .protocols import ProtocolMixin

__all__ = ["ValidateWorkChain", "validate_settings", "settings_node"]


def settings_node(value) -> orm.Dict:
    """The ``settings`` Dict of a mapping of ValidateSettings fields (the port's serializer):
    ``structure`` (an ``ase.Atoms``, a structure file or an inline mapping) is stored in its
    inline form, so the node records the crystal itself, as MLIPValidation does.

    Raises
    ------
    InputError
        If ``structure`` is not a readable, periodic crystal (naming the problem).
    """
    if isinstance(value, Mapping) and value.get("structure") is not None:
        from mlip_plugin.pipeline.config import bulk_structure
        from mlip_plugin.properties.suites import structure_to_dict

        value = {**value, "structure": structure_to_dict(bulk_structure(value["structure"]))}
    return orm.to_aiida_type(value)


def validate_settings(inputs, _ctx=None):
    """The settings must make a :class:`ValidateSettings` with an empty ``along_path`` and
    property groups of its suite, and hold a ``structure`` inline (also the validator of
    :class:`PipelineWorkChain`'s ``validate`` namespace)."""
    from mlip_plugin.pipeline.config import ValidateSettings

    if "settings" not in inputs:
        return None
    structure = inputs["settings"].get("structure")
    if structure is not None and not isinstance(structure, Mapping):
        return (f"settings.structure is a {type(structure).__name__}: an orm.Dict must hold "
                "the crystal inline {symbols, positions, cell, pbc}; give the settings as a "
                "plain dict, which converts an ase.Atoms or a structure file to that form")
    message = check_settings(ValidateSettings, inputs["settings"], "settings")
    if message is None:
        try:  # defects and surfaces in suite bulk, unknown groups: refused as MLIPValidation does
            ValidateSettings(**inputs["settings"].get_dict()).check_groups()
        except InputError as err:
            message = f"settings: {err}"
    if message is None and inputs["settings"].get("along_path"):
        message = (f"settings.along_path={inputs['settings'].get('along_path')!r}: "
                   "mlip.validate validates one model; the property error along the fit's "
                   "path needs the path fit, which ModelData does not hold. Leave along_path "
                   "empty here and run the `mlip run` pipeline (validate.along_path in its "
                   "configuration) for that curve")
    return message


def _validate_inputs(inputs, _ctx=None):
    message = validate_settings(inputs)
    if message is None and "calculator" not in inputs and inputs["settings"].get(
            "reference", "calculator") == "calculator":
        message = ("settings.reference='calculator' needs the input `calculator` (the "
                   "reference ASE calculator spec); give it or a table of reference values")
    return message


class ValidateWorkChain(ProtocolMixin, WorkChain):
    """Run a property suite (:func:`mlip_plugin.pipeline.validate`).

    With a reference ``calculator``, each of its properties (a property group, one
    interstitial site or one surface) is computed in a calcfunction of its own
    (``reference_property``), so that those finished are stored when a later one fails; with
    caching enabled a rerun reuses them and computes only the rest.  ``validate_model`` then
    computes the model's suite and compares.
    """

    _protocol_file = "validate.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("model", valid_type=ModelData, help="The model to validate.")
        spec.input("settings", valid_type=orm.Dict, serializer=settings_node,
                   default=lambda: orm.Dict({}),
                   help="ValidateSettings fields: suite (default: from the model's "
                        "species), preset, reference ('calculator' or a JSON table of "
                        "values), properties, tolerance_percent (%), symbol, "
                        "lattice_constant (Angstrom), structure (suite 'bulk': the crystal "
                        "inline, {symbols, positions (Angstrom), cell (Angstrom), pbc}; in "
                        "a plain dict also an ase.Atoms or a structure file, stored inline); "
                        "along_path must stay empty (the property curve along the fit's "
                        "path is made by `mlip run`).")
        spec.input("calculator", valid_type=orm.Dict, serializer=orm.to_aiida_type,
                   required=False,
                   help="Reference ASE calculator spec {'calculator', 'parameters'} whose "
                        "properties the model is compared with (results in eV, Angstrom, "
                        "GPa, J/m^2, THz as the property table states).")
        spec.inputs.validator = _validate_inputs
        spec.outline(if_(cls.uses_calculator)(cls.run_reference), cls.validate)
        spec.output("properties", valid_type=orm.Dict,
                    help="Validation result: `properties` (rows with name, unit, model, "
                         "reference, abs_error, error_percent in %, as in metrics.json), the "
                         "model's and the reference's property tables, timings (s).")
        declare(spec, "ERROR_VALIDATION_FAILED")

    @classmethod
    def get_builder_from_protocol(cls, model: ModelData, protocol: str | None = None,
                                  overrides: dict | None = None, *,
                                  calculator: dict | None = None):
        """A builder with the property suite of ``protocol``; ``calculator`` is the reference.

        With ``settings.structure`` (suite ``bulk``) the protocol's property groups that
        suite has not (``vacancy``, ...) are left out, unless ``overrides`` name them.
        """
        builder = cls.get_builder()
        builder.model = model
        builder.settings = cls.get_protocol_settings(protocol, overrides)
        if calculator is not None:
            builder.calculator = calculator
        return builder

    @classmethod
    def get_protocol_settings(cls, protocol: str | None = None,
                              overrides: dict | None = None) -> dict:
        """The ``settings`` of ``protocol`` with ``overrides``; beside a ``structure``, only
        the protocol's groups that suite ``bulk`` has (the fast protocol's vacancy goes)."""
        from mlip_plugin.properties.suites import BULK, SUITES

        settings = cls.get_protocol_inputs(protocol, overrides)["settings"]
        given = ((overrides or {}).get("settings") or {})
        if ((settings.get("structure") is not None or settings.get("suite") == BULK)
                and settings.get("properties") is not None and "properties" not in given):
            settings["properties"] = [g for g in settings["properties"]
                                      if g in SUITES[BULK][2]]
        return settings

    def uses_calculator(self) -> bool:
        return "calculator" in self.inputs

    def run_reference(self):
        """The reference calculator's properties, one ``reference_property`` each."""
        from mlip_plugin.errors import MLIPError
        from mlip_plugin.pipeline.config import ValidateSettings
        from mlip_plugin.pipeline.validate import reference_units, resolve_settings

        try:
            resolved = resolve_settings(self.inputs.model.get_model(),
                                        ValidateSettings(**self.inputs.settings.get_dict()))
            n_units = len(reference_units(resolved))
        except MLIPError as err:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=str(err))
        settings = orm.Dict({**self.inputs.settings.get_dict(), "suite": resolved.suite,
                             "symbol": resolved.symbol})
        self.ctx.reference = {}
        for i in range(n_units):
            document, node = run_calculation(reference_property, settings=settings,
                                             calculator=self.inputs.calculator,
                                             unit=orm.Int(i))
            if not node.is_finished_ok:
                pks = ", ".join(f"<{n.creator.pk}>" for n in self.ctx.reference.values())
                kept = kept_note(f"{len(self.ctx.reference)} reference properties",
                                 pks and f"reference_property {pks}")
                return self.exit_codes.ERROR_VALIDATION_FAILED.format(
                    message=reason("ERROR_VALIDATION_FAILED", node.exit_message) + kept)
            self.ctx.reference[f"reference_{i:03d}"] = document
        self.report(f"{n_units} reference properties of suite {resolved.suite!r}")
        return None

    def validate(self):
        """Run the model's property suite and compare."""
        kwargs = {"model": self.inputs.model, "settings": self.inputs.settings}
        if "calculator" in self.inputs:
            kwargs["calculator"] = self.inputs.calculator
            kwargs.update(self.ctx.reference)
        properties, node = run_calculation(validate_model, **kwargs)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(
                message=reason("ERROR_VALIDATION_FAILED", node.exit_message))
        self.out("properties", properties)
        return None
