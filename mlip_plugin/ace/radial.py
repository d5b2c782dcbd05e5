"""Radial functions of the ACE one-particle basis and of the pair part.

Distance transform (Agnesi type, as in ACE1.jl / ACEpotentials.jl), with s = r / r0:

    x(r) = 1 / (1 + a s^q / (1 + s^(q - p)))

with ``a`` chosen so that |dx/dr| is largest at r = r0 (resolution is concentrated at the
nearest-neighbour distance).  x decreases from 1 at r = 0; it is mapped linearly onto
y ∈ [-1, 1] with y(0) = 1 and y(r_cut) = -1.

Many-body radial functions (n = 1, 2, …):

    R_n(r) = f_env(y) P_{n-1}(y),   f_env(y) = (1 - y)^2 (1 + y)^2 / 4

P the Legendre polynomials; the envelope makes R_n and dR_n/dr vanish at r_cut (and at
r = 0, where the pair part takes over).

Pair functions (k = 1, 2, …):

    V_k(r) = f_pair(r) P_{k-1}(y),
    f_pair(r) = (r0/r)^e - (r0/rc)^e + e (r0/rc)^e (r/rc - 1)

a Coulomb-type envelope (exponent e, default 1) shifted so that it and its derivative vanish
at r_cut; it diverges as r → 0, so a pair potential with positive amplitude Σ_k c_k P_{k-1}(1)
is repulsive at short range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AgnesiTransform", "legendre", "radial_basis", "pair_basis", "agnesi_a"]


def agnesi_a(p: float, q: float) -> float:
    """The ``a`` that puts the steepest point of x(r) (the inflection point) at r = r0.

    Solving d²x/ds² = 0 at s = 1 gives ``a = (p (4q - 2) - 2q) / (p + p² + q + q²)``
    (the choice of ACE1.jl); tested against a numerical derivative.
    """
    return (p * (4 * q - 2) - 2 * q) / (p + p * p + q + q * q)


def _agnesi(s, a, p, q):
    g = a * s**q / (1.0 + s ** (q - p))
    return 1.0 / (1.0 + g)


def _agnesi_dx_ds(s, a, p, q):
    den = 1.0 + s ** (q - p)
    g = a * s**q / den
    dg = a * (q * s ** (q - 1) * den - s**q * (q - p) * s ** (q - p - 1)) / den**2
    return -dg / (1.0 + g) ** 2


@dataclass(frozen=True)
class AgnesiTransform:
    """y(r) ∈ [-1, 1] for r ∈ [0, r_cut] (y(0) = 1, y(r_cut) = -1).

    Parameters
    ----------
    r0 : float
        Typical nearest-neighbour distance (Å).
    r_cut : float
        Cutoff (Å).
    p, q : float
        Exponents of the Agnesi transform (defaults 2 and 4, as ACEpotentials.jl).
    """

    r0: float
    r_cut: float
    p: float = 2.0
    q: float = 4.0

    def __call__(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """y(r) and dy/dr (1/Å) for r of any shape."""
        a = agnesi_a(self.p, self.q)
        s = np.asarray(r, dtype=float) / self.r0
        xc = _agnesi(self.r_cut / self.r0, a, self.p, self.q)
        scale = 2.0 / (1.0 - xc)
        x = _agnesi(s, a, self.p, self.q)
        dx = _agnesi_dx_ds(s, a, self.p, self.q) / self.r0
        return scale * (x - xc) - 1.0, scale * dx


def legendre(y: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Legendre ``P_k(y)`` and ``P_k'(y)`` for k = 0 … nmax-1, shapes (nmax,) + y.shape."""
    P = np.zeros((max(nmax, 2),) + y.shape)
    dP = np.zeros_like(P)
    P[0] = 1.0
    P[1] = y
    dP[1] = 1.0
    for k in range(2, nmax):
        P[k] = ((2 * k - 1) * y * P[k - 1] - (k - 1) * P[k - 2]) / k
        dP[k] = dP[k - 2] + (2 * k - 1) * P[k - 1]
    return P[:nmax], dP[:nmax]


def radial_basis(r: np.ndarray, trans: AgnesiTransform, nmax: int):
    """Many-body radial functions ``R_n(r)``, n = 1 … nmax, and dR_n/dr.

    Parameters
    ----------
    r : ndarray of shape (n_pairs,)
        Distances (Å), ≤ r_cut.

    Returns
    -------
    R, dR : ndarray of shape (n_pairs, nmax)
        Values (dimensionless) and derivatives (1/Å).
    """
    y, dy = trans(r)
    P, dP = legendre(y, nmax)
    f = 0.25 * (1.0 - y * y) ** 2
    df = -y * (1.0 - y * y)
    R = (f * P).T
    dR = ((df * P + f * dP) * dy).T
    return R, dR


def pair_envelope(r: np.ndarray, r0: float, r_cut: float, e: float = 1.0):
    """Coupled-repulsive envelope ``f_pair(r)`` and its derivative (see module docstring)."""
    gc = (r0 / r_cut) ** e
    f = (r0 / r) ** e - gc + e * gc * (r / r_cut - 1.0)
    df = -e * (r0 / r) ** e / r + e * gc / r_cut
    return f, df


def pair_basis(r: np.ndarray, trans: AgnesiTransform, kmax: int, e: float = 1.0):
    """Pair functions ``V_k(r)``, k = 1 … kmax, and dV_k/dr, shapes (n_pairs, kmax)."""
    y, dy = trans(r)
    P, dP = legendre(y, kmax)
    f, df = pair_envelope(r, trans.r0, trans.r_cut, e)
    V = (f * P).T
    dV = (df * P + f * dP * dy).T
    return V, dV
