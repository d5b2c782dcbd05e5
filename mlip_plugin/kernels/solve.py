"""Solvers for ``(K + λ I) α = y``: preconditioned conjugate gradient and the analytic
(dense Cholesky) reference, with the guard against large multi-threaded factorisations.

The OpenBLAS bundled with numpy/scipy on some machines crashes (or reports a false "not
positive definite") in a multi-threaded dense Cholesky of order ≳ 18,000.
:func:`analytic_solve` therefore factorises matrices of order ``>= single_thread_order``
with one BLAS thread (``threadpoolctl``), logs that it did, and retries with logged jitter
if the factorisation still fails.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_limits

from ..errors import ConvergenceWarning, FitError
from .gdml import BLOCK_BYTES, GDMLOperator

__all__ = ["CGResult", "pcg", "analytic_solve", "SINGLE_THREAD_ORDER", "blas_guard",
           "estimate_memory"]

log = logging.getLogger(__name__)

#: Dense factorisations of at least this order run with one BLAS thread (13,500 was seen to
#: work and 18,000 to crash with two threads; the margin keeps other machines safe).
SINGLE_THREAD_ORDER = 12_000

#: :func:`pcg` gives up after this many restarts in a row that did not lower the true
#: residual (near the attainable accuracy it scatters from restart to restart).
MAX_STALLED_RESTARTS = 3


@dataclass(frozen=True)
class CGResult:
    """Outcome of :func:`pcg`.

    Attributes
    ----------
    x : ndarray, shape (n,)
        The last iterate.
    n_iter : int
    residuals : ndarray, shape (n_iter + 1,)
        ``|r_t| / |y|`` for t = 0 … n_iter: the recursively updated residual, replaced by the
        true one ``|y - A x_t| / |y|`` where it was checked (the last entry when it reached
        ``tol``).
    converged : bool
    """

    x: np.ndarray
    n_iter: int
    residuals: np.ndarray
    converged: bool


def pcg(matvec: Callable[[np.ndarray], np.ndarray], y: np.ndarray,
        precond: Callable[[np.ndarray], np.ndarray] | None = None, *, tol: float = 1e-8,
        maxiter: int | None = None) -> CGResult:
    """Preconditioned conjugate gradient for the SPD system ``A x = y``.

    Parameters
    ----------
    matvec : callable
        ``v ↦ A v`` for ``v`` of shape (n,).
    y : ndarray, shape (n,)
    precond : callable, optional
        ``v ↦ P⁻¹ v`` (identity when not given).
    tol : float
        Stop when the true relative residual ``|y - A x| / |y| <= tol`` (2-norm).  The
        iteration updates the residual recursively, which in floating point drifts from
        ``y - A x`` (by up to 100× at ``tol=1e-10`` on rMD17 ethanol); so when the recursive
        residual reaches ``tol``, ``y - A x`` is computed (one more product) and, if it is
        still above ``tol``, CG restarts from it.  It stops without convergence when
        :data:`MAX_STALLED_RESTARTS` restarts in a row did not lower the lowest true residual
        (the attainable accuracy in floating point is reached).
    maxiter : int, optional
        Default ``n``.  Stopping there, or at the attainable accuracy above ``tol``, warns
        with :class:`ConvergenceWarning`.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    maxiter = n if maxiter is None else maxiter
    precond = precond if precond is not None else (lambda v: v)
    ynorm = np.linalg.norm(y) or 1.0
    x = np.zeros(n)
    r = y.copy()
    z = precond(r)
    p = z.copy()
    rz = r @ z
    hist = [np.linalg.norm(r) / ynorm]
    best, stalled = np.inf, 0  # lowest true residual checked; checks since it fell
    while np.isfinite(hist[-1]):
        if hist[-1] <= tol and len(hist) > 1:  # check the recursive residual against y - A x
            r = y - matvec(x)
            hist[-1] = np.linalg.norm(r) / ynorm
            best, stalled = (hist[-1], 0) if hist[-1] < best else (best, stalled + 1)
            if hist[-1] <= tol or stalled == MAX_STALLED_RESTARTS:
                break
            z = precond(r)
            p = z.copy()
            rz = r @ z
        if hist[-1] <= tol or len(hist) > maxiter:
            break
        Ap = matvec(p)
        step = rz / (p @ Ap)
        x += step * p
        r -= step * Ap
        hist.append(np.linalg.norm(r) / ynorm)
        z = precond(r)
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    converged = hist[-1] <= tol
    if not converged:
        why = (f"{stalled} restarts from the true residual did not lower it (the attainable "
               "accuracy in floating point); loosen tol or raise lam"
               if stalled == MAX_STALLED_RESTARTS else
               "raise maxiter or the preconditioner rank k")
        warnings.warn(f"PCG stopped after {len(hist) - 1} iterations at relative residual "
                      f"{hist[-1]:.3g} > tol={tol:.3g}; {why}", ConvergenceWarning,
                      stacklevel=2)
    return CGResult(x=x, n_iter=len(hist) - 1, residuals=np.array(hist), converged=converged)


def blas_guard(n: int, single_thread_order: int = SINGLE_THREAD_ORDER):
    """Context manager for a dense factorisation of order ``n``: one BLAS thread when
    ``n >= single_thread_order`` (logged), else no change."""
    if n >= single_thread_order:
        log.info("dense factorisation of order %d >= %d: limiting BLAS to one thread "
                 "(multi-threaded OpenBLAS Cholesky is unreliable at this size)", n,
                 single_thread_order)
        return threadpool_limits(limits=1, user_api="blas")
    return nullcontext()


def analytic_solve(op: GDMLOperator, y: np.ndarray, lam: float, *,
                   single_thread_order: int = SINGLE_THREAD_ORDER,
                   max_jitter_steps: int = 6) -> tuple[np.ndarray, float, float]:
    """Solve ``(K + λ I) α = y`` by a dense Cholesky factorisation.

    The matrix is assembled in place (``8 n²`` bytes) and factorised in place; when the
    factorisation fails, it is re-assembled with a jitter ``10^t · 1e-12 · max diag(K)``
    added to λ (logged as a warning), ``t = 0 … max_jitter_steps - 1``.

    Returns
    -------
    alpha : ndarray, shape (n,)
    jitter : float
        The jitter that was needed (0 when none).
    seconds : float
        Wall time of the assembly, factorisation and solve.
    """
    start = time.perf_counter()
    scale = float(op.diagonal().max())
    jitter = 0.0
    for attempt in range(max_jitter_steps + 1):
        K = op.dense(shift=lam + jitter)
        try:
            with blas_guard(op.n, single_thread_order):
                factor = sla.cho_factor(K.T, lower=False, overwrite_a=True,
                                        check_finite=False)
            if not np.all(np.isfinite(np.diag(factor[0]))):
                raise np.linalg.LinAlgError("non-finite Cholesky factor")
            alpha = sla.cho_solve(factor, y, check_finite=False)
            return alpha, jitter, time.perf_counter() - start
        except np.linalg.LinAlgError as err:
            del K
            if attempt == max_jitter_steps:
                raise FitError(f"dense Cholesky of K + λI (n={op.n}) failed even with jitter "
                               f"{jitter:.3g}: {err}; raise lam or use solver='pcg'") from err
            jitter = scale * 1e-12 * 10.0**attempt
            log.warning("dense Cholesky of K + λI (n=%d) failed (%s); retrying with jitter "
                        "%.3g added to the diagonal", op.n, err, jitter)
    raise AssertionError("unreachable")


def estimate_memory(op: GDMLOperator, solver: str, k: int = 0) -> int:
    """Estimated peak bytes of ``solver`` ("analytic" or "pcg" with rank ``k``): the
    operator's arrays (the stacked Jacobians ``(n, D)`` the largest), a few vectors, one block
    of scratch, and the dense matrix or the preconditioner."""
    n = op.n
    base = 8 * (8 * n + op.Jt.size + 4 * op.mol.x.size + op.mol.diff.size) + BLOCK_BYTES
    if solver == "analytic":
        return base + 8 * n * n
    # Lᵀ (k × n), candidate residual rows (128 × n) and their product, λI + LᵀL (k × k).
    return base + 8 * (k * n + 256 * n + 2 * k * k)
