"""``mlip.fit``: fit a model to a training set, and measure its errors on a test set."""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, if_

from mlip_plugin.errors import InputError

from .calculations import evaluate_model, fit_model, run_calculation
from .data import ModelData, TrainingSetData
from .exit_codes import declare, reason
from .protocols import ProtocolMixin

__all__ = ["FitWorkChain", "check_settings"]


def check_settings(cls, node: orm.Dict, name: str) -> str | None:
    """An error message if the dataclass ``cls`` rejects the settings in ``node``."""
    from dataclasses import fields

    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(node.get_dict()) - allowed)
    if unknown:
        return f"{name}: unknown keys {unknown}; allowed: {sorted(allowed)}"
    try:
        cls(**node.get_dict())
    except (InputError, TypeError, ValueError) as err:
        return f"{name}: {err}"
    return None


def _validate_inputs(inputs, _ctx=None):
    from mlip_plugin.pipeline.config import FitSettings

    if "settings" in inputs:
        return check_settings(FitSettings, inputs["settings"], "settings")
    return None


class FitWorkChain(ProtocolMixin, WorkChain):
    """Fit (:func:`mlip_plugin.pipeline.fit`) and evaluate, each a recorded calcfunction."""

    _protocol_file = "fit.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("training_set", valid_type=TrainingSetData,
                   help="Labelled configurations: energies (eV), forces (eV/Angstrom), "
                        "stresses (eV/Angstrom^3).")
        spec.input("settings", valid_type=orm.Dict, serializer=orm.to_aiida_type,
                   default=lambda: orm.Dict({}),
                   help="FitSettings fields: basis {correlation_order, total_degree, r_cut "
                        "(Angstrom)}, prior, weights (dimensionless), solver, max_active "
                        "(number of basis functions), validation_fraction (0 to 1), "
                        "selection, tsvd, e0 ('auto' or eV per species), seed.")
        spec.input("validation", valid_type=TrainingSetData, required=False,
                   help="Labelled configurations for model selection along the solution "
                        "path (same units as `training_set`); default: a random "
                        "`validation_fraction` of the training set.")
        spec.input("test_set", valid_type=TrainingSetData, required=False,
                   help="Labelled configurations never seen by the fit; their errors "
                        "(meV/atom, eV/Angstrom) become the output `test_errors`.")
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.fit, if_(cls.has_test_set)(cls.evaluate))
        spec.output("model", valid_type=ModelData,
                    help="The fitted model file with its provenance record.")
        spec.output("metrics", valid_type=orm.Dict,
                    help="Fit metrics: errors on training and validation data "
                         "(energies meV/atom, forces eV/Angstrom, virials meV/atom), path "
                         "summary, timings (s).")
        spec.output("test_errors", valid_type=orm.Dict, required=False,
                    help="Errors on `test_set` (energies meV/atom, forces eV/Angstrom, "
                         "virials meV/atom).")
        declare(spec, "ERROR_FIT_FAILED", "ERROR_EVALUATION_FAILED")

    @classmethod
    def get_builder_from_protocol(cls, training_set: TrainingSetData,
                                  protocol: str | None = None, overrides: dict | None = None):
        """A builder with the fit settings of ``protocol`` (``fast``, ``balanced``,
        ``stringent``), ``overrides`` merged in."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.training_set = training_set
        builder.settings = inputs["settings"]
        return builder

    def has_test_set(self) -> bool:
        return "test_set" in self.inputs

    def fit(self):
        """Run the fit calcfunction."""
        kwargs = {"training_set": self.inputs.training_set, "settings": self.inputs.settings}
        if "validation" in self.inputs:
            kwargs["validation"] = self.inputs.validation
        result, node = run_calculation(fit_model, **kwargs)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_FIT_FAILED.format(
                message=reason("ERROR_FIT_FAILED", node.exit_message))
        self.report(f"fitted {result['model'].family} model <{result['model'].pk}>")
        self.out_many(result)
        return None

    def evaluate(self):
        """Errors of the fitted model on the test set."""
        errors, node = run_calculation(evaluate_model, model=self.outputs["model"],
                                       dataset=self.inputs.test_set)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EVALUATION_FAILED.format(
                message=reason("ERROR_EVALUATION_FAILED", node.exit_message))
        self.out("test_errors", errors)
        return None
