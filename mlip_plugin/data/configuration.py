"""A configuration: an :class:`ase.Atoms` with reference labels, a type and fitting weights.

Units are ASE's: total energy in eV, forces in eV/Å (shape ``(n_atoms, 3)``), stress as a
Voigt 6-vector ``[xx, yy, zz, yz, xz, xy]`` in eV/Å³, negative under compression; the
virial is ``-volume * stress`` in eV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ..errors import InputError

__all__ = [
    "Weights",
    "DEFAULT_WEIGHTS",
    "Configuration",
    "assign_weights",
    "MIN_DISTANCE",
    "voigt_from_matrix",
    "matrix_from_voigt",
]

#: Atoms closer than this (Å) make a configuration invalid.
MIN_DISTANCE = 0.1
#: A cell of smaller volume (Å³) has none: it cannot carry a stress label.
ZERO_VOLUME = 1e-8


@dataclass(frozen=True)
class Weights:
    """Fitting weights of one configuration's energy, force and virial rows.

    The defaults are those of ACEpotentials.jl (E = 30, F = 1, V = 1).
    """

    energy: float = 30.0
    forces: float = 1.0
    virial: float = 1.0

    def __post_init__(self):
        for name in ("energy", "forces", "virial"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise InputError(
                    f"weight {name}={value!r} is not allowed; weights must be finite and >= 0"
                )


DEFAULT_WEIGHTS = Weights()


def voigt_from_matrix(matrix) -> np.ndarray:
    """3×3 (or 9-vector, row-major) tensor → Voigt ``[xx, yy, zz, yz, xz, xy]``."""
    m = np.asarray(matrix, dtype=float).reshape(3, 3)
    return np.array([m[0, 0], m[1, 1], m[2, 2], m[1, 2], m[0, 2], m[0, 1]])


def matrix_from_voigt(voigt) -> np.ndarray:
    """Voigt ``[xx, yy, zz, yz, xz, xy]`` → symmetric 3×3."""
    xx, yy, zz, yz, xz, xy = np.asarray(voigt, dtype=float)
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


@dataclass(eq=False)
class Configuration:
    """One structure with its reference labels.

    Attributes
    ----------
    atoms : ase.Atoms
        Positions in Å; the cell and ``pbc`` define periodicity.
    energy : float or None
        Total energy in eV.
    forces : ndarray of shape (n_atoms, 3) or None
        Forces in eV/Å.
    stress : ndarray of shape (6,) or None
        Voigt stress in eV/Å³ (ASE sign: negative under compression).
    config_type : str
        Free label (``"bulk"``, ``"Vacancy"``, ``"isolated_atom"``, ...).
    weights : Weights
        Fitting weights of this configuration's rows.
    info : dict
        Any further metadata read from the source (never labels).
    """

    atoms: Atoms
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    config_type: str = "default"
    weights: Weights = field(default_factory=Weights)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.energy is not None:
            try:
                self.energy = float(np.asarray(self.energy, dtype=float).item())
            except (TypeError, ValueError) as err:
                raise InputError(f"energy={self.energy!r} must be one number (the total "
                                 "energy in eV)") from err
        if self.forces is not None:
            self.forces = np.array(self.forces, dtype=float)
        if self.stress is not None:
            s = np.array(self.stress, dtype=float)
            self.stress = voigt_from_matrix(s) if s.size == 9 else s

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def volume(self) -> float:
        """Cell volume in Å³ (0 for a cell that is not three-dimensional)."""
        return float(abs(np.linalg.det(self.atoms.cell.array)))

    @property
    def virial(self) -> np.ndarray | None:
        """Voigt virial ``-volume * stress`` in eV, or None without a stress label.

        Raises
        ------
        InputError
            If the configuration has a stress label but its cell has no volume (a molecule
            without a cell): ``-volume * stress`` would be a zero virial that no data gave.
        """
        if self.stress is None:
            return None
        volume = self.volume
        if volume < ZERO_VOLUME:
            raise InputError(_stress_without_volume(self.atoms))
        return -volume * self.stress

    @property
    def symbols(self) -> list[str]:
        return self.atoms.get_chemical_symbols()

    def copy(self) -> Configuration:
        return replace(
            self,
            atoms=self.atoms.copy(),
            forces=None if self.forces is None else self.forces.copy(),
            stress=None if self.stress is None else self.stress.copy(),
            info=dict(self.info),
        )

    def validate(self, source: str = "<memory>", index: int | None = None) -> Configuration:
        """Check shapes, finiteness, overlapping atoms and the cell; return ``self``.

        Raises
        ------
        InputError
            Naming ``source`` and ``index`` and what is wrong.
        """
        where = f"{source}, configuration {index}" if index is not None else source
        n = self.n_atoms
        if n == 0:
            raise InputError(f"{where}: the configuration has no atoms")
        pos = self.atoms.positions
        if not np.all(np.isfinite(pos)):
            raise InputError(f"{where}: positions contain NaN or inf")
        _check_label(where, "energy", self.energy, ())
        _check_label(where, "forces", self.forces, (n, 3))
        _check_label(where, "stress", self.stress, (6,))
        if any(self.atoms.pbc):
            cell = self.atoms.cell.array
            if not np.all(np.isfinite(cell)):
                raise InputError(f"{where}: the cell contains NaN or inf")
            periodic = cell[self.atoms.pbc]
            if np.linalg.matrix_rank(periodic, tol=1e-8) < periodic.shape[0] or (
                all(self.atoms.pbc) and self.volume < 1e-8
            ):
                raise InputError(
                    f"{where}: the cell has zero volume along its periodic directions "
                    f"(cell={cell.tolist()}); give three linearly independent cell vectors"
                )
        if self.stress is not None and self.volume < ZERO_VOLUME:
            raise InputError(f"{where}: {_stress_without_volume(self.atoms)}")
        dmin = min_distance(self.atoms, MIN_DISTANCE)
        if dmin < MIN_DISTANCE:
            raise InputError(
                f"{where}: atoms are {dmin:.3g} Å apart, closer than {MIN_DISTANCE} Å "
                "(overlapping atoms); fix or remove this configuration"
            )
        return self


def _stress_without_volume(atoms: Atoms) -> str:
    return (f"a stress label needs a cell with non-zero volume (cell="
            f"{atoms.cell.array.tolist()}, pbc={np.asarray(atoms.pbc).tolist()}): its virial "
            "-volume * stress would be 0; drop the stress (stress=None) or give the cell")


def _check_label(where: str, name: str, value, shape: tuple) -> None:
    if value is None:
        return
    arr = np.asarray(value, dtype=float)
    if arr.shape != shape:
        raise InputError(
            f"{where}: {name} has shape {arr.shape}, expected {shape}; "
            "check the key names and the file"
        )
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{where}: {name} contains NaN or inf; fix or drop this configuration")


def min_distance(atoms: Atoms, cutoff: float) -> float:
    """Smallest interatomic distance below ``cutoff`` (Å); ``inf`` if none is closer.

    Periodic images count, including an atom and its own image in a tiny cell.  A partly
    periodic cell may have zero vectors along its open directions (a 2D material with
    ``pbc=[True, True, False]`` and ``c = 0``).

    Raises
    ------
    InputError
        If the periodic cell vectors are linearly dependent.
    """
    if len(atoms) == 0:
        return np.inf
    if any(atoms.pbc):
        from matscipy.neighbours import neighbour_list

        d = neighbour_list("d", with_full_rank_cell(atoms, cutoff), cutoff)
        return float(d.min()) if d.size else np.inf
    if len(atoms) == 1:
        return np.inf
    tree = cKDTree(atoms.positions)
    dist, _ = tree.query(atoms.positions, k=2)
    return float(dist[:, 1].min())


def with_full_rank_cell(atoms: Atoms, cutoff: float) -> Atoms:
    """``atoms``, or a copy whose non-periodic cell vectors span the space the periodic ones
    leave out, so that a neighbour list (matscipy's inverts the cell) can be built.

    A partly periodic cell often has zero vectors along its open directions (a 2D material
    with ``pbc=[T, T, F]`` and ``c = 0``; a molecule has no cell at all).  Only the periodic
    vectors decide which images exist, so when the cell is singular the open ones are
    replaced by orthonormal directions perpendicular to the periodic ones, each longer than
    the extent of the atoms along it plus ``cutoff`` (Å).  Positions and ``pbc`` are kept.

    Raises
    ------
    InputError
        If the periodic cell vectors themselves are linearly dependent.
    """
    cell, pbc = atoms.cell.array, np.asarray(atoms.pbc, dtype=bool)
    periodic = cell[pbc]
    if np.linalg.matrix_rank(periodic, tol=1e-8) < len(periodic):
        raise InputError(
            f"the periodic cell vectors {periodic.tolist()} (pbc={pbc.tolist()}) are linearly "
            "dependent (zero volume along the periodic directions); give linearly "
            "independent cell vectors or set pbc=False along the open directions"
        )
    if np.linalg.matrix_rank(cell, tol=1e-8) == 3:
        return atoms
    # orthonormal directions perpendicular to the periodic vectors
    open_dirs = np.linalg.svd(periodic)[2][len(periodic):] if len(periodic) else np.eye(3)
    proj = atoms.positions @ open_dirs.T
    extent = np.ptp(proj, axis=0) if len(atoms) else np.zeros(len(open_dirs))
    lengths = extent + cutoff + 1.0
    full = cell.copy()
    full[~pbc] = open_dirs * lengths[:, None]
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=full, pbc=pbc)


def assign_weights(
    configs: Sequence[Configuration],
    default: Weights = DEFAULT_WEIGHTS,
    by_config_type: Mapping[str, Weights] | None = None,
) -> list[Configuration]:
    """Set every configuration's weights: ``by_config_type[config_type]`` else ``default``.

    Returns the same configuration objects (modified in place) as a list, for chaining.
    """
    table = dict(by_config_type or {})
    for c in configs:
        c.weights = table.get(c.config_type, default)
    return list(configs)
