"""Property suites (silicon, fcc, bcc, bulk), single properties by name, and comparison
tables.

``run_suite(calculator, "silicon")`` computes every property of Table 5 of the sparse-ACE
paper (a0, B, C11/C12/C44, vacancy, tetrahedral/hexagonal/dumbbell interstitials,
(111)/(110)/(100) surfaces), plus clamped-ion constants and phonons, and returns one
table whose row names are those of ``si_gap18_reference/properties.json``, so that
``compare(table, json.load(f))`` works on that file directly.  Rows are JSON-ready dicts
``{"name", "unit", "value", "uncertainty"}``.  The ``fcc`` and ``bcc`` suites do the same
for one element in those lattices (plus NVT MD).

``run_suite(calculator, "bulk", SuiteSettings(structure=atoms))`` runs on any crystal the
user gives (a compound, an ordered alloy, any cell, periodic in 3 directions).  The
structure's cell and positions are first relaxed with the calculator (so every calculator
starts from the same given structure and computes its own equilibrium), then the groups
``eos`` (rows ``volume_per_atom`` Å^3/atom, ``bulk_modulus`` GPa, ``energy_per_atom``
eV/atom at the minimum), ``elastic`` (relaxed-ion ``c11 c22 c33 c12 c13 c23 c44 c55 c66``
GPa in the crystal's own Cartesian frame, ``bulk_modulus_voigt``, ``shear_modulus_voigt``
GPa, ``elastic_min_eigenvalue`` GPa and ``mechanically_stable``: the Born criterion, as a
relaxation can end on a saddle point, e.g. bcc Cu with EMT), ``phonons`` and ``md`` (the
rows of the cubic suites).  It has no vacancy, interstitial or surface groups: defect and
surface energies of a compound need chemical potentials of its elements, and surfaces a
choice of termination, which a bare structure does not give.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states

from mlip_plugin.errors import InputError

from ._common import (
    check_crystal,
    check_positive,
    relaxed_bulk,
    structure_from_dict,
    structure_to_dict,
)
from .defects import DefectSettings, point_defect
from .elastic import ElasticSettings, elastic_constants
from .eos import EOSSettings, equation_of_state
from .md import MDSettings, nvt_md
from .phonons import PhononSettings, phonons
from .surfaces import SurfaceSettings, surface_energy

__all__ = ["SuiteSettings", "SuiteResult", "run_suite", "run_property", "compare",
           "table_values", "format_table", "suite_for", "tabulated_lattice_constant",
           "SUITES", "PROPERTIES", "BULK", "BULK_EXCLUDED", "bulk_groups_problem",
           "check_crystal", "structure_to_dict", "structure_from_dict", "voigt_moduli",
           "born_lowest_eigenvalue", "phonon_repeats"]

log = logging.getLogger(__name__)

#: Property functions by name, with their settings class.
PROPERTIES = {
    "eos": (equation_of_state, EOSSettings),
    "elastic": (elastic_constants, ElasticSettings),
    "defect": (point_defect, DefectSettings),
    "surface": (surface_energy, SurfaceSettings),
    "phonons": (phonons, PhononSettings),
    "md": (nvt_md, MDSettings),
}

#: Suites: lattice, default element, default groups, interstitial sites, surfaces.
SUITES = {
    "silicon": ("diamond", "Si", ("eos", "elastic", "vacancy", "interstitials", "surfaces",
                                  "phonons"),
                ("tetrahedral", "hexagonal", "dumbbell"), ((1, 1, 1), (1, 1, 0), (1, 0, 0))),
    "fcc": ("fcc", None, ("eos", "elastic", "vacancy", "interstitials", "surfaces",
                          "phonons", "md"),
            ("octahedral", "tetrahedral", "dumbbell"), ((1, 1, 1), (1, 0, 0), (1, 1, 0))),
    "bcc": ("bcc", None, ("eos", "elastic", "vacancy", "interstitials", "surfaces",
                          "phonons", "md"),
            ("octahedral", "tetrahedral", "dumbbell"), ((1, 1, 0), (1, 0, 0), (1, 1, 1))),
    "bulk": (None, None, ("eos", "elastic", "phonons", "md"), (), ()),
}
GROUPS = ("eos", "elastic", "vacancy", "interstitials", "surfaces", "phonons", "md")
#: The suite of a user's crystal (``SuiteSettings.structure``)
BULK = "bulk"
#: Groups the bulk suite refuses, and why
BULK_EXCLUDED = {
    "vacancy": "a vacancy formation energy of a compound needs the chemical potential of "
               "the removed species",
    "interstitials": "an interstitial formation energy of a compound needs the chemical "
                     "potential of the added species, and sites the structure does not name",
    "surfaces": "a surface energy of a compound needs a termination (and, off "
                "stoichiometry, chemical potentials)",
}


@dataclass(frozen=True)
class SuiteSettings:
    """Settings of `run_suite`.

    Attributes
    ----------
    symbol : str or None
        Element; None means the suite's default (Si for "silicon"; required for fcc/bcc).
    lattice_constant : float or None
        Starting cubic lattice constant (Å); None: ASE's reference value for the element.
    groups : tuple of str or None
        Which property groups to run (subset of "eos", "elastic", "vacancy",
        "interstitials", "surfaces", "phonons", "md"); None: the suite's default.
    clamped_ion : bool
        Also report clamped-ion elastic constants (rows ``*_clamped_ion``).
    interstitial_sites, miller_indices : tuple or None
        Override the suite's interstitial sites (e.g. ``("dumbbell",)``) and surfaces
        (e.g. ``((1, 1, 1),)``); None: the suite's list.
    structure : ase.Atoms or None
        The crystal of the ``bulk`` suite (required there, refused by the others): any
        species and cell, periodic in 3 directions, no overlapping atoms.  Its cell and
        positions are relaxed with each calculator (force tolerance ``elastic.fmax``, at
        most ``relax_steps`` steps) before the groups run.
    relax_steps : int
        Step limit of that starting relaxation of the bulk suite (default 2000, in either
        preset: a user's structure may start far from the calculator's equilibrium).
    phonon_length : float
        The bulk suite's phonon supercell repeats the relaxed cell along each lattice vector
        until every height of the supercell (the distance between opposite faces) is at
        least this long (Å; default 10, fast 7: what 3×3×3 and 2×2×2 of a conventional fcc
        cell give), so that a large or elongated cell is not repeated more than it needs;
        ``phonons.supercell`` is used by the cubic suites only.
    eos, elastic, defects, surfaces, phonons, md
        Settings of each property (the defect site and Miller index are set per row).
    """

    symbol: str | None = None
    lattice_constant: float | None = None
    groups: tuple | None = None
    clamped_ion: bool = True
    interstitial_sites: tuple | None = None
    miller_indices: tuple | None = None
    structure: Atoms | None = None
    relax_steps: int = 2000
    phonon_length: float = 10.0
    eos: EOSSettings = field(default_factory=EOSSettings)
    elastic: ElasticSettings = field(default_factory=ElasticSettings)
    defects: DefectSettings = field(default_factory=DefectSettings)
    surfaces: SurfaceSettings = field(default_factory=SurfaceSettings)
    phonons: PhononSettings = field(default_factory=PhononSettings)
    md: MDSettings = field(default_factory=lambda: MDSettings(supercell=3))

    def __post_init__(self):
        if self.groups is not None:
            unknown = [g for g in self.groups if g not in GROUPS]
            if unknown:
                raise InputError(f"setting groups={self.groups!r} has unknown groups {unknown}; "
                                 f"allowed: {', '.join(GROUPS)}.")
        if self.lattice_constant is not None and not (
                isinstance(self.lattice_constant, (int, float))
                and not isinstance(self.lattice_constant, bool)
                and math.isfinite(self.lattice_constant) and self.lattice_constant > 0):
            raise InputError(f"setting lattice_constant={self.lattice_constant!r} is not "
                             "allowed; give the cubic lattice constant in Å (a number > 0).")
        if self.symbol is not None and self.symbol not in atomic_numbers:
            raise InputError(f"setting symbol={self.symbol!r} is not a chemical element; "
                             "give a symbol such as 'Cu'.")
        if self.structure is not None:
            object.__setattr__(self, "structure", check_crystal(self.structure))
        check_positive("relax_steps", self.relax_steps, integer=True)
        check_positive("phonon_length", self.phonon_length)

    @classmethod
    def fast(cls, symbol: str | None = None, groups: tuple | None = None,
             **overrides) -> SuiteSettings:
        """Small settings for demos and CI: 2×2×2 defect cells, thin slabs, 2 ps MD of the
        smallest reliable repeat of the conventional cell (fcc, diamond 2×2×2, bcc 3×3×3),
        no clamped-ion constants; ``overrides`` replace any field."""
        fields = dict(clamped_ion=False, eos=EOSSettings.fast(),
                      elastic=ElasticSettings.fast(), defects=DefectSettings.fast(),
                      surfaces=SurfaceSettings.fast(), phonons=PhononSettings.fast(),
                      md=MDSettings.fast(), phonon_length=7.0)
        return cls(symbol=symbol, groups=groups, **(fields | overrides))


@dataclass
class SuiteResult:
    """Result of `run_suite`: the table, the full property results, and timings.

    Attributes
    ----------
    suite : str
    rows : list of dict
        ``{"name", "unit", "value", "uncertainty"}``; uncertainty may be None.
    results : dict
        Property results by row group (e.g. "elastic", "surface_111").
    timings : dict
        Wall time (s) by group.
    """

    suite: str
    rows: list
    results: dict
    timings: dict

    def to_dict(self) -> dict:
        """JSON-ready: suite, rows and timings (the full results are not serialised)."""
        return {"suite": self.suite, "rows": self.rows, "timings_s": self.timings}

    def value(self, name: str) -> float:
        for row in self.rows:
            if row["name"] == name:
                return row["value"]
        raise KeyError(name)


def run_property(name: str, calculator, structure, settings=None):
    """Run one property by name ("eos", "elastic", "defect", "surface", "phonons", "md")."""
    if name not in PROPERTIES:
        raise InputError(f"property {name!r} is not known; allowed: "
                         f"{', '.join(PROPERTIES)}.")
    function, settings_class = PROPERTIES[name]
    if settings is not None and not isinstance(settings, settings_class):
        raise InputError(f"settings for {name!r} must be a {settings_class.__name__}, got "
                         f"{type(settings).__name__}.")
    return function(calculator, structure, settings)


def run_suite(calculator, suite: str, settings: SuiteSettings | None = None) -> SuiteResult:
    """Run a property suite ("silicon", "fcc", "bcc" or "bulk") with ``calculator``.

    Returns
    -------
    SuiteResult
        ``.rows`` is the table; ``.to_dict()`` is JSON-serialisable.

    Raises
    ------
    InputError
        An unknown suite; ``bulk`` without ``settings.structure`` or with a group it
        cannot compute (:data:`BULK_EXCLUDED`); another suite given a structure.
    """
    if suite not in SUITES:
        raise InputError(f"suite {suite!r} is not known; allowed: {', '.join(SUITES)}.")
    settings = settings or SuiteSettings()
    lattice, default_symbol, default_groups, sites, millers = SUITES[suite]
    groups = settings.groups or default_groups
    if suite == BULK:
        structure = _bulk_start(calculator, settings, groups)
        repeats = phonon_repeats(structure, settings.phonon_length)
        log.info("bulk suite: phonon supercell %s of the %d-atom cell (heights >= %.3g Å)",
                 repeats, len(structure), settings.phonon_length)
        settings = replace(settings, phonons=replace(settings.phonons, supercell=repeats))
    else:
        structure = _cubic_start(suite, settings)
    sites = settings.interstitial_sites or sites
    millers = settings.miller_indices or millers
    rows, results, timings = [], {}, {}
    for group in groups:
        for key, run, to_rows in _tasks(group, lattice, sites, millers, settings):
            start = time.perf_counter()
            result = run(calculator, structure)
            timings[key] = time.perf_counter() - start
            results[key] = result
            rows.extend(to_rows(result))
            log.info("suite %s: %s done in %.1f s", suite, key, timings[key])
    return SuiteResult(suite=suite, rows=rows, results=results, timings=timings)


def _cubic_start(suite: str, settings: SuiteSettings) -> Atoms:
    """The conventional cell of a cubic suite's element at its starting lattice constant."""
    lattice, default_symbol = SUITES[suite][:2]
    if settings.structure is not None:
        raise InputError(f"suite {suite!r} builds its own {lattice} crystal and takes no "
                         "structure; run suite 'bulk' on a structure you give "
                         "(SuiteSettings(structure=atoms)).")
    symbol = settings.symbol or default_symbol
    if symbol is None:
        raise InputError(f"suite {suite!r} needs an element: pass "
                         f"SuiteSettings(symbol='Cu') (or another {lattice} element).")
    return bulk(symbol, lattice, a=_lattice_constant(symbol, lattice, settings), cubic=True)


def _bulk_start(calculator, settings: SuiteSettings, groups) -> Atoms:
    """``settings.structure`` with cell and positions relaxed by ``calculator`` (no
    calculator attached), after the bulk suite's checks."""
    if settings.structure is None:
        raise InputError("suite 'bulk' needs the crystal to compute: pass "
                         "SuiteSettings(structure=atoms) (an ase.Atoms periodic in 3 "
                         "directions).")
    problem = bulk_groups_problem(groups)
    if problem:
        raise InputError(f"{problem}.")
    atoms = relaxed_bulk(calculator, settings.structure, relax=True,
                         fmax=settings.elastic.fmax, steps=settings.relax_steps)
    out = atoms.copy()
    out.calc = None
    return out


def bulk_groups_problem(groups) -> str | None:
    """Why the bulk suite cannot compute ``groups`` (those of :data:`BULK_EXCLUDED`, with
    the reasons and the groups it has), or None when it can."""
    excluded = [g for g in groups or () if g in BULK_EXCLUDED]
    if not excluded:
        return None
    why = "; ".join(f"{g}: {BULK_EXCLUDED[g]}" for g in excluded)
    return (f"suite 'bulk' has no group {excluded} ({why}); choose groups among "
            f"{list(SUITES[BULK][2])}")


def phonon_repeats(structure: Atoms, length: float) -> tuple[int, int, int]:
    """Repeats ``n_i = ceil(length / h_i)`` (at least 1) of ``structure``'s cell, ``h_i`` the
    cell's height across lattice vector i (its volume over the area of the other two): the
    smallest supercell whose heights are all at least ``length`` (Å)."""
    cell = structure.cell.array
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
               for i in range(3)]
    return tuple(max(1, math.ceil(length / h - 1e-9)) for h in heights)


def suite_for(species: Sequence[str], lattice: str | None = None) -> str | None:
    """The suite that obviously fits training data of ``species``, or None.

    One element whose lattice (``lattice``, else the symmetry of ASE's reference state,
    ``ase.data.reference_states``) is fcc gives "fcc", bcc gives "bcc", and Si in the
    diamond lattice gives "silicon"; anything else (several elements, hcp, ...) has no
    obvious suite.
    """
    elements = set(species)
    if len(elements) != 1 or next(iter(elements)) not in atomic_numbers:
        return None
    (symbol,) = elements
    if lattice is None:
        lattice = (reference_states[atomic_numbers[symbol]] or {}).get("symmetry")
    if lattice in ("fcc", "bcc"):
        return lattice
    return "silicon" if lattice == "diamond" and symbol == "Si" else None


def tabulated_lattice_constant(symbol: str, lattice: str) -> float | None:
    """ASE's cubic lattice constant (Å) of ``symbol`` in ``lattice``, or None when ASE's
    reference state of the element is another lattice (or has no ``a``)."""
    state = reference_states[atomic_numbers[symbol]] or {}
    if state.get("symmetry") != lattice or "a" not in state:
        return None
    return float(state["a"])


def _lattice_constant(symbol: str, lattice: str, settings: SuiteSettings) -> float:
    if settings.lattice_constant is not None:
        return settings.lattice_constant
    a = tabulated_lattice_constant(symbol, lattice)
    if a is None:
        raise InputError(f"ASE has no {lattice} lattice constant for {symbol}; give the "
                         "lattice constant in Å (SuiteSettings(lattice_constant=...), "
                         "validate.lattice_constant in a configuration, mlip validate "
                         "--lattice-constant).")
    return a


def _row(name: str, unit: str, value, uncertainty=None) -> dict:
    unc = None if uncertainty is None or not math.isfinite(uncertainty) else float(uncertainty)
    return {"name": name, "unit": unit, "value": float(value), "uncertainty": unc}


def _tasks(group: str, lattice: str, sites, millers, s: SuiteSettings):
    """(key, run(calc, structure), to_rows(result)) for each computation of a group."""
    if group == "eos":
        yield ("eos", lambda c, x: equation_of_state(c, x, s.eos),
               lambda r: _eos_rows(r, lattice))
    elif group == "elastic":
        yield ("elastic", lambda c, x: elastic_constants(c, x, s.elastic),
               lambda r: _elastic_rows(r, "", lattice))
        if s.clamped_ion:
            clamped = replace(s.elastic, relaxed_ion=False)
            yield ("elastic_clamped_ion", lambda c, x: elastic_constants(c, x, clamped),
                   lambda r: _elastic_rows(r, "_clamped_ion", lattice))
    elif group in ("vacancy", "interstitials"):
        for site in ("vacancy",) if group == "vacancy" else sites:
            name = "vacancy_formation" if site == "vacancy" else f"interstitial_{site}"
            ds = replace(s.defects, defect=site)
            yield (name, lambda c, x, ds=ds: point_defect(c, x, ds),
                   lambda r, name=name: [_row(name, "eV", r.formation_energy)])
    elif group == "surfaces":
        for miller in millers:
            name = "surface_" + "".join(str(i) for i in miller)
            ss = replace(s.surfaces, miller=miller)
            yield (name, lambda c, x, ss=ss: surface_energy(c, x, ss),
                   lambda r, name=name: [_row(name, "J/m^2", r.surface_energy,
                                              r.convergence_error)])
    elif group == "phonons":
        yield ("phonons", lambda c, x: phonons(c, x, s.phonons), lambda r: [
            _row("phonon_max_frequency", "THz", r.max_frequency),
            _row("phonon_min_frequency", "THz", r.min_frequency),
            _row("phonon_imaginary_modes", "bool", float(r.has_imaginary))])
    elif group == "md":
        yield ("md", lambda c, x: nvt_md(c, x, s.md), lambda r: [
            _row("md_stable", "bool", float(r.stable)),
            _row("md_time_reached", "ps", r.time_reached),
            _row("md_diffusivity", "Å^2/ps", r.diffusivity, r.diffusivity_error)])


def _eos_rows(result, lattice: str | None) -> list:
    """a0 of a cubic suite, or V0 and E0 per atom of the bulk suite (``lattice`` None),
    and B."""
    b = _row("bulk_modulus", "GPa", result.bulk_modulus, result.errors["bulk_modulus"])
    if lattice is not None:
        return [_row(f"a0_{lattice}", "Å", result.a0, result.errors["a0"]), b]
    return [_row("volume_per_atom", "Å^3/atom", result.v0, result.errors["v0"]), b,
            _row("energy_per_atom", "eV/atom", result.e0, result.errors["e0"])]


#: The Voigt entries (row, column) the bulk suite reports
VOIGT_ENTRIES = {"c11": (0, 0), "c22": (1, 1), "c33": (2, 2), "c12": (0, 1), "c13": (0, 2),
                 "c23": (1, 2), "c44": (3, 3), "c55": (4, 4), "c66": (5, 5)}


def _elastic_rows(result, suffix: str, lattice: str | None = "cubic") -> list:
    """c11, c12, c44 (cubic averages) of a cubic suite; the nine entries of
    :data:`VOIGT_ENTRIES` and the Voigt bulk and shear moduli for the bulk suite."""
    if lattice is not None:
        return [_row(f"{name}{suffix}", "GPa", getattr(result, name), result.errors[name])
                for name in ("c11", "c12", "c44")]
    C, E = result.C, result.C_err
    rows = [_row(f"{name}{suffix}", "GPa", C[ij], E[ij]) for name, ij in VOIGT_ENTRIES.items()]
    (b, b_err), (g, g_err) = voigt_moduli(C, E)
    lowest = born_lowest_eigenvalue(C)
    if lowest <= 0:
        log.warning("bulk suite: the %s stiffness matrix has the eigenvalue %.3g GPa <= 0: "
                    "the relaxed structure is mechanically unstable (a saddle point of the "
                    "energy, not a minimum)", "clamped-ion" if suffix else "relaxed-ion",
                    lowest)
    return rows + [_row(f"bulk_modulus_voigt{suffix}", "GPa", b, b_err),
                   _row(f"shear_modulus_voigt{suffix}", "GPa", g, g_err),
                   _row(f"elastic_min_eigenvalue{suffix}", "GPa", lowest),
                   _row(f"mechanically_stable{suffix}", "bool", float(lowest > 0))]


def born_lowest_eigenvalue(C) -> float:
    """Smallest eigenvalue (GPa) of the symmetric part of the 6×6 Voigt stiffness ``C``
    (GPa): positive exactly when the crystal is mechanically stable (the Born criterion,
    the strain energy ``½ εᵀ C ε`` positive for every strain; Mouhat & Coudert 2014)."""
    C = np.asarray(C, dtype=float)
    return float(np.linalg.eigvalsh(0.5 * (C + C.T))[0])


def voigt_moduli(C, C_err) -> tuple[tuple[float, float], tuple[float, float]]:
    """Voigt bulk and shear moduli (GPa) of a 6×6 stiffness matrix ``C`` (GPa), with
    errors from ``C_err`` (shape (6, 6), independent entries):

    B_V = [(C11 + C22 + C33) + 2 (C12 + C13 + C23)] / 9,
    G_V = [(C11 + C22 + C33) − (C12 + C13 + C23) + 3 (C44 + C55 + C66)] / 15.
    """
    diag = [(i, i) for i in range(3)]
    off = [(0, 1), (0, 2), (1, 2)]
    shear = [(i, i) for i in range(3, 6)]

    def combine(terms):
        value = sum(w * sum(C[ij] for ij in idx) for w, idx in terms)
        err = math.sqrt(sum((w * C_err[ij]) ** 2 for w, idx in terms for ij in idx))
        return float(value), float(err)

    b, b_err = combine([(1 / 9, diag), (2 / 9, off)])
    g, g_err = combine([(1 / 15, diag), (-1 / 15, off), (3 / 15, shear)])
    return (b, b_err), (g, g_err)


def compare(model, reference, *, column: str = "dft") -> list:
    """Absolute and relative errors of a model table against a reference.

    Parameters
    ----------
    model : SuiteResult, list of row dicts, or mapping name -> value
    reference : SuiteResult, list of row dicts, or mapping name -> value
        A mapping that holds a sub-mapping under ``column`` (as
        ``si_gap18_reference/properties.json`` holds "dft") is read from there.
    column : str
        See above.

    Returns
    -------
    list of dict
        ``{"name", "unit", "model", "reference", "abs_error", "error_percent"}`` for every
        name present in both with finite values; abs_error = |model − reference|,
        error_percent = 100 (model − reference) / |reference| (signed), or None when the
        reference is zero within its own uncertainty (a reference row's ``uncertainty``;
        |reference| ≤ :data:`ZERO_REFERENCE` for values without one, e.g. a c12 ≈ 0 or
        an exact 0): a percentage of a value indistinguishable from 0 says nothing, and
        the absolute error stays.
    """
    model_values, units, _ = _as_values(model, "model")
    ref_values, ref_units, ref_unc = _as_values(reference, "reference", column)
    out = []
    for name, value in model_values.items():
        ref = ref_values.get(name)
        if ref is None or not (math.isfinite(value) and math.isfinite(ref)):
            log.info("compare: no finite reference for %s; skipped", name)
            continue
        diff = value - ref
        zero = abs(ref) <= max(ZERO_REFERENCE, ref_unc.get(name) or 0.0)
        out.append({"name": name, "unit": units.get(name) or ref_units.get(name),
                    "model": value, "reference": ref, "abs_error": abs(diff),
                    "error_percent": None if zero else 100.0 * diff / abs(ref)})
    return out


#: |reference| at or below this counts as zero in `compare` (no percentage)
ZERO_REFERENCE = 1e-8


def _as_values(table, what: str, column: str | None = None) -> tuple[dict, dict, dict]:
    """(name -> value, name -> unit, name -> uncertainty or None) from any accepted form."""
    if isinstance(table, SuiteResult):
        table = table.rows
    if isinstance(table, Mapping):
        if column is not None and isinstance(table.get(column), Mapping):
            table = table[column]
        values = {k: float(v) for k, v in table.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return values, {}, {}
    if isinstance(table, Sequence) and all(isinstance(r, Mapping) and "name" in r
                                           and "value" in r for r in table):
        rows = [r for r in table if r["value"] is not None]  # null: no value for that row
        return ({r["name"]: _row_value(r, what) for r in rows},
                {r["name"]: r.get("unit") for r in rows},
                {r["name"]: r.get("uncertainty") for r in rows})
    raise InputError(f"{what} table of type {type(table).__name__} is not understood: pass a "
                     "SuiteResult, a list of {'name', 'value', ...} rows, or a mapping "
                     "name -> value.")


def _row_value(row: Mapping, what: str) -> float:
    value = row["value"]
    try:
        if isinstance(value, bool):
            raise TypeError("a boolean")
        return float(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what}: the row {row['name']!r} has the value {value!r}, not a "
                         "number; give a number (or null for no value)") from err


def table_values(table, what: str = "reference", column: str = "dft") -> dict:
    """name -> value of a table in any form :func:`compare` takes (InputError for a row
    whose value is not a number)."""
    return _as_values(table, what, column)[0]


def format_table(rows: list) -> str:
    """A plain-text table of suite rows or `compare` rows."""
    if rows and "model" in rows[0]:
        lines = [f"{'property':<28}{'unit':>8}{'model':>12}{'reference':>12}{'error %':>10}"]
        for r in rows:
            pct = "" if r["error_percent"] is None else f"{r['error_percent']:+.1f}"
            lines.append(f"{r['name']:<28}{r['unit'] or '':>8}{r['model']:>12.4g}"
                         f"{r['reference']:>12.4g}{pct:>10}")
        return "\n".join(lines)
    lines = [f"{'property':<28}{'unit':>8}{'value':>12}{'uncertainty':>13}"]
    for r in rows:
        unc = "" if r["uncertainty"] is None else f"{r['uncertainty']:.2g}"
        lines.append(f"{r['name']:<28}{r['unit']:>8}{r['value']:>12.5g}{unc:>13}")
    return "\n".join(lines)
