"""Low-rank preconditioners ``P = L Lᵀ + λ I`` for ``(K + λ I) α = y``, applied by Woodbury.

Every builder returns a :class:`LowRank` holding ``Lᵀ`` (shape ``(k, n)``) and the indices of
the kernel columns it used:

* :func:`uniform_factor` — Nyström on ``k`` columns drawn uniformly;
* :func:`leverage_factor` — Nyström on ``k`` columns: half drawn uniformly, the other half
  drawn by the approximate ridge leverage scores that the first half gives;
* :func:`incomplete_cholesky` — greedy pivoted incomplete Cholesky (Algorithm 1 of Blücher,
  Müller & Chmiela 2023): needs only the diagonal and the pivot columns, ``O(k² n)`` time and
  ``O(k n)`` memory;
* :func:`eigen_factor` — the ``k`` leading eigenpairs of the dense ``K`` (reference, small n).

:class:`WoodburyPreconditioner` applies
``P⁻¹ v = (v - L (λ I + LᵀL)⁻¹ Lᵀ v) / λ`` with one Cholesky factor of the ``k × k`` matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..errors import InputError
from .gdml import GDMLOperator

__all__ = ["LowRank", "WoodburyPreconditioner", "PRECONDITIONERS", "build_factor",
           "uniform_factor", "leverage_factor", "leverage_scores", "ridge_leverage_scores",
           "incomplete_cholesky", "eigen_factor", "check_rank"]

log = logging.getLogger(__name__)

PRECONDITIONERS = ("cholesky", "leverage", "uniform", "eigen")


@dataclass(frozen=True)
class LowRank:
    """``K ≈ Lᵀᵀ Lᵀ`` with ``Lt`` of shape (k, n); ``inducing`` the column indices used."""

    Lt: np.ndarray
    inducing: np.ndarray
    kind: str

    @property
    def k(self) -> int:
        return self.Lt.shape[0]


def check_rank(k, n: int) -> int:
    """Return ``k`` as an int; :class:`InputError` unless ``1 <= k <= n``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise InputError(f"preconditioner rank k={k!r} is not allowed; it must be an integer "
                         f"in [1, n] with n = 3 * n_atoms * n_train = {n}; lower k or use "
                         "more training frames")
    return int(k)


def _cho_upper(W: np.ndarray, what: str) -> np.ndarray:
    """Upper Cholesky factor of the SPD matrix ``W``; adds logged jitter when needed."""
    W = 0.5 * (W + W.T)
    scale = max(float(np.abs(np.diag(W)).max()), np.finfo(float).tiny)
    jitter = 0.0
    for _ in range(12):
        try:
            Wj = W + jitter * np.eye(len(W)) if jitter else W
            return sla.cholesky(Wj, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            jitter = scale * 1e-13 if jitter == 0.0 else jitter * 10.0
            log.warning("%s is not numerically positive definite; adding jitter %.3g to its "
                        "diagonal", what, jitter)
    raise np.linalg.LinAlgError(f"{what}: Cholesky failed even with jitter {jitter:.3g}")


def nystrom_factor(op: GDMLOperator, idx: np.ndarray, kind: str,
                   rows: np.ndarray | None = None) -> LowRank:
    """Nyström factor ``Lᵀ = R⁻ᵀ K[idx, :]`` with ``K[idx, idx] = RᵀR``.

    ``rows``, when given, holds ``K[idx, :]`` already computed (in the order of ``idx``);
    it is overwritten when ``idx`` is sorted, else copied.
    """
    idx = np.asarray(idx, dtype=int)
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    if rows is None:
        C = op.rows(idx)
    else:
        C = rows if np.all(order == np.arange(len(order))) else rows[order]
    R = _cho_upper(C[:, idx], f"K[S, S] of the {kind} Nyström factor")
    Lt = sla.solve_triangular(R, C, trans="T", lower=False, overwrite_b=True,
                              check_finite=False)
    return LowRank(Lt=Lt, inducing=idx, kind=kind)


def uniform_factor(op: GDMLOperator, k: int, rng: np.random.Generator) -> LowRank:
    """Nyström factor on ``k`` kernel columns drawn uniformly without replacement."""
    k = check_rank(k, op.n)
    return nystrom_factor(op, rng.choice(op.n, size=k, replace=False), "uniform")


def _sketch(op: GDMLOperator, S: np.ndarray, rows: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``e`` of ``K_SS`` (s,) and ``B2 = (Uᵀ K_S:)²`` (s, n); ``rows``, when
    given, is ``K[S, :]`` for the sorted ``S``."""
    S = np.sort(np.asarray(S, dtype=int))
    C = op.rows(S) if rows is None else rows
    e, U = np.linalg.eigh(0.5 * (C[:, S] + C[:, S].T))
    return np.maximum(e, 0.0), (U.T @ C) ** 2


def _scores(diag, e, B2, mu: float) -> np.ndarray:
    return np.maximum(diag - (B2 / (e + mu)[:, None]).sum(0), 0.0) / mu


def ridge_leverage_scores(op: GDMLOperator, sketch: np.ndarray, mu: float) -> np.ndarray:
    """Nyström estimates ``ℓ̃_i(μ) = (K_ii - K_iS (K_SS + μ I)⁻¹ K_Si) / μ`` of the ridge
    leverage scores ``ℓ_i(μ) = [K (K + μ I)⁻¹]_ii`` from the columns ``S = sketch``.

    ``ℓ̃_i >= ℓ_i`` for every sketch, with equality when ``S`` holds all columns.

    Parameters
    ----------
    op : GDMLOperator
    sketch : ndarray of int, shape (s,)
        Column indices ``S``.
    mu : float
        Ridge parameter μ > 0 (units of ``K``).

    Returns
    -------
    ndarray, shape (n,)
    """
    return _scores(op.diagonal(), *_sketch(op, sketch), float(mu))


def _mu_for_sum(diag: np.ndarray, e: np.ndarray, B2: np.ndarray, k: int) -> float:
    """μ at which the Nyström scores of the sketch sum to ``k`` (bisection in ``log μ``)."""
    lo, hi = np.log(diag.max() * 1e-16), np.log(diag.sum() * 10)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _scores(diag, e, B2, np.exp(mid)).sum() > k else (lo, mid)
    return float(np.exp(hi))


def leverage_scores(op: GDMLOperator, k: int, rng: np.random.Generator, *,
                    sketch: int | None = None) -> np.ndarray:
    """Approximate ridge leverage scores of every column, with μ set so that they sum to k.

    :func:`ridge_leverage_scores` on ``sketch`` (default ``max(1, k // 2)``) columns drawn
    uniformly without replacement; ``μ`` is found by bisection in ``log μ`` so that the
    scores sum to ``k``: the effective dimension matches the number of columns to sample.

    Returns
    -------
    ndarray, shape (n,)
    """
    s = max(1, k // 2) if sketch is None else min(int(sketch), op.n)
    e, B2 = _sketch(op, rng.choice(op.n, size=s, replace=False))
    diag = op.diagonal()
    return _scores(diag, e, B2, _mu_for_sum(diag, e, B2, k))


def leverage_factor(op: GDMLOperator, k: int, rng: np.random.Generator) -> LowRank:
    """Nyström factor on ``k`` columns: ``s = k - k // 2`` drawn uniformly (the sketch),
    the other ``k // 2`` drawn without replacement with probability ∝ the approximate ridge
    leverage scores that the sketch gives (:func:`ridge_leverage_scores`, μ such that they
    sum to ``k``; zero on the sketch, which the Nyström factor already holds exactly).

    The two stages are one step of adaptive (recursive) leverage-score sampling: the second
    half goes where the sketch's Nyström approximation is poor, relative to μ.  The sketch's
    kernel rows serve both the scores and the factor, so it costs ``k`` kernel rows, as
    :func:`uniform_factor` does.  (Drawing all ``k`` columns by the scores of a separate
    ``k / 2`` sketch needed ``1.5 k`` rows and was no better than uniform columns on
    rMD17 ethanol; see ``benchmarks/README.md``.)
    """
    k = check_rank(k, op.n)
    s = k - k // 2
    S1 = np.sort(rng.choice(op.n, size=s, replace=False))
    C1 = op.rows(S1)
    if s == k:
        return nystrom_factor(op, S1, "leverage", rows=C1)
    diag = op.diagonal()
    e, B2 = _sketch(op, S1, rows=C1)
    ell = _scores(diag, e, B2, _mu_for_sum(diag, e, B2, k))
    del B2
    ell += np.finfo(float).tiny  # every column outside the sketch stays drawable
    ell[S1] = 0.0
    S2 = rng.choice(op.n, size=k - s, replace=False, p=ell / ell.sum())
    idx = np.sort(np.concatenate([S1, S2]))
    C = np.empty((k, op.n))  # K[idx, :] in sorted order, filled from the two stages
    in_sketch = np.isin(idx, S1)
    C[in_sketch] = C1
    del C1
    C[~in_sketch] = op.rows(idx[~in_sketch])
    return nystrom_factor(op, idx, "leverage", rows=C)


def eigen_factor(op: GDMLOperator, k: int) -> LowRank:
    """``Lᵀ = Λ_k^{1/2} U_kᵀ`` from the ``k`` leading eigenpairs of the dense ``K``."""
    k = check_rank(k, op.n)
    e, U = sla.eigh(op.dense(), subset_by_index=[op.n - k, op.n - 1], check_finite=False)
    Lt = np.sqrt(np.maximum(e, 0.0))[:, None] * U.T
    return LowRank(Lt=Lt, inducing=np.zeros(0, dtype=int), kind="eigen")


def incomplete_cholesky(op: GDMLOperator, k: int, *, block: int = 64,
                        oversample: int = 2) -> LowRank:
    """Greedy pivoted incomplete Cholesky of ``K`` to rank ``k`` (Algorithm 1).

    Each step takes the largest remaining residual diagonal as pivot ``p`` and appends
    ``l = (K[:, p] - L L[p]ᵀ) / √(residual_p)``.  Blocked, with the same pivots: the residual
    columns of the ``oversample · block`` largest diagonal entries are formed with one matrix
    product, and the greedy steps run on them until the largest residual diagonal falls
    outside that candidate set.  Stops early (with a log message) when the residual diagonal
    vanishes (rank of ``K`` reached).
    """
    n = op.n
    k = check_rank(k, n)
    diag = op.diagonal()
    tiny = diag.max() * n * np.finfo(float).eps
    Lt = np.zeros((k, n))
    piv = np.empty(k, dtype=int)
    j = 0
    while j < k:
        if diag.max() <= tiny:
            log.info("incomplete Cholesky: residual diagonal %.3g <= %.3g at rank %d; "
                     "stopping (rank of K reached)", diag.max(), tiny, j)
            return LowRank(Lt=Lt[:j].copy(), inducing=piv[:j].copy(), kind="cholesky")
        b = min(block, k - j)
        cand = np.argpartition(-diag, min(n, oversample * b) - 1)[:oversample * b]
        # among ties argpartition may leave out argmax's pick (the first): the next pivot
        # must be a candidate, or the block would be rebuilt forever
        cand = np.union1d(cand, [int(np.argmax(diag))])
        resid = op.rows(cand) - Lt[:j, cand].T @ Lt[:j]
        where = {int(p): t for t, p in enumerate(cand)}
        j0 = j
        while j < j0 + b and int(np.argmax(diag)) in where:
            p = int(np.argmax(diag))
            col = resid[where[p]] - Lt[j0:j, p] @ Lt[j0:j]
            if col[p] <= tiny:
                log.info("incomplete Cholesky: residual diagonal %.3g <= %.3g at rank %d; "
                         "stopping (rank of K reached)", col[p], tiny, j)
                return LowRank(Lt=Lt[:j].copy(), inducing=piv[:j].copy(), kind="cholesky")
            Lt[j] = col / np.sqrt(col[p])
            diag -= Lt[j] ** 2
            diag[p] = 0.0
            piv[j] = p
            j += 1
    return LowRank(Lt=Lt, inducing=piv, kind="cholesky")


def build_factor(op: GDMLOperator, kind: str, k: int, rng: np.random.Generator) -> LowRank:
    """Dispatch to the builder of preconditioner ``kind`` (one of :data:`PRECONDITIONERS`)."""
    if kind == "cholesky":
        return incomplete_cholesky(op, k)
    if kind == "leverage":
        return leverage_factor(op, k, rng)
    if kind == "uniform":
        return uniform_factor(op, k, rng)
    if kind == "eigen":
        return eigen_factor(op, k)
    raise InputError(f"preconditioner={kind!r} is not known; choose one of {PRECONDITIONERS}")


def orthonormalize(A: np.ndarray, max_passes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``A = Q R`` with ``Q`` orthonormal to machine precision, in place, by shifted
    Cholesky QR repeated until ``|QᵀQ - I| <= 1e-13`` (Fukaya et al., "shifted CholeskyQR").
    When ``A`` is rank-deficient, so that a Cholesky factorisation fails, Householder QR
    (``R`` then singular; ``Q`` a new array).

    Parameters
    ----------
    A : ndarray, shape (n, k), Fortran-ordered
        Overwritten with ``Q``.

    Returns
    -------
    Q : ndarray, shape (n, k)
        ``A`` itself (a new array after the Householder fallback).
    R : ndarray, shape (k, k), upper triangular
    """
    n, k = A.shape
    R = np.eye(k)
    for t in range(max_passes):
        G = A.T @ A
        err = np.abs(G - np.eye(k)).max()
        if t > 0 and err <= 1e-13:
            break
        if t == 0:  # the shift makes the first factorisation safe for any condition number
            G[np.diag_indices(k)] += 11 * (n * k + k * (k + 1)) * np.finfo(float).eps * \
                np.trace(G)
        try:
            Rt = sla.cholesky(G, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            # rank-deficient A (e.g. zero rows of an eigen factor with k > rank K): its
            # columns cannot all be made orthonormal by scaling; Householder QR gives an
            # orthonormal Q and a singular R
            log.info("orthonormalisation: the preconditioner factor is rank-deficient; "
                     "using Householder QR")
            Q, Rh = sla.qr(A, mode="economic", overwrite_a=True, check_finite=False)
            return np.asfortranarray(Q), Rh @ R
        A = sla.blas.dtrsm(1.0, Rt, A, side=1, lower=0, overwrite_b=1)
        R = Rt @ R
    else:
        log.warning("orthonormalisation of the preconditioner factor stopped at "
                    "|QᵀQ - I| = %.2g", err)
    return A, R


class WoodburyPreconditioner:
    """``P⁻¹`` for ``P = L Lᵀ + λ I`` by the Woodbury identity.

    ``method="cholesky"`` (default) applies ``P⁻¹ v = (v - L (λ I + LᵀL)⁻¹ Lᵀ v) / λ`` with one
    Cholesky factor of the ``k × k`` matrix: ``O(k² n)`` to build, ``Lᵀ`` is not copied.
    For λ ≪ |L|² the cancellation makes ``P⁻¹`` accurate only to ~``eps |L|² / λ`` in the
    range of ``L``; CG barely notices (rMD17 ethanol, λ = 1e-10: 164 vs 163 iterations at
    200 frames, k = 1134; 810 vs 734 at 30 frames, k = 150).  ``method="qr"`` is the exact
    form: with ``L = Q R`` (``Q`` orthonormal to machine precision, :func:`orthonormalize`)
    and ``R Rᵀ = W diag(s) Wᵀ``,
    ``P⁻¹ v = v / λ + Q W diag(1 / (s + λ) - 1 / λ) Wᵀ Qᵀ v``; it costs about five times
    as much to build.

    Parameters
    ----------
    factor : LowRank
    lam : float
        The ridge parameter λ > 0 of the system (:class:`InputError` otherwise).
    method : {"cholesky", "qr"}
    overwrite : bool
        ``method="qr"`` only: reuse ``factor.Lt``'s memory for ``Q`` (the factor is
        destroyed); saves ``8 k n`` bytes.
    """

    def __init__(self, factor: LowRank, lam: float, *, method: str = "cholesky",
                 overwrite: bool = False):
        if not (isinstance(lam, (int, float, np.number)) and np.isfinite(lam) and lam > 0):
            raise InputError(f"lam={lam!r} is not allowed; P = L Lᵀ + λI is applied with 1/λ, "
                             "so the ridge parameter must be finite and > 0 (sGDML uses "
                             "1e-10)")
        self.lam, self.method = float(lam), method
        if method == "cholesky":
            self.Qt = factor.Lt
            G = factor.Lt @ factor.Lt.T
            G[np.diag_indices_from(G)] += self.lam
            self.R = _cho_upper(G, "λI + LᵀL of the Woodbury preconditioner")
        elif method == "qr":
            A = factor.Lt.T if overwrite else factor.Lt.T.copy(order="F")  # (n, k), Fortran
            Q, R = orthonormalize(A)
            self.Qt = Q.T  # (k, n), C-contiguous view
            s, self.W = np.linalg.eigh(R @ R.T)
            self._scale = 1.0 / (np.maximum(s, 0.0) + self.lam) - 1.0 / self.lam
        else:
            raise InputError(f"Woodbury method={method!r} is not known; choose 'cholesky' or "
                             "'qr'")

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """``P⁻¹ v`` for ``v`` of shape (n,)."""
        if self.method == "cholesky":
            w = sla.solve_triangular(self.R, self.Qt @ v, trans="T", check_finite=False)
            w = sla.solve_triangular(self.R, w, check_finite=False)
            return (v - self.Qt.T @ w) / self.lam
        c = self.W @ (self._scale * (self.W.T @ (self.Qt @ v)))
        return v / self.lam + self.Qt.T @ c
