"""``MLIPFit``: fit a model (linear ACE or kernel) as a pyiron job.

A thin wrapper of :func:`mlip_plugin.pipeline.fit`.  The training data come from a linked
:class:`~.reference_job.MLIPReferenceData` job (recorded in the input and as the job's
``parentid`` in the job table) or are stored in the input directly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlip_plugin.data import Configuration, hash_configs
from mlip_plugin.errors import InputError
from mlip_plugin.models import Model
from mlip_plugin.pipeline.config import FitSettings

from .arrays import arrays_to_configurations, configurations_to_arrays
from .base import (
    MODEL_FILE,
    MLIPJob,
    link_property,
    model_from_text,
    model_to_text,
    settings_property,
    settings_to_dict,
)
from .reference_job import MLIPReferenceData

__all__ = ["MLIPFit"]

log = logging.getLogger(__name__)


def _data_property(key: str, link_key: str, doc: str) -> property:
    """Configurations given directly (``input[key]``) or by a linked reference job
    (``input[link_key]``); setting one removes the other, and setting None removes both."""

    def getter(self) -> list[Configuration] | None:
        if self._get_link(link_key) is not None:
            return self._load_link(link_key, MLIPReferenceData).configurations
        arrays = self.input.get(key)
        if arrays is None:
            return [] if key == "configurations" else None
        return arrays_to_configurations(arrays)

    def setter(self, configs) -> None:
        if configs is None:
            if key in self.input:
                del self.input[key]
            self._drop(link_key)
            return
        arrays = configurations_to_arrays(configs)
        if len(arrays["n_atoms"]) == 0:
            raise InputError(f"{key}=[] is empty; give labelled configurations "
                             "(mlip_plugin.data.read_configs) or link a job instead")
        self.input[key] = arrays
        self._drop(link_key)

    return property(getter, setter, doc=doc)


class MLIPFit(MLIPJob):
    """Labelled configurations + fit settings → a model file and its metrics.

    Input (``job.input``)
    ---------------------
    fit : dict
        The fields of :class:`~mlip_plugin.pipeline.config.FitSettings` (basis, prior,
        weights, solver, max_active, validation_fraction, ...); set them with
        ``job.settings = FitSettings(...)`` or edit the dict.
    training_job : dict
        ``job_id``, ``job_name``, ``project``, ``job_type`` of the job whose configurations
        are the training data; set with ``job.training_job = ref_job`` (the job, its id or
        name, or ``pr.inspect(name)``).  The job table's ``parentid`` records it when the
        fit is saved and when it runs.
    configurations : arrays
        Training data given directly (``job.configurations = [...]``), instead of a job.
    validation_job, validation_configurations
        Optional held-out data for model selection, given the same two ways; without them
        the fit splits off ``fit["validation_fraction"]`` of the training data.
    test_job, test_configurations
        Optional test data, only evaluated (``metrics["errors"]["test"]``).

    Setting a link or a data property to None removes it (``job.validation_job = None``
    or ``job.validation_configurations = None``: split off the training data again).

    Output (``job.output``)
    -----------------------
    model_json : str
        The model file (JSON); ``job.get_model()`` and ``job.get_calculator()`` load it.
        A copy is written to ``model.json`` in the working directory.
    metrics : dict
        Errors on the training, validation and test data
        (``errors/train/energy_rmse_meV_per_atom``, ...) and the fit's own figures.
    provenance : dict
        The model's provenance record.
    training_data : dict
        Number of configurations, sha256 of the data, and where they came from.
    """

    _parent_link = "training_job"

    def __init__(self, project, job_name):
        super().__init__(project, job_name)
        self.input.fit = settings_to_dict(FitSettings())
        self._model_cache: tuple[str, Model] | None = None

    # -- input -----------------------------------------------------------------------
    settings = settings_property(FitSettings, "fit", "``input.fit`` as FitSettings.")
    training_job = link_property(
        "training_job", MLIPReferenceData, replaces="configurations",
        doc="The link to the job that produced the training data (None if given directly).")
    validation_job = link_property(
        "validation_job", MLIPReferenceData, replaces="validation_configurations",
        doc="The link to the job whose configurations are the validation data, if any.")
    test_job = link_property(
        "test_job", MLIPReferenceData, replaces="test_configurations",
        doc="The link to the job whose configurations are the test data, if any.")
    configurations = _data_property(
        "configurations", "training_job", "The training configurations (from the linked "
        "job or the input; [] if none).")
    validation_configurations = _data_property(
        "validation_configurations", "validation_job", "The validation configurations, if "
        "any (None: split off the training data).")
    test_configurations = _data_property(
        "test_configurations", "test_job", "The test configurations, if any (only "
        "evaluated).")

    # -- the step --------------------------------------------------------------------
    def _run_step(self) -> tuple[str, str]:
        settings = self.settings
        train = self.configurations
        if not train:
            raise InputError("MLIPFit has no training data: set job.training_job = <an "
                             "MLIPReferenceData job> or job.configurations = [...]")
        validation, test = self.validation_configurations, self.test_configurations
        from mlip_plugin.pipeline.fit import fit  # imported late: the fitting code

        result = fit(train, settings, validation=validation, test=test)
        text = model_to_text(result.model)
        self.output.model_json = text
        self._model_cache = (text, result.model)
        Path(self.working_directory).mkdir(parents=True, exist_ok=True)
        (Path(self.working_directory) / MODEL_FILE).write_text(text)
        self.output.metrics = result.metrics
        self.output.provenance = result.model.provenance.to_dict()
        link = self.training_job
        self.output.training_data = {
            "n_configurations": len(train), "sha256": hash_configs(train),
            "source": (f"job {link['job_name']!r} (id {link['job_id']})" if link else "input"),
            "n_validation": 0 if validation is None else len(validation),
            "n_test": 0 if test is None else len(test)}
        return "finished", (f"{result.model.family} model fitted on {len(train)} "
                            f"configurations ({self.output.training_data['source']})")

    # -- output ----------------------------------------------------------------------
    def get_model(self) -> Model:
        """The fitted model, loaded from the job's HDF5 (identical to the one fitted)."""
        text = self.output.get("model_json")
        if text is None:
            raise InputError(f"job {self.job_name!r} has no model (status "
                             f"{self.status.string!r}); run it first")
        if self._model_cache is None or self._model_cache[0] != text:
            self._model_cache = (text, model_from_text(text))
        return self._model_cache[1]

    def get_calculator(self, **kwargs):
        """An ASE calculator (:class:`~mlip_plugin.calculators.MLIPCalculator`) of the
        model; ``kwargs`` go to the calculator."""
        from mlip_plugin.calculators import MLIPCalculator

        return MLIPCalculator(model=self.get_model(), **kwargs)

    @property
    def model_path(self) -> Path:
        """The model file in the working directory, written again from the HDF5 if it is
        missing (e.g. after ``job.compress()`` or copying the HDF5 file alone)."""
        path = Path(self.working_directory) / MODEL_FILE
        if not path.is_file():
            self.get_model()  # raises if there is none
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.output.model_json)
        return path

