"""Surface energies of relaxed slabs for any Miller index.

The slab is cut from the relaxed conventional cubic cell with ``ase.build.surface``.  Of the
possible terminations (one per distinct atomic plane in the periodic repeat along the
normal) the one that breaks the fewest nearest-neighbour bonds is used, e.g. the shuffle
plane of diamond (111).  The slab, fully periodic with ``vacuum`` on each side, is relaxed
at fixed cell and

    γ = (E_slab − N μ) / (2 A),

with μ the bulk energy per atom at the same lattice constant and A the area of the
surface cell.  A convergence check repeats the computation with one more repeat unit of
the slab and reports the change of γ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.build import surface
from matscipy.neighbours import neighbour_list

from mlip_plugin.errors import InputError

from ._common import (
    check_calculator,
    check_positive,
    check_relaxation,
    check_structure,
    freeze,
    nearest_neighbour_distance,
    relax_positions,
    relaxed_bulk,
    require_lattice,
)

__all__ = ["SurfaceSettings", "SurfaceResult", "surface_energy", "build_slab"]

#: J/m^2 per eV/Å^2.
EV_PER_A2_TO_J_PER_M2 = units._e * 1e20
#: A slab needs at least this many atomic planes to have a bulk-like interior.
MIN_PLANES = 4
#: And at least this much vacuum on each side (Å).
MIN_VACUUM = 5.0


@dataclass(frozen=True)
class SurfaceSettings:
    """Settings of `surface_energy`.

    Attributes
    ----------
    miller : tuple of 3 int
        Miller indices of the surface in the conventional cubic cell.
    thickness : float
        Minimum slab thickness (Å, between the outermost planes); whole repeat units are
        stacked until it is reached.
    vacuum : float
        Vacuum on each side of the slab (Å, at least 5).
    relax : bool
        Relax the slab's positions (cell fixed).
    convergence_check : bool
        Also compute γ for one more repeat unit and report the difference.
    relax_bulk : bool
        Relax the bulk lattice constant first (needs stress).
    fmax : float
        Force tolerance (eV/Å).
    steps : int
        Step limit of each relaxation.
    """

    miller: tuple = (1, 1, 1)
    thickness: float = 10.0
    vacuum: float = 10.0
    relax: bool = True
    convergence_check: bool = True
    relax_bulk: bool = True
    fmax: float = 1e-4
    steps: int = 2000

    def __post_init__(self):
        miller = tuple(self.miller)
        if (len(miller) != 3 or not all(float(i).is_integer() for i in miller)
                or not any(miller)):
            raise InputError(f"setting miller={self.miller!r} is not a Miller index: give three "
                             "integers, not all zero, e.g. (1, 1, 1).")
        object.__setattr__(self, "miller", tuple(int(i) for i in miller))
        check_positive("thickness", self.thickness)
        check_positive("vacuum", self.vacuum)
        if self.vacuum < MIN_VACUUM:
            raise InputError(f"setting vacuum={self.vacuum} Å is too small: the slab's periodic "
                             f"images would interact; use at least {MIN_VACUUM} Å per side.")
        check_relaxation(self.fmax, self.steps)

    @classmethod
    def fast(cls, miller=(1, 1, 1)) -> SurfaceSettings:
        return cls(miller=miller, thickness=8.0, vacuum=8.0, convergence_check=False,
                   fmax=1e-3, steps=500)


@dataclass
class SurfaceResult:
    """Result of `surface_energy`.

    Attributes
    ----------
    miller : tuple of int
    surface_energy : float
        γ (J/m^2) of the relaxed slab.
    unrelaxed_surface_energy : float
        γ before relaxation (J/m^2).
    convergence_error : float or None
        |γ(n+1 repeats) − γ(n repeats)| (J/m^2) when the check ran.
    area : float
        Area of the surface cell (Å^2).
    thickness : float
        Thickness of the slab (Å); ``n_planes`` its number of atomic planes.
    chemical_potential : float
        Bulk energy per atom (eV).
    lattice_constant : float
        Cubic lattice constant of the bulk the slab was cut from (Å).
    structure : Atoms
        The relaxed slab (no calculator).
    """

    miller: tuple
    surface_energy: float
    unrelaxed_surface_energy: float
    convergence_error: float | None
    area: float
    thickness: float
    n_planes: int
    chemical_potential: float
    lattice_constant: float
    structure: Atoms
    settings: SurfaceSettings
    units: str = "J/m^2"


def surface_energy(calculator, structure: Atoms,
                   settings: SurfaceSettings | None = None) -> SurfaceResult:
    """Relaxed surface energy of ``structure``'s crystal for one Miller index.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator (stress only needed when ``relax_bulk``).
    structure : ase.Atoms
        An elemental fcc, bcc or diamond crystal.
    settings : SurfaceSettings, optional

    Raises
    ------
    InputError
        If the lattice is not recognised or the slab would be thinner than 4 atomic planes.
    """
    settings = settings or SurfaceSettings()
    atoms = check_structure(structure)
    check_calculator(calculator)
    lattice = require_lattice(atoms, ("fcc", "bcc", "diamond"), "a surface energy")
    cell = relaxed_bulk(calculator, lattice.conventional(), relax=settings.relax_bulk,
                        fmax=settings.fmax, steps=settings.steps)
    mu = cell.get_potential_energy() / len(cell)
    slab, n_planes = build_slab(cell, settings.miller, settings.thickness, settings.vacuum)
    ideal_thickness = _thickness(slab)  # before the relaxation moves the outer planes
    gamma0, gamma = _slab_gamma(slab, calculator, mu, settings)
    error = None
    if settings.convergence_check:
        repeat_thickness = _repeat_thickness(cell, settings.miller)
        thicker, _ = build_slab(cell, settings.miller, ideal_thickness + repeat_thickness,
                                settings.vacuum)
        error = abs(_slab_gamma(thicker, calculator, mu, settings)[1] - gamma)
    return SurfaceResult(miller=settings.miller, surface_energy=gamma,
                         unrelaxed_surface_energy=gamma0, convergence_error=error,
                         area=_area(slab), thickness=_thickness(slab), n_planes=n_planes,
                         chemical_potential=float(mu),
                         lattice_constant=float(cell.cell.lengths()[0]), structure=freeze(slab),
                         settings=settings)


def build_slab(bulk_cell: Atoms, miller, thickness: float, vacuum: float) -> tuple[Atoms, int]:
    """Slab of ``bulk_cell`` with the fewest broken bonds, at least ``thickness`` Å thick.

    Returns the slab (fully periodic, ``vacuum`` Å on each side, third cell vector along
    the normal) and its number of atomic planes.

    Raises
    ------
    InputError
        If the slab has fewer than `MIN_PLANES` atomic planes.
    """
    unit = surface(bulk_cell, tuple(miller), 1, vacuum=None, periodic=True)
    height = unit.cell[2, 2]
    planes = _plane_heights(unit)
    spacing = np.diff(np.append(planes, planes[0] + height))
    repeats = 1
    while height * repeats - spacing[-1] < thickness - 1e-8:
        repeats += 1
    n_planes = len(planes) * repeats
    if n_planes < MIN_PLANES:
        raise InputError(f"setting thickness={thickness} Å gives a {miller} slab of only "
                         f"{n_planes} atomic planes; at least {MIN_PLANES} are needed for a "
                         "bulk-like interior. Increase thickness.")
    best, best_broken = None, None
    nn = nearest_neighbour_distance(bulk_cell)
    normal = np.asarray(miller, dtype=float) @ bulk_cell.cell.reciprocal()
    normal /= np.linalg.norm(normal)
    for h in planes:
        shifted = bulk_cell.copy()
        shifted.positions -= (h - 1e-3) * normal
        shifted.wrap()
        slab = surface(shifted, tuple(miller), repeats, vacuum=vacuum)
        broken = _broken_bonds(slab, bulk_cell, nn)
        if best_broken is None or broken < best_broken - 1e-9:
            best, best_broken = slab, broken
    best.pbc = True
    return best, n_planes


def _slab_gamma(slab: Atoms, calculator, mu: float, settings: SurfaceSettings):
    """Unrelaxed and relaxed γ (J/m^2) of ``slab``."""
    slab.calc = calculator
    factor = EV_PER_A2_TO_J_PER_M2 / (2 * _area(slab))
    gamma0 = (slab.get_potential_energy() - len(slab) * mu) * factor
    if settings.relax:
        relax_positions(slab, fmax=settings.fmax, steps=settings.steps,
                        label=f"the {settings.miller} slab")
    gamma = (slab.get_potential_energy() - len(slab) * mu) * factor
    return float(gamma0), float(gamma)


def _plane_heights(unit: Atoms, tol: float = 0.05) -> np.ndarray:
    """Distinct heights (Å) of the atomic planes in one periodic repeat, sorted."""
    height = unit.cell[2, 2]
    z = np.sort(np.mod(unit.positions[:, 2], height))
    z[z > height - tol] -= height
    z = np.sort(z)
    keep = np.concatenate([[True], np.diff(z) > tol])
    return z[keep]


def _repeat_thickness(bulk_cell: Atoms, miller) -> float:
    return float(surface(bulk_cell, tuple(miller), 1, vacuum=None, periodic=True).cell[2, 2])


def _thickness(slab: Atoms) -> float:
    return float(np.ptp(slab.positions[:, 2]))


def _area(slab: Atoms) -> float:
    return float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))


def _broken_bonds(slab: Atoms, bulk_cell: Atoms, nn: float) -> float:
    """Missing nearest-neighbour bonds of ``slab`` relative to the bulk coordination."""
    cutoff = 1.1 * nn
    z_bulk = len(neighbour_list("i", bulk_cell, cutoff)) / len(bulk_cell)
    probe = slab.copy()
    probe.pbc = (True, True, False)
    return z_bulk * len(probe) - len(neighbour_list("i", probe, cutoff))
