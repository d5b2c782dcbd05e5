"""Dense least-squares baselines with the smoothness prior: ridge / QR and rank-revealing QR.

All solve on the scaled problem ``Â = A Γ⁻¹`` (γ the prior, a positive vector) and return
the caller's coefficients ``c = Γ⁻¹ x̂``:

* ridge:  ``min ||Â x - y||² + α ||x||²`` — by QR of the stacked matrix ``[Â; √α I]``
  (:func:`ridge`, accurate: it never squares the condition number) or by Cholesky of
  ``Ĝ + α I`` (:func:`ridge_gram`, for the streamed Gram form).  ``α = 0`` is plain least
  squares (QR; in Gram form a symmetric eigen-solve with a warning if Ĝ is singular).
* RRQR: QR with column pivoting, ``Â P = Q R``; the numerical rank r is the number of
  ``|R_ii| > rtol |R_00|`` and the solution is the basic one on the first r pivots
  (:func:`rrqr`).  In Gram form (:func:`rrqr_gram`) the same pivots come from LAPACK's
  pivoted Cholesky ``dpstrf`` of Ĝ (its ``R_ii`` equal those of the pivoted QR in exact
  arithmetic); because Ĝ squares the condition number, rtol below ~1e-7 is meaningless there.

scikit-learn has no pivoted QR or Gram-form ridge with a general prior, so these use
scipy.linalg / LAPACK directly.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg.lapack import dpstrf

from ..errors import ConvergenceWarning
from ._checks import check_design, check_fraction, check_gram, check_nonneg_float, check_prior
from ._problem import blas_guard
from .path import SolverInfo

__all__ = ["DenseSolution", "ridge", "ridge_gram", "rrqr", "rrqr_gram", "scaled_gram"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenseSolution:
    """Coefficients of a dense solver and what it did.

    Attributes
    ----------
    coef : ndarray (p,)
        Coefficients in the caller's scale.
    info : SolverInfo
        Solver name, iterations, stop reason, warnings.
    rank : int or None
        Numerical rank used (RRQR).
    noise_precision : float or None
        Bayesian solvers: the noise precision β = 1/σ² of the residual (1 / target units²).
    weight_precision : ndarray or None
        Bayesian solvers: prior precision of the scaled coefficients, (1,) for BLR, (p,) ARD.
    """

    coef: np.ndarray
    info: SolverInfo
    rank: int | None = None
    noise_precision: float | None = None
    weight_precision: np.ndarray | None = None


def _inv_prior(prior, p: int) -> np.ndarray:
    gamma = check_prior(prior, p)
    return np.ones(p) if gamma is None else 1.0 / gamma


def scaled_gram(G: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``D G D`` (a new (p, p) array) and ``D b`` for ``D = diag(d)``."""
    return (d[:, None] * G) * d[None, :], d * b


def ridge(A, y, alpha: float = 0.0, *, prior=None) -> DenseSolution:
    """Ridge / least squares by QR of ``[A Γ⁻¹; √α I]``; A (n, p), y (n,).

    Memory: one (n + p, p) copy of A.  Rank deficiency (α = 0) raises no error: the
    LAPACK least-squares driver ``gelsd`` is used then, with a warning.
    """
    A, y = check_design(A, y)
    alpha = check_nonneg_float(alpha, "alpha")
    n, p = A.shape
    d = _inv_prior(prior, p)
    M = np.vstack([A * d, np.sqrt(alpha) * np.eye(p)]) if alpha > 0 else A * d
    rhs = np.concatenate([y, np.zeros(p)]) if alpha > 0 else y
    notes: list[str] = []
    with blas_guard(p):
        Q, R = sla.qr(M, mode="economic", check_finite=False)
        diag = np.abs(np.diag(R))
        if M.shape[0] >= M.shape[1] and (  # fewer rows than columns: R is not square
                diag.min() > 1e3 * np.finfo(float).eps * max(diag.max(), 1e-300) * max(M.shape)):
            x = sla.solve_triangular(R, Q.T @ rhs, check_finite=False)
            method = "qr"
        else:
            msg = ("ridge: the scaled design matrix is numerically rank deficient; using the "
                   "minimum-norm least-squares solution (gelsd); add alpha > 0 to regularise")
            notes.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
            x = sla.lstsq(M, rhs, lapack_driver="gelsd", check_finite=False)[0]
            method = "gelsd"
    info = SolverInfo(solver=f"ridge_{method}", n_iter=1, stop_reason="solved",
                      warnings=tuple(notes), settings=(("alpha", alpha),))
    return DenseSolution(coef=d * x, info=info)


def ridge_gram(G, b, alpha: float = 0.0, *, prior=None) -> DenseSolution:
    """Ridge from the Gram form: ``(Ĝ + α I) x̂ = b̂`` by Cholesky; G (p, p), b (p,).

    When the Cholesky factorisation fails (α = 0 and Ĝ singular), falls back to the
    pseudo-inverse solution from a symmetric eigen-decomposition (eigenvalues below
    ``p·eps·max`` dropped) with a warning.  Large p runs with one BLAS thread (see
    ``_problem.blas_guard``).
    """
    G, b, _, _ = check_gram(G, b, 0.0, 1)
    alpha = check_nonneg_float(alpha, "alpha")
    p = G.shape[0]
    d = _inv_prior(prior, p)
    M, rhs = scaled_gram(G, b, d)
    M[np.diag_indices(p)] += alpha
    notes: list[str] = []
    method = "cholesky"
    top = max(float(np.diag(M).max()), 1e-300)
    with blas_guard(p):
        try:
            factor = sla.cho_factor(M, lower=True, overwrite_a=True, check_finite=False)
            if np.diag(factor[0]).min() ** 2 <= p * np.finfo(float).eps * top:
                raise np.linalg.LinAlgError("numerically singular")
            x = sla.cho_solve(factor, rhs, check_finite=False)
        except np.linalg.LinAlgError:
            msg = ("ridge_gram: the regularised Gram matrix is not positive definite; using "
                   "the pseudo-inverse (eigen-decomposition); add alpha > 0 to regularise")
            notes.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
            M, rhs = scaled_gram(G, b, d)
            M[np.diag_indices(p)] += alpha
            w, V = np.linalg.eigh(M)
            keep = w > p * np.finfo(float).eps * max(w.max(), 1e-300)
            x = V[:, keep] @ ((V[:, keep].T @ rhs) / w[keep])
            method = "eigh"
    info = SolverInfo(solver=f"ridge_gram_{method}", n_iter=1, stop_reason="solved",
                      warnings=tuple(notes), settings=(("alpha", alpha),))
    return DenseSolution(coef=d * x, info=info)


def _check_rtol(rtol) -> float:
    return check_fraction(rtol, "rtol")


def rrqr(A, y, rtol: float = 1e-12, *, prior=None) -> DenseSolution:
    """Rank-revealing (column-pivoted) QR least squares of ``A Γ⁻¹``; A (n, p), y (n,).

    Keeps the pivots with ``|R_ii| > rtol |R_00|`` and returns the basic solution on them
    (zeros elsewhere), so it also selects a support.
    """
    A, y = check_design(A, y)
    rtol = _check_rtol(rtol)
    p = A.shape[1]
    d = _inv_prior(prior, p)
    with blas_guard(p):
        Q, R, piv = sla.qr(A * d, mode="economic", pivoting=True, check_finite=False)
    diag = np.abs(np.diag(R))
    r = int(np.count_nonzero(diag > rtol * diag[0])) if diag[0] > 0 else 0
    x = np.zeros(p)
    if r:
        x[piv[:r]] = sla.solve_triangular(R[:r, :r], Q[:, :r].T @ y, check_finite=False)
    return _rrqr_solution(d * x, r, p, rtol, "rrqr")


def rrqr_gram(G, b, rtol: float = 1e-7, *, prior=None) -> DenseSolution:
    """RRQR from the Gram form by pivoted Cholesky (LAPACK ``dpstrf``); see module docs."""
    G, b, _, _ = check_gram(G, b, 0.0, 1)
    rtol = _check_rtol(rtol)
    p = G.shape[0]
    d = _inv_prior(prior, p)
    M, rhs = scaled_gram(G, b, d)
    top = float(np.diag(M).max())
    with blas_guard(p):
        U, piv, rank, info = dpstrf(M, tol=rtol**2 * top, lower=0, overwrite_a=1)
    if info < 0:
        raise RuntimeError(f"LAPACK dpstrf failed with info={info}")
    piv = piv - 1  # LAPACK's pivots are 1-based
    r = int(rank) if top > 0 else 0
    diag = np.abs(np.diag(U)[:r])
    r = int(np.count_nonzero(diag > rtol * diag[0])) if r else 0
    x = np.zeros(p)
    if r:
        Ur = np.triu(U[:r, :r])
        x[piv[:r]] = sla.cho_solve((Ur, False), rhs[piv[:r]], check_finite=False)
    return _rrqr_solution(d * x, r, p, rtol, "rrqr_gram")


def _rrqr_solution(coef, r: int, p: int, rtol: float, name: str) -> DenseSolution:
    notes = ()
    if r < p:
        logger.info("%s: numerical rank %d of %d (rtol=%g)", name, r, p, rtol)
    if r == 0:
        notes = (f"{name}: all columns are (numerically) zero; the solution is 0",)
        warnings.warn(notes[0], ConvergenceWarning, stacklevel=3)
    info = SolverInfo(solver=name, n_iter=1, stop_reason="solved", warnings=notes,
                      n_added=r, settings=(("rtol", rtol),))
    return DenseSolution(coef=coef, info=info, rank=r)
