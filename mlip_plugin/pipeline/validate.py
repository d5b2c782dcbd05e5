"""Validation on physics: a property suite with the fitted model, compared with the
reference calculator (run on the same properties) or a table of published values, and,
along a solution path, property error vs number of basis functions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError
from ..models import Model
from ..properties import suites
from .config import ValidateSettings, coerce_settings, read_reference_table
from .reference import CalculatorSpec

__all__ = ["ValidationResult", "validate", "validate_run", "suite_settings"]

log = logging.getLogger(__name__)

#: rows that diagnose rather than measure: no meaningful % error (Γ-point acoustic
#: frequency ≈ 0, pass/fail flags, a crystal's diffusivity ≈ 0)
DIAGNOSTIC_ROWS = ("phonon_min_frequency", "phonon_imaginary_modes", "md_stable",
                   "md_time_reached", "md_diffusivity")


@dataclass
class ValidationResult:
    """Property tables of the model (and reference), the comparison rows, and, when asked,
    the property error along the solution path."""

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


def suite_settings(settings: ValidateSettings, symbol: str) -> suites.SuiteSettings:
    """SuiteSettings for ``settings.preset`` (``fast`` or ``default``) and groups."""
    groups = tuple(settings.properties) if settings.properties else None
    if settings.preset == "fast":
        return suites.SuiteSettings.fast(symbol=symbol, groups=groups)
    if settings.preset == "default":
        return suites.SuiteSettings(symbol=symbol, groups=groups)
    raise InputError(f"validate.preset={settings.preset!r} is not one of ('fast', 'default')")


def _reference_table(reference, suite: str, sset: suites.SuiteSettings):
    """(kind, SuiteResult or None, table for compare or None)."""
    if reference in (None, "none"):
        return "none", None, None
    if isinstance(reference, (str, Path)) and Path(reference).suffix == ".json":
        return str(reference), None, read_reference_table(reference)
    spec = CalculatorSpec.coerce(reference)
    result = suites.run_suite(spec.build(), suite, sset)
    return spec.calculator, result, result


def compare_rows(model_table, ref_table) -> list:
    """:func:`suites.compare` with no % error on :data:`DIAGNOSTIC_ROWS` (their absolute
    error stays): a percentage of a Γ-point frequency or a crystal's diffusivity, both zero
    up to noise, says nothing."""
    rows = suites.compare(model_table, ref_table)
    for r in rows:
        if r["name"] in DIAGNOSTIC_ROWS:
            r["error_percent"] = None
    return rows


def _mean_abs_percent(rows) -> float:
    vals = [abs(r["error_percent"]) for r in rows if r["error_percent"] is not None]
    return float(sum(vals) / len(vals)) if vals else math.nan


def validate(model: Model, settings: ValidateSettings | Mapping | None = None, *,
             reference=None, symbol: str | None = None,
             _reference_cache: tuple | None = None) -> ValidationResult:
    """Run ``settings.suite`` with the model's calculator and compare with ``reference``.

    Parameters
    ----------
    model : Model
    settings : ValidateSettings or mapping
    reference : CalculatorSpec, mapping, class path, JSON table path, or None
        Default: ``settings.reference`` unless that is ``"calculator"`` (which needs a spec).
    symbol : str, optional
        Element for fcc/bcc suites (``mlip validate --symbol``); default: the model's only
        species.
    """
    from mlip_plugin.calculators import MLIPCalculator

    s = coerce_settings(ValidateSettings, "validate", settings)
    if reference is None and s.reference != "calculator":
        reference = s.reference
    if symbol is None:
        if len(model.species) != 1 and s.suite != "silicon":
            raise InputError(f"suite {s.suite!r} needs one element; the model has "
                             f"{list(model.species)}: name one with --symbol (mlip "
                             "validate) or symbol= (Python)")
        symbol = model.species[0]
    elif symbol not in model.species:
        raise InputError(f"symbol={symbol!r} (--symbol) is not a species of the model, which "
                         f"has {list(model.species)}; name one of these")
    sset = suite_settings(s, symbol)
    kind, ref_result, ref_table = (_reference_cache if _reference_cache is not None
                                   else _reference_table(reference, s.suite, sset))
    model_result = suites.run_suite(MLIPCalculator(model), s.suite, sset)
    if ref_table is None:
        rows = [{"name": r["name"], "unit": r["unit"], "model": r["value"], "reference": None,
                 "abs_error": None, "error_percent": None} for r in model_result.rows]
    else:
        rows = compare_rows(model_result, ref_table)
    return ValidationResult(s.suite, kind, model_result, ref_result, rows)


def validate_run(fit_result, config) -> ValidationResult:
    """Validation of a pipeline run: the final model, then each size in ``along_path``."""
    s = config.validate
    model = fit_result.model
    sset = suite_settings(s, model.species[0] if len(model.species) == 1 else None)
    reference = config.reference if s.reference == "calculator" else s.reference
    cache = _reference_table(reference, s.suite, sset)
    result = validate(model, s, reference=reference, _reference_cache=cache)
    if s.along_path and fit_result.path_fit is not None:
        sp = replace(s, along_path=[], properties=list(s.along_path_properties))
        path_cache = _reference_table(reference, s.suite, suite_settings(sp, sset.symbol))
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
    return result
