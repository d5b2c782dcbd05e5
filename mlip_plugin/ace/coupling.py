"""Rotation-invariant couplings of products of real spherical harmonics.

For a tuple of degrees ``(l_1, …, l_N)`` the O(3)-invariant linear combinations
``Σ_m C[m_1…m_N] Π_t Y_{l_t m_t}`` are built by coupling the factors one after another with
Clebsch–Gordan coefficients (``l_1 ⊗ l_2 → L_1``, ``L_1 ⊗ l_3 → L_2``, …, ``L_{N-2} ⊗ l_N →
0``), for every admissible path of intermediate ``L``.  Factors that carry the same one-particle
label (species, n, l) are interchangeable, so each path is symmetrised over the permutations
of such factors; a Gram–Schmidt pass keeps an orthonormal, linearly independent set (the "RPI"
basis of ACE1.jl).  With ``Σ l_t`` even the invariants are also invariant under reflections.

The Clebsch–Gordan coefficients are computed exactly (rational arithmetic, Racah's formula)
and rounded once, so the couplings are accurate to machine precision at large l.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import cache
from math import factorial, sqrt

import numpy as np

from .sph import real_to_complex

__all__ = ["clebsch_gordan", "cg_block", "coupling_paths", "invariant_couplings"]

#: Relative singular-value threshold below which a symmetrised path is linearly dependent.
RANK_TOL = 1e-8


@cache
def clebsch_gordan(j1: int, m1: int, j2: int, m2: int, J: int, M: int) -> float:
    """⟨j1 m1 j2 m2 | J M⟩ (Condon–Shortley), exact up to one final rounding."""
    if m1 + m2 != M or not (abs(j1 - j2) <= J <= j1 + j2):
        return 0.0
    if abs(m1) > j1 or abs(m2) > j2 or abs(M) > J:
        return 0.0
    f = factorial
    pre = Fraction(
        (2 * J + 1) * f(J + j1 - j2) * f(J - j1 + j2) * f(j1 + j2 - J)
        * f(J + M) * f(J - M) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2),
        f(j1 + j2 + J + 1),
    )
    total = Fraction(0)
    kmin = max(0, j2 - J - m1, j1 - J + m2)
    kmax = min(j1 + j2 - J, j1 - m1, j2 + m2)
    for k in range(kmin, kmax + 1):
        den = (f(k) * f(j1 + j2 - J - k) * f(j1 - m1 - k) * f(j2 + m2 - k)
               * f(J - j2 + m1 + k) * f(J - j1 - m2 + k))
        total += Fraction((-1) ** k, den)
    if total == 0:
        return 0.0
    sign = 1.0 if total > 0 else -1.0
    return sign * sqrt(float(total * total * pre))


@cache
def cg_block(j1: int, j2: int, J: int) -> np.ndarray:
    """Dense ``C[m1 + j1, m2 + j2, M + J] = ⟨j1 m1 j2 m2 | J M⟩``."""
    out = np.zeros((2 * j1 + 1, 2 * j2 + 1, 2 * J + 1))
    for m1 in range(-j1, j1 + 1):
        for m2 in range(-j2, j2 + 1):
            M = m1 + m2
            if abs(M) <= J:
                out[m1 + j1, m2 + j2, M + J] = clebsch_gordan(j1, m1, j2, m2, J, M)
    out.flags.writeable = False
    return out


def coupling_paths(ls: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Intermediate momenta ``(L_1, …, L_{N-2})`` of all admissible coupling paths."""
    n = len(ls)
    if n <= 2:
        return [()] if (n == 1 and ls[0] == 0) or (n == 2 and ls[0] == ls[1]) else []
    paths = []

    def extend(prefix: tuple[int, ...], current: int, t: int):
        if t == n - 1:
            if current == ls[-1]:
                paths.append(prefix)
            return
        for L in range(abs(current - ls[t]), current + ls[t] + 1):
            extend(prefix + (L,), L, t + 1)

    extend((), ls[0], 1)
    return paths


def _complex_invariant(ls: tuple[int, ...], path: tuple[int, ...]) -> np.ndarray:
    """Coupled invariant in the complex basis, shape ``(2 l_1 + 1, …, 2 l_N + 1)``."""
    n = len(ls)
    if n == 1:
        return np.ones(1)
    # state[..., M]: coupled state of the first t factors with total momentum L_cur
    state = np.eye(2 * ls[0] + 1)
    cur = ls[0]
    for t in range(1, n - 1):
        L = path[t - 1]
        state = np.tensordot(state, cg_block(cur, ls[t], L), axes=([-1], [0]))
        cur = L
    # final coupling cur ⊗ l_N → 0
    return np.tensordot(state, cg_block(cur, ls[-1], 0)[:, :, 0], axes=([-1], [0]))


def _to_real(tensor: np.ndarray, ls: tuple[int, ...]) -> np.ndarray:
    out = tensor.astype(complex)
    for t, l in enumerate(ls):
        V = real_to_complex(l)
        out = np.moveaxis(np.tensordot(out, V, axes=([t], [0])), -1, t)
    re, im = out.real, out.imag
    return re if np.linalg.norm(re) >= np.linalg.norm(im) else im


def _symmetrise(tensor: np.ndarray, labels: tuple) -> np.ndarray:
    n = len(labels)
    classes: dict = {}
    for t, lab in enumerate(labels):
        classes.setdefault(lab, []).append(t)
    groups = [g for g in classes.values() if len(g) > 1]
    if not groups:
        return tensor
    total = np.zeros_like(tensor)
    count = 0
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        axes = list(range(n))
        for g, p in zip(groups, perms):
            for src, dst in zip(g, p):
                axes[dst] = src
        total += np.transpose(tensor, axes)
        count += 1
    return total / count


@cache
def invariant_couplings(ls: tuple[int, ...], pattern: tuple[int, ...]) -> np.ndarray:
    """Orthonormal, linearly independent invariant couplings of real harmonics.

    Parameters
    ----------
    ls : tuple of int
        Degrees ``l_t`` of the factors (sorted together with ``pattern``), Σ l_t even.
    pattern : tuple of int
        Equal entries mark interchangeable factors (same species, n and l).

    Returns
    -------
    ndarray of shape (n_invariants, 2 l_1 + 1, …, 2 l_N + 1)
        Coefficients over the real ``m`` indices; read-only.  ``n_invariants`` may be 0.
    """
    shape = tuple(2 * l + 1 for l in ls)
    vecs = []
    for path in coupling_paths(ls):
        c = _to_real(_complex_invariant(ls, path), ls)
        vecs.append(_symmetrise(c, pattern).ravel())
    if not vecs:
        return np.zeros((0,) + shape)
    out = _gram_schmidt(np.array(vecs)).reshape((-1,) + shape)
    out.flags.writeable = False
    return out


def _gram_schmidt(vecs: np.ndarray) -> np.ndarray:
    """Orthonormal rows spanning ``vecs`` (modified Gram–Schmidt in the given order).

    A vector is dropped when less than ``RANK_TOL`` of its norm (relative to the largest
    input norm) is left after projection: it is a combination of the earlier ones.
    Deterministic, unlike an SVD whose basis of a degenerate subspace is not unique.
    """
    scale = np.linalg.norm(vecs, axis=1).max(initial=0.0)
    kept: list[np.ndarray] = []
    if scale < 1e-12:
        return np.zeros((0, vecs.shape[1]))
    for v in vecs:
        w = v.copy()
        for _ in range(2):  # re-orthogonalise once for stability
            for q in kept:
                w -= (q @ w) * q
        norm = np.linalg.norm(w)
        if norm > RANK_TOL * scale:
            kept.append(w / norm)
    return np.array(kept) if kept else np.zeros((0, vecs.shape[1]))
