"""Active-set pursuit (ASP): the exact ℓ1 (BPDN / LASSO) homotopy and BPdual for a fixed λ.

Both solve, on the scaled problem ``Â = A D`` (see ``_problem``),

    min_x  ½ ||Â x - y||² + λ ||x||₁,

whose optimality (KKT) conditions with ``c = Âᵀ(y - Â x)`` are ``c_S = λ sign(x_S)`` on the
support S and ``|c_j| <= λ`` off it.  For the caller's coefficients ``w = D x`` this is a
weighted ℓ1 penalty ``λ Σ_j |w_j| / d_j`` (``d_j = 1/||a_j||`` with ``normalize=True``).

* :func:`asp_path_gram` follows the piecewise-linear solution path from
  ``λ₀ = ||b̂||∞`` (empty model) downwards (Friedlander & Saunders; ActiveSetPursuit.jl's
  homotopy; Efron et al.'s LARS-lasso).  On a segment with support S and signs s,
  ``x_S(λ) = Ĝ_SS⁻¹(b̂_S - λ s)``; a breakpoint is where an inactive |c_j| reaches λ (the
  column joins) or an active x_j reaches 0 (it leaves: a sign change).  The Cholesky factor
  of Ĝ_SS is updated on each add (O(k²)) and remove (Givens, O(k²)) in place; x and c are
  carried along the segments (a joining coefficient starts at 0, a leaving one is 0), so a
  breakpoint costs one back substitution for ``d = Ĝ_SS⁻¹ s`` and the products
  ``c_j = b̂_j - Ĝ[j, S] x``, ``a_j = Ĝ[j, S] d`` for the inactive rows j that might join
  next, O(k) each: an exact screen (``_active_set.Screen``: how fast a slack ``λ - |c_j|``
  can shrink is bounded by Cauchy–Schwarz) skips the others, about four rows in five
  on an ACE matrix, without changing the path.  A column numerically dependent on
  S is skipped with a warning.
* :func:`bpdual_gram` solves one λ with the BPdual method: a primal active-set method on the
  dual problem ``min_r ½λ||r||² - tᵀr  s.t.  ||Âᵀr||∞ <= 1`` (t the target, r the residual
  divided by λ at the optimum; the multipliers of the active constraints are x), carried out
  on ``z = Âᵀr`` so that it too needs only the Gram matrix.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..errors import ConvergenceWarning, InputError
from ._active_set import ActiveSet, Screen, check_asp_settings, leaving_step
from ._checks import check_design, check_fraction, check_nonneg_float, check_positive_int
from ._problem import ScaledGram, gram_from_design
from .path import PathEstimator, PathRecorder, SolutionPath, SolverInfo

__all__ = ["asp_path", "asp_path_gram", "bpdual_gram", "bpdual", "ActiveSetPursuit"]

logger = logging.getLogger(__name__)

#: The homotopy carries x along the path (x ← x + γ d), c on the active rows (c_S ← c_S - γ s)
#: and L⁻¹[b̂_S, s] through the factor updates; all three, and c on every row, are recomputed
#: every REFRESH breakpoints against drift.
REFRESH = 50


def _start(P: ScaledGram) -> tuple[float, int, float]:
    """λ₀ = max |b̂_j| over usable columns, its column and sign."""
    c0 = np.where(P.usable, np.abs(P.b), -1.0)
    j = int(np.argmax(c0))
    return float(max(c0[j], 0.0)), j, float(np.sign(P.b[j]) or 1.0)


def _rss(P: ScaledGram, S: np.ndarray, x: np.ndarray, c_S: np.ndarray) -> float:
    """``||Â x - y||² = yᵀy - b̂_Sᵀx - xᵀc_S`` since ``Ĝ_SS x = b̂_S - c_S``."""
    return P.yy - float(P.b[S] @ x) - float(x @ c_S)


def _segment(P: ScaledGram, act: ActiveSet, lam: float, x, c, refresh: bool):
    """``(x, d, c)`` for the segment from λ: the carried x and c and ``d = Ĝ_SS⁻¹ s``, or,
    with ``refresh``, all three recomputed from the factor (against drift)."""
    if not refresh:
        return x, act.direction(), c
    x, d = act.solve(lam, refresh=True)
    return x, d, P.b - act.times(x)


def _homotopy_gram(P: ScaledGram, max_active: int, lambda_min: float, dependence_tol: float,
                   max_iter: int) -> SolutionPath:
    """LASSO homotopy kernel; see the module docstring."""
    act = ActiveSet(P, max_active, dependence_tol)
    rec = PathRecorder(P.p, P.unscale)
    lam, j, sign = _start(P)
    rec.add([], [], P.yy, lam)
    open_ = P.usable.copy()
    reason, n_iter, n_removed, n_skipped, protect = "lambda_min", 0, 0, 0, None
    if lam <= lambda_min:
        reason = "lambda_max_below_lambda_min" if lam > 0 else "zero_correlation"
    elif act.add(j, sign):
        open_[j], protect = False, 0
    n_added = len(act)
    c = np.where(P.usable, P.b, 0.0)  # correlations Âᵀ(y - Â x), x = 0
    x = np.zeros(n_added)  # x_S(λ₀) = 0: a joining coefficient starts at zero
    screen = Screen(P, c, lam)
    while lam > lambda_min and reason == "lambda_min":
        n_iter += 1
        refresh = n_iter % REFRESH == 0
        x, d, c = _segment(P, act, lam, x, c, refresh)
        if refresh:
            screen.reset(c, lam)
        S, s = act.S, act.signs.copy()
        g_out, i = leaving_step(x, d, protect)
        g_end = lam - lambda_min
        g_in, j, sign = screen.search(act, x, d, c, lam, open_, min(g_out, g_end))
        gamma = min(g_in, g_out, g_end)
        lam, x = lam - gamma, x + gamma * d
        screen.advance(c, gamma, lam)  # the evaluated inactive rows: c_j - γ a_j
        c[S] -= gamma * s  # the active rows, where Ĝ_SS d = s
        keep = np.arange(len(S)) != (i if g_out <= g_in and gamma < g_end else -1)
        rec.add(S[keep], x[keep], _rss(P, S[keep], x[keep], c[S[keep]]), lam)
        if gamma == g_end:
            break
        if not keep.all():  # a coefficient reached zero: its function leaves
            j_out = act.remove(i)
            open_[j_out] = True
            screen.release(j_out, c[j_out], lam)
            n_removed, protect, x = n_removed + 1, None, x[keep]
        elif len(S) == max_active:
            reason = "max_active"
        else:  # a correlation reached λ: its function joins
            open_[j] = False
            if act.add(j, sign):
                protect, n_added, x = len(act) - 1, n_added + 1, np.append(x, 0.0)
            else:  # keep protecting a column added at this same λ
                protect, n_skipped = (protect if gamma == 0 else None), n_skipped + 1
        if n_iter >= max_iter:
            reason = "max_iter"
            act.notes.append(f"homotopy stopped after max_iter={max_iter} breakpoints at "
                             f"λ={lam:.3g}")
            warnings.warn(act.notes[-1], ConvergenceWarning, stacklevel=3)
    logger.info("ASP homotopy: %d points, %d active, %d removals, stop: %s; %d row "
                "evaluations (%.0f%% of p per breakpoint)", len(rec), len(act), n_removed,
                reason, screen.n_evaluated, 100 * screen.n_evaluated / max(n_iter * P.p, 1))
    settings = (("max_active", max_active), ("lambda_min", lambda_min),
                ("dependence_tol", dependence_tol), ("max_iter", max_iter))
    return rec.finish(SolverInfo(solver="asp_homotopy", n_iter=n_iter, stop_reason=reason,
                                 warnings=tuple(act.notes), n_added=n_added,
                                 n_removed=n_removed, n_skipped=n_skipped, settings=settings))


def _bpdual_gram(P: ScaledGram, lam: float, dependence_tol: float, max_iter: int):
    """BPdual kernel: active-set method on the dual, tracked through ``z = Âᵀy``."""
    act = ActiveSet(P, min(P.p, 64), dependence_tol)  # the column buffer grows when needed
    z = np.zeros(P.p)  # dual iterate y = 0 is feasible
    open_ = P.usable.copy()
    x = np.zeros(0)
    reason, n_iter, n_removed, n_added = "max_iter", 0, 0, 0
    while n_iter < max_iter:
        n_iter += 1
        x, _ = act.solve(lam)
        z_star = (P.b - act.times(x)) / lam  # Âᵀy* of the equality-constrained optimum
        dz = z_star - z
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(open_ & (dz > 0), (1.0 - z) / dz, np.inf)
            dn = np.where(open_ & (dz < 0), (-1.0 - z) / dz, np.inf)
        ju, jd = int(np.argmin(up)), int(np.argmin(dn))
        step, j, sign = (up[ju], ju, 1.0) if up[ju] <= dn[jd] else (dn[jd], jd, -1.0)
        if step < 1.0:  # a constraint |â_jᵀy| <= 1 blocks the step: it becomes active
            z += max(step, 0.0) * dz
            open_[j] = False
            n_added += int(act.add(j, sign))
            continue
        z = z_star
        wrong = x * np.array(act.signs) if len(act) else np.zeros(0)
        if not len(wrong) or wrong.min() >= 0:
            reason = "optimal"
            break
        open_[act.remove(int(np.argmin(wrong)))] = True  # multiplier of the wrong sign
        n_removed += 1
    if reason != "optimal":
        msg = f"BPdual stopped after max_iter={max_iter} iterations before optimality"
        act.notes.append(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
        # the last iteration changed the active set after its solve: solve on the final one
        x, _ = act.solve(lam)
    S = act.S
    # Ĝ_SS x = b̂_S - λ s, so ||Â x - y||² = yᵀy - b̂_Sᵀx - λ xᵀs
    rss = P.yy - float(P.b[S] @ x) - lam * float(x @ act.signs) if len(S) else P.yy
    rec = PathRecorder(P.p, P.unscale)
    rec.add(S, x, rss, lam)
    info = SolverInfo(solver="bpdual", n_iter=n_iter, stop_reason=reason,
                      warnings=tuple(act.notes), n_added=n_added, n_removed=n_removed,
                      n_skipped=len(act.notes) - (reason != "optimal"),
                      settings=(("lam", lam), ("dependence_tol", dependence_tol),
                                ("max_iter", max_iter)))
    return rec.finish(info)


def asp_path_gram(G, b, yy, n_rows, max_active, *, lambda_min=0.0, prior=None,
                  normalize=True, dependence_tol=1e-12, max_iter=None) -> SolutionPath:
    """Exact LASSO / BPDN homotopy path from the Gram form.

    Parameters
    ----------
    G, b, yy, n_rows
        ``AᵀA`` (p, p), ``Aᵀy`` (p,), ``yᵀy`` and the number of rows of A.
    max_active : int
        Stop at the first breakpoint at which a column would join an active set of this size.
    lambda_min : float
        Stop when λ (of the scaled problem) reaches this value (0: down to least squares).
    prior : ndarray (p,), optional
        Smoothness prior γ > 0; with ``normalize=False`` the penalty is ``λ Σ γ_j |c_j|``.
    normalize : bool
        Unit-norm columns (default): the penalty is ``λ Σ ||a_j|| |c_j|``.
    dependence_tol : float
        Relative Cholesky pivot below which a joining column is skipped (with a warning).
    max_iter : int, optional
        Most breakpoints (default ``max(50 max_active, 1000)``).

    Returns
    -------
    SolutionPath
        Point 0 is the empty model at λ₀ = ||D b||∞; then one point per breakpoint, with
        ``lambdas`` decreasing.
    """
    P = ScaledGram.build(G, b, yy, n_rows, prior=prior, normalize=normalize)
    return _homotopy_gram(P, *check_asp_settings(P, max_active, lambda_min, dependence_tol,
                                                 max_iter))


def asp_path(A, y, max_active, *, lambda_min=0.0, prior=None, normalize=True,
             dependence_tol=1e-12, max_iter=None) -> SolutionPath:
    """Homotopy path of ``min ½||A c - y||² + λ||D⁻¹c||₁``, A (n, p); see asp_path_gram."""
    P = ScaledGram.from_design(A, y, prior=prior, normalize=normalize)
    return _homotopy_gram(P, *check_asp_settings(P, max_active, lambda_min, dependence_tol,
                                                 max_iter))


def bpdual_gram(G, b, yy, n_rows, lam, *, prior=None, normalize=True, dependence_tol=1e-12,
                max_iter=None) -> SolutionPath:
    """LASSO solution for one ``lam`` (scaled problem) by BPdual; a one-point path."""
    P = ScaledGram.build(G, b, yy, n_rows, prior=prior, normalize=normalize)
    lam = check_nonneg_float(lam, "lam")
    if lam <= 0:
        raise InputError(f"lam={lam!r} must be > 0 (λ = 0 is least squares: use asp_path)")
    max_iter = 10 * P.p + 100 if max_iter is None else check_positive_int(max_iter, "max_iter")
    return _bpdual_gram(P, lam, check_fraction(dependence_tol, "dependence_tol"), max_iter)


def bpdual(A, y, lam, **kwargs) -> SolutionPath:
    """:func:`bpdual_gram` on a design matrix A (n, p) and y (n,)."""
    A, y = check_design(A, y)
    return bpdual_gram(*gram_from_design(A, y), A.shape[0], lam, **kwargs)


class ActiveSetPursuit(PathEstimator):
    """Estimator wrapper of :func:`asp_path` / :func:`asp_path_gram` (see PathEstimator)."""

    _params = ("lambda_min", "prior", "normalize", "dependence_tol", "max_iter")
    _path = staticmethod(asp_path)
    _path_gram = staticmethod(asp_path_gram)

    def __init__(self, *, max_active=100, lambda_min=0.0, prior=None, normalize=True,
                 dependence_tol=1e-12, max_iter=None):
        self.max_active = max_active
        self.lambda_min = lambda_min
        self.prior = prior
        self.normalize = normalize
        self.dependence_tol = dependence_tol
        self.max_iter = max_iter
