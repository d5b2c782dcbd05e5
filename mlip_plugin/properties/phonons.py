"""Phonons with phonopy: force constants, band structure, DOS, Γ frequencies, stability.

Finite displacements (phonopy) in a supercell of the (relaxed) crystal, forces from any ASE
calculator, force constants by phonopy, the band structure on the standard seekpath path of
the primitive cell (``Phonopy.auto_band_structure``) and the total DOS on a mesh.  A mode
counts as imaginary when its frequency is below ``-imaginary_tolerance`` (phonopy reports
imaginary frequencies as negative numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import minkowski_reduce
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import guess_primitive_matrix

from mlip_plugin.errors import InputError

from ._common import (
    check_calculator,
    check_positive,
    check_relaxation,
    check_structure,
    freeze,
    nearest_neighbour_distance,
    relaxed_bulk,
)

__all__ = ["PhononSettings", "PhononResult", "phonons"]


@dataclass(frozen=True)
class PhononSettings:
    """Settings of `phonons`.

    Attributes
    ----------
    supercell : tuple of 3 int
        Repeats of the input cell for the force constants (e.g. 3×3×3 of a primitive fcc
        cell, 2×2×2 of a conventional one).  No atom may be its own nearest neighbour in
        the supercell (`phonons` refuses such a supercell).
    displacement : float
        Finite displacement (Å).
    npoints : int
        q-points per segment of the band path.
    dos_mesh : float
        Mesh density for the DOS (phonopy's length-type mesh, Å).
    imaginary_tolerance : float
        Frequencies below ``-imaginary_tolerance`` (THz) count as imaginary.
    relax_bulk : bool
        Relax cell and positions first (needs stress).
    fmax, steps : float, int
        Tolerance (eV/Å) and step limit of that relaxation.
    """

    supercell: tuple = (3, 3, 3)
    displacement: float = 0.01
    npoints: int = 51
    dos_mesh: float = 50.0
    imaginary_tolerance: float = 0.05
    relax_bulk: bool = True
    fmax: float = 1e-4
    steps: int = 1000

    def __post_init__(self):
        sc = tuple(self.supercell)
        if len(sc) != 3 or not all(float(n).is_integer() and n > 0 for n in sc):
            raise InputError(f"setting supercell={self.supercell!r} is not allowed: give three "
                             "positive integers, e.g. (3, 3, 3).")
        object.__setattr__(self, "supercell", tuple(int(n) for n in sc))
        check_positive("displacement", self.displacement)
        check_positive("npoints", self.npoints, integer=True)
        check_positive("dos_mesh", self.dos_mesh)
        check_positive("imaginary_tolerance", self.imaginary_tolerance, allow_zero=True)
        check_relaxation(self.fmax, self.steps)

    @classmethod
    def fast(cls) -> PhononSettings:
        return cls(supercell=(2, 2, 2), npoints=21, dos_mesh=20.0, fmax=1e-3, steps=300)


@dataclass
class PhononResult:
    """Result of `phonons`.

    Attributes
    ----------
    force_constants : ndarray, shape (n_sc, n_sc, 3, 3)
        eV/Å^2 (phonopy's full force constants).
    distances : list of ndarray
        Path coordinate of each band segment (1/Å).
    frequencies : list of ndarray, shape (n_q, n_bands)
        Frequencies (THz) along each segment.
    labels : list of (str, str)
        Labels of the start and end point of each segment (seekpath's, LaTeX).
    dos_frequencies, dos : ndarray, shape (n_dos,)
        Total DOS (states/THz) and its frequency grid (THz).
    gamma_frequencies : ndarray, shape (n_bands,)
        Frequencies at Γ (THz).
    min_frequency, max_frequency : float
        Extremes over the band path (THz).
    has_imaginary : bool
        Whether any band frequency lies below ``-imaginary_tolerance``.
    structure : Atoms
        The (relaxed) unit cell.
    """

    force_constants: np.ndarray
    distances: list
    frequencies: list
    labels: list
    dos_frequencies: np.ndarray
    dos: np.ndarray
    gamma_frequencies: np.ndarray
    min_frequency: float
    max_frequency: float
    has_imaginary: bool
    structure: Atoms
    settings: PhononSettings
    units: str = "THz"


def phonons(calculator, structure: Atoms, settings: PhononSettings | None = None) -> PhononResult:
    """Phonon band structure and DOS of ``structure`` with ``calculator``.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator (stress only needed when ``relax_bulk``).
    structure : ase.Atoms
        A periodic crystal (any cell; the band path uses its primitive cell).
    settings : PhononSettings, optional

    Returns
    -------
    PhononResult

    Raises
    ------
    InputError
        If the supercell is so small that an atom's own periodic image is one of its
        nearest neighbours: displacing the atom moves that neighbour too, and the force
        constant between them is lost (a one-atom supercell gives zero frequencies).
    """
    settings = settings or PhononSettings()
    check_calculator(calculator)
    _check_supercell(check_structure(structure), settings.supercell)
    atoms = relaxed_bulk(calculator, structure, relax=settings.relax_bulk, fmax=settings.fmax,
                         steps=settings.steps)
    unitcell = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                            scaled_positions=atoms.get_scaled_positions(),
                            masses=atoms.get_masses())  # the structure's (isotopes, D, ...)
    phonon = Phonopy(unitcell, supercell_matrix=np.diag(settings.supercell),
                     primitive_matrix=guess_primitive_matrix(unitcell, symprec=1e-5))
    phonon.generate_displacements(distance=settings.displacement)
    forces = []
    for displaced in phonon.supercells_with_displacements:
        sc = Atoms(displaced.symbols, cell=displaced.cell,
                   scaled_positions=displaced.scaled_positions, pbc=True)
        sc.calc = calculator
        forces.append(sc.get_forces().copy())
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    phonon.auto_band_structure(npoints=settings.npoints)
    bands = phonon.band_structure
    phonon.auto_total_dos(mesh=settings.dos_mesh)
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    gamma = np.asarray(phonon.qpoints.frequencies[0])
    all_freq = np.concatenate([np.ravel(f) for f in bands.frequencies])
    return PhononResult(
        force_constants=np.asarray(phonon.force_constants),
        distances=[np.asarray(d) for d in bands.distances],
        frequencies=[np.asarray(f) for f in bands.frequencies],
        labels=_segment_labels(bands),
        dos_frequencies=np.asarray(phonon.total_dos.frequency_points),
        dos=np.asarray(phonon.total_dos.dos), gamma_frequencies=gamma,
        min_frequency=float(all_freq.min()), max_frequency=float(all_freq.max()),
        has_imaginary=bool(all_freq.min() < -settings.imaginary_tolerance),
        structure=freeze(atoms), settings=settings)


def _check_supercell(atoms: Atoms, supercell: tuple) -> None:
    """`InputError` unless every atom's periodic images in the supercell lie farther away
    than the nearest-neighbour distance of the crystal."""
    nn = nearest_neighbour_distance(atoms)
    unit_image = float(np.linalg.norm(minkowski_reduce(np.asarray(atoms.cell))[0],
                                      axis=1).min())
    image = float(np.linalg.norm(minkowski_reduce(np.diag(supercell) @ np.asarray(atoms.cell))[0],
                                 axis=1).min())
    if image <= nn + 1e-6:
        n = int(np.floor(nn / unit_image)) + 1
        raise InputError(
            f"setting supercell={supercell} is too small for this "
            f"{atoms.get_chemical_formula()} cell: in the supercell an atom's own periodic "
            f"image ({image:.3f} Å away) is as close as its nearest neighbour ({nn:.3f} Å), "
            "so a displaced atom drags that neighbour along and their force constant is "
            "lost; use more repeats, at least "
            f"supercell=({n}, {n}, {n}), and check convergence with a larger one.")


def _segment_labels(bands) -> list:
    """(start, end) label of each band segment, from phonopy's labels and path connections."""
    labels = list(bands.labels or [])
    connections = list(bands.path_connections)
    if not labels:
        return [("", "")] * len(connections)
    out, k = [], 0
    for connected in connections:
        out.append((labels[k], labels[k + 1]))
        k += 1 if connected else 2
    return out
