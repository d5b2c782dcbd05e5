"""Shared helpers of the property benchmarks: input checks, lattice recognition, relaxations.

Everything here works with any ASE calculator.  Relaxations use ASE's optimisers (BFGS for
positions, ``FrechetCellFilter`` for the cell); the lattice of an elemental crystal is
recognised with spglib from its space group and the number of atoms in its primitive cell.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import spglib
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from matscipy.neighbours import neighbour_list

from mlip_plugin.data.configuration import MIN_DISTANCE, min_distance
from mlip_plugin.errors import ConvergenceWarning, InputError

log = logging.getLogger(__name__)

#: Lattices the defect and surface builders know: (space group, atoms per primitive cell,
#: volume per atom in units of a^3 for the conventional cubic lattice constant a).
LATTICES = {
    "fcc": (225, 1, 0.25),
    "bcc": (229, 1, 0.5),
    "diamond": (227, 2, 0.125),
}


def check_positive(name: str, value: float, *, integer: bool = False,
                   allow_zero: bool = False) -> None:
    """Raise `InputError` unless ``value`` is a positive (or non-negative) finite number."""
    ok = np.isscalar(value) and np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"setting {name}={value!r} is not allowed: it must be a finite {kind} "
                         f"{bound}; pass a value in that range.")


def check_relaxation(fmax: float, steps: int) -> None:
    """Check the force tolerance (eV/Å) and step limit shared by all relaxation settings."""
    check_positive("fmax", fmax)
    check_positive("steps", steps, integer=True)


def check_choice(name: str, value: str, allowed) -> None:
    """Raise `InputError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputError(f"setting {name}={value!r} is not known; allowed: "
                         f"{', '.join(map(repr, allowed))}. Pick one of those.")


def check_structure(structure, *, name: str = "structure") -> Atoms:
    """Return a copy of ``structure`` (an ASE ``Atoms``, fully periodic, no NaN) without calc."""
    if not isinstance(structure, Atoms):
        raise InputError(f"{name} must be an ase.Atoms object, got {type(structure).__name__}; "
                         "build one with ase.build.bulk(...).")
    if len(structure) == 0 or not np.all(np.isfinite(structure.positions)):
        raise InputError(f"{name} has no atoms or non-finite positions; pass a valid crystal.")
    if not structure.pbc.all() or abs(structure.cell.volume) < 1e-8:
        raise InputError(f"{name} must be a bulk crystal, periodic in 3 directions with a "
                         f"non-degenerate cell (pbc={structure.pbc.tolist()}, volume="
                         f"{abs(structure.cell.volume):.3g} Å^3); set pbc=True and a 3D cell.")
    atoms = structure.copy()
    atoms.calc = None
    atoms.constraints = []
    return atoms


def check_crystal(structure, *, name: str = "structure") -> Atoms:
    """`check_structure`, and no two atoms closer than ``MIN_DISTANCE`` (0.1 Å), periodic
    images included (the check of ``Configuration.validate``)."""
    atoms = check_structure(structure, name=name)
    dmin = min_distance(atoms, MIN_DISTANCE)
    if dmin < MIN_DISTANCE:
        raise InputError(f"{name} ({atoms.get_chemical_formula()}) has atoms {dmin:.3g} Å "
                         f"apart, closer than {MIN_DISTANCE} Å (overlapping atoms); fix the "
                         "positions or the cell.")
    return atoms


def structure_to_dict(atoms: Atoms) -> dict:
    """JSON-ready inline form of a crystal: ``{"symbols": [str] (n,), "positions":
    [[float]] (n, 3) Å, "cell": [[float]] (3, 3) Å, "pbc": [bool] (3,)}``, exact on a
    round trip through :func:`structure_from_dict` (float64 values as Python floats)."""
    return {"symbols": atoms.get_chemical_symbols(),
            "positions": np.asarray(atoms.positions, dtype=float).tolist(),
            "cell": np.asarray(atoms.cell, dtype=float).tolist(),
            "pbc": [bool(p) for p in atoms.pbc]}


def structure_from_dict(doc, *, name: str = "structure") -> Atoms:
    """The ``Atoms`` of an inline form (:func:`structure_to_dict`; ``numbers`` may stand
    for ``symbols``, ``pbc`` defaults to True); `InputError` naming ``name`` and what is
    wrong."""
    wanted = ("a mapping with 'symbols' (or 'numbers'), 'positions' (Å, n×3), 'cell' "
              "(Å, 3×3) and optionally 'pbc'")
    if not hasattr(doc, "keys"):
        raise InputError(f"{name} of type {type(doc).__name__} is not a structure: give "
                         f"{wanted}.")
    unknown = sorted(set(doc) - {"symbols", "numbers", "positions", "cell", "pbc"})
    missing = [k for k in ("positions", "cell") if k not in doc]
    if unknown or missing or ("symbols" in doc) == ("numbers" in doc):
        raise InputError(f"{name} has keys {sorted(doc)}; give {wanted} (unknown: {unknown}, "
                         f"missing: {missing}).")
    try:
        species = ({"symbols": list(doc["symbols"])} if "symbols" in doc
                   else {"numbers": [int(z) for z in doc["numbers"]]})
        return Atoms(**species, positions=np.asarray(doc["positions"], dtype=float),
                     cell=np.asarray(doc["cell"], dtype=float),
                     pbc=doc.get("pbc", True))
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{name} is not a valid structure ({type(err).__name__}: {err}); "
                         f"give {wanted}.") from err


def check_calculator(calculator, *, need_stress: bool = False, what: str = "this property",
                     probe: Atoms | None = None) -> None:
    """Raise `InputError` if ``calculator`` is not an ASE calculator or lacks stress.

    Stress support is probed on ``probe`` (a copy is used) when given; calculators that do
    not declare ``implemented_properties`` are trusted only if the probe succeeds.  The
    error says the calculator "does not compute 'stress'" only when that is the cause (it
    does not declare stress, or raises ASE's ``PropertyNotImplementedError``); any other
    ``NotImplementedError`` of the probe (e.g. EMT's ``No EMT-potential for Si``) is reported
    with the calculator's own message; other exceptions (a failed SCF, …) propagate as
    they are.
    """
    if not hasattr(calculator, "get_potential_energy") and not isinstance(calculator,
                                                                           Calculator):
        raise InputError(f"calculator must be an ASE calculator, got "
                         f"{type(calculator).__name__}; wrap your model in an ASE Calculator.")
    if not need_stress:
        return
    declared = getattr(calculator, "implemented_properties", None)
    if declared is not None and "stress" not in declared:
        raise InputError(_no_stress_message(calculator, what))
    if probe is not None:
        atoms = probe.copy()
        atoms.calc = calculator
        try:
            stress = atoms.get_stress()
        except PropertyNotImplementedError as err:
            raise InputError(_no_stress_message(calculator, what)) from err
        except NotImplementedError as err:  # e.g. EMT on a species it has no potential for
            raise InputError(_probe_failed_message(calculator, what, atoms, err)) from err
        if not np.all(np.isfinite(stress)):
            raise InputError(_no_stress_message(calculator, what) + " (it returned NaN)")


def _no_stress_message(calculator, what: str) -> str:
    return (f"calculator {type(calculator).__name__} does not compute 'stress', which {what} "
            "needs (stress-strain fits, cell relaxation); use a calculator that implements "
            "stress, or switch the cell relaxation off (relax_bulk=False) where offered.")


def _probe_failed_message(calculator, what: str, atoms: Atoms, err: Exception) -> str:
    return (f"the calculator {type(calculator).__name__} raised {type(err).__name__}: {err} "
            f"when computing the stress of the {atoms.get_chemical_formula()} crystal, which "
            f"{what} needs. Check that the calculator supports these species and check its "
            "parameters.")


@dataclass(frozen=True)
class Lattice:
    """A recognised elemental cubic lattice: name, chemical symbol and cubic constant a (Å)."""

    name: str
    symbol: str
    a: float

    def conventional(self, repeat: int = 1) -> Atoms:
        """The conventional cubic cell (4, 2 or 8 atoms) repeated ``repeat`` times per axis."""
        atoms = bulk(self.symbol, self.name, a=self.a, cubic=True)
        return atoms * (repeat, repeat, repeat)


def identify_lattice(structure: Atoms, *, symprec: float = 1e-3) -> Lattice | None:
    """Recognise fcc, bcc or diamond for an elemental crystal; None for anything else."""
    if len(set(structure.get_chemical_symbols())) != 1:
        return None
    cell = (np.asarray(structure.cell), structure.get_scaled_positions(), structure.numbers)
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if dataset is None:
        return None
    prim = spglib.standardize_cell(cell, to_primitive=True, symprec=symprec)
    n_prim = len(prim[2]) if prim is not None else None
    volume_per_atom = abs(structure.cell.volume) / len(structure)
    for name, (number, atoms_per_prim, v_factor) in LATTICES.items():
        if dataset.number == number and n_prim == atoms_per_prim:
            a = (volume_per_atom / v_factor) ** (1.0 / 3.0)
            return Lattice(name, structure.get_chemical_symbols()[0], float(a))
    return None


def require_lattice(structure: Atoms, allowed, what: str) -> Lattice:
    """The lattice of ``structure``; `InputError` unless it is one of ``allowed``."""
    lattice = identify_lattice(structure)
    if lattice is None or lattice.name not in allowed:
        found = "an unrecognised structure" if lattice is None else f"a {lattice.name} crystal"
        raise InputError(f"{what} needs an elemental {' or '.join(allowed)} crystal, but the "
                         f"structure ({structure.get_chemical_formula()}) is {found}; pass "
                         f"e.g. ase.build.bulk(symbol, '{allowed[0]}').")
    return lattice


#: What a relaxation that ran out of steps tells the user to do
RAISE_STEPS = ("raise the step limit: the property's settings (steps) in Python, "
               "SuiteSettings.relax_steps for the bulk suite's starting relaxation, or "
               "the larger limits of validate.preset: default (mlip validate --preset "
               "default) instead of fast")


def relax_positions(atoms: Atoms, *, fmax: float, steps: int, label: str) -> bool:
    """Relax the positions of ``atoms`` (calculator attached) with BFGS at fixed cell.

    Returns whether the maximum force fell below ``fmax`` (eV/Å); warns
    `ConvergenceWarning` otherwise.
    """
    optimizer = BFGS(atoms, logfile=None)
    converged = bool(optimizer.run(fmax=fmax, steps=steps))
    if not converged:
        fmax_now = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
        warnings.warn(f"relaxation of {label} stopped after {steps} steps with max force "
                      f"{fmax_now:.2e} eV/Å > fmax={fmax:g}; {RAISE_STEPS}.",
                      ConvergenceWarning, stacklevel=3)
    return converged


def relax_cell(atoms: Atoms, *, fmax: float, steps: int, label: str) -> bool:
    """Relax positions and cell of ``atoms`` together (``FrechetCellFilter`` + BFGS)."""
    optimizer = BFGS(FrechetCellFilter(atoms), logfile=None)
    converged = bool(optimizer.run(fmax=fmax, steps=steps))
    if not converged:
        warnings.warn(f"cell relaxation of {label} stopped after {steps} steps above "
                      f"fmax={fmax:g}; {RAISE_STEPS}.", ConvergenceWarning,
                      stacklevel=3)
    return converged


def relaxed_bulk(calculator, structure: Atoms, *, relax: bool, fmax: float,
                 steps: int) -> Atoms:
    """A copy of ``structure`` with ``calculator`` attached, cell and positions relaxed if asked."""
    atoms = check_structure(structure)
    if relax:
        check_calculator(calculator, need_stress=True, what="the bulk cell relaxation",
                         probe=atoms)
    atoms.calc = calculator
    if relax:
        relax_cell(atoms, fmax=fmax, steps=steps, label="the bulk crystal")
    return atoms


def nearest_neighbour_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance (Å) of a periodic crystal, periodic images included
    (a one-atom cell's is its shortest lattice vector).  The search radius, twice the
    length per atom, holds a neighbour at any packing fraction."""
    cutoff = 2.0 * (atoms.get_volume() / len(atoms)) ** (1 / 3)
    return float(neighbour_list("d", atoms, cutoff).min())


def freeze(atoms: Atoms) -> Atoms:
    """A calculator-free copy of ``atoms`` for a result record (energies kept in ``info``)."""
    out = atoms.copy()
    if atoms.calc is not None and "energy" in atoms.calc.results:
        out.info["energy"] = float(atoms.calc.results["energy"])
    out.calc = None
    out.constraints = []
    return out
