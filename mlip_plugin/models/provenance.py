"""The provenance record every model file carries."""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, fields

from .. import __version__

__all__ = ["Provenance"]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class Provenance:
    """How a model was made.

    Attributes
    ----------
    package_version : str
        mlip-plugin version that fitted the model.
    created : str
        ISO 8601 UTC timestamp.
    training_data_sha256 : str
        :func:`mlip_plugin.data.hash_configs` of the training configurations.
    n_train, n_validation : int
        Number of configurations used for fitting and for selection.
    spec : dict
        Basis or kernel specification.
    prior : dict
        Smoothness prior (kind and parameters), if any.
    weights : dict
        Default and per-config-type weights.
    solver : str
        Solver name; ``solver_parameters`` its settings.
    seed : int or None
    selected_support : list of int or None
        Indices (into the full basis) of the selected basis functions.
    path_summary : list of dict
        One entry per point of a solution path (size, λ or residual, validation error).
    validation_metrics : dict
        Errors on validation/test data.
    timings : dict
        Seconds per stage.
    extra : dict
        Anything else worth keeping (reference calculator, e0, ...).
    """

    package_version: str = __version__
    created: str = field(default_factory=_now)
    training_data_sha256: str = ""
    n_train: int = 0
    n_validation: int = 0
    spec: dict = field(default_factory=dict)
    prior: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    solver: str = ""
    solver_parameters: dict = field(default_factory=dict)
    seed: int | None = None
    selected_support: list | None = None
    path_summary: list = field(default_factory=list)
    validation_metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> Provenance:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in doc.items() if k in known}
        extra = dict(kwargs.pop("extra", {}) or {})
        extra.update({k: v for k, v in doc.items() if k not in known})
        return cls(**kwargs, extra=extra)
