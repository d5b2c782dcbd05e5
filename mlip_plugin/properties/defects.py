"""Point defects: vacancy and self-interstitial formation energies in relaxed supercells.

The formation energy is taken relative to the bulk chemical potential μ = E_bulk / N of
the perfect supercell at the same (relaxed) lattice constant:

    E_f = E_defect(N ± 1) − (N ± 1) · μ,

with the defect supercell relaxed at fixed cell to ``fmax``.  Interstitial sites, in units
of the cubic lattice constant a of the conventional cell (origin on an atom):

* diamond: tetrahedral (½,½,½), hexagonal (⅝,⅝,⅝), ⟨110⟩ split dumbbell on a lattice site;
* fcc: octahedral (½,½,½), tetrahedral (¼,¼,¼), ⟨100⟩ split dumbbell;
* bcc: octahedral (½,½,0), tetrahedral (½,¼,0), ⟨110⟩ split dumbbell.

Each interstitial is relaxed with the point symmetry of its starting configuration imposed
(ASE's ``FixSymmetry``: forces and steps are symmetrised with the space group spglib finds
for the defect supercell), so the value reported for a site is the relaxed energy *of that
configuration* — the convention of the reference tables.  Such a constrained relaxation
ends at a stationary point, which may be a saddle rather than a minimum: in EMT Cu the
octahedral site is a saddle in a 3×3×3 cell (left free it falls into the ⟨100⟩ dumbbell),
and in the small 2×2×2 cell the dumbbell is one (left free it falls onto the octahedral
site).  Without the constraint, round-off and random displacements let such a relaxation
leave its site, and two sites then report the same energy.  The vacancy instead starts from
a small seeded random displacement (``rattle``) and relaxes freely, so that
symmetry-lowering relaxations (e.g. the Jahn–Teller distortion of the silicon vacancy) can
happen; ``keep_symmetry`` switches either behaviour for any defect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from ase import Atoms
from ase.constraints import FixSymmetry

from mlip_plugin.errors import InputError

from ._common import (
    check_calculator,
    check_choice,
    check_positive,
    check_relaxation,
    check_structure,
    freeze,
    identify_lattice,
    nearest_neighbour_distance,
    relax_positions,
    relaxed_bulk,
    require_lattice,
)

__all__ = ["DefectSettings", "DefectResult", "point_defect", "vacancy_formation",
           "interstitial_formation", "INTERSTITIAL_SITES"]

#: Interstitial sites per lattice, fractional in the conventional cubic cell.
INTERSTITIAL_SITES = {
    "diamond": {"tetrahedral": (0.5, 0.5, 0.5), "hexagonal": (0.625, 0.625, 0.625),
                "dumbbell": (1.0, 1.0, 0.0)},
    "fcc": {"octahedral": (0.5, 0.5, 0.5), "tetrahedral": (0.25, 0.25, 0.25),
            "dumbbell": (0.0, 0.0, 1.0)},
    "bcc": {"octahedral": (0.5, 0.5, 0.0), "tetrahedral": (0.5, 0.25, 0.0),
            "dumbbell": (1.0, 1.0, 0.0)},
}
#: For "dumbbell" the tuple is the dumbbell direction; the two atoms start ±HALF_SPLIT
#: nearest-neighbour distances from the lattice site they share.
HALF_SPLIT = 0.5
#: Tolerance (Å) of the symmetry search for the constrained relaxations; the starting
#: configurations are exact, so it only has to absorb round-off.
SYMPREC = 1e-3
DEFECTS = ("vacancy", "tetrahedral", "hexagonal", "octahedral", "dumbbell")


@dataclass(frozen=True)
class DefectSettings:
    """Settings of `point_defect`.

    Attributes
    ----------
    defect : str
        "vacancy", or an interstitial site of the lattice (see `INTERSTITIAL_SITES`).
    supercell : int
        Repeats of the conventional cubic cell per axis (3: 108 fcc / 54 bcc / 216 diamond
        atoms).  Check convergence by comparing two sizes.
    relax_bulk : bool
        Relax the bulk lattice constant first (needs stress); else use the input's.
    fmax : float
        Force tolerance of the relaxations (eV/Å).
    steps : int
        Step limit of each relaxation.
    keep_symmetry : bool or None
        Relax with the symmetry of the starting configuration imposed (the energy of that
        configuration, possibly a saddle point), or freely.  None: imposed for the
        interstitials unless ``rattle`` > 0, free for the vacancy.
    rattle : float or None
        Standard deviation (Å) of random displacements of the atoms around the defect before
        a free relaxation; None: 0.02 when the relaxation is free, 0 when symmetry is kept.
        Must be 0 or None with ``keep_symmetry=True``.
    seed : int
        Seed of those displacements.
    """

    defect: str = "vacancy"
    supercell: int = 3
    relax_bulk: bool = True
    fmax: float = 1e-4
    steps: int = 2000
    rattle: float | None = None
    seed: int = 0
    keep_symmetry: bool | None = None

    def __post_init__(self):
        check_choice("defect", self.defect, DEFECTS)
        check_positive("supercell", self.supercell, integer=True)
        check_relaxation(self.fmax, self.steps)
        if self.rattle is not None:
            check_positive("rattle", self.rattle, allow_zero=True)
        check_choice("keep_symmetry", self.keep_symmetry, (None, True, False))
        if self.keep_symmetry and self.rattle:
            raise InputError(f"settings keep_symmetry=True and rattle={self.rattle!r} "
                             "contradict each other: random displacements would break the "
                             "symmetry to be kept; set rattle=0 or keep_symmetry=False.")

    @property
    def symmetric(self) -> bool:
        """Whether the relaxation keeps the symmetry of the starting configuration."""
        if self.keep_symmetry is not None:
            return self.keep_symmetry
        return self.defect != "vacancy" and not self.rattle

    @property
    def displacement(self) -> float:
        """The rattle amplitude in effect (Å)."""
        if self.rattle is not None:
            return self.rattle
        return 0.0 if self.symmetric else 0.02

    @classmethod
    def fast(cls, defect: str = "vacancy") -> DefectSettings:
        return cls(defect=defect, supercell=2, fmax=1e-3, steps=500)


@dataclass
class DefectResult:
    """Result of `point_defect`.

    Attributes
    ----------
    formation_energy : float
        E_f (eV).
    unrelaxed_formation_energy : float
        E_f before relaxation (eV), for reference.
    chemical_potential : float
        μ, bulk energy per atom (eV).
    lattice_constant : float
        Cubic lattice constant used (Å).
    n_atoms : int
        Atoms in the defect supercell.
    converged : bool
        Whether the defect relaxation reached ``fmax``.
    structure, bulk : Atoms
        Relaxed defect supercell and perfect supercell (no calculator; energy in ``info``).
    """

    defect: str
    formation_energy: float
    unrelaxed_formation_energy: float
    chemical_potential: float
    lattice_constant: float
    n_atoms: int
    converged: bool
    structure: Atoms
    bulk: Atoms
    settings: DefectSettings
    units: str = "eV"


def point_defect(calculator, structure: Atoms,
                 settings: DefectSettings | None = None) -> DefectResult:
    """Formation energy of a vacancy or self-interstitial in ``structure``'s crystal.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator (stress only needed when ``relax_bulk``).
    structure : ase.Atoms
        An elemental fcc, bcc or diamond crystal (any cell of it); a vacancy also works in
        other elemental crystals, using ``structure`` repeated as the supercell.
    settings : DefectSettings, optional

    Notes
    -----
    With ``settings.symmetric`` (the default for interstitials) the relaxation keeps the
    space group of the starting defect supercell, so the result is the energy at that
    high-symmetry configuration, which may be a saddle point of the potential energy
    surface rather than a minimum (see the module docstring).

    Raises
    ------
    InputError
        If the structure is not of a lattice that has the requested site, or, for a
        vacancy, not of one element.
    """
    settings = settings or DefectSettings()
    atoms = check_structure(structure)
    check_calculator(calculator)
    if settings.defect == "vacancy":
        species = sorted(set(atoms.get_chemical_symbols()))
        if len(species) > 1:
            raise InputError(
                f"a vacancy formation energy of a compound ({atoms.get_chemical_formula()}, "
                f"species {species}) needs the chemical potential of the removed species, "
                "which point_defect does not take: it computes vacancies in elemental "
                "crystals (give one, or compute E_vac = E_defect - E_bulk + μ yourself)")
        lattice = identify_lattice(atoms)
    else:
        allowed = [name for name, sites in INTERSTITIAL_SITES.items()
                   if settings.defect in sites]
        lattice = require_lattice(atoms, allowed, f"the {settings.defect} interstitial")
    atoms = relaxed_bulk(calculator, atoms, relax=settings.relax_bulk, fmax=settings.fmax,
                         steps=settings.steps)
    if lattice is not None:
        lattice = replace(lattice, a=identify_lattice(atoms).a)
    n = settings.supercell
    perfect = lattice.conventional(n) if lattice is not None else atoms * (n, n, n)
    perfect.calc = calculator
    mu = perfect.get_potential_energy() / len(perfect)
    defect = _make_defect(perfect, lattice, settings.defect)
    defect.calc = calculator
    e_unrelaxed = defect.get_potential_energy() - len(defect) * mu
    if settings.symmetric:
        defect.set_constraint(FixSymmetry(defect, symprec=SYMPREC))
    elif settings.displacement > 0:
        _rattle_around(defect, _defect_centre(perfect, defect, settings.defect),
                       nearest_neighbour_distance(perfect),
                       settings.displacement, settings.seed)
    converged = relax_positions(defect, fmax=settings.fmax, steps=settings.steps,
                                label=f"the {settings.defect} supercell")
    e_form = defect.get_potential_energy() - len(defect) * mu
    a = lattice.a if lattice is not None else float("nan")
    return DefectResult(defect=settings.defect, formation_energy=float(e_form),
                        unrelaxed_formation_energy=float(e_unrelaxed),
                        chemical_potential=float(mu), lattice_constant=a,
                        n_atoms=len(defect), converged=converged, structure=freeze(defect),
                        bulk=freeze(perfect), settings=settings)


def vacancy_formation(calculator, structure: Atoms,
                      settings: DefectSettings | None = None) -> DefectResult:
    """Relaxed vacancy formation energy; `point_defect` with ``defect="vacancy"``."""
    settings = replace(settings or DefectSettings(), defect="vacancy")
    return point_defect(calculator, structure, settings)


def interstitial_formation(calculator, structure: Atoms, site: str,
                           settings: DefectSettings | None = None) -> DefectResult:
    """Relaxed self-interstitial formation energy at ``site``; see `INTERSTITIAL_SITES`."""
    if site == "vacancy":
        raise InputError("site='vacancy' is not an interstitial site; call "
                         "vacancy_formation, or pass one of tetrahedral, hexagonal, "
                         "octahedral, dumbbell.")
    settings = replace(settings or DefectSettings(), defect=site)
    return point_defect(calculator, structure, settings)


def _make_defect(perfect: Atoms, lattice, defect: str) -> Atoms:
    """The defect supercell: atom 0 (at the origin) removed, an atom added, or split."""
    atoms = perfect.copy()
    if defect == "vacancy":
        del atoms[0]
        return atoms
    site = np.array(INTERSTITIAL_SITES[lattice.name][defect], dtype=float)
    if defect != "dumbbell":
        atoms.append(atoms[0])
        atoms.positions[-1] = site * lattice.a
        return atoms
    nn = nearest_neighbour_distance(perfect)
    shift = HALF_SPLIT * nn * site / np.linalg.norm(site)
    origin = atoms.positions[0].copy()
    atoms.append(atoms[0])
    atoms.positions[0] = origin + shift
    atoms.positions[-1] = origin - shift
    atoms.wrap()
    return atoms


def _defect_centre(perfect: Atoms, defect: Atoms, name: str) -> np.ndarray:
    """Centre of the defect (Å): the emptied or shared lattice site at the origin atom, or
    the added atom at its interstitial site."""
    if name in ("vacancy", "dumbbell"):
        return perfect.positions[0].copy()
    return defect.positions[-1].copy()


def _rattle_around(atoms: Atoms, centre: np.ndarray, nn: float, amplitude: float,
                   seed: int) -> None:
    """Displace the atoms within 1.2 nearest-neighbour distances of ``centre`` at random."""
    probe = atoms.copy()
    probe.append(atoms[0])
    probe.positions[-1] = centre
    distances = probe.get_distances(len(probe) - 1, range(len(atoms)), mic=True)
    near = distances < 1.2 * nn
    rng = np.random.default_rng(seed)
    atoms.positions[near] += rng.normal(0.0, amplitude, (int(near.sum()), 3))


