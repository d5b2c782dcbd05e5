"""``MLIPValidation``: the property suite on a fitted model, as a pyiron job.

A thin wrapper of :func:`mlip_plugin.pipeline.validate`.  The model comes from a linked
:class:`~.fit_job.MLIPFit` job (recorded in the input and as the job's ``parentid``).
"""

from __future__ import annotations

from pathlib import Path

from mlip_plugin.errors import InputError
from mlip_plugin.models import Model
from mlip_plugin.pipeline.config import ValidateSettings
from mlip_plugin.pipeline.reference import CalculatorSpec

from .base import (
    MLIPJob,
    input_reference,
    link_property,
    model_from_text,
    settings_property,
    settings_to_dict,
)
from .fit_job import MLIPFit
from .reference_job import MLIPReferenceData

__all__ = ["MLIPValidation", "check_settings"]

#: Folder in the working directory with the reference calculator's properties, one file per
#: property group: kept when a later group fails, so a repaired job does not recompute them.
CACHE_FOLDER = "reference_properties"


def check_settings(settings: ValidateSettings) -> None:
    """Settings an :class:`MLIPValidation` job can run: known property groups, and no
    ``along_path`` (see the class docstring).

    Raises
    ------
    InputError
        Naming the setting (``validate.properties``, ``validate.along_path``, ...).
    """
    settings.check_groups()
    if settings.along_path:
        raise InputError(
            f"validate.along_path={settings.along_path!r}: an MLIPValidation job validates "
            "the fit job's final model only; the property error along the solution path "
            "needs the fit's path (its Gram matrices and solution path), which an MLIPFit "
            "job does not store. Set along_path=[] here, and run the `mlip run` pipeline "
            "(validate.along_path in its configuration) for that curve")


class MLIPValidation(MLIPJob):
    """A fitted model + a property suite → model vs reference values with errors in %.

    Input (``job.input``)
    ---------------------
    validate : dict
        The fields of :class:`~mlip_plugin.pipeline.config.ValidateSettings` (suite,
        preset, reference, properties, ...; ``structure``, the crystal of suite ``bulk``,
        given as an ``ase.Atoms``, an inline mapping or a file path and stored inline);
        set with ``job.settings = ...``, which checks the property groups at once.
        ``along_path`` must stay empty: the property error along the solution path needs
        the fit's path (its Gram matrices and solution path), which an :class:`MLIPFit`
        job does not store; the ``mlip run`` pipeline (``validate.along_path`` in its
        configuration) computes that curve.
    fit_job : dict
        ``job_id``, ``job_name``, ``project``, ``job_type`` of the :class:`MLIPFit` job whose
        model is validated; set with ``job.fit_job = fit`` (the job, its id or name, or
        ``pr.inspect(name)``; None removes it).  The job table's ``parentid`` records it
        when the validation is saved and when it runs.
    reference : dict or None
        The reference calculator spec the properties are compared with.  None (default):
        the reference calculator of the job that produced the fit's training data.

    The reference calculator's properties are kept in the working directory
    (``reference_properties/``, one file per property group), so a job repaired after the
    reference failed on one group (``job.run(repair=True)``) does not recompute the others.

    Output (``job.output``)
    -----------------------
    properties : list of dict
        One row per property: ``name``, ``unit``, ``model``, ``reference``, ``abs_error``,
        ``error_percent``.
    result : dict
        The whole validation result (``ValidationResult.to_dict()``).
    reference : dict
        The reference calculator spec that was used.
    """

    _parent_link = "fit_job"

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.validate = settings_to_dict(ValidateSettings())
        self.input.reference = None

    settings = settings_property(ValidateSettings, "validate",
                                 "``input.validate`` as ValidateSettings.",
                                 check=check_settings)
    fit_job = link_property("fit_job", MLIPFit,
                            doc="The link to the fit job whose model is validated.")

    @property
    def reference(self) -> CalculatorSpec | None:
        """The reference calculator spec given in the input (None: from the chain)."""
        spec = self.input.get("reference")
        return None if spec is None else input_reference(spec)

    @reference.setter
    def reference(self, spec) -> None:
        self.input.reference = None if spec is None else CalculatorSpec.coerce(spec).to_dict()

    @property
    def properties(self) -> list[dict]:
        """The rows of the last run (empty before it ran)."""
        return [dict(row) for row in self.output.get("properties") or []]

    def _resolve(self, settings: ValidateSettings) -> tuple[Model, CalculatorSpec | None]:
        """The model of the linked fit job and the reference: the input's calculator spec,
        else (for ``settings.reference == "calculator"``) the calculator of the job that
        produced the fit's training data, else None (``settings.reference`` is a table)."""
        fit_job = self._load_link("fit_job", MLIPFit)
        if fit_job is None:
            raise InputError("MLIPValidation has no model: set job.fit_job = <an MLIPFit job>")
        reference = self.reference
        if reference is None and settings.reference == "calculator":
            if fit_job.training_job is None:
                raise InputError(
                    f"fit job {fit_job.job_name!r} was given its training data directly, so "
                    "there is no reference calculator to compare with; set "
                    "job.reference = {'calculator': ..., 'parameters': {...}} or "
                    "job.input.validate['reference'] = <a JSON table of reference values>")
            reference = fit_job._load_link("training_job", MLIPReferenceData).reference
        return fit_job.get_model(), reference

    def _run_step(self) -> tuple[str, str]:
        settings = self.settings
        check_settings(settings)  # job.input.validate may have been edited directly
        model, reference = self._resolve(settings)
        from mlip_plugin.pipeline.validate import validate  # imported late

        cache = Path(self.working_directory) / CACHE_FOLDER
        result = validate(model, settings, reference=reference, cache_dir=cache)
        self.output.reference = (reference.to_dict() if reference is not None
                                 else {"table": str(settings.reference)})
        self.output.properties = [dict(row) for row in result.rows]
        self.output.result = result.to_dict()
        errors = {r["name"]: abs(r["error_percent"]) for r in result.rows
                  if r["error_percent"] is not None}
        message = f"{len(result.rows)} properties of suite {result.suite!r} compared"
        if errors:
            worst = max(errors, key=errors.get)
            message += (f"; mean |error| {sum(errors.values()) / len(errors):.2f} %, largest "
                        f"{errors[worst]:.2f} % ({worst})")
        return "finished", message

    def get_model(self) -> Model:
        """The validated model (the linked fit job's)."""
        return model_from_text(self._load_link("fit_job", MLIPFit).output.model_json)

