"""Validation on physics: a property suite with the fitted model, compared with the
reference calculator (run on the same properties) or a table of published values, and,
along a solution path, property error vs number of basis functions.

The reference calculator's properties are computed once per validation (the comparison
along the path reuses them) and, given a cache folder (``run_pipeline`` passes
``OUT/reference_properties/``), kept there one property at a time, so a rerun, or a run
killed during the validation, recomputes none that finished (:class:`ReferenceSuites`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InputError, MLIPError, ReferenceCalculationError
from ..models import Model
from ..properties import suites
from .config import ValidateSettings, coerce_settings, read_reference_table
from .reference import CalculatorSpec, read_json_cache, write_json_atomic

__all__ = ["ValidationResult", "ReferenceSuites", "PhononBands", "validate", "validate_run",
           "suite_settings", "with_suite", "suite_symbol", "resolve_settings",
           "reference_units"]

log = logging.getLogger(__name__)

#: rows with no meaningful % error: those that diagnose rather than measure (Γ-point
#: acoustic frequency ≈ 0, pass/fail flags, a crystal's diffusivity ≈ 0), and the bulk
#: suite's energy per atom, whose zero is the reference's convention (EMT's is near 0 eV,
#: a DFT code's may be -4 eV or -1000 eV: the same error would be 10 % or 0.001 %)
DIAGNOSTIC_ROWS = ("phonon_min_frequency", "phonon_imaginary_modes", "md_stable",
                   "md_time_reached", "md_diffusivity", "energy_per_atom")


@dataclass
class ValidationResult:
    """Property tables of the model (and reference), the comparison rows, and, when asked,
    the property error along the solution path.

    A reference property read from the cache has its rows but, in
    ``reference_result.results``, only the phonon band structure (a :class:`PhononBands`,
    what the report plots), not the full property results.
    """

    suite: str
    reference_kind: str
    model_result: suites.SuiteResult
    reference_result: suites.SuiteResult | None
    rows: list
    property_curve: list = field(default_factory=list)
    smallest_within_tolerance: int | None = None

    def to_dict(self) -> dict:
        return {"suite": self.suite, "reference": self.reference_kind,
                "model_table": self.model_result.rows,
                "reference_table": None if self.reference_result is None else
                self.reference_result.rows,
                "properties": self.rows, "property_curve": self.property_curve,
                "smallest_within_tolerance": self.smallest_within_tolerance,
                "timings_s": self.model_result.timings}

    def metrics_entries(self) -> dict:
        """The entries this validation adds to a run's metrics.json."""
        out = {"properties": self.rows, "property_suite": self.suite,
               "property_reference": self.reference_kind,
               "property_timings_s": self.model_result.timings}
        md = self.model_result.results.get("md")
        if md is not None:
            out["md"] = {"stable": bool(md.stable), "time_reached_ps": md.time_reached,
                         "summary": f"NVT stability gate {'passed' if md.stable else 'FAILED'}"
                                    f" after {md.time_reached:.2f} ps"}
        if self.property_curve:
            out["property_curve"] = self.property_curve
            out["smallest_within_tolerance"] = self.smallest_within_tolerance
        return out

    def plots(self, out_dir: Path) -> dict:
        from ..properties import plots

        made = {}
        ph = self.model_result.results.get("phonons")
        if ph is not None:
            ref = self.reference_result.results.get("phonons") if self.reference_result else None
            plots.plot_phonon_bands(ph, ref, path=out_dir / "phonons.png")
            made["phonons"] = out_dir / "phonons.png"
        md = self.model_result.results.get("md")
        if md is not None:
            plots.plot_msd(md, path=out_dir / "msd.png")
            plots.plot_rdf(md, path=out_dir / "rdf.png")
            made["msd"], made["rdf"] = out_dir / "msd.png", out_dir / "rdf.png"
        return made


def suite_settings(settings: ValidateSettings, symbol: str | None) -> suites.SuiteSettings:
    """SuiteSettings for ``settings.preset`` (``fast`` or ``default``), groups and lattice
    constant (for suite ``bulk``: groups and ``settings.structure``; ``symbol`` is None).

    Raises
    ------
    InputError
        No ``lattice_constant`` given and none tabulated by ASE for ``symbol`` in the
        suite's lattice (checked before any reference work).
    """
    groups = tuple(settings.properties) if settings.properties else None
    if settings.suite == suites.BULK:
        return _preset(settings.preset)(
            groups=groups, structure=suites.structure_from_dict(settings.structure))
    lattice = suites.SUITES[settings.suite][0]
    a = settings.lattice_constant
    if a is None and suites.tabulated_lattice_constant(symbol, lattice) is None:
        raise InputError(
            f"suite {settings.suite!r} computes {symbol} in the {lattice} lattice, for which "
            f"ASE tabulates no lattice constant (not {symbol}'s ground state): give it in Å "
            "with --lattice-constant (mlip validate), validate.lattice_constant (in a "
            "configuration) or lattice_constant= (ValidateSettings in Python), or choose "
            "the suite of its ground state")
    return _preset(settings.preset)(symbol=symbol, groups=groups, lattice_constant=a)


def _preset(preset: str):
    """The SuiteSettings factory of ``validate.preset``."""
    if preset == "fast":
        return suites.SuiteSettings.fast
    if preset == "default":
        return suites.SuiteSettings
    raise InputError(f"validate.preset={preset!r} is not one of ('fast', 'default')")


@dataclass
class PhononBands:
    """A reference's phonon band structure as cached: what
    :func:`~mlip_plugin.properties.plots.plot_phonon_bands` plots of a reference.

    Attributes
    ----------
    distances : list of ndarray, shape (n_q,)
        Path coordinate of each band segment (1/Å), float64.
    frequencies : list of ndarray, shape (n_q, n_bands)
        Frequencies (THz) along each segment, float64.
    labels : list of (str, str)
        Start and end label of each segment.
    """

    distances: list
    frequencies: list
    labels: list

    def __post_init__(self):
        self.distances = [np.asarray(d, dtype=float) for d in self.distances]
        self.frequencies = [np.asarray(f, dtype=float) for f in self.frequencies]
        self.labels = [(str(a), str(b)) for a, b in self.labels]
        n = len(self.distances)
        if not n or len(self.frequencies) != n or len(self.labels) != n or not all(
                d.ndim == 1 and f.ndim == 2 and f.shape[0] == d.shape[0]
                for d, f in zip(self.distances, self.frequencies)):
            raise ValueError("phonon bands with missing or mismatched segments")

    @classmethod
    def from_result(cls, result) -> PhononBands:
        """The bands of a :class:`~mlip_plugin.properties.phonons.PhononResult`."""
        return cls(result.distances, result.frequencies, result.labels)

    @classmethod
    def from_dict(cls, doc: Mapping) -> PhononBands:
        """Inverse of :meth:`to_dict`."""
        return cls(doc["distances"], doc["frequencies"], doc["labels"])

    def to_dict(self) -> dict:
        """JSON-ready (lists of floats, exact on a round trip)."""
        return {"distances": [d.tolist() for d in self.distances],
                "frequencies": [f.tolist() for f in self.frequencies],
                "labels": [list(pair) for pair in self.labels]}


class ReferenceSuites:
    """The reference calculator's property suites, each property computed once.

    A suite is split into units, run one at a time with
    :func:`~mlip_plugin.properties.suites.run_suite`: a property group, or one interstitial
    site, or one surface.  A finished unit is kept in memory (so the groups along the path
    reuse those of the full suite) and, given ``cache_dir``, in ``cache_dir/<key>.json``,
    key = hash of the calculator spec, the suite and the unit's settings (element, lattice
    constant, the preset's property settings; for suite ``bulk``, the structure's inline
    form, so a different structure is never served from the cache).  A rerun, or one
    after a kill in the middle of the suite, computes only the units not on disk; an
    unusable file is recomputed with a warning.  A cached unit holds its rows, timings and
    phonon bands (:class:`PhononBands`); other full results (MD trajectories, ...) are not kept.

    Parameters
    ----------
    cache_dir : path-like, optional
        Folder of the cached units (made when the first one is written); None: memory only.
    documents : iterable of mappings, optional
        Units computed before, as :meth:`unit_document` returns them (an engine's stored
        results: AiiDA's ``reference_property`` outputs); used like units in
        ``cache_dir`` (one that does not fit its unit is recomputed with a warning).

    Attributes
    ----------
    n_computed, n_cached : int
        Units computed, and units read from ``cache_dir``.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None,
                 documents: Iterable[Mapping] = ()):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.n_computed = 0
        self.n_cached = 0
        self._done: dict[str, suites.SuiteResult] = {}
        self._calculators: dict[str, object] = {}
        self._documents = {str(doc.get("key")): doc for doc in documents}

    def run(self, spec: CalculatorSpec, suite: str,
            settings: suites.SuiteSettings) -> suites.SuiteResult:
        """:func:`~mlip_plugin.properties.suites.run_suite` of ``spec``'s calculator, with
        the same rows in the same order, from the units already done where possible."""
        settings = settings or suites.SuiteSettings()
        parts = [self._unit(spec, suite, unit) for unit in _units(suite, settings)]
        return suites.SuiteResult(
            suite=suite, rows=[row for p in parts for row in p.rows],
            results={k: v for p in parts for k, v in p.results.items()},
            timings={k: v for p in parts for k, v in p.timings.items()})

    def _unit(self, spec: CalculatorSpec, suite: str,
              unit: suites.SuiteSettings) -> suites.SuiteResult:
        key = _unit_key(spec, suite, unit)
        if key in self._done:
            return self._done[key]
        path = None if self.cache_dir is None else self.cache_dir / f"{key}.json"
        doc = self._given(key, unit)
        if doc is None and path is not None:
            doc = read_json_cache(path, lambda d: _unit_from_dict(d, key, unit))
        if doc is not None:
            part = _unit_from_dict(doc, key, unit)
            self.n_cached += 1
        else:
            part = self._compute(spec, suite, unit)
            self.n_computed += 1
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(path, _unit_to_dict(part, key, spec, unit), default=str)
        self._done[key] = part
        return part

    def _given(self, key: str, unit: suites.SuiteSettings) -> Mapping | None:
        """The document of ``key`` among ``documents``, None if absent or unusable."""
        doc = self._documents.get(key)
        if doc is None:
            return None
        try:
            _unit_from_dict(doc, key, unit)
        except (KeyError, TypeError, ValueError) as err:
            log.warning("the reference property %s given for %s is not usable (%s: %s); "
                        "it is computed again", key, _unit_label(unit), type(err).__name__,
                        err)
            return None
        return doc

    def unit_document(self, spec: CalculatorSpec, suite: str,
                      unit: suites.SuiteSettings) -> dict:
        """One unit of ``suite`` with ``spec``'s calculator (from memory, ``documents`` or
        ``cache_dir`` when there), as the JSON document a cache file holds: key,
        calculator, suite, settings, rows, timings_s and, for phonons, phonon_bands."""
        key = _unit_key(spec, suite, unit)
        return _unit_to_dict(self._unit(spec, suite, unit), key, spec, unit)

    def _compute(self, spec: CalculatorSpec, suite: str,
                 unit: suites.SuiteSettings) -> suites.SuiteResult:
        """One unit run with the reference calculator.

        Raises
        ------
        ReferenceCalculationError
            The calculator raised (an error that is not an :class:`MLIPError`): the message
            names the calculator, the unit and the original error (the ``__cause__``)."""
        try:
            return suites.run_suite(self._calculator(spec), suite, unit)
        except MLIPError:
            raise
        except Exception as err:
            kept = ("" if self.cache_dir is None else
                    f"; the reference properties finished before are kept in "
                    f"{str(self.cache_dir)!r} and a rerun does not recompute them")
            raise ReferenceCalculationError(
                f"the reference calculator {spec.calculator} failed on the property "
                f"{_unit_label(unit)} of suite {suite!r}: {type(err).__name__}: {err}{kept}. "
                "Check the calculator and its parameters, or compare with a JSON table of "
                "reference values instead (mlip: validate.reference or --reference; AiiDA: "
                "'reference' in the settings of mlip.validate, validate.settings in "
                "mlip.pipeline; pyiron: job.input.validate['reference'])"
            ) from err

    def _calculator(self, spec: CalculatorSpec):
        """One calculator per spec, built when a unit first needs it."""
        if spec.key() not in self._calculators:
            self._calculators[spec.key()] = spec.build()
        return self._calculators[spec.key()]


def _units(suite: str, settings: suites.SuiteSettings) -> Iterator[suites.SuiteSettings]:
    """Settings of each unit of ``suite``, in the order of run_suite's rows: one per
    property group, but one per interstitial site and per surface."""
    _, _, default_groups, sites, millers = suites.SUITES[suite]
    for group in settings.groups or default_groups:
        one = replace(settings, groups=(group,), interstitial_sites=None, miller_indices=None)
        if group == "interstitials":
            for site in settings.interstitial_sites or sites:
                yield replace(one, interstitial_sites=(site,))
        elif group == "surfaces":
            for miller in settings.miller_indices or millers:
                yield replace(one, miller_indices=(tuple(miller),))
        else:
            yield one


def _unit_label(unit: suites.SuiteSettings) -> str:
    """A unit in words: its group, with the interstitial site or surface it computes."""
    group = unit.groups[0]
    if group == "interstitials" and unit.interstitial_sites:
        return f"group {group!r} (site {unit.interstitial_sites[0]!r})"
    if group == "surfaces" and unit.miller_indices:
        return f"group {group!r} (surface {tuple(unit.miller_indices[0])})"
    return f"group {group!r}"


def _unit_key(spec: CalculatorSpec, suite: str, unit: suites.SuiteSettings) -> str:
    """Cache key of a unit: sha256 (32 hex digits) of the calculator spec, the suite and
    the unit's settings."""
    doc = {"calculator": spec.to_dict(), "suite": suite, "settings": _settings_doc(unit)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


#: SuiteSettings fields of the bulk suite only: left out of a cubic suite's unit key, which
#: stays what it was before they existed (so a run folder's reference properties, perhaps
#: of DFT, are not recomputed because the package learnt another suite)
BULK_ONLY_FIELDS = ("structure", "relax_steps", "phonon_length")


def _settings_doc(unit: suites.SuiteSettings) -> dict:
    """The unit's settings, JSON-ready, its structure (if any) in the inline form; without
    the bulk suite's own fields for a unit of another suite (no structure)."""
    doc = asdict(replace(unit, structure=None))
    if unit.structure is None:
        for name in BULK_ONLY_FIELDS:
            doc.pop(name)
    else:
        doc["structure"] = suites.structure_to_dict(unit.structure)
    return doc


def _unit_to_dict(part: suites.SuiteResult, key: str, spec: CalculatorSpec,
                  unit: suites.SuiteSettings) -> dict:
    doc = {"key": key, "calculator": spec.to_dict(), "suite": part.suite,
           "settings": _settings_doc(unit), "rows": part.rows, "timings_s": part.timings}
    phonons = part.results.get("phonons")
    if phonons is not None:
        doc["phonon_bands"] = PhononBands.from_result(phonons).to_dict()
    return doc


def _unit_from_dict(doc: Mapping, key: str, unit: suites.SuiteSettings) -> suites.SuiteResult:
    """The unit cached in ``doc``; KeyError, TypeError or ValueError when it is not one of
    ``key`` with complete rows (and phonon bands for the phonons group)."""
    if doc["key"] != key:
        raise ValueError(f"the file holds key {doc['key']!r}, not {key!r}")
    rows = [{"name": str(r["name"]), "unit": r["unit"], "value": float(r["value"]),
             "uncertainty": None if r["uncertainty"] is None else float(r["uncertainty"])}
            for r in doc["rows"]]
    if not rows:
        raise ValueError("no rows")
    results = {}
    if unit.groups == ("phonons",):
        results["phonons"] = PhononBands.from_dict(doc["phonon_bands"])
    timings = {str(k): float(v) for k, v in doc["timings_s"].items()}
    return suites.SuiteResult(suite=str(doc["suite"]), rows=rows, results=results,
                              timings=timings)


def _reference_table(reference, suite: str, sset: suites.SuiteSettings,
                     runs: ReferenceSuites | None = None):
    """(kind, SuiteResult or None, table for compare or None); a reference calculator runs
    through ``runs`` (default: a new one without a cache folder)."""
    if reference in (None, "none"):
        return "none", None, None
    if isinstance(reference, (str, Path)) and Path(reference).suffix == ".json":
        return str(reference), None, read_reference_table(reference)
    spec = CalculatorSpec.coerce(reference)
    result = (runs if runs is not None else ReferenceSuites()).run(spec, suite, sset)
    return spec.calculator, result, result


def compare_rows(model_table, ref_table) -> list:
    """:func:`suites.compare` with no % error on :data:`DIAGNOSTIC_ROWS` and on pass/fail
    rows (unit ``bool``: ``mechanically_stable``, ...), whose absolute error stays: a
    percentage of a Γ-point frequency or a crystal's diffusivity, both zero up to noise, of
    an energy measured from an arbitrary zero, or of a flag, says nothing."""
    rows = suites.compare(model_table, ref_table)
    for r in rows:
        if r["name"] in DIAGNOSTIC_ROWS or r.get("unit") == "bool":
            r["error_percent"] = None
    return rows


def _mean_abs_percent(rows) -> float:
    vals = [abs(r["error_percent"]) for r in rows if r["error_percent"] is not None]
    return float(sum(vals) / len(vals)) if vals else math.nan


def resolve_settings(model: Model, settings: ValidateSettings | Mapping | None = None,
                     symbol: str | None = None) -> ValidateSettings:
    """``settings`` as :func:`validate` runs them on ``model``: the suite chosen (see
    :func:`with_suite`), the property groups checked and ``symbol`` set to the element the
    suite computes (None for suite ``bulk``), so that they no longer depend on the model.

    Raises
    ------
    InputError
        As :func:`validate`, before any property is computed.
    """
    s = with_suite(coerce_settings(ValidateSettings, "validate", settings), model, symbol)
    s.check_groups()  # names validate.properties, before any reference work
    return replace(s, symbol=suite_symbol(model, s.suite, symbol or s.symbol, s.structure))


def reference_units(settings: ValidateSettings) -> list[suites.SuiteSettings]:
    """The units of the property suite of resolved ``settings`` (:func:`resolve_settings`),
    in the order of its rows: one per property group, interstitial site and surface; each
    is computed by :meth:`ReferenceSuites.unit_document`, and an engine that stores them
    one by one (AiiDA's ``reference_property``) keeps those finished when another fails."""
    return list(_units(settings.suite, suite_settings(settings, settings.symbol)))


def validate(model: Model, settings: ValidateSettings | Mapping | None = None, *,
             reference=None, symbol: str | None = None,
             cache_dir: str | os.PathLike | None = None,
             reference_documents: Iterable[Mapping] = (),
             _reference_cache: tuple | None = None) -> ValidationResult:
    """Run ``settings.suite`` with the model's calculator and compare with ``reference``.

    Parameters
    ----------
    model : Model
    settings : ValidateSettings or mapping
    reference : CalculatorSpec, mapping, class path, JSON table path, or None
        Default: ``settings.reference`` unless that is ``"calculator"`` (which needs a spec).
    symbol : str, optional
        Element for fcc/bcc suites (``mlip validate --symbol``); default:
        ``settings.symbol``, else the model's only species.
    cache_dir : path-like, optional
        Folder where the reference calculator's properties are kept, one file per property
        (see :class:`ReferenceSuites`); those found there are not recomputed.  None: no
        cache.
    reference_documents : iterable of mappings, optional
        Reference properties computed before (:meth:`ReferenceSuites.unit_document`), not
        recomputed.
    """
    from mlip_plugin.calculators import MLIPCalculator

    s = resolve_settings(model, settings, symbol)
    if reference is None and s.reference != "calculator":
        reference = s.reference
    sset = suite_settings(s, s.symbol)
    log.debug("suite %s of %s: %s", s.suite, sset.symbol, sset)
    kind, ref_result, ref_table = (
        _reference_cache if _reference_cache is not None else
        _reference_table(reference, s.suite, sset,
                         ReferenceSuites(cache_dir, documents=reference_documents)))
    model_result = suites.run_suite(MLIPCalculator(model), s.suite, sset)
    rows = None if ref_table is None else compare_rows(model_result, ref_table)
    if rows == [] and model_result.rows:
        log.warning("the reference table %s has none of the properties computed (%s); its "
                    "names are %s: the model's values are reported without a reference. "
                    "Name the table's entries as the suite does", kind,
                    ", ".join(r["name"] for r in model_result.rows),
                    sorted(suites.table_values(ref_table)) or "none")
    if not rows:
        rows = [{"name": r["name"], "unit": r["unit"], "model": r["value"], "reference": None,
                 "abs_error": None, "error_percent": None} for r in model_result.rows]
    return ValidationResult(s.suite, kind, model_result, ref_result, rows)


def with_suite(settings: ValidateSettings, model: Model,
               symbol: str | None = None) -> ValidateSettings:
    """``settings``, with the suite chosen (:func:`~mlip_plugin.properties.suites.suite_for`)
    from the element ``symbol`` (default: ``settings.symbol``), else from the model's
    species, when it names none."""
    if settings.suite is not None:
        return settings
    _check_crystal_model(model)
    species = [symbol or settings.symbol] if symbol or settings.symbol else model.species
    suite = suites.suite_for(species)
    if suite is None:
        several = (" and, for a model of several species, the element with --symbol, "
                   "validate.symbol or symbol=" if len(species) > 1 else "")
        raise InputError(
            f"no property suite is given, and {species} have no obvious one (one element "
            "whose ground state is fcc or bcc, or Si): name one of "
            f"{tuple(suites.SUITES)} with --suite (mlip validate), validate.suite (in a "
            f"configuration) or suite= (ValidateSettings in Python){several}; to validate a "
            "compound or alloy, suite 'bulk' with its crystal (--suite bulk --structure "
            "FILE, validate: {suite: bulk, structure: FILE}, or structure= in Python)")
    log.info("property suite %s, chosen from %s", suite, ", ".join(species))
    return replace(settings, suite=suite)


def _check_crystal_model(model: Model) -> None:
    """InputError for a molecular model (no cutoff): the suites compute crystals."""
    if model.cutoff is None:
        raise InputError(
            f"the property suites compute crystals, and this {model.family} model describes "
            "one molecule (no cutoff); it cannot be validated on them: judge it by its test "
            "errors")


def suite_symbol(model: Model, suite: str, symbol: str | None = None,
                 structure: Mapping | None = None) -> str | None:
    """The element ``suite`` computes for ``model`` (checked before any reference work);
    None for suite ``bulk``, whose ``structure`` (inline form) is checked instead.

    Raises
    ------
    InputError
        A molecular model (no cutoff: the suites compute crystals), a silicon suite for a
        model without Si, an fcc/bcc suite for a model of several species without
        ``symbol``, a ``symbol`` the model does not have, or a bulk structure with
        species the model does not have.
    """
    _check_crystal_model(model)
    if suite == suites.BULK:
        missing = sorted(set(structure["symbols"]) - set(model.species))
        if missing:
            raise InputError(f"suite 'bulk' computes the structure given "
                             f"({_formula(structure)}), and its species {missing} are not "
                             f"species of the model ({list(model.species)}); give a "
                             "structure of the model's species")
        return None
    if symbol is None and suite == "silicon":
        symbol = "Si"
    if symbol is None:
        if len(model.species) != 1:
            raise InputError(f"suite {suite!r} needs one element; the model has "
                             f"{list(model.species)}: name one with --symbol (mlip "
                             "validate), validate.symbol (in a configuration) or symbol= "
                             "(validate() in Python)")
        return model.species[0]
    if symbol not in model.species:
        raise InputError(f"suite {suite!r} computes {symbol}, which is not a species of the "
                         f"model ({list(model.species)})")
    return symbol


def _formula(structure: Mapping) -> str:
    return suites.structure_from_dict(structure).get_chemical_formula()


def validate_run(fit_result, config, cache_dir: str | os.PathLike | None = None
                 ) -> ValidationResult:
    """Validation of a pipeline run: the final model, then each size in ``along_path``.

    The reference calculator's properties are computed once (the comparison along the
    path takes its rows from those of the full suite) and, given ``cache_dir`` (a run
    passes ``OUT/reference_properties``), kept there: see :class:`ReferenceSuites`.
    """
    model = fit_result.model
    s = with_suite(config.validate, model)
    sset = suite_settings(s, suite_symbol(model, s.suite, s.symbol, s.structure))
    reference = config.reference if s.reference == "calculator" else s.reference
    runs = ReferenceSuites(cache_dir)
    cache = _reference_table(reference, s.suite, sset, runs)
    result = validate(model, s, reference=reference, _reference_cache=cache)
    if s.along_path and fit_result.path_fit is not None:
        sp = replace(s, along_path=[], properties=list(s.along_path_properties))
        path_cache = _reference_table(reference, s.suite, suite_settings(sp, sset.symbol),
                                      runs)
        curve = []
        for n in sorted({int(n) for n in s.along_path}):
            sub = fit_result.path_fit.model_at(n)
            r = validate(sub, sp, reference=reference, _reference_cache=path_cache)
            curve.append({"n_active": sub.n_functions,
                          "mean_abs_error_percent": _mean_abs_percent(r.rows),
                          "properties": r.rows})
            log.info("along the path: %d functions, mean |error| %.2f %%", sub.n_functions,
                     curve[-1]["mean_abs_error_percent"])
        result.property_curve = curve
        best = min((c["mean_abs_error_percent"] for c in curve), default=math.nan)
        ok = [c["n_active"] for c in curve
              if c["mean_abs_error_percent"] <= best + s.tolerance_percent]
        result.smallest_within_tolerance = min(ok) if ok else None
    if runs.n_cached or runs.n_computed:
        log.info("reference properties: %d computed, %d from the cache", runs.n_computed,
                 runs.n_cached)
    return result
