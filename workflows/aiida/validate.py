"""``mlip.validate``: physical properties of a model compared with its reference."""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain

from .calculations import run_calculation, validate_model
from .data import ModelData
from .exit_codes import declare, reason
from .fit import check_settings
from .protocols import ProtocolMixin

__all__ = ["ValidateWorkChain", "validate_settings"]


def validate_settings(inputs, _ctx=None):
    """The settings must make a :class:`ValidateSettings` with an empty ``along_path`` and
    a ``structure`` (if any) given inline, not as a file path (also the validator of
    :class:`PipelineWorkChain`'s ``validate`` namespace)."""
    from mlip_plugin.pipeline.config import ValidateSettings

    if "settings" not in inputs:
        return None
    structure = inputs["settings"].get("structure")
    if isinstance(structure, str):
        return (f"settings.structure={structure!r} is a file path: the graph would record "
                "the path, not the crystal (the file may change, and a daemon worker may "
                "not see it); give the crystal inline, {symbols, positions (Angstrom), cell "
                "(Angstrom), pbc}, e.g. mlip_plugin.properties.suites.structure_to_dict("
                "ase.io.read(path))")
    message = check_settings(ValidateSettings, inputs["settings"], "settings")
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
    """Run a property suite (:func:`mlip_plugin.pipeline.validate`) in one calcfunction."""

    _protocol_file = "validate.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("model", valid_type=ModelData, help="The model to validate.")
        spec.input("settings", valid_type=orm.Dict, serializer=orm.to_aiida_type,
                   default=lambda: orm.Dict({}),
                   help="ValidateSettings fields: suite (default: from the model's "
                        "species), preset, reference ('calculator' or a JSON table of "
                        "values), properties, tolerance_percent (%), symbol, "
                        "lattice_constant (Angstrom), structure (suite 'bulk': the crystal "
                        "inline, {symbols, positions (Angstrom), cell (Angstrom), pbc}); "
                        "along_path must stay empty (the property curve along the fit's "
                        "path is made by `mlip run`).")
        spec.input("calculator", valid_type=orm.Dict, serializer=orm.to_aiida_type,
                   required=False,
                   help="Reference ASE calculator spec {'calculator', 'parameters'} whose "
                        "properties the model is compared with (results in eV, Angstrom, "
                        "GPa, J/m^2, THz as the property table states).")
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.validate)
        spec.output("properties", valid_type=orm.Dict,
                    help="Validation result: `properties` (rows with name, unit, model, "
                         "reference, abs_error, error_percent in %, as in metrics.json), the "
                         "model's and the reference's property tables, timings (s).")
        declare(spec, "ERROR_VALIDATION_FAILED")

    @classmethod
    def get_builder_from_protocol(cls, model: ModelData, protocol: str | None = None,
                                  overrides: dict | None = None, *,
                                  calculator: dict | None = None):
        """A builder with the property suite of ``protocol``; ``calculator`` is the reference."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.model = model
        builder.settings = inputs["settings"]
        if calculator is not None:
            builder.calculator = calculator
        return builder

    def validate(self):
        """Run the property suite."""
        kwargs = {"model": self.inputs.model, "settings": self.inputs.settings}
        if "calculator" in self.inputs:
            kwargs["calculator"] = self.inputs.calculator
        properties, node = run_calculation(validate_model, **kwargs)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(
                message=reason("ERROR_VALIDATION_FAILED", node.exit_message))
        self.out("properties", properties)
        return None
