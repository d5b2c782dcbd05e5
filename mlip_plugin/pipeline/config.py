"""The one configuration schema of ``mlip run`` / ``mlip fit`` (YAML), validated.

Every section is a dataclass; an unknown key is an :class:`InputError` that names the
section, the key and the closest allowed key.  Example (the defaults of ``mlip demo``)::

    output: results
    structures: {preset: tiny, element: Cu, lattice: fcc}
    reference: {calculator: ase.calculators.emt.EMT, parameters: {}}
    fit:
      basis: {correlation_order: 3, total_degree: 10, r_cut: 5.0}
      solver: omp
      max_active: 150
    validate: {suite: fcc, preset: fast}

Give either ``structures`` (+ ``reference``) to generate and label data, or ``data`` to
read existing files.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import InputError
from .reference import DEFAULT_REFERENCE, CalculatorSpec
from .structures import StructureSpec

__all__ = ["DataSettings", "FitSettings", "ValidateSettings", "RunConfig", "load_config",
           "check_keys", "coerce_settings"]

SOLVERS = ("omp", "asp", "rrqr", "ridge", "blr", "ard")
#: Solvers that give a path of models of growing size (``max_active``, selection on it):
#: OMP, the ℓ1 homotopy and sequential ARD (Tipping & Faul's evidence maximisation).
PATH_SOLVERS = ("omp", "asp", "ard")
MODELS = ("ace", "kernel")
SELECTIONS = ("validation", "final")


def check_keys(section: str, given: Mapping, allowed) -> None:
    """Raise InputError for keys of ``given`` not in ``allowed``, suggesting a close one."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"unknown key {key!r} in section {section!r} of the configuration{hint} "
                f"Allowed keys: {sorted(allowed)}"
            )


def coerce_settings(cls, section: str, doc):
    """``cls`` from None (defaults), an instance (kept) or a mapping (keys checked)."""
    if doc is None:
        return cls()
    if isinstance(doc, cls):
        return doc
    if not isinstance(doc, Mapping):
        raise InputError(f"section {section!r} must be a mapping, got {type(doc).__name__}")
    check_keys(section, doc, [f.name for f in fields(cls)])
    try:
        return cls(**doc)
    except TypeError as err:
        raise InputError(f"section {section!r}: {err}") from err


@dataclass
class DataSettings:
    """Existing reference data (instead of generating it)."""

    train: str = ""
    test: str = ""
    energy_key: str | None = None
    forces_key: str | None = None
    stress_key: str | None = None
    virial_key: str | None = None
    units: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.train:
            raise InputError("section 'data' needs 'train': the path of the training data")

    def read_kwargs(self) -> dict:
        return {"energy_key": self.energy_key, "forces_key": self.forces_key,
                "stress_key": self.stress_key, "virial_key": self.virial_key,
                "units": self.units or None}


@dataclass
class FitSettings:
    """How to fit a model.

    ``model`` is ``"ace"`` (sparse linear ACE) or ``"kernel"`` (GDML force field of one
    molecule).  For ACE, ``basis`` holds :class:`mlip_plugin.ace.ACEBasis` keywords (elements
    come from the data; ``r0``, unless given, is the median nearest-neighbour distance of
    each species pair in the training data, see :func:`mlip_plugin.ace.basis_from_data`;
    ``r0: covalent`` takes the covalent radii instead), ``prior`` the smoothness prior
    (``kind`` and its parameters),
    ``weights`` the default weights (``energy``, ``forces``, ``virial``) and
    ``by_config_type`` overrides; ``select_on_prior`` makes OMP/ASP choose among the
    prior-scaled columns A Γ⁻¹ (smooth functions first) instead of unit-norm columns —
    on the Zuo et al. data at 5317 functions this roughly halves the test errors of a
    300-function model (benchmarks/README.md).  ``solver`` is one of :data:`SOLVERS`; the
    path solvers (:data:`PATH_SOLVERS`: OMP, ASP and sequential ARD) grow a model up to
    ``max_active`` functions and pick one along the way by ``selection``; RRQR, ridge and
    BLR are dense (BLR also gives a committee for uncertainties).  ``e0`` is the per-atom
    reference energy, see :func:`mlip_plugin.data.resolve_e0` (``"auto"``: isolated-atom
    configurations where present, else 0 when the energies are on the free-atom scale,
    |E|/N < 20 eV as from VASP or GPAW, else the least-squares mean).  For kernels, ``kernel`` holds
    :class:`mlip_plugin.kernels.TrainSettings` keywords plus an optional ``sigmas`` grid
    (σ is then chosen on the validation data).
    """

    basis: dict = field(default_factory=lambda: {"correlation_order": 3, "total_degree": 10,
                                                 "r_cut": 5.5})
    prior: dict = field(default_factory=lambda: {"kind": "algebraic", "p": 2.0})
    weights: dict = field(default_factory=lambda: {"energy": 30.0, "forces": 1.0,
                                                   "virial": 1.0})
    by_config_type: dict = field(default_factory=dict)
    solver: str = "omp"
    max_active: int = 150
    validation_fraction: float = 0.15
    selection: str = "validation"
    tsvd: bool = True
    e0: str | dict = "auto"
    seed: int = 0
    model: str = "ace"
    kernel: dict = field(default_factory=dict)
    select_on_prior: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise InputError(f"fit.model={self.model!r} is not one of {MODELS}")
        if self.solver not in SOLVERS:
            raise InputError(f"fit.solver={self.solver!r} is not one of {SOLVERS}")
        if self.selection not in SELECTIONS:
            raise InputError(f"fit.selection={self.selection!r} is not one of {SELECTIONS}")
        if int(self.max_active) < 1:
            raise InputError(f"fit.max_active={self.max_active!r} must be a positive integer")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise InputError(
                f"fit.validation_fraction={self.validation_fraction!r} must be in [0, 1)")
        check_keys("fit.weights", self.weights, ["energy", "forces", "virial"])


@dataclass
class ValidateSettings:
    """Which property suite to run, with which preset, against what.

    ``reference``: ``"calculator"`` (the reference calculator, run on the same properties)
    or the path of a JSON table of reference values. ``properties``: the property groups
    to run (default: the suite's own). ``along_path``: basis sizes at which the groups
    ``along_path_properties`` are also evaluated (property error vs number of basis
    functions).
    ``tolerance_percent``: for selecting the smallest model within this much of the best.
    """

    suite: str = "fcc"
    preset: str = "fast"
    reference: str = "calculator"
    properties: list | None = None
    along_path: list = field(default_factory=list)
    along_path_properties: list = field(default_factory=lambda: ["elastic", "vacancy",
                                                                 "surfaces"])
    tolerance_percent: float = 5.0


@dataclass
class RunConfig:
    """A whole run: data (generated or read), fit, validation, output folder."""

    output: str = "results"
    structures: StructureSpec | None = None
    reference: CalculatorSpec = field(default_factory=lambda: CalculatorSpec.coerce(
        DEFAULT_REFERENCE))
    data: DataSettings | None = None
    fit: FitSettings = field(default_factory=FitSettings)
    validate: ValidateSettings | None = field(default_factory=ValidateSettings)

    @classmethod
    def from_dict(cls, doc: Mapping, base_dir: str | os.PathLike = ".") -> RunConfig:
        if not isinstance(doc, Mapping):
            raise InputError("the configuration must be a YAML mapping of sections")
        check_keys("top level", doc, [f.name for f in fields(cls)])
        structures = None
        if doc.get("structures") is not None:
            if not isinstance(doc["structures"], Mapping):
                raise InputError("section 'structures' must be a mapping of settings")
            s = dict(doc["structures"])
            preset = s.pop("preset", "tiny")
            check_keys("structures", s, [f.name for f in fields(StructureSpec)])
            structures = StructureSpec.from_preset(preset, **s)
        data = coerce_settings(DataSettings, "data", doc["data"]) if doc.get("data") else None
        if data is not None:
            base = Path(base_dir)
            data.train = str(base / data.train) if data.train else ""
            data.test = str(base / data.test) if data.test else ""
        if structures is None and data is None:
            raise InputError("the configuration needs a 'structures' section (generate and "
                             "label data) or a 'data' section (read existing data)")
        if structures is not None and data is not None:
            raise InputError("give either 'structures' or 'data', not both")
        validate = (None if "validate" in doc and doc["validate"] is None
                    else coerce_settings(ValidateSettings, "validate", doc.get("validate")))
        return cls(output=str(doc.get("output", "results")), structures=structures,
                   reference=CalculatorSpec.coerce(doc.get("reference") or DEFAULT_REFERENCE),
                   data=data, fit=coerce_settings(FitSettings, "fit", doc.get("fit")),
                   validate=validate)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["reference"] = self.reference.to_dict()
        return out


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a YAML configuration; relative data paths are taken relative to
    the configuration file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"configuration file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"{str(path)!r} is not valid YAML: {err}") from err
    return RunConfig.from_dict(doc or {}, base_dir=path.parent)
