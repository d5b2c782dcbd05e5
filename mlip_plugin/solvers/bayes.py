"""Bayesian linear regression (BLR, evidence maximisation) and ARD with the smoothness prior.

Model on the scaled problem ``Â = A Γ⁻¹``: ``y ~ N(Â x, 1/β)``, ``x ~ N(0, diag(1/λ))`` with
one λ (BLR) or one λ_j per basis function (ARD, sparse: columns with λ_j above
``threshold_lambda`` are pruned).  The hyper-parameters maximise the evidence by MacKay's
fixed-point updates with Gamma hyper-priors, exactly as scikit-learn's ``BayesianRidge`` and
``ARDRegression`` (same defaults, same stopping rule ``Σ|Δx| < tol``; note that scikit-learn
calls β ``alpha_`` and λ ``lambda_``).

* :func:`blr` and :func:`ard` call scikit-learn on the design matrix (``fit_intercept=False``);
* :func:`blr_gram` and :func:`ard_gram` are our own Gram-form versions.  scikit-learn has
  none, and its ``ARDRegression`` forms ``X_keepᵀX_keep`` and a pseudo-inverse afresh at
  every iteration (O(n p²) each) — too slow for 32 000 × 5 000 — whereas here one
  eigen-decomposition (BLR) or one Cholesky of the kept block per iteration (ARD) suffices.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..errors import ConvergenceWarning
from ._checks import (
    check_design,
    check_gram,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)
from ._problem import blas_guard
from .dense import DenseSolution, _inv_prior, scaled_gram
from .path import SolverInfo

__all__ = ["EvidenceSettings", "blr", "blr_gram", "ard", "ard_gram"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceSettings:
    """Hyper-priors and stopping of the evidence maximisation (scikit-learn's defaults).

    ``alpha_1, alpha_2``: Gamma shape / rate of the noise precision β; ``lambda_1,
    lambda_2``: of the weight precision(s) λ; ``tol``: stop when Σ|Δx̂| < tol;
    ``threshold_lambda``: ARD prunes λ_j above it.
    """

    max_iter: int = 300
    tol: float = 1e-3
    alpha_1: float = 1e-6
    alpha_2: float = 1e-6
    lambda_1: float = 1e-6
    lambda_2: float = 1e-6
    threshold_lambda: float = 1e4

    def checked(self) -> EvidenceSettings:
        check_positive_int(self.max_iter, "max_iter")
        for name in ("tol", "alpha_1", "alpha_2", "lambda_1", "lambda_2", "threshold_lambda"):
            check_nonneg_float(getattr(self, name), name)
        return self


def _info(name, n_iter, converged, settings, notes=()) -> SolverInfo:
    notes = list(notes)
    if not converged:
        notes.append(f"{name}: no convergence in max_iter={settings.max_iter} iterations")
        warnings.warn(notes[-1], ConvergenceWarning, stacklevel=3)
    return SolverInfo(solver=name, n_iter=n_iter,
                      stop_reason="converged" if converged else "max_iter",
                      warnings=tuple(notes), settings=tuple(vars(settings).items()))


def _fit_sklearn(model, X, y, s: EvidenceSettings, name: str) -> SolverInfo:
    """Fit a scikit-learn evidence maximiser; its warnings and whether it converged.

    scikit-learn stops with ``n_iter_ = max_iter`` both when its last allowed iteration
    met ``tol`` and when none did; only then a fit allowed one more iteration tells the
    two apart (the first ``max_iter`` iterations are the same).
    """
    from sklearn.base import clone

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    converged = model.n_iter_ < s.max_iter
    if not converged:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = clone(model).set_params(max_iter=s.max_iter + 1).fit(X, y)
        converged = probe.n_iter_ <= s.max_iter
    return _info(name, int(model.n_iter_), converged, s, [str(w.message) for w in caught])


def blr(A, y, *, prior=None, settings: EvidenceSettings | None = None) -> DenseSolution:
    """BLR by scikit-learn's ``BayesianRidge`` on ``A Γ⁻¹``; A (n, p), y (n,)."""
    from sklearn.linear_model import BayesianRidge

    A, y = check_design(A, y)
    s = (settings or EvidenceSettings()).checked()
    d = _inv_prior(prior, A.shape[1])
    model = BayesianRidge(max_iter=s.max_iter, tol=s.tol, alpha_1=s.alpha_1, alpha_2=s.alpha_2,
                          lambda_1=s.lambda_1, lambda_2=s.lambda_2, fit_intercept=False)
    info = _fit_sklearn(model, A * d, y, s, "blr_sklearn")
    return DenseSolution(coef=d * model.coef_, info=info, noise_precision=float(model.alpha_),
                         weight_precision=np.array([model.lambda_]))


def blr_gram(G, b, yy, n_rows, *, prior=None, settings: EvidenceSettings | None = None,
             noise_precision_init: float | None = None) -> DenseSolution:
    """BLR from ``G`` (p, p), ``b`` (p,), ``yy``, ``n_rows``: one eigen-decomposition of Ĝ.

    ``noise_precision_init`` defaults to ``n_rows / yy`` (scikit-learn starts from
    ``1 / var(y)``, which needs the mean of y; the fixed point is the same).
    """
    G, b, yy, n_rows = check_gram(G, b, yy, n_rows)
    s = (settings or EvidenceSettings()).checked()
    d = _inv_prior(prior, G.shape[0])
    M, rhs = scaled_gram(G, b, d)
    with blas_guard(G.shape[0]):
        e, V = np.linalg.eigh(M)
    del M
    e = np.clip(e, 0.0, None)
    q = V.T @ rhs  # b̂ in the eigenbasis
    eps = np.finfo(float).eps
    # Directions below the eigen-solver's resolution carry only round-off: treat them as
    # the exact null space (no data), or the evidence updates drive λ → 0 and overflow.
    null = e <= e.max(initial=0.0) * len(e) * eps
    e[null], q[null] = 0.0, 0.0
    # ‖Ax − y‖² from the Gram form cancels catastrophically near an exact fit; floor it
    # at the round-off of yᵀy so the noise precision stays finite.
    sse_floor = np.sqrt(len(e)) * eps * yy
    beta = (n_rows / (yy + eps) if noise_precision_init is None
            else check_positive_float(noise_precision_init, "noise_precision_init"))
    lam, x_old, converged, it = 1.0, None, False, 0
    for _ in range(s.max_iter):
        it += 1
        w = q / (e + lam / beta)  # posterior mean in the eigenbasis
        sse = max(yy - 2 * w @ q + (w * e) @ w, sse_floor)
        gamma = float(np.sum(beta * e / (lam + beta * e)))
        lam = (gamma + 2 * s.lambda_1) / (w @ w + 2 * s.lambda_2)
        beta = (n_rows - gamma + 2 * s.alpha_1) / (sse + 2 * s.alpha_2)
        x = V @ w
        if x_old is not None and np.sum(np.abs(x_old - x)) < s.tol:
            converged = True
            break
        x_old = x
    x = V @ (q / (e + lam / beta))
    return DenseSolution(coef=d * x, info=_info("blr_gram", it, converged, s),
                         noise_precision=float(beta), weight_precision=np.array([lam]))


def ard(A, y, *, prior=None, settings: EvidenceSettings | None = None) -> DenseSolution:
    """ARD by scikit-learn's ``ARDRegression`` on ``A Γ⁻¹`` (fine for small problems)."""
    from sklearn.linear_model import ARDRegression

    A, y = check_design(A, y)
    s = (settings or EvidenceSettings()).checked()
    d = _inv_prior(prior, A.shape[1])
    model = ARDRegression(max_iter=s.max_iter, tol=s.tol, alpha_1=s.alpha_1, alpha_2=s.alpha_2,
                          lambda_1=s.lambda_1, lambda_2=s.lambda_2,
                          threshold_lambda=s.threshold_lambda, fit_intercept=False)
    info = _fit_sklearn(model, A * d, y, s, "ard_sklearn")
    info = SolverInfo(**{**vars(info), "n_added": int(np.count_nonzero(model.coef_))})
    return DenseSolution(coef=d * model.coef_, info=info, noise_precision=float(model.alpha_),
                         weight_precision=np.asarray(model.lambda_, dtype=float))


def _ard_posterior(M, rhs, beta, lam, keep):
    """Posterior covariance Σ (on the kept block) and mean of ARD."""
    Mk = beta * M[np.ix_(keep, keep)]
    Mk[np.diag_indices_from(Mk)] += lam[keep]
    try:
        c = sla.cho_factor(Mk, lower=True, check_finite=False)
        sigma = sla.cho_solve(c, np.eye(len(Mk)), check_finite=False)
    except np.linalg.LinAlgError:
        sigma = sla.pinvh(Mk)
    return sigma, beta * sigma @ rhs[keep]


def ard_gram(G, b, yy, n_rows, *, prior=None, settings: EvidenceSettings | None = None,
             noise_precision_init: float | None = None) -> DenseSolution:
    """ARD from ``G`` (p, p), ``b`` (p,), ``yy``, ``n_rows`` (scikit-learn's updates)."""
    G, b, yy, n_rows = check_gram(G, b, yy, n_rows)
    s = (settings or EvidenceSettings()).checked()
    p = G.shape[0]
    d = _inv_prior(prior, p)
    M, rhs = scaled_gram(G, b, d)
    beta = (n_rows / (yy + np.finfo(float).eps) if noise_precision_init is None
            else check_positive_float(noise_precision_init, "noise_precision_init"))
    lam, keep, x = np.ones(p), np.ones(p, dtype=bool), np.zeros(p)
    x_old, converged, it = None, False, 0
    with blas_guard(p):
        for _ in range(s.max_iter):
            it += 1
            sigma, mu = _ard_posterior(M, rhs, beta, lam, keep)
            x = np.zeros(p)
            x[keep] = mu
            sse = max(yy - 2 * x @ rhs + x[keep] @ M[np.ix_(keep, keep)] @ x[keep], 0.0)
            gamma = 1.0 - lam[keep] * np.diag(sigma)
            lam[keep] = (gamma + 2 * s.lambda_1) / (mu**2 + 2 * s.lambda_2)
            beta = (n_rows - gamma.sum() + 2 * s.alpha_1) / (sse + 2 * s.alpha_2)
            keep = lam < s.threshold_lambda
            x[~keep] = 0.0
            if x_old is not None and np.sum(np.abs(x_old - x)) < s.tol:
                converged = True
                break
            x_old = x
            if not keep.any():
                converged = True
                break
        if keep.any():
            x = np.zeros(p)
            x[keep] = _ard_posterior(M, rhs, beta, lam, keep)[1]
    info = _info("ard_gram", it, converged, s)
    info = SolverInfo(**{**vars(info), "n_added": int(keep.sum())})
    return DenseSolution(coef=d * x, info=info, noise_precision=float(beta),
                         weight_precision=lam)
