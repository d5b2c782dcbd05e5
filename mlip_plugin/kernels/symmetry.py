"""Permutational symmetries of a molecule for the symmetrised GDML kernel (sGDML).

A permutation ``p`` (shape ``(n_atoms,)``, new atom ``i`` is old atom ``p[i]``) of identical
atoms leaves the energy unchanged.  The symmetrised kernel sums the force-field kernel over
the permuted copies of each training frame, ``K_sym(a, b) = Σ_P J_aᵀ (-H(x_a - Q_P x_b))
Q_P J_b``, where ``Q_P`` permutes the entries of the inverse-distance descriptor the way ``p``
permutes the atom pairs (:func:`pair_permutations`).  For the sum to be a symmetric,
positive semi-definite kernel the permutations must form a group (:func:`check_permutations`).

:func:`find_permutations` finds the automorphisms of the covalent bond graph that keep every
atomic number: for ethanol the 3! orderings of the methyl hydrogens times the two of the
methylene hydrogens (12; sGDML, which keeps only the permutations it can match between
training frames, finds the 6 of them that keep the handedness), for uracil only the identity.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from .descriptor import pair_indices

__all__ = ["check_permutations", "find_permutations", "pair_permutations",
           "MAX_PERMUTATIONS", "TooManyPermutations"]

log = logging.getLogger(__name__)

#: :func:`find_permutations` stops with an error beyond this many (each multiplies the cost
#: of every kernel product).
MAX_PERMUTATIONS = 512



class TooManyPermutations(InputError):
    """The bond graph has more automorphisms than :data:`MAX_PERMUTATIONS`."""


#: Bond when closer than this factor times the sum of the covalent radii.
BOND_FACTOR = 1.2


def _identity_first(perms: np.ndarray) -> np.ndarray:
    ident = np.arange(perms.shape[1])
    rest = [p for p in perms if not np.array_equal(p, ident)]
    return np.array([ident] + rest, dtype=int).reshape(-1, perms.shape[1])


def check_permutations(perms, z) -> np.ndarray:
    """Validate permutations of the atoms ``z``; return them as an int array, identity first.

    :class:`InputError` unless every row is a permutation of ``range(n_atoms)`` that maps each
    atom onto one of the same atomic number, the identity is among them, and the set is
    closed under composition (a group), without repeats.
    """
    z = np.asarray(z).astype(int).reshape(-1)
    try:
        raw = np.asarray(perms, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError(f"perms={perms!r} is not an integer array of shape (n_perms, "
                         f"{len(z)})") from err
    if not np.all(np.isfinite(raw) & (raw == np.round(raw))):
        raise InputError(f"perms={perms!r} holds non-integer entries; give atom indices")
    P = raw.astype(int)
    if P.ndim != 2 or P.shape[1] != len(z) or len(P) == 0:
        raise InputError(f"perms has shape {P.shape}, not (n_perms, {len(z)}): give one "
                         "permutation of the atom indices per row, the identity included")
    ident = np.arange(len(z))
    for p in P:
        if not np.array_equal(np.sort(p), ident):
            raise InputError(f"perms row {p.tolist()} is not a permutation of 0..{len(z) - 1}")
        if not np.array_equal(z[p], z):
            raise InputError(f"perms row {p.tolist()} maps atoms onto atoms of another "
                             f"element (z={z.tolist()}); only identical atoms may be permuted")
    keys = {tuple(p) for p in P}
    if len(keys) != len(P):
        raise InputError("perms holds the same permutation twice; give each once")
    if tuple(ident) not in keys:
        raise InputError("perms must include the identity permutation 0..n_atoms-1")
    for p in P:
        for q in P:
            if tuple(p[q]) not in keys:
                raise InputError(f"perms are not closed under composition: {p.tolist()} after "
                                 f"{q.tolist()} gives {p[q].tolist()}, which is missing; the "
                                 "symmetrised kernel needs a group of permutations")
    return _identity_first(P)


def pair_permutations(perms: np.ndarray) -> np.ndarray:
    """Descriptor index maps ``q`` (shape ``(n_perms, D)``) of atom permutations ``perms``:
    the descriptor of the permuted frame ``R[p]`` is ``x(R)[q]``, and ``J(R[p]) (α[p]) =
    (J(R) α)[q]`` for per-atom vectors ``α``."""
    perms = np.asarray(perms, dtype=int)
    n_atoms = perms.shape[1]
    i, j = pair_indices(n_atoms)
    index = np.full((n_atoms, n_atoms), -1)
    index[i, j] = np.arange(len(i))
    index[j, i] = np.arange(len(i))
    return np.stack([index[p[i], p[j]] for p in perms])


def _bond_graph(R: np.ndarray, z: np.ndarray) -> np.ndarray:
    from ase.data import covalent_radii

    rad = covalent_radii[z]
    d = np.linalg.norm(R[:, None, :] - R[None, :, :], axis=-1)
    adj = d < BOND_FACTOR * (rad[:, None] + rad[None, :])
    np.fill_diagonal(adj, False)
    return adj


def find_permutations(R, z) -> np.ndarray:
    """Automorphisms of the covalent bond graph of one geometry that keep atomic numbers.

    Parameters
    ----------
    R : array_like, shape (n_atoms, 3) or (n_frames, n_atoms, 3)
        Positions in Å (the first frame gives the bonds: atoms closer than 1.2 × the sum of
        their covalent radii).
    z : array_like, shape (n_atoms,)

    Returns
    -------
    ndarray of int, shape (n_perms, n_atoms)
        The permutation group, identity first.
    """
    R = np.asarray(R, dtype=float)
    R = R[0] if R.ndim == 3 else R
    z = np.asarray(z).astype(int).reshape(-1)
    adj = _bond_graph(R, z)
    n = len(z)
    # Colour refinement: atoms can only map onto atoms of the same final colour.
    colour = z.copy()
    for _ in range(n):
        sig = [(colour[i], tuple(sorted(colour[adj[i]]))) for i in range(n)]
        uniq = {s: c for c, s in enumerate(sorted(set(sig)))}
        new = np.array([uniq[s] for s in sig])
        if len(set(new)) == len(set(colour)):
            colour = new
            break
        colour = new
    found: list[np.ndarray] = []
    p = -np.ones(n, dtype=int)
    used = np.zeros(n, dtype=bool)

    def extend(i: int) -> None:
        if len(found) > MAX_PERMUTATIONS:
            return
        if i == n:
            found.append(p.copy())
            return
        for c in np.flatnonzero((colour == colour[i]) & ~used):
            # bonds among the atoms mapped so far must be kept
            if np.array_equal(adj[i, :i], adj[c, p[:i]]):
                p[i], used[c] = c, True
                extend(i + 1)
                p[i], used[c] = -1, False

    extend(0)
    if len(found) > MAX_PERMUTATIONS:
        raise TooManyPermutations(
            f"the bond graph has more than {MAX_PERMUTATIONS} automorphisms (each multiplies "
            "the cost of every kernel product); pass the permutations to use explicitly "
            "(perms=[...]) or perms=None")
    perms = _identity_first(np.array(found))
    log.info("found %d permutational symmetries of the bond graph", len(perms))
    return perms
