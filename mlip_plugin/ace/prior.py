"""Smoothness priors Γ: one positive number γ_k per basis function.

The solver layer scales column k by 1/γ_k, so a large γ penalises a rough (high n, high l)
function.  With the factors ``(n_t, l_t)`` of a function (a pair function k counts as one
factor ``(k, 0)``):

* algebraic:   γ = Σ_t (n_t^p + (w_L l_t)^p)                      (default p = 4)
* exponential: γ = exp(a_n Σ_t n_t + a_l Σ_t l_t)
* gaussian:    γ = exp(σ_n Σ_t n_t² + σ_l Σ_t l_t²)

and, for a many-body function, times Π_t ‖R_{n_t}‖: the prior of a *normalised* radial
basis.  Our R_n = f_env P_{n-1} (``radial.py``) have ‖R_n‖ ≈ 0.22 at n = 1, falling like
n^(-1/2); ACEpotentials' have unit norm (Jacobi polynomials orthonormal under the
envelope).  The prior's ranking of the columns, which decides what OMP and ASP select,
depends on their scale, and scaling column k by 1/(γ_k Π_t ‖R_{n_t}‖) is exactly working
with the normalised R_n and the plain γ_k: every radial factor then has the scale of
ACEpotentials' (``algebraic`` with p = 4 is its ``algebraic_smoothness_prior``; the l
weight w_L is the basis's, as its level).  The functions themselves still differ: ours
are Legendre-based, normalised but not orthogonal to each other, theirs orthonormal (the
same span and the same polynomial degree for each n).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .basis import ACEBasis
from .radial import legendre

__all__ = ["smoothness_prior", "radial_norms", "PRIORS"]

PRIORS = ("algebraic", "exponential", "gaussian")


def _sums(basis: ACEBasis, power: float, w_l: float) -> np.ndarray:
    return np.array([sum(n**power + (w_l * l) ** power for n, l in f.nl)
                     for f in basis.spec], dtype=float)


def radial_norms(nmax: int) -> np.ndarray:
    """‖R_n‖ = (∫_{-1}^{1} R_n(y)² dy)^½ for n = 1 … nmax (index n - 1), R_n of ``radial.py``.

    The integrand is a polynomial of degree 2n + 6 in y, so Gauss–Legendre with nmax + 4
    nodes is exact.
    """
    y, w = np.polynomial.legendre.leggauss(nmax + 4)
    P, _ = legendre(y, nmax)
    R = 0.25 * (1.0 - y * y) ** 2 * P
    return np.sqrt(R**2 @ w)


def _radial_scale(basis: ACEBasis) -> np.ndarray:
    """Π_t ‖R_{n_t}‖ per many-body function, 1 for a pair function."""
    nmax = max((n for f in basis.spec for n, _ in f.nl), default=1)
    norms = radial_norms(nmax)
    return np.array([1.0 if f.kind == "pair" else float(np.prod([norms[n - 1] for n, _ in f.nl]))
                     for f in basis.spec])


def smoothness_prior(basis: ACEBasis, kind: str = "algebraic", *, p: float = 4.0,
                     w_L: float | None = None, a_n: float = 0.2, a_l: float = 0.2,
                     sigma_n: float = 0.01, sigma_l: float = 0.01) -> np.ndarray:
    """γ of every basis function (module docstring), shape (basis.size,), all > 0.

    Parameters
    ----------
    kind : {"algebraic", "exponential", "gaussian"}
    p : float
        Exponent of the algebraic prior (> 0).
    w_L : float, optional
        Weight of l in the algebraic prior; default ``basis.w_L``.
    a_n, a_l : float
        Rates of the exponential prior (≥ 0).
    sigma_n, sigma_l : float
        Rates of the gaussian prior (≥ 0).

    Raises
    ------
    InputError
        For an unknown kind, a bad parameter or a prior that overflows float64.
    """
    w_l = basis.w_L if w_L is None else float(w_L)
    if kind == "algebraic":
        if not p > 0:
            raise InputError(f"p={p!r} is not allowed for the algebraic prior; give p > 0")
        return _sums(basis, p, w_l) * _radial_scale(basis)
    for name, value in (("a_n", a_n), ("a_l", a_l), ("sigma_n", sigma_n), ("sigma_l", sigma_l)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name}={value!r} is not allowed; give a finite number >= 0")
    sn = np.array([sum(n for n, _ in f.nl) for f in basis.spec], dtype=float)
    sl = np.array([sum(l for _, l in f.nl) for f in basis.spec], dtype=float)
    if kind == "exponential":
        expo = a_n * sn + a_l * sl
    elif kind == "gaussian":
        sn2 = np.array([sum(n * n for n, _ in f.nl) for f in basis.spec], dtype=float)
        sl2 = np.array([sum(l * l for _, l in f.nl) for f in basis.spec], dtype=float)
        expo = sigma_n * sn2 + sigma_l * sl2
    else:
        raise InputError(f"kind={kind!r} is not a smoothness prior; use one of {PRIORS}")
    if expo.size and expo.max() > 700:
        raise InputError(
            f"the {kind} prior overflows (exponent up to {expo.max():.0f} > 700) for this "
            "basis; lower its rates (a_n, a_l or sigma_n, sigma_l)")
    return np.exp(expo) * _radial_scale(basis)
