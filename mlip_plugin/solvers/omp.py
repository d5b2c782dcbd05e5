"""Orthogonal matching pursuit (OMP): a path of least-squares models of growing support.

At step k the basis function most correlated with the residual joins the support S,

    j_k = argmax_j |â_jᵀ (y - Â_S x̂_S)|,      x̂_S = argmin ||Â_S x - y||² = Ĝ_SS⁻¹ b̂_S,

on unit-norm columns (``normalize=True``; Â = A D, see ``_problem``).  The least-squares
refit uses a Cholesky factor of Ĝ_SS grown by one row per step, so everything needs only
``G = AᵀA``, ``b = Aᵀy`` and ``yᵀy`` (the Gram form is the workhorse; ``omp_path`` forms G
once).  Cost O(p k) per step for the correlations, O(k²) for the factor.

It stops at ``max_active`` functions, when the residual sum of squares reaches ``tol``, when
the residual is orthogonal to every remaining column, or when the chosen column is
numerically dependent on the support (its relative pivot, the squared sine of its angle to
span(Â_S), is below ``dependence_tol``): then it warns and stops (``on_dependent="stop"``, as
scikit-learn does) or skips that column and goes on (``"skip"``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..errors import DependentColumnWarning
from ._checks import check_choice, check_fraction, check_nonneg_float, check_positive_int
from ._cholesky import GrowingCholesky
from ._problem import ScaledGram
from .path import PathEstimator, PathRecorder, SolutionPath, SolverInfo

__all__ = ["omp_path", "omp_path_gram", "OrthogonalMatchingPursuit"]

logger = logging.getLogger(__name__)

#: A correlation ``|â_jᵀ r|`` below ``_NOISE · eps · ||â_j|| · |y|`` counts as rounding noise.
_NOISE = 1e3


def _warn_dependent(j: int, k: int, rel: float, tol: float, on_dependent: str) -> str:
    msg = (f"basis function {j} is numerically dependent on the {k} selected ones (relative "
           f"pivot {rel:.2e} <= dependence_tol={tol:.1e}); "
           + ("stopping" if on_dependent == "stop" else "skipping it"))
    warnings.warn(msg, DependentColumnWarning, stacklevel=4)
    return msg


def _omp_gram(P: ScaledGram, max_active: int, tol: float | None, dependence_tol: float,
              on_dependent: str) -> SolutionPath:
    """OMP kernel on the scaled Gram problem ``P``; see the module docstring."""
    p = P.p
    cols = np.empty((p, max_active), order="F")  # Ĝ[:, S] in activation order
    chol = GrowingCholesky()
    z = np.empty(max_active)  # L⁻¹ b̂_S
    alpha = P.b.copy()  # correlations Âᵀ r of the residual r
    open_ = P.usable.copy()  # candidates not yet active or skipped
    order: list[int] = []
    rec = PathRecorder(p, P.unscale)
    notes: list[str] = []
    n_iter, n_skipped, rss, reason = 0, 0, P.yy, "max_active"
    # "orthogonal": every correlation is at most _NOISE eps ||â_j|| |y|, rounding noise.
    # Not sqrt(eps) |y|: with a large explained part of y (energies not centred by E0)
    # that stopped real, well-resolved steps (Zuo Si, E0 = 0: at 732 of 1000).  Relative
    # to ||â_j||, not absolute: without normalisation the column norms carry the units of
    # A Γ⁻¹, and an absolute bound stopped small-norm columns long before the residual.
    tiny = ((_NOISE * np.finfo(float).eps) ** 2 * max(P.yy, np.finfo(float).tiny)
            * P.diag())
    while len(order) < max_active:
        score = np.where(open_ & (alpha**2 > tiny), np.abs(alpha), -1.0)
        j = int(np.argmax(score))
        n_iter += 1
        if score[j] < 0:
            reason = "orthogonal"
            break
        k = len(order)
        col = P.column(j)
        added, rel = chol.append(col[order], col[j], dependence_tol)
        if not added:
            notes.append(_warn_dependent(j, k, rel, dependence_tol, on_dependent))
            if on_dependent == "stop":
                reason = "dependent"
                break
            open_[j] = False
            n_skipped += 1
            continue
        cols[:, k] = col
        order.append(j)
        open_[j] = False
        L = chol.factor
        z[k] = (P.b[j] - L[k, :k] @ z[:k]) / L[k, k]
        x = chol.backward(z[: k + 1])
        rss = P.yy - float(z[: k + 1] @ z[: k + 1])
        rec.add(order, x, rss)
        np.subtract(P.b, cols[:, : k + 1] @ x, out=alpha)
        if tol is not None and rss <= tol:
            reason = "tol"
            break
    if reason == "max_active" and len(order) < max_active:
        reason = "exhausted"
    logger.info("OMP: %d functions, stop: %s, rss %.4g", len(order), reason, rss)
    settings = (("max_active", max_active), ("tol", tol), ("dependence_tol", dependence_tol),
                ("on_dependent", on_dependent))
    return rec.finish(SolverInfo(solver="omp", n_iter=n_iter, stop_reason=reason,
                                 warnings=tuple(notes), n_added=len(order),
                                 n_skipped=n_skipped, settings=settings))


def _check_settings(P: ScaledGram, max_active, tol, dependence_tol, on_dependent):
    max_active = check_positive_int(max_active, "max_active")
    if max_active > P.p:
        logger.info("max_active=%d > %d columns: capped", max_active, P.p)
        max_active = P.p
    tol = check_nonneg_float(tol, "tol", allow_none=True)
    dependence_tol = check_fraction(dependence_tol, "dependence_tol")
    on_dependent = check_choice(on_dependent, "on_dependent", ("stop", "skip"))
    return max_active, tol, dependence_tol, on_dependent


def omp_path_gram(G, b, yy, n_rows, max_active, *, tol=None, prior=None, normalize=True,
                  dependence_tol=1e-12, on_dependent="stop") -> SolutionPath:
    """OMP path from the Gram form of a least-squares problem.

    Parameters
    ----------
    G : ndarray (p, p)
        ``AᵀA`` of the (row-weighted) design matrix; read only.
    b : ndarray (p,)
        ``Aᵀy``.
    yy : float
        ``yᵀy``.
    n_rows : int
        Number of rows of ``A``.
    max_active : int
        Largest support; capped at p.
    tol : float, optional
        Stop once the residual sum of squares ``||A c - y||²`` is at most ``tol``.
    prior : ndarray (p,), optional
        Smoothness prior γ > 0: solve on ``A Γ⁻¹``.  With ``normalize=True`` it does not
        change OMP (selection and refit are invariant to column scaling).
    normalize : bool
        Select on unit-norm columns (default, as the paper and scikit-learn's estimator).
    dependence_tol : float
        Relative Cholesky pivot below which a column counts as dependent.
    on_dependent : {"stop", "skip"}
        What to do with a dependent column (always with a DependentColumnWarning, a
        ConvergenceWarning).

    Returns
    -------
    SolutionPath
        Point k-1 holds the least-squares model on the first k selected functions.
    """
    P = ScaledGram.build(G, b, yy, n_rows, prior=prior, normalize=normalize)
    return _omp_gram(P, *_check_settings(P, max_active, tol, dependence_tol, on_dependent))


def omp_path(A, y, max_active, *, tol=None, prior=None, normalize=True, dependence_tol=1e-12,
             on_dependent="stop") -> SolutionPath:
    """OMP path of ``min ||A c - y||²`` with A (n, p), y (n,); see :func:`omp_path_gram`.

    Forms ``AᵀA`` once (one BLAS syrk, no copy of A) and runs the Gram form.
    """
    P = ScaledGram.from_design(A, y, prior=prior, normalize=normalize)
    return _omp_gram(P, *_check_settings(P, max_active, tol, dependence_tol, on_dependent))


class OrthogonalMatchingPursuit(PathEstimator):
    """Estimator wrapper of :func:`omp_path` / :func:`omp_path_gram` (see PathEstimator)."""

    _params = ("tol", "prior", "normalize", "dependence_tol", "on_dependent")
    _path = staticmethod(omp_path)
    _path_gram = staticmethod(omp_path_gram)

    def __init__(self, *, max_active=100, tol=None, prior=None, normalize=True,
                 dependence_tol=1e-12, on_dependent="stop"):
        self.max_active = max_active
        self.tol = tol
        self.prior = prior
        self.normalize = normalize
        self.dependence_tol = dependence_tol
        self.on_dependent = on_dependent
