"""Sequential ARD: Tipping & Faul's fast marginal-likelihood maximisation, as a path.

The model is ARD's (see :mod:`.bayes`): ``y ~ N(Â x, 1/β)``, ``x_j ~ N(0, 1/α_j)``, with
``α_j = ∞`` (function j absent) for all but an active set S.  Instead of updating every α_j
at once from a dense start (MacKay's fixed point, :func:`~.bayes.ard_gram`, which must
factorise the whole kept block at every iteration and is slow to leave its start when the
targets are far from centred), the sequential algorithm (Tipping & Faul, "Fast marginal
likelihood maximisation for sparse Bayesian models", AISTATS 2003) starts from one function
and, at every step, makes the single change that raises the log evidence most:

* add j ∉ S when ``θ_j = q_j² − s_j > 0`` (with ``α_j = s_j² / θ_j``),
* re-estimate ``α_j`` of j ∈ S, or
* delete j ∈ S when ``θ_j ≤ 0``,

where the sparsity and quality factors ``S_m = φ_mᵀC⁻¹φ_m`` and ``Q_m = φ_mᵀC⁻¹y``
(``C = β⁻¹I + Φ_S A_S⁻¹ Φ_Sᵀ``; ``s, q`` are their leave-j-out versions) are kept for all p
functions by rank-one updates from the Gram form alone, O(p |S|) per step.  The noise
precision β is re-estimated every few steps, ``β = (n − |S| + Σ α_i Σ_ii) / ‖y − Φμ‖²``,
after which Σ, μ, S and Q are recomputed from scratch (this also resets the rounding of the
rank-one updates).

The active set grows from one function, so the run is a path of sparse models: a point is
recorded whenever a function joins or leaves S (coefficients: the posterior mean μ), and
``max_active`` stops it, which is how the benchmarks take ARD models of 300 and 1000
functions.  ARD's evidence is invariant to the scale of each column, so the columns are
normalised (the smoothness prior drops out, as in OMP with ``normalize=True``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.linalg as sla

from ..errors import ConvergenceWarning
from ._checks import check_design, check_nonneg_float, check_positive_float, check_positive_int
from ._problem import ScaledGram, gram_from_design
from .path import PathRecorder, SolutionPath, SolverInfo

__all__ = ["ard_path_gram", "ard_path"]

logger = logging.getLogger(__name__)

#: A function joins only if its sparsity factor S_j exceeds this fraction of β‖â_j‖², i.e.
#: it is not (numerically) in the span of the active ones.
_DEPENDENT = 1e-10


class _State:
    """Active set, α, Σ, μ and the factors S, Q of all functions for a fixed β."""

    def __init__(self, P: ScaledGram, max_active: int):
        self.P = P
        self.cols = np.empty((P.p, max_active), order="F")  # Ĝ[:, S] in slot order
        self.active: list[int] = []
        self.alpha = np.empty(max_active)
        self.beta = 1.0
        self.Sigma = np.empty((0, 0))
        self.mu = np.empty(0)
        self.S = np.empty(P.p)
        self.Q = np.empty(P.p)
        self.diag = P.diag()

    @property
    def m(self) -> int:
        return len(self.active)

    def refresh(self) -> None:
        """Σ, μ, S and Q from scratch for the current active set, α and β."""
        m, beta, P = self.m, self.beta, self.P
        C = self.cols[:, :m]
        H = beta * C[self.active, :]
        H[np.diag_indices(m)] += self.alpha[:m]
        top = float(np.abs(np.diag(H)).max())
        try:
            L = sla.cholesky(H, lower=True, check_finite=False)
            if np.diag(L).min() ** 2 <= m * np.finfo(float).eps * top:
                raise np.linalg.LinAlgError("numerically singular")
        except np.linalg.LinAlgError:  # only without the α floor: add a ridge at rounding
            jitter = 1e3 * m * np.finfo(float).eps * top
            warnings.warn(f"ard_sequential: diag(α) + β Ĝ_SS is not numerically positive "
                          f"definite; adding {jitter:.2e} to its diagonal (raise alpha_floor)",
                          ConvergenceWarning, stacklevel=4)
            H[np.diag_indices(m)] += jitter
            L = sla.cholesky(H, lower=True, check_finite=False)
        Linv = sla.solve_triangular(L, np.eye(m), lower=True, check_finite=False)
        self.Sigma = Linv.T @ Linv
        self.mu = beta * self.Sigma @ P.b[self.active]
        W = C @ Linv.T  # rows: L⁻¹ Ĝ[S, j]
        self.S = beta * self.diag - beta**2 * np.einsum("ij,ij->i", W, W)
        self.Q = beta * P.b - beta**2 * (C @ (self.Sigma @ P.b[self.active]))

    def rss(self) -> float:
        m = self.m
        if m == 0:
            return self.P.yy
        G_SS = self.cols[self.active, :m]
        return max(self.P.yy - 2 * self.mu @ self.P.b[self.active] + self.mu @ G_SS @ self.mu,
                   0.0)

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out factors s, q (for j ∈ S: ``α S / (α − S)``, ``α Q / (α − S)``)."""
        s, q = self.S.copy(), self.Q.copy()
        if self.m:
            idx = np.asarray(self.active)
            a = self.alpha[: self.m]
            den = a - self.S[idx]
            s[idx] = a * self.S[idx] / den
            q[idx] = a * self.Q[idx] / den
        return s, q

    def add(self, j: int, alpha_j: float) -> None:
        m, beta = self.m, self.beta
        col = self.P.column(j)
        z = self.Sigma @ col[self.active]
        sjj = 1.0 / (alpha_j + self.S[j])
        mu_j = sjj * self.Q[j]
        e = beta * col - beta**2 * (self.cols[:, :m] @ z)
        Sigma = np.empty((m + 1, m + 1))
        Sigma[:m, :m] = self.Sigma + beta**2 * sjj * np.outer(z, z)
        Sigma[:m, m] = Sigma[m, :m] = -beta * sjj * z
        Sigma[m, m] = sjj
        self.Sigma = Sigma
        self.mu = np.append(self.mu - beta * mu_j * z, mu_j)
        self.S -= sjj * e**2
        self.Q -= mu_j * e
        self.cols[:, m] = col
        self.alpha[m] = alpha_j
        self.active.append(j)

    def _downdate(self, k: int, kappa: float) -> None:
        """Rank-one change along Σ[:, k] with weight κ (re-estimation and deletion)."""
        sk, mu_k = self.Sigma[:, k].copy(), self.mu[k]
        w = self.beta * (self.cols[:, : self.m] @ sk)
        self.S += kappa * w**2
        self.Q += kappa * mu_k * w
        self.Sigma -= kappa * np.outer(sk, sk)
        self.mu = self.mu - kappa * mu_k * sk

    def reestimate(self, k: int, alpha_new: float) -> None:
        kappa = 1.0 / (self.Sigma[k, k] + 1.0 / (alpha_new - self.alpha[k]))
        self._downdate(k, kappa)
        self.alpha[k] = alpha_new

    def delete(self, k: int) -> None:
        self._downdate(k, 1.0 / self.Sigma[k, k])
        last = self.m - 1
        if k != last:  # move the last slot into k
            swap = [last, k]
            self.Sigma[[k, last], :] = self.Sigma[swap, :]
            self.Sigma[:, [k, last]] = self.Sigma[:, swap]
            self.mu[[k, last]] = self.mu[swap]
            self.cols[:, k] = self.cols[:, last]
            self.alpha[k] = self.alpha[last]
            self.active[k] = self.active[last]
        self.active.pop()
        self.Sigma = self.Sigma[:last, :last]
        self.mu = self.mu[:last]

    def noise_precision(self) -> float:
        """β from the evidence fixed point for the current posterior."""
        m = self.m
        gamma = m - float(self.alpha[:m] @ np.diag(self.Sigma))
        rss = max(self.rss(), np.finfo(float).eps * self.P.yy)
        return (self.P.n_rows - gamma) / rss


def _best_action(st: _State, candidates: np.ndarray, rel_alpha: float, alpha_floor: float):
    """``(gain, kind, j_or_slot, alpha_new)`` of the change that raises the doubled log
    evidence most (Tipping & Faul, eqs. 27–29), or None when no change raises it."""
    s, q = st.factors()
    theta = q**2 - s
    best = None
    # additions: outside S, θ > 0, and a sparsity factor above rounding (not in span(Φ_S))
    floor = alpha_floor * st.beta
    out = candidates & (theta > 0) & (st.S > _DEPENDENT * st.beta * st.diag)
    out[st.active] = False
    if out.any():
        Q2, S_ = st.Q[out] ** 2, st.S[out]
        gain = (Q2 - S_) / S_ + np.log(S_ / Q2)
        i = int(np.argmax(gain))
        j = int(np.flatnonzero(out)[i])
        best = (float(gain[i]), "add", j, max(S_[i] ** 2 / (Q2[i] - S_[i]), floor))
    idx = np.asarray(st.active)
    a = st.alpha[: st.m]
    th, S_, Q2 = theta[idx], st.S[idx], st.Q[idx] ** 2
    pos = th > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a_new = np.maximum(np.where(pos, s[idx] ** 2 / np.where(pos, th, 1.0), np.inf), floor)
        delta = 1.0 / a_new - 1.0 / a
        moved = np.abs(np.log(a_new / a)) > rel_alpha
        re_gain = np.where(pos & moved, Q2 / (S_ + 1.0 / delta) - np.log1p(S_ * delta), -np.inf)
        del_gain = np.where(~pos & (st.m > 1), Q2 / (S_ - a) - np.log1p(-S_ / a), -np.inf)
    for gain, kind in ((re_gain, "reestimate"), (del_gain, "delete")):
        k = int(np.argmax(gain))
        if np.isfinite(gain[k]) and (best is None or gain[k] > best[0]):
            best = (float(gain[k]), kind, k, float(a_new[k]))
    return best


def ard_path_gram(G, b, yy, n_rows, max_active: int, *, prior=None, max_iter: int | None = None,
                  beta_every: int = 10, rel_alpha: float = 1e-3, tol: float = 1e-3,
                  alpha_floor: float = 1e-6,
                  noise_precision_init: float | None = None) -> SolutionPath:
    """Sequential ARD path from ``G`` (p, p), ``b`` (p,), ``yy``, ``n_rows``.

    Parameters
    ----------
    max_active : int
        Stop once this many functions are active.
    prior : array (p,), optional
        Accepted for a uniform interface; ARD's evidence does not depend on column scales.
    max_iter : int, optional
        Cap on the steps (default ``20 · max_active + 100``); reaching it warns.
    beta_every : int
        Re-estimate β (and recompute Σ, μ, S, Q) every this many steps.
    rel_alpha : float
        Re-estimations that change α_j by less than this relative amount are not made.
    alpha_floor : float
        Weight precisions are kept above ``alpha_floor · β`` (on unit-norm columns): a
        tiny ridge that bounds the condition number of ``diag(α) + β Φ_SᵀΦ_S``, whose
        explicit inverse the rank-one updates carry (without it α_j fell to 1e-27 on the
        nearly collinear ACE columns and the updates lost every digit).
    tol : float
        Converged when no change raises the (doubled) log evidence by more than ``tol`` and
        β moved by less than ``tol`` relative at the last re-estimation.
    noise_precision_init : float, optional
        Starting β; default ``n_rows / ‖y − â_j x_j‖²`` for the best single function j.

    Returns
    -------
    SolutionPath
        One point per change of the active set (posterior means, caller's scale); its info
        holds the final β and the steps taken.
    """
    P = ScaledGram.build(G, b, yy, n_rows, prior=prior, normalize=True)
    max_active = check_positive_int(max_active, "max_active")
    max_active = min(max_active, int(P.usable.sum()))
    max_iter = (20 * max_active + 100 if max_iter is None
                else check_positive_int(max_iter, "max_iter"))
    beta_every = check_positive_int(beta_every, "beta_every")
    rel_alpha, tol = check_nonneg_float(rel_alpha, "rel_alpha"), check_nonneg_float(tol, "tol")
    alpha_floor = check_nonneg_float(alpha_floor, "alpha_floor")
    rec = PathRecorder(P.p, P.unscale)
    settings = (("max_active", max_active), ("beta_every", beta_every),
                ("rel_alpha", rel_alpha), ("tol", tol), ("alpha_floor", alpha_floor))
    if max_active == 0 or not np.any(P.b[P.usable]):
        info = SolverInfo(solver="ard_sequential", n_iter=0, stop_reason="zero_target",
                          settings=settings)
        return rec.finish(info)
    st = _State(P, max_active)
    j0 = int(np.argmax(np.where(P.usable, P.b**2 / np.where(P.usable, st.diag, 1.0), -1.0)))
    rss0 = max(P.yy - P.b[j0] ** 2 / st.diag[j0], np.finfo(float).eps * P.yy)
    st.beta = (P.n_rows / rss0 if noise_precision_init is None
               else check_positive_float(noise_precision_init, "noise_precision_init"))
    st.S, st.Q = st.beta * st.diag, st.beta * P.b
    theta0 = st.Q[j0] ** 2 - st.S[j0]
    st.add(j0, max(st.S[j0] ** 2 / theta0 if theta0 > 0 else 1.0 / P.b[j0] ** 2,
                   alpha_floor * st.beta))
    rec.add(list(st.active), st.mu, st.rss())
    n_added, n_removed, reason, it, since_beta = 1, 0, "max_iter", 0, 0
    last_beta_change = np.inf
    while it < max_iter:
        it += 1
        if st.m >= max_active:
            reason = "max_active"
            break
        action = _best_action(st, P.usable, rel_alpha, alpha_floor)
        since_beta += 1
        quiet = action is None or action[0] < tol
        if quiet or since_beta >= beta_every:
            beta = st.noise_precision()
            last_beta_change = abs(beta / st.beta - 1.0)
            st.beta, since_beta = beta, 0
            np.maximum(st.alpha[: st.m], alpha_floor * beta, out=st.alpha[: st.m])
            st.refresh()
            if quiet:
                if last_beta_change < tol:
                    reason = "converged"
                    break
                continue
            action = _best_action(st, P.usable, rel_alpha, alpha_floor)
            if action is None or action[0] < tol:
                continue
        _, kind, arg, alpha_new = action
        if kind == "reestimate":
            st.reestimate(arg, alpha_new)
            continue
        if kind == "add":
            st.add(arg, alpha_new)
            n_added += 1
        else:
            st.delete(arg)
            n_removed += 1
        rec.add(list(st.active), st.mu, st.rss())
        if it % 500 == 0:
            logger.debug("ard_sequential step %d: %d active (+%d −%d), beta %.4g, gain %.3g",
                         it, st.m, n_added, n_removed, st.beta, action[0])
    notes: tuple[str, ...] = ()
    if reason == "max_iter":
        notes = (f"ard_sequential: no convergence in max_iter={max_iter} steps "
                 f"({st.m} functions active)",)
        warnings.warn(notes[0], ConvergenceWarning, stacklevel=2)
    if reason != "max_active":  # the posterior mean after the last re-estimations
        rec.add(list(st.active), st.mu, st.rss())
    logger.info("ard_sequential: %d active, %d steps, beta %.4g, %s", st.m, it, st.beta, reason)
    info = SolverInfo(solver="ard_sequential", n_iter=it, stop_reason=reason, warnings=notes,
                      n_added=n_added, n_removed=n_removed,
                      settings=settings + (("noise_precision", float(st.beta)),))
    return rec.finish(info)


def ard_path(A, y, max_active: int, **kwargs) -> SolutionPath:
    """:func:`ard_path_gram` on a design matrix A (n, p) and target y (n,)."""
    A, y = check_design(A, y)
    return ard_path_gram(*gram_from_design(A, y), A.shape[0], max_active, **kwargs)
