"""The rule of thumb for the preconditioner rank and its calibration.

Blücher, Müller & Chmiela (2023) balance the cost of the preconditioner (``O(k² n)``) against
that of CG (iterations × ``O(n²)``).  Modelling the iterations as ``t(k) = n (k_min / k)^m``
and minimising ``k² n + t(k) n²`` over ``k`` gives

    k* = (k_min^m · m · n² / 2)^(1 / (2 + m)),

with the defaults ``m = 1``, ``k_min = 100``.  :func:`calibrate_rule_of_thumb` fits ``(m,
k_min)`` to iteration counts of short PCG runs on a subset of the training data.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceWarning, InputError
from .gdml import GDMLOperator
from .preconditioners import WoodburyPreconditioner, incomplete_cholesky
from .solve import pcg

__all__ = ["rule_of_thumb_k", "RuleFit", "calibrate_rule_of_thumb"]

log = logging.getLogger(__name__)


def rule_of_thumb_k(n: int, m: float = 1.0, k_min: float = 100.0) -> int:
    """Preconditioner rank ``k = (k_min^m · m · n² / 2)^(1/(2+m))``, clipped to ``[1, n]``.

    Parameters
    ----------
    n : int
        Order of the system (``3 · n_atoms · n_train``).
    m, k_min : float
        Convergence exponent and scale (> 0); the paper's Table I gives e.g. ethanol
        (0.87, 10), uracil (1.07, 32).
    """
    if not (np.isfinite(m) and m > 0 and np.isfinite(k_min) and k_min > 0):
        raise InputError(f"rule-of-thumb parameters m={m!r}, k_min={k_min!r} are not allowed; "
                         "both must be finite and > 0 (defaults m=1, k_min=100)")
    if n < 1:
        raise InputError(f"system size n={n!r} must be >= 1")
    k = (k_min**m * m * float(n) ** 2 / 2.0) ** (1.0 / (2.0 + m))
    return int(min(n, max(1, round(k))))


@dataclass(frozen=True)
class RuleFit:
    """Result of :func:`calibrate_rule_of_thumb`.

    Attributes
    ----------
    m, k_min : float
        Fitted parameters of ``t(k) = n_sub (k_min / k)^m``.
    ks, iterations : ndarray of int
        Ranks tried and the PCG iterations each needed.
    n_sub : int
        Order of the subset system.
    """

    m: float
    k_min: float
    ks: np.ndarray
    iterations: np.ndarray
    n_sub: int

    def k(self, n: int) -> int:
        """Rule-of-thumb rank for a system of order ``n`` with the fitted parameters."""
        return rule_of_thumb_k(n, self.m, self.k_min)


def _subset_iterations(op: GDMLOperator, y: np.ndarray, lam: float, ks: list[int],
                       tol: float) -> tuple[list[int], list[int]]:
    """PCG iterations (incomplete Cholesky of rank k) for each k; the runs that stop at
    ``maxiter = n`` without converging are left out (logged): their counts are only lower
    bounds and would flatten the fitted slope."""
    iters, kept = [], []
    for k in ks:
        P = WoodburyPreconditioner(incomplete_cholesky(op, k), lam)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = pcg(lambda v: op.matvec(v) + lam * v, y, P, tol=tol, maxiter=op.n)
        if res.converged:
            iters.append(max(res.n_iter, 1))
            kept.append(k)
        else:
            log.warning("rule-of-thumb calibration: k=%d did not converge within %d "
                        "iterations (residual %.3g > tol=%.3g); left out of the fit", k,
                        op.n, res.residuals[-1], tol)
    return iters, kept


def calibrate_rule_of_thumb(R: np.ndarray, F: np.ndarray, sigma: float, lam: float, *,
                            n_frames: int = 50, ks=None, tol: float = 1e-6,
                            seed: int = 0) -> RuleFit:
    """Fit ``(m, k_min)`` from short incomplete-Cholesky PCG runs on a subset.

    Parameters
    ----------
    R, F : ndarray, shape (n_frames, n_atoms, 3)
        Training positions (Å) and forces (eV/Å), already checked.
    sigma, lam : float
        Kernel length scale and ridge parameter of the full problem.
    n_frames : int
        Frames drawn (without replacement) for the subset.
    ks : sequence of int, optional
        Ranks to try (default: 4 values from ``n_sub/40`` to ``n_sub/5``, geometric).
    tol : float
        PCG tolerance of the short runs.

    Returns
    -------
    RuleFit
        Least-squares fit of ``log t = log n_sub + m log k_min - m log k``.
    """
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(len(R), size=min(n_frames, len(R)), replace=False))
    op = GDMLOperator(R[sub], sigma)
    y = F[sub].reshape(-1)
    if ks is None:
        ks = np.unique(np.geomspace(max(2, op.n // 40), max(3, op.n // 5), 4).astype(int))
    iters, ks = _subset_iterations(op, y, lam, [int(k) for k in ks], tol)
    if len(ks) < 2:
        raise InputError(f"calibration: fewer than two of the ranks converged within "
                         f"{op.n} PCG iterations (converged: ks={ks}, iterations={iters}); "
                         "pass larger ks, raise tol or lam, or use the default m=1, k_min=100")
    slope, intercept = np.polyfit(np.log(ks), np.log(iters), 1)
    m = -slope
    if not m > 0:
        raise InputError(f"calibration found iterations not decreasing with k (ks={ks}, "
                         f"iterations={iters}); use the default m=1, k_min=100 or a larger "
                         "subset (n_frames)")
    k_min = float(np.exp((intercept - np.log(op.n)) / m))
    log.info("rule-of-thumb calibration on %d frames: m=%.3g, k_min=%.3g (ks=%s, "
             "iterations=%s)", len(sub), m, k_min, ks, iters)
    return RuleFit(m=float(m), k_min=k_min, ks=np.asarray(ks), iterations=np.asarray(iters),
                   n_sub=op.n)
