"""Inverse-distance descriptor of a molecule and products with its Jacobian.

For a molecule of ``d`` atoms with positions ``r_1 … r_d`` (Å) the descriptor is the vector of
the ``D = d (d - 1) / 2`` inverse pair distances ``x_p = 1 / |r_i - r_j|`` (1/Å), one entry per
pair ``p = (i, j)`` with ``i > j`` (the lower triangle, row by row, as in sGDML).  Its
Jacobian ``J = ∂x/∂R`` (shape ``(D, 3 d)``) is sparse: ``∂x_p/∂r_i = -x_p³ (r_i - r_j)`` and
``∂x_p/∂r_j = +x_p³ (r_i - r_j)``, so ``J v`` and ``Jᵀ u`` cost ``O(D)`` per molecule and
the Jacobian is never stored.

Input checks for every kernel entry point live here too: :func:`check_arrays` and
:func:`arrays_from_configs` (atom counts and orderings must agree across frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Molecules", "pair_indices", "check_arrays", "arrays_from_configs", "whole_molecule"]

#: Atoms closer than this (Å) make a frame invalid (the descriptor diverges).
MIN_PAIR_DISTANCE = 0.1


def pair_indices(n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Atom indices ``(i, j)`` with ``i > j`` of every descriptor entry, in descriptor order."""
    i, j = np.tril_indices(n_atoms, k=-1)
    return i, j


@dataclass(frozen=True)
class Molecules:
    """Descriptors of a batch of frames of one molecule, with what ``J v`` / ``Jᵀ u`` need.

    Attributes
    ----------
    x : ndarray, shape (n_frames, D)
        Inverse pair distances (1/Å).
    diff : ndarray, shape (n_frames, D, 3)
        ``r_i - r_j`` for every pair (Å).
    n_atoms : int
    """

    x: np.ndarray
    diff: np.ndarray
    n_atoms: int

    @classmethod
    def from_positions(cls, R: np.ndarray) -> Molecules:
        """Descriptors of positions ``R`` of shape ``(n_frames, n_atoms, 3)`` in Å."""
        R = np.asarray(R, dtype=float)
        i, j = pair_indices(R.shape[1])
        diff = R[:, i, :] - R[:, j, :]
        x = 1.0 / np.sqrt(np.einsum("fpc,fpc->fp", diff, diff))
        return cls(x=x, diff=diff, n_atoms=R.shape[1])

    @property
    def n_frames(self) -> int:
        return self.x.shape[0]

    def jvp(self, v: np.ndarray) -> np.ndarray:
        """``J v`` per frame: ``v`` of shape ``(n_frames, n_atoms, 3)`` → ``(n_frames, D)``."""
        i, j = pair_indices(self.n_atoms)
        dv = v[:, i, :] - v[:, j, :]
        return -self.x**3 * np.einsum("fpc,fpc->fp", self.diff, dv)

    def jtvp(self, u: np.ndarray) -> np.ndarray:
        """``Jᵀ u`` per frame: ``u`` of shape ``(..., n_frames, D)`` → ``(..., n_frames, d, 3)``.

        Leading axes of ``u`` (e.g. one per kernel column) are broadcast.
        """
        t = (-self.x**3 * u)[..., None] * self.diff
        return pair_scatter(t, self.n_atoms)


def pair_scatter(t: np.ndarray, n_atoms: int) -> np.ndarray:
    """Per-pair vectors ``t`` of shape ``(..., D, 3)`` summed onto atoms: ``+t`` on ``i``,
    ``-t`` on ``j``; returns ``(..., n_atoms, 3)``."""
    B = incidence(n_atoms)
    out = np.tensordot(t, B, axes=([-2], [0]))  # (..., 3, n_atoms), one BLAS call
    return np.swapaxes(out, -1, -2)


def incidence(n_atoms: int) -> np.ndarray:
    """Pair–atom incidence matrix ``B`` (shape ``(D, n_atoms)``): ``+1`` at ``i``, ``-1`` at
    ``j``, so that ``B R`` gives the pair differences ``r_i - r_j``."""
    i, j = pair_indices(n_atoms)
    B = np.zeros((len(i), n_atoms))
    B[np.arange(len(i)), i] = 1.0
    B[np.arange(len(i)), j] = -1.0
    return B


def check_arrays(R, z, E=None, F=None) -> tuple[np.ndarray, ...]:
    """Validate training or prediction arrays and return them as float arrays.

    Parameters
    ----------
    R : array_like, shape (n_frames, n_atoms, 3)
        Positions in Å.
    z : array_like, shape (n_atoms,)
        Atomic numbers, the same order in every frame.
    E : array_like, shape (n_frames,), optional
        Total energies in eV.
    F : array_like, shape (n_frames, n_atoms, 3), optional
        Forces in eV/Å.

    Raises
    ------
    InputError
        Wrong shapes, non-finite values, atomic numbers that are not whole numbers ≥ 1,
        fewer than two atoms, or atoms closer than 0.1 Å in some frame.
    """
    R = np.asarray(R, dtype=float)
    z_in = np.asarray(z)
    try:
        z = z_in.astype(int)
        whole = np.array_equal(z, z_in) and np.all(z >= 1)
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise InputError(f"atomic numbers z must be whole numbers >= 1; got {z_in!r} (pass the "
                         "atomic numbers, e.g. atoms.numbers, not symbols or masses)")
    if R.ndim != 3 or R.shape[2] != 3 or R.shape[1] < 2 or R.shape[0] < 1:
        raise InputError(f"positions R must have shape (n_frames, n_atoms >= 2, 3); got "
                         f"{R.shape}; stack frames of one molecule along the first axis")
    if z.shape != (R.shape[1],):
        raise InputError(f"atomic numbers z must have shape ({R.shape[1]},) to match R of "
                         f"shape {R.shape}; got {z.shape}")
    if not np.all(np.isfinite(R)):
        raise InputError("positions R contain NaN or inf; remove those frames")
    out = [R, z]
    for name, arr, shape in (("E", E, R.shape[:1]), ("F", F, R.shape)):
        if arr is None:
            out.append(None)
            continue
        arr = np.asarray(arr, dtype=float)
        if arr.size == shape[0] and name == "E":
            arr = arr.reshape(shape)
        if arr.shape != shape or not np.all(np.isfinite(arr)):
            raise InputError(f"{name} must be finite with shape {shape} to match R; got shape "
                             f"{arr.shape}")
        out.append(arr)
    _check_distances(R)
    return tuple(out)


def _check_distances(R: np.ndarray) -> None:
    i, j = pair_indices(R.shape[1])
    dist = np.linalg.norm(R[:, i, :] - R[:, j, :], axis=-1)
    bad = np.argwhere(dist < MIN_PAIR_DISTANCE)
    if len(bad):
        f, p = bad[0]
        raise InputError(f"frame {f}: atoms {i[p]} and {j[p]} are {dist[f, p]:.3g} Å apart "
                         f"(< {MIN_PAIR_DISTANCE} Å allowed); remove the frame")


def arrays_from_configs(configs: Sequence) -> tuple[np.ndarray, ...]:
    """Stack :class:`~mlip_plugin.data.Configuration` s of one molecule into plain arrays.

    Returns
    -------
    R : ndarray, shape (n_frames, n_atoms, 3), Å
    z : ndarray, shape (n_atoms,)
    E : ndarray, shape (n_frames,), eV
    F : ndarray, shape (n_frames, n_atoms, 3), eV/Å

    Raises
    ------
    InputError
        Empty input, a missing energy or forces label, frames whose atom count or
        atom ordering (atomic numbers) differ from the first frame's, or a periodic frame
        whose molecule cannot be made whole (:func:`whole_molecule`).

    In a periodic frame the molecule is made whole first (:func:`whole_molecule`), as the
    model does when it predicts, so atoms wrapped across the cell boundary train where they
    are bonded.
    """
    if len(configs) == 0:
        raise InputError("configs is empty; give at least one configuration")
    z0 = configs[0].atoms.numbers
    for k, c in enumerate(configs):
        z = c.atoms.numbers
        if len(z) != len(z0):
            raise InputError(f"configuration {k} has {len(z)} atoms but configuration 0 has "
                             f"{len(z0)}; a kernel force field needs frames of one molecule")
        if not np.array_equal(z, z0):
            raise InputError(f"configuration {k} orders its atoms {z.tolist()} but "
                             f"configuration 0 orders them {z0.tolist()}; reorder the atoms "
                             "so every frame lists them in the same order")
        if c.energy is None or c.forces is None:
            raise InputError(f"configuration {k} lacks an energy or forces label; a kernel "
                             "force field trains on both")
    R = np.stack([_whole(c.atoms, k) for k, c in enumerate(configs)])
    E = np.array([c.energy for c in configs], dtype=float)
    F = np.stack([np.asarray(c.forces, dtype=float) for c in configs])
    return check_arrays(R, z0, E, F)


def _whole(atoms, k: int) -> np.ndarray:
    try:
        return whole_molecule(atoms)
    except InputError as err:
        raise InputError(f"configuration {k}: {err}") from None


def whole_molecule(atoms) -> np.ndarray:
    """Positions of the molecule ``atoms`` (ASE Atoms) made whole: in a periodic cell every
    atom is taken at its image nearest to atom 0, so atoms wrapped across the boundary count
    where they are bonded (a kernel model describes one isolated molecule; its images do not
    interact).  Training (:func:`arrays_from_configs`) and prediction both use it.

    Raises
    ------
    InputError
        If some atom is not at its nearest image and the molecule spans half a period or
        more along a periodic axis, where the nearest image is not well defined.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return atoms.positions
    from ase.geometry import find_mic

    d, _ = find_mic(atoms.positions - atoms.positions[0], atoms.cell, atoms.pbc)
    R = atoms.positions[0] + d
    if np.allclose(R, atoms.positions, rtol=0.0, atol=1e-9):
        return atoms.positions  # whole already (and nearest images agree)
    recip = atoms.cell.complete().reciprocal()  # rows: b_i with a_j . b_i = delta_ij
    spread = np.ptp(R @ recip.T, axis=0)  # extent in fractions of each period
    wide = [int(i) for i in np.flatnonzero(pbc & (spread >= 0.5))]
    if wide:
        raise InputError(
            f"the molecule spans {spread[wide[0]]:.2f} of the periodic cell along axis "
            f"{'xyz'[wide[0]]}, too much to tell which periodic image of an atom is bonded; "
            "a kernel model describes one isolated molecule: enlarge the cell (at least "
            "twice the molecule's size) or set pbc=False")
    return R
