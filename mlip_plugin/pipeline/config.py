"""The one configuration schema of ``mlip run`` / ``mlip fit`` (YAML), validated.

Every section is a dataclass; an unknown key is an :class:`InputError` that names the
section, the key and the closest allowed key.  Every value is checked and converted to its
type when the settings are built (a string that holds a number counts as the number, since
YAML 1.1 reads ``1e3`` as a string); anything else is an :class:`InputError` naming
``section.key``, the value and what is allowed, before any work starts.  Relative paths
(data files, a structures file, a ``validate.reference`` table) are taken relative to the
configuration file; :meth:`RunConfig.check_inputs` (``--dry-run``, and the start of a run)
checks they exist.
An example (``mlip demo`` runs a larger one, ``mlip_plugin.cli.DEMO_CONFIG``)::

    output: results
    structures: {preset: tiny, element: Cu, lattice: fcc}
    reference: {calculator: ase.calculators.emt.EMT, parameters: {}}
    fit:
      basis: {correlation_order: 3, total_degree: 10, r_cut: 5.0}
      solver: omp
      max_active: 150
    validate: {suite: fcc, preset: fast}

Give either ``structures`` (+ ``reference``) to generate and label data, or ``data`` to
read existing files.  ``structures: {file: my_structures.extxyz}`` (optional ``index``,
ASE's index of the frames, default ``":"``, all; ``format``, an ASE format name, default
from the file) labels your own structures with the ``reference`` calculator instead of
generating them (:mod:`~mlip_plugin.pipeline.structure_file`); it takes none of the
generation settings (``preset``, ``element``, ...), and labels in the file are not used.

The property validation (section ``validate``; ``validate: null``, or ``mlip fit``, skips
it) chooses its suite from the training species when ``validate.suite`` is not given (for
a structures file, the species in it): one element whose lattice (``structures.lattice``,
else ASE's reference state) is fcc or bcc gives that suite, Si in diamond gives
``silicon``; anything else (an alloy, say) is an InputError before any work.  It compares
with the run's reference calculator (``validate.reference: calculator``) by default when
the configuration has one (``structures`` runs, or a ``reference`` section); a ``data`` run
without a ``reference`` section reports the model's values only (``validate.reference:
none``, logged).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml
from ase.data import atomic_numbers

from ..ace.basis import check_cutoff
from ..ace.prior import PRIORS
from ..data.io import FORMATS
from ..data.units import conversion_factor
from ..errors import InputError
from ..properties.suites import (
    BULK,
    GROUPS,
    SUITES,
    bulk_groups_problem,
    check_crystal,
    structure_from_dict,
    structure_to_dict,
    suite_for,
    table_values,
    tabulated_lattice_constant,
)
from .reference import DEFAULT_REFERENCE, CalculatorSpec
from .structure_file import StructureFile, check_readable
from .structures import StructureSpec

__all__ = ["DataSettings", "FitSettings", "ValidateSettings", "RunConfig", "load_config",
           "check_keys", "coerce_settings", "read_reference_table"]

SOLVERS = ("omp", "asp", "rrqr", "ridge", "blr", "ard")
#: Solvers that give a path of models of growing size (``max_active``, selection on it):
#: OMP, the ℓ1 homotopy and sequential ARD (Tipping & Faul's evidence maximisation).
PATH_SOLVERS = ("omp", "asp", "ard")
MODELS = ("ace", "kernel")
SELECTIONS = ("validation", "final")
E0_RULES = ("auto", "isolated", "fit", "zero")
WEIGHT_KEYS = ("energy", "forces", "virial")
PRIOR_KEYS = ("kind", "p", "w_L", "a_n", "a_l", "sigma_n", "sigma_l")
#: ``fit.basis`` keys (keywords of :class:`mlip_plugin.ace.ACEBasis` and ``r0``)
BASIS_KEYS = ("correlation_order", "total_degree", "r_cut", "w_L", "r0", "transform_pq",
              "pair_degree", "pair_exponent")
BASIS_REQUIRED = ("correlation_order", "total_degree", "r_cut")
VALIDATE_PRESETS = ("fast", "default")
UNIT_QUANTITIES = ("energy", "length", "forces", "stress")
#: How :func:`~mlip_plugin.data.read_configs`'s errors name its settings in a configuration
DATA_OPTION_NAMES = {"format": "data.format", "energy_key": "data.energy_key",
                     "forces_key": "data.forces_key", "stress_key": "data.stress_key",
                     "virial_key": "data.virial_key"}
#: How to skip the property validation, for messages
SKIP_VALIDATION = ("or skip the property validation with 'validate: null' in the "
                   "configuration (or run mlip fit)")

log = logging.getLogger(__name__)


def check_keys(section: str, given: Mapping, allowed) -> None:
    """Raise InputError for keys of ``given`` not in ``allowed``, suggesting a close one."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"unknown key {key!r} in section {section!r} of the configuration{hint}. "
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


# -- one checker per kind of value: each returns the value converted, or raises an
# -- InputError that names the setting, the value, the type wanted and what to do.
# -- YAML 1.1 reads 1e3 (no dot) as a string: a string that is a number counts as one.

def _bad(name: str, value, wanted: str, hint: str = "") -> InputError:
    return InputError(f"{name}={value!r} ({type(value).__name__}) is not allowed: give "
                      f"{wanted}{hint}; correct it in the configuration")


def _number(value):
    """``value`` as a float if it is a real number or a string of one, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def as_float(name: str, value, minimum: float | None = None, *, above: bool = False,
             below: float | None = None) -> float:
    """A finite number ≥ ``minimum`` (> with ``above``) and < ``below``; a Python int
    stays an int (so that settings, and the hashes made of them, keep what was written)."""
    x = _number(value)
    lo_ok = minimum is None or (x is not None and (x > minimum if above else x >= minimum))
    hi_ok = below is None or (x is not None and x < below)
    if x is None or not lo_ok or not hi_ok:
        lo = "" if minimum is None else f" {'>' if above else '>='} {minimum:g}"
        hi = "" if below is None else f"{' and' if lo else ''} < {below:g}"
        raise _bad(name, value, f"a finite number{lo}{hi}")
    return value if isinstance(value, int) else x


def as_int(name: str, value, minimum: int | None = None) -> int:
    """An integer ≥ ``minimum`` (a float or numeric string of an integer value counts)."""
    x = _number(value)
    if x is None or not x.is_integer() or (minimum is not None and x < minimum):
        lo = "" if minimum is None else f" >= {minimum}"
        raise _bad(name, value, f"an integer{lo}")
    return int(x)


def as_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    raise _bad(name, value, "true or false", " (unquoted in YAML)")


def as_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name}={value!r} is not one of {tuple(choices)}; correct it in the "
                         "configuration")
    return value


def as_str(name: str, value, wanted: str = "a string") -> str:
    if not isinstance(value, str):
        raise _bad(name, value, wanted)
    return value


def as_mapping(name: str, value, default=None) -> dict:
    """A plain dict copy of a mapping (None: ``default``) with string keys."""
    if value is None and default is not None:
        return dict(default)
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _bad(name, value, "a mapping of name: value pairs")
    return dict(value)


def as_list(name: str, value, wanted: str = "a list") -> list:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _bad(name, value, wanted)
    return list(value)


def _default(obj, name: str):
    f = next(f for f in fields(obj) if f.name == name)
    return f.default_factory() if f.default_factory is not MISSING else f.default


@dataclass
class DataSettings:
    """Existing reference data (instead of generating it).

    ``train`` and ``test`` are file paths; ``format`` one of
    :data:`~mlip_plugin.data.io.FORMATS` (default: from the suffix); the ``*_key`` settings
    name the labels in the file, and ``units`` the file's units (see
    :func:`mlip_plugin.data.read_configs`).  ``stress_order`` is about exchanged yz / xz
    stress components: ``None`` (default) keeps the labels as stored and warns when
    :func:`mlip_plugin.pipeline.stress_order.detect_stress_order` finds config types of the
    training data with the two exchanged; ``"auto"`` repairs those; ``"file"`` keeps the
    labels without the check; ``"swap"`` exchanges them in every configuration, a mapping
    ``{config_type: "swap" | "file"}`` in the named types.  The training data's order
    applies to the test data too.
    """

    train: str = ""
    test: str = ""
    format: str | None = None
    energy_key: str | None = None
    forces_key: str | None = None
    stress_key: str | None = None
    virial_key: str | None = None
    units: dict = field(default_factory=dict)
    stress_order: str | dict | None = None

    def __post_init__(self):
        if not self.train:
            raise InputError("section 'data' needs 'train': the path of the training data")
        for name in ("train", "test"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            setattr(self, name, as_str(f"data.{name}", value or "", "a file path (a string)"))
        if self.format is not None:
            as_choice("data.format", self.format, FORMATS)
        for name in ("energy_key", "forces_key", "stress_key", "virial_key"):
            if getattr(self, name) is not None:
                as_str(f"data.{name}", getattr(self, name), "the name of a label (a string)")
        if isinstance(self.stress_order, Mapping):
            self.stress_order = dict(self.stress_order)
            for ctype, order in self.stress_order.items():
                as_str("a config type of data.stress_order", ctype,
                       "a config type (a string; quote numbers)")
                as_choice(f"data.stress_order.{ctype}", order, ("swap", "file"))
        elif self.stress_order is not None:
            as_choice("data.stress_order", self.stress_order, ("file", "swap", "auto"))
        self.units = as_mapping("data.units", self.units, {})
        check_keys("data.units", self.units, UNIT_QUANTITIES)
        for quantity, unit in self.units.items():
            try:
                conversion_factor(quantity, as_str(f"data.units.{quantity}", unit))
            except InputError as err:
                raise InputError(f"data.units.{quantity}={unit!r}: {err}") from err

    def read_kwargs(self) -> dict:
        """Keywords of :func:`~mlip_plugin.data.read_configs` for these settings (its
        errors name them as settings of this section)."""
        return {"format": self.format, "energy_key": self.energy_key,
                "forces_key": self.forces_key, "stress_key": self.stress_key,
                "virial_key": self.virial_key, "units": self.units or None,
                "option_names": DATA_OPTION_NAMES}


def _weights(name: str, doc) -> dict:
    """A weights mapping (energy, forces, virial: finite numbers >= 0), converted."""
    doc = as_mapping(name, doc)
    check_keys(name, doc, WEIGHT_KEYS)
    return {k: as_float(f"{name}.{k}", v, 0.0) for k, v in doc.items()}


def _prior(doc) -> dict:
    doc = as_mapping("fit.prior", doc)
    check_keys("fit.prior", doc, PRIOR_KEYS)
    for key, value in doc.items():
        if key == "kind":
            as_choice("fit.prior.kind", value, PRIORS)
        elif not (key == "w_L" and value is None):
            doc[key] = as_float(f"fit.prior.{key}", value, 0.0, above=key == "p")
    return doc


def _basis(doc, required: bool) -> dict:
    doc = as_mapping("fit.basis", doc)
    check_keys("fit.basis", doc, BASIS_KEYS)
    missing = [k for k in BASIS_REQUIRED if k not in doc]
    if required and missing:
        raise InputError(f"fit.basis has no {missing}: an ACE basis needs correlation_order, "
                         "total_degree and r_cut (Å), e.g. {correlation_order: 3, "
                         "total_degree: 10, r_cut: 5.0}")
    for key, value in doc.items():
        name = f"fit.basis.{key}"
        if key == "correlation_order":
            doc[key] = as_int(name, value, 1)
        elif key == "pair_degree" and value is not None:
            doc[key] = as_int(name, value, 0)
        elif key == "total_degree":
            doc[key] = as_float(name, value, 0.0, above=True)
        elif key == "r_cut":
            try:
                doc[key] = check_cutoff(as_float(name, value, 0.0, above=True), name)
            except InputError as err:
                raise InputError(f"{err}; correct it in the configuration") from err
        elif key in ("w_L", "pair_exponent"):
            doc[key] = as_float(name, value, 0.0)
        elif key == "transform_pq":
            pq = as_list(name, value, "two numbers [p, q]")
            if len(pq) != 2:
                raise _bad(name, value, "two numbers [p, q]")
            doc[key] = [as_float(name, x) for x in pq]
        elif key == "r0" and isinstance(value, str) and _number(value) is None:
            as_choice(name, value, ("data", "covalent"))
        elif key == "r0" and not (value is None or isinstance(value, Mapping)):
            doc[key] = as_float(name, value, 0.0, above=True)
    return doc


def _e0(value):
    if isinstance(value, str):
        return as_choice("fit.e0", value, E0_RULES)
    if not isinstance(value, Mapping):
        raise _bad("fit.e0", value, f"one of {E0_RULES} or a mapping species: energy (eV)")
    out = {}
    for symbol, energy in value.items():
        if symbol not in atomic_numbers:
            raise InputError(f"fit.e0 has the key {symbol!r}, which is not a chemical symbol; "
                             "give one E0 (eV) per species, e.g. {Ti: -1.2, Al: -0.3}")
        out[symbol] = as_float(f"fit.e0.{symbol}", energy)
    return out


def _kernel(doc) -> dict:
    """``fit.kernel``: TrainSettings keywords (numbers converted) and a ``sigmas`` grid."""
    from ..kernels.train import TrainSettings

    doc = as_mapping("fit.kernel", doc, {})
    if not doc:
        return doc
    types = {f.name: str(f.type) for f in fields(TrainSettings)}
    unknown = sorted(set(doc) - {*types, "sigmas"})
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*types, "sigmas"], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown keys {unknown} in fit.kernel{hint}; allowed: "
                         f"{sorted({*types, 'sigmas'})}")
    for key, value in doc.items():
        name = f"fit.kernel.{key}"
        if key == "sigmas":
            if value is not None:
                doc[key] = [as_float(name, x, 0.0, above=True)
                            for x in as_list(name, value, "a list of numbers > 0")]
        elif _number(value) is not None and ("float" in types[key] or "int" in types[key]):
            # whole numbers count for integer settings (50.0, '50'), like as_int elsewhere
            if "int" in types[key] and "float" not in types[key]:
                doc[key] = as_int(name, value)
            elif isinstance(value, str):
                doc[key] = float(value)
    rest = {k: v for k, v in doc.items() if k != "sigmas"}
    try:
        TrainSettings(**rest).check()
    except InputError as err:
        raise InputError(f"fit.kernel: {err}") from err
    except (TypeError, ValueError) as err:
        raise InputError(f"fit.kernel={rest!r} is not allowed ({err}); give numbers where "
                         "numbers are expected (see mlip_plugin.kernels.TrainSettings)") from err
    return doc


@dataclass
class FitSettings:
    """How to fit a model.

    ``model`` is ``"ace"`` (sparse linear ACE) or ``"kernel"`` (GDML force field of one
    molecule).  For ACE, ``basis`` holds :class:`mlip_plugin.ace.ACEBasis` keywords (elements
    come from the data; ``r0``, unless given, is the median nearest-neighbour distance of
    each species pair in the training data, see :func:`mlip_plugin.ace.basis_from_data`;
    ``r0: covalent`` takes the covalent radii instead), ``prior`` the smoothness prior
    (``kind`` and its parameters; default algebraic with p = 4, ACEpotentials' prior on a
    normalised radial basis, see :mod:`mlip_plugin.ace.prior`),
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
    prior: dict = field(default_factory=lambda: {"kind": "algebraic", "p": 4.0})
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
        self.model = as_choice("fit.model", self.model, MODELS)
        self.solver = as_choice("fit.solver", self.solver, SOLVERS)
        self.selection = as_choice("fit.selection", self.selection, SELECTIONS)
        self.max_active = as_int("fit.max_active", self.max_active, 1)
        self.validation_fraction = as_float("fit.validation_fraction",
                                            self.validation_fraction, 0.0, below=1.0)
        self.tsvd = as_bool("fit.tsvd", self.tsvd)
        self.select_on_prior = as_bool("fit.select_on_prior", self.select_on_prior)
        self.seed = as_int("fit.seed", self.seed, 0)
        self.e0 = _e0(self.e0)
        self.weights = _weights("fit.weights", self.weights if self.weights is not None
                                else _default(self, "weights"))
        by_type = as_mapping("fit.by_config_type", self.by_config_type, {})
        self.by_config_type = {k: _weights(f"fit.by_config_type.{k}", v)
                               for k, v in by_type.items()}
        default_prior = _default(self, "prior")
        self.prior = _prior(self.prior if self.prior is not None else default_prior)
        if self.prior.get("kind", "algebraic") == default_prior["kind"]:
            # {kind: algebraic} alone means the default prior, not smoothness_prior's p
            self.prior = {**default_prior, **self.prior}
        self.basis = _basis(self.basis if self.basis is not None
                            else _default(self, "basis"), required=self.model == "ace")
        self.kernel = _kernel(self.kernel)


@dataclass
class ValidateSettings:
    """Which property suite to run, with which preset, against what.

    ``suite``: one of :data:`~mlip_plugin.properties.suites.SUITES`; None (default): chosen
    from the species (:func:`~mlip_plugin.properties.suites.suite_for`: one fcc or bcc
    element, or Si), an InputError when there is no obvious choice.  ``symbol``: the
    element an fcc/bcc suite computes (default: the only species).  ``lattice_constant``:
    the cubic lattice constant (Å) the suite starts from (default: ASE's reference value,
    which exists only for the element's ground-state lattice).
    ``reference``: ``"calculator"`` (the reference calculator, run on the same properties),
    ``"none"``, a calculator class path, or the path of a JSON table of reference values
    (in a configuration file, relative to that file; a data run without a ``reference``
    section defaults to ``"none"``). ``properties``: the property groups
    to run (default: the suite's own). ``along_path``: basis sizes at which the groups
    ``along_path_properties`` are also evaluated (property error vs number of basis
    functions).
    ``tolerance_percent``: for selecting the smallest model within this much of the best.
    ``structure``: the crystal of suite ``bulk`` (a compound or alloy, any cell, periodic
    in 3 directions): the path of a structure file (the first frame that ``ase.io.read``
    reads; in a configuration, relative to that file), an inline mapping
    ``{symbols, positions (Å), cell (Å), pbc}`` or an ``ase.Atoms``; stored in the inline
    form (JSON-ready, what AiiDA and pyiron record).  Given without ``suite``, the suite
    is ``bulk``; ``bulk`` needs it, the other suites refuse it.
    """

    suite: str | None = None
    preset: str = "fast"
    reference: str = "calculator"
    properties: list | None = None
    along_path: list = field(default_factory=list)
    along_path_properties: list = field(default_factory=lambda: ["elastic", "vacancy",
                                                                 "surfaces"])
    tolerance_percent: float = 5.0
    symbol: str | None = None
    lattice_constant: float | None = None
    structure: dict | None = None

    def __post_init__(self):
        if self.suite is not None:
            self.suite = as_choice("validate.suite", self.suite, tuple(SUITES))
        self._check_structure()
        if self.symbol is not None and as_str("validate.symbol", self.symbol,
                                              "a chemical symbol such as 'Cu'"
                                              ) not in atomic_numbers:
            raise InputError(f"validate.symbol={self.symbol!r} is not a chemical symbol; "
                             "give an element such as 'Cu'")
        if self.lattice_constant is not None:
            self.lattice_constant = float(as_float("validate.lattice_constant",
                                                   self.lattice_constant, 0.0, above=True))
        self.preset = as_choice("validate.preset", self.preset, VALIDATE_PRESETS)
        self.reference = _validate_reference(self.reference)
        if self.properties is not None:
            self.properties = [as_str("validate.properties", g, "a list of property groups")
                               for g in as_list("validate.properties", self.properties,
                                                f"a list of property groups {GROUPS}")]
        self.along_path = [as_int("validate.along_path", n, 1) for n in as_list(
            "validate.along_path", self.along_path if self.along_path is not None else [],
            "a list of basis sizes (integers >= 1)")]
        self.along_path_properties = [
            as_str("validate.along_path_properties", g, "a list of property groups")
            for g in as_list("validate.along_path_properties", self.along_path_properties,
                             f"a list of property groups {GROUPS}")]
        self.tolerance_percent = as_float("validate.tolerance_percent",
                                          self.tolerance_percent, 0.0)

    def _check_structure(self) -> None:
        """``structure`` read and converted to its inline form; the suite ``bulk`` when
        none is named; InputError for a structure with another suite or ``bulk`` without
        one."""
        if self.structure is None:
            if self.suite == BULK:
                raise InputError(
                    "validate.suite='bulk' computes a crystal you give, and "
                    "validate.structure is not given: set it to a structure file (mlip "
                    "validate --structure FILE), an inline mapping {symbols, positions, "
                    "cell, pbc} or an ase.Atoms")
            return
        if self.suite not in (None, BULK):
            raise InputError(
                f"validate.structure is given, and validate.suite={self.suite!r} builds its "
                "own crystal of one element: use validate.suite='bulk' (or leave the suite "
                "out) to validate on the structure, or remove validate.structure")
        for name in ("symbol", "lattice_constant"):
            if getattr(self, name) is not None:
                raise InputError(f"validate.{name}={getattr(self, name)!r} is for the cubic "
                                 "suites; suite 'bulk' computes validate.structure as it is: "
                                 f"remove validate.{name}")
        self.suite = BULK
        self.structure = structure_to_dict(bulk_structure(self.structure))

    def check_groups(self) -> None:
        """The property groups named are groups of the suites (:data:`GROUPS`), and of
        suite ``bulk`` when it is chosen (no defects or surfaces there)."""
        for name in ("properties", "along_path_properties"):
            unknown = [g for g in getattr(self, name) or [] if g not in GROUPS]
            if unknown:
                raise InputError(f"validate.{name}={getattr(self, name)!r} has unknown "
                                 f"groups {unknown}; allowed: {list(GROUPS)}")
        if self.suite != BULK:
            return
        for name in ("properties", "along_path_properties")[:2 if self.along_path else 1]:
            problem = bulk_groups_problem(getattr(self, name))
            if problem:
                raise InputError(f"validate.{name}={getattr(self, name)!r}: {problem}")


def bulk_structure(value, name: str = "validate.structure"):
    """The ``ase.Atoms`` of a ``validate.structure`` value (a file path, an inline mapping
    or an ``Atoms``), checked: periodic in 3 directions, no overlapping atoms.

    A file is read with ``ase.io.read(path, index=0)``: its first frame."""
    from ase import Atoms

    if isinstance(value, (str, os.PathLike)):
        value = _read_structure(Path(value), name)
    elif isinstance(value, Mapping):
        value = structure_from_dict(value, name=name)
    elif not isinstance(value, Atoms):
        raise _bad(name, value, "a structure file, an inline mapping {symbols, positions, "
                                "cell, pbc} or an ase.Atoms")
    return check_crystal(value, name=name)


def _read_structure(path: Path, name: str):
    """The first frame of the structure file ``path``."""
    import ase.io

    check_readable(name, str(path), "a structure file")
    try:
        return ase.io.read(path, index=0)
    except Exception as err:  # ASE raises many kinds on a file it cannot parse
        raise InputError(f"{name}: cannot read a structure from {str(path)!r} "
                         f"({type(err).__name__}: {err}); give a file ase.io.read reads "
                         "(extxyz, cif, POSCAR, ...)") from err


def _is_table(reference) -> bool:
    return isinstance(reference, str) and reference.endswith(".json")


def _validate_reference(value) -> str | dict:
    """``validate.reference``: 'calculator', 'none', a .json table, a calculator class or
    a calculator spec ``{calculator: CLASS, parameters: {...}}``."""
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        try:
            return CalculatorSpec.coerce(value).to_dict()
        except InputError as err:
            raise InputError(f"validate.reference: {err}") from err
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    wanted = ("'calculator' (the run's reference calculator), 'none', the path of a JSON "
              "table of reference values (.json) or a calculator class path such as "
              "'ase.calculators.emt.EMT'")
    if not isinstance(value, str):
        raise _bad("validate.reference", value, wanted)
    if value in ("calculator", "none") or value.endswith(".json"):
        return value
    module, _, name = value.rpartition(".")
    if not (module and name.isidentifier()
            and all(part.isidentifier() for part in module.split("."))):
        raise InputError(f"validate.reference={value!r} is not allowed: give {wanted}; "
                         "correct it in the configuration")
    return value


def read_reference_table(path: str | os.PathLike) -> dict | list:
    """The JSON table of reference property values at ``path`` (a mapping name → value,
    a mapping with a ``dft`` column, or a list of rows), or an InputError that says why
    it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"reference table {str(path)!r} does not exist; give the path of a "
                         "JSON table of reference values (validate.reference / --reference)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"reference table {str(path)!r} is not readable JSON ({err}); give "
                         "a JSON mapping of property name to value, e.g. {\"c11\": 176.0}"
                         ) from err
    if not isinstance(doc, (Mapping, list)):
        raise InputError(f"reference table {str(path)!r} holds a JSON {type(doc).__name__}, "
                         f"{str(doc)[:40]!r}; give a JSON mapping of property name to value, "
                         "e.g. {\"c11\": 176.0}")
    table_values(doc, f"reference table {str(path)!r}")  # InputError unless rows are numbers
    return doc


def _miller(name: str, value) -> list[int]:
    m = [as_int(name, i) for i in as_list(name, value, "Miller indices [h, k, l]")]
    if len(m) != 3 or not any(m):
        raise _bad(name, value, "three Miller indices [h, k, l], not all 0")
    return m


#: how each ``structures`` setting is checked and converted
_STRUCTURE_FIELDS = {
    "element": lambda n, v: as_str(n, v, "a chemical symbol such as 'Cu'"),
    "lattice": lambda n, v: as_str(n, v, "a lattice name such as 'fcc'"),
    "a": lambda n, v: None if v is None else as_float(n, v, 0.0, above=True),
    "supercell": lambda n, v: as_int(n, v, 1),
    "slab_layers": lambda n, v: as_int(n, v, 1),
    "md_steps_between": lambda n, v: as_int(n, v, 1),
    "md_timestep_fs": lambda n, v: as_float(n, v, 0.0, above=True),
    "md_with_vacancy": as_bool,
    "slabs": lambda n, v: [_miller(n, m) for m in as_list(
        n, v, "a list of Miller indices such as [[1, 1, 1], [1, 0, 0]]")],
    "md_temperatures": lambda n, v: [as_float(n, t, 0.0, above=True) for t in as_list(
        n, v, "a list of temperatures in K such as [300, 1000]")],
    **dict.fromkeys(("n_volumetric", "n_shear", "n_rattled", "n_vacancy", "md_snapshots",
                     "seed"), lambda n, v: as_int(n, v, 0)),
    **dict.fromkeys(("max_volumetric_strain", "max_shear_strain", "rattle_std",
                     "slab_vacuum"), lambda n, v: as_float(n, v, 0.0)),
}


def structure_settings(doc: Mapping) -> dict:
    """``structures`` settings (not ``preset``) checked and converted to their types
    (used by :meth:`StructureSpec.from_preset`)."""
    return {k: _STRUCTURE_FIELDS[k](f"structures.{k}", v) if k in _STRUCTURE_FIELDS else v
            for k, v in doc.items()}


def _structure_spec(doc) -> StructureSpec:
    if not isinstance(doc, Mapping):
        raise InputError("section 'structures' must be a mapping of settings")
    s = dict(doc)
    preset = s.pop("preset", "tiny")
    check_keys("structures", s, [f.name for f in fields(StructureSpec)])
    return StructureSpec.from_preset(as_str("structures.preset", preset), **s)


def _structures(doc, base: Path) -> StructureSpec | StructureFile:
    """Section ``structures``: a protocol to generate (:class:`StructureSpec`), or, with
    ``file``, structures to read (:class:`StructureFile`, its path taken from ``base``)."""
    if not (isinstance(doc, Mapping) and "file" in doc):
        return _structure_spec(doc)
    own = [f.name for f in fields(StructureFile)]
    generation = ["preset", *(f.name for f in fields(StructureSpec) if f.name != "preset")]
    check_keys("structures", doc, [*own, *generation])
    given = [k for k in doc if k not in own]
    if given:
        raise InputError(
            f"section 'structures' has both 'file' (read the structures from a file) and "
            f"the generation settings {given}: give one or the other, not both (remove "
            f"{given} to label the file's structures, or remove 'file' to generate them)")
    settings = StructureFile(**doc)
    return replace(settings, file=str((base / settings.file).resolve()))


@dataclass
class RunConfig:
    """A whole run: data (generated, read from a structures file and labelled, or read
    with their labels), fit, validation, output folder.

    ``structures`` is a protocol to generate (:class:`StructureSpec`) or a file of
    structures to label (:class:`StructureFile`).  ``reference`` is the reference
    calculator: it labels the ``structures`` and is what ``validate.reference: calculator``
    compares with; None for a ``data`` run whose configuration names none
    (:meth:`from_dict`).  ``validate.suite`` may be None until :meth:`resolve_validation`
    chooses it from the training species.
    """

    output: str = "results"
    structures: StructureSpec | StructureFile | None = None
    reference: CalculatorSpec | None = field(default_factory=lambda: CalculatorSpec.coerce(
        DEFAULT_REFERENCE))
    data: DataSettings | None = None
    fit: FitSettings = field(default_factory=FitSettings)
    validate: ValidateSettings | None = field(default_factory=ValidateSettings)

    @classmethod
    def from_dict(cls, doc: Mapping, base_dir: str | os.PathLike = ".", *,
                  fit_only: bool = False) -> RunConfig:
        """Every section checked and converted; relative paths (data files, a structures
        file, a reference table) are taken relative to ``base_dir``.  A run that generates
        its structures gets its ``validate.suite`` here (:meth:`resolve_validation`); a
        ``data`` run or one of a structures file when its file is read."""
        if not isinstance(doc, Mapping):
            raise InputError("the configuration must be a YAML mapping of sections")
        check_keys("top level", doc, [f.name for f in fields(cls)])
        base = Path(base_dir)
        structures = (_structures(doc["structures"], base)
                      if doc.get("structures") is not None else None)
        data = coerce_settings(DataSettings, "data", doc["data"]) if doc.get("data") else None
        if data is not None:
            data.train = str((base / data.train).resolve()) if data.train else ""
            data.test = str((base / data.test).resolve()) if data.test else ""
        if structures is None and data is None:
            raise InputError("the configuration needs a 'structures' section (generate and "
                             "label data) or a 'data' section (read existing data)")
        if structures is not None and data is not None:
            raise InputError("give either 'structures' or 'data', not both")
        fit = coerce_settings(FitSettings, "fit", doc.get("fit"))
        validate = (None if fit_only or ("validate" in doc and doc["validate"] is None)
                    else coerce_settings(ValidateSettings, "validate",
                                         _structure_path(doc.get("validate"), base)))
        if fit.model == "kernel" and validate is not None:
            # the property suites are crystals; a kernel model describes one molecule
            if doc.get("validate") is not None:
                raise InputError(
                    "section 'validate' runs a crystal property suite, but fit.model is "
                    "'kernel' (a force field of one molecule, which cannot compute a "
                    "crystal); remove the validate section (test errors are still reported)")
            validate = None
        reference = (CalculatorSpec.coerce(doc["reference"]) if doc.get("reference")
                     else CalculatorSpec.coerce(DEFAULT_REFERENCE) if structures is not None
                     else None)
        if validate is not None:
            validate.check_groups()
            _default_reference(validate, doc.get("validate"), reference)
            if _is_table(validate.reference):
                validate.reference = str((base / validate.reference).resolve())
        output = doc.get("output")
        config = cls(output="results" if output is None else as_str(
                         "output", output, "the path of the output folder"),
                     structures=structures, reference=reference, data=data, fit=fit,
                     validate=validate)
        if isinstance(structures, StructureSpec):
            config.resolve_validation([structures.element])
        return config

    def resolve_validation(self, species: Sequence[str]) -> None:
        """Choose ``validate.suite`` from the training ``species`` when it is not given,
        and check that the suite can compute them (its element, a lattice constant), so
        that a run fails before its fit, not after.

        Raises
        ------
        InputError
            No obvious suite (several elements, hcp, ...), an element the suite cannot
            pick, or a lattice with no tabulated lattice constant; each message names the
            ``validate`` setting to give, and how to skip the validation.
        """
        v = self.validate
        if v is None:
            return
        species = sorted(set(species))
        lattice = (self.structures.lattice if isinstance(self.structures, StructureSpec)
                   else None)
        if v.suite is None:
            v.suite = suite_for([v.symbol] if v.symbol else species, lattice)
            if v.suite is None:
                raise InputError(
                    f"validate.suite is not given, and the training species {species}"
                    f"{f' ({lattice})' if lattice else ''} have no obvious property suite "
                    "(one element whose lattice is fcc or bcc, or Si in diamond): set "
                    f"validate.suite to one of {tuple(SUITES)} (with validate.symbol for "
                    "data of several elements, validate.lattice_constant in Å for a "
                    "lattice that is not the element's ground state; to validate a "
                    "compound or alloy, 'suite: bulk' with 'structure:' a file of its "
                    f"crystal), {SKIP_VALIDATION}")
            log.info("validate.suite: %s (chosen from the training species %s; set "
                     "validate.suite to choose another)", v.suite, ", ".join(species))
        if v.suite == BULK:
            missing = sorted(set(v.structure["symbols"]) - set(species))
            if missing:
                raise InputError(
                    f"validate.structure has species {missing} that are not among the "
                    f"training species {species}: the model cannot compute it; give a "
                    f"structure of the training species, {SKIP_VALIDATION}")
            return
        suite_lattice, symbol = SUITES[v.suite][0], v.symbol or SUITES[v.suite][1]
        if symbol is None and len(species) == 1:
            symbol = species[0]
        if symbol is None or symbol not in species:
            what = ("computes one element" if symbol is None
                    else f"computes {symbol}, which is not")
            fix = "" if v.suite == "silicon" else "name the element with validate.symbol, "
            raise InputError(f"validate.suite={v.suite!r} {what} among the training species "
                             f"{species}: {fix}choose another validate.suite, "
                             f"{SKIP_VALIDATION}")
        if v.lattice_constant is None and tabulated_lattice_constant(
                symbol, suite_lattice) is None:
            raise InputError(
                f"validate.suite={v.suite!r} computes {symbol} in the {suite_lattice} "
                f"lattice, for which ASE tabulates no lattice constant (not {symbol}'s "
                "ground state): give it with validate.lattice_constant (Å), or choose "
                f"the suite of its ground state with validate.suite, {SKIP_VALIDATION}")

    def check_inputs(self) -> None:
        """The files the run reads exist (data files, a structures file; a reference table,
        readable JSON) and the calculator classes it uses import: what ``--dry-run`` checks
        beyond the settings themselves (it also reads the data or structures files,
        :func:`mlip_plugin.pipeline.run.check_run`)."""
        ref = self.validate.reference if self.validate is not None else "none"
        if self.reference is not None and (self.structures is not None
                                           or ref == "calculator"):
            self.reference.load_class()
        if ref not in ("calculator", "none") and not _is_table(ref):
            CalculatorSpec.coerce(ref).load_class()
        if self.data is not None:
            for name in ("train", "test"):
                check_readable(f"data.{name}", getattr(self.data, name), "a data file")
        if isinstance(self.structures, StructureFile):
            check_readable("structures.file", self.structures.file, "a structure file")
        if _is_table(ref):
            read_reference_table(ref)

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict:
        """The settings as plain data.  ``relative_to``: a folder; the files the run reads
        (data files, a structures file, a reference table) are written relative to it, so
        that the ``config.yaml`` of a run folder stays valid, and the same, when the folder
        moves together with those files (a project copied elsewhere)."""
        out = asdict(self)
        out["reference"] = None if self.reference is None else self.reference.to_dict()
        if relative_to is not None:
            def rel(path: str) -> str:
                try:
                    return os.path.relpath(path, relative_to) if path else path
                except ValueError:  # another drive (Windows): no relative path
                    return path

            if out["data"] is not None:
                out["data"]["train"], out["data"]["test"] = (
                    rel(out["data"]["train"]), rel(out["data"]["test"]))
            if isinstance(out["structures"], dict) and "file" in out["structures"]:
                out["structures"]["file"] = rel(out["structures"]["file"])
            if out["validate"] is not None and _is_table(out["validate"]["reference"]):
                out["validate"]["reference"] = rel(out["validate"]["reference"])
        return out


def _structure_path(validate, base: Path):
    """Section ``validate`` with a ``structure`` file path taken relative to ``base``."""
    if isinstance(validate, Mapping) and isinstance(validate.get("structure"), str):
        return {**validate, "structure": str((base / validate["structure"]).resolve())}
    return validate


def _default_reference(validate: ValidateSettings, given, reference) -> None:
    """``validate.reference`` of a run whose configuration names no reference calculator
    (``reference`` None): ``"none"`` unless the configuration says otherwise (logged), and
    ``"calculator"`` is an InputError."""
    if reference is not None or validate.reference != "calculator":
        return
    if isinstance(given, Mapping) and "reference" in given or isinstance(
            given, ValidateSettings):
        raise InputError(
            "validate.reference='calculator' compares with the run's reference calculator, "
            "and this configuration names none (its data come from files): add a section "
            "'reference: {calculator: CLASS, parameters: {...}}', or set validate.reference "
            "to a calculator class path, a JSON table of reference values (.json) or 'none' "
            "(the model's values only)")
    validate.reference = "none"
    log.info("validate.reference: none (the configuration names no reference calculator, "
             "so the validation reports the model's values only; set validate.reference to "
             "a calculator class or a JSON table of values to compare)")


def load_config(path: str | os.PathLike, *, fit_only: bool = False) -> RunConfig:
    """Read and validate a YAML configuration; relative data paths are taken relative to
    the configuration file.  ``fit_only`` (``mlip fit``) drops the validate section."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"configuration file {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"{str(path)!r} is not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise InputError(f"{str(path)!r} is not a text file (not UTF-8: {err}); give the "
                         "YAML configuration") from err
    except OSError as err:
        raise InputError(f"cannot read the configuration {str(path)!r}: {err}") from err
    config = RunConfig.from_dict(doc or {}, base_dir=path.parent, fit_only=fit_only)
    log.debug("configuration %s: %s", path, config.to_dict())
    return config
