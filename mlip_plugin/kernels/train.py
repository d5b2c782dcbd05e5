"""Training a GDML force field: settings, solver choice, σ selection.

The fit reads as: check the data → build the matrix-free kernel → choose the solver from a
memory estimate → solve ``(K + λ I) α = F`` → integrate the energy constant.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .descriptor import check_arrays
from .gdml import GDMLOperator, check_sigma
from .model import GDMLModel, TrainingRecord
from .preconditioners import PRECONDITIONERS, WoodburyPreconditioner, build_factor, check_rank
from .rule import rule_of_thumb_k
from .solve import SINGLE_THREAD_ORDER, analytic_solve, estimate_memory, pcg

__all__ = ["TrainSettings", "train_gdml", "SigmaScan", "select_sigma", "SOLVERS"]

log = logging.getLogger(__name__)

SOLVERS = ("auto", "analytic", "pcg")


@dataclass(frozen=True)
class TrainSettings:
    """Settings of :func:`train_gdml`.

    Attributes
    ----------
    sigma : float
        Kernel length scale (> 0; 1/Å, the descriptor's unit).
    lam : float
        Ridge parameter λ (> 0).
    solver : {"auto", "analytic", "pcg"}
        ``"auto"`` takes the analytic solver when its estimated memory (``8 n²`` bytes and
        more) fits in ``max_memory``, else PCG; the choice is logged.
    preconditioner : {"cholesky", "leverage", "uniform", "eigen"}
    woodbury : {"cholesky", "qr"}
        How the preconditioner is applied (see :class:`WoodburyPreconditioner`).
    k : int, optional
        Preconditioner rank; default the rule of thumb with ``m``, ``k_min``.
    m, k_min : float
        Rule-of-thumb parameters.
    tol : float
        PCG stops at relative residual ``|F - (K + λI) α| / |F| <= tol``.
    maxiter : int, optional
        PCG iteration limit (default ``n``).
    max_memory : float
        Bytes the solver may use (for ``solver="auto"``).
    single_thread_order : int
        Dense factorisations of at least this order use one BLAS thread.
    seed : int
        Seed of the column sampling (uniform and leverage preconditioners).
    """

    sigma: float = 20.0
    lam: float = 1e-10
    solver: str = "auto"
    preconditioner: str = "cholesky"
    woodbury: str = "cholesky"
    k: int | None = None
    m: float = 1.0
    k_min: float = 100.0
    tol: float = 1e-8
    maxiter: int | None = None
    max_memory: float = 4e9
    single_thread_order: int = SINGLE_THREAD_ORDER
    seed: int = 0

    def check(self) -> TrainSettings:
        """Validate; return self.  :class:`InputError` names the bad setting."""
        check_sigma(self.sigma)
        if not (np.isfinite(self.lam) and self.lam > 0):
            raise InputError(f"lam={self.lam!r} is not allowed; the ridge parameter must be "
                             "finite and > 0 (sGDML uses 1e-10)")
        if self.solver not in SOLVERS:
            raise InputError(f"solver={self.solver!r} is not known; choose one of {SOLVERS}")
        if self.preconditioner not in PRECONDITIONERS:
            raise InputError(f"preconditioner={self.preconditioner!r} is not known; choose "
                             f"one of {PRECONDITIONERS}")
        if self.woodbury not in ("cholesky", "qr"):
            raise InputError(f"woodbury={self.woodbury!r} is not known; choose 'cholesky' or "
                             "'qr'")
        if not (0 < self.tol < 1):
            raise InputError(f"tol={self.tol!r} must lie in (0, 1)")
        return self


def _choose_solver(op: GDMLOperator, s: TrainSettings, k: int) -> str:
    if s.solver != "auto":
        return s.solver
    need = estimate_memory(op, "analytic")
    solver = "analytic" if need <= s.max_memory else "pcg"
    log.info("solver='auto': analytic needs ~%.2f GB, max_memory %.2f GB -> %s (PCG with k=%d "
             "needs ~%.2f GB)", need / 1e9, s.max_memory / 1e9, solver, k,
             estimate_memory(op, "pcg", k) / 1e9)
    return solver


def _solve_pcg(op, y, s: TrainSettings, k: int) -> tuple[np.ndarray, TrainingRecord]:
    start = time.perf_counter()
    factor = build_factor(op, s.preconditioner, k, np.random.default_rng(s.seed))
    inducing = factor.inducing.copy()
    P = WoodburyPreconditioner(factor, s.lam, method=s.woodbury, overwrite=True)
    t_pre = time.perf_counter() - start
    start = time.perf_counter()
    res = pcg(lambda v: op.matvec(v) + s.lam * v, y, P, tol=s.tol, maxiter=s.maxiter)
    record = TrainingRecord(
        sigma=s.sigma, lam=s.lam, solver="pcg", preconditioner=s.preconditioner,
        k=factor.k, inducing=inducing, n_iter=res.n_iter, residuals=res.residuals,
        converged=res.converged, time_preconditioner=t_pre,
        time_solve=time.perf_counter() - start,
        peak_memory_estimate=estimate_memory(op, "pcg", factor.k))
    log.info("PCG (%s, k=%d): %d iterations, residual %.3g, preconditioner %.2f s, solve "
             "%.2f s", s.preconditioner, factor.k, res.n_iter, res.residuals[-1], t_pre,
             record.time_solve)
    return res.x, record


def train_gdml(R, z, E, F, settings: TrainSettings | None = None) -> GDMLModel:
    """Train a GDML force field on frames of one molecule.

    Parameters
    ----------
    R : array_like, shape (n_train, n_atoms, 3)
        Positions in Å.
    z : array_like, shape (n_atoms,)
        Atomic numbers (the same order in every frame).
    E : array_like, shape (n_train,)
        Energies in eV (only the integration constant uses them).
    F : array_like, shape (n_train, n_atoms, 3)
        Forces in eV/Å.
    settings : TrainSettings, optional

    Returns
    -------
    GDMLModel
        With a :class:`TrainingRecord` of the solve.
    """
    s = (settings or TrainSettings()).check()
    R, z, E, F = check_arrays(R, z, E, F)
    op = GDMLOperator(R, s.sigma)
    k = check_rank(s.k, op.n) if s.k is not None else rule_of_thumb_k(op.n, s.m, s.k_min)
    y = F.reshape(-1)
    if _choose_solver(op, s, k) == "analytic":
        alpha, jitter, seconds = analytic_solve(op, y, s.lam,
                                                single_thread_order=s.single_thread_order)
        record = TrainingRecord(sigma=s.sigma, lam=s.lam, solver="analytic",
                                time_solve=seconds, jitter=jitter,
                                peak_memory_estimate=estimate_memory(op, "analytic"))
    else:
        alpha, record = _solve_pcg(op, y, s, k)
    return _finish(op, R, z, E, alpha, record)


def _finish(op: GDMLOperator, R, z, E, alpha, record) -> GDMLModel:
    alpha = alpha.reshape(op.n_frames, op.n_atoms, 3)
    V = op.mol.jvp(alpha)
    model = GDMLModel(z=z, x_train=op.mol.x.copy(), v_train=V, alpha=alpha,
                      sigma=op.kernel.sigma, e0=0.0, record=record)
    e_model = model.predict(R)[0]
    return replace(model, e0=float(np.mean(E - e_model)))


@dataclass(frozen=True)
class SigmaScan:
    """Result of :func:`select_sigma`: validation force MAE (eV/Å) for each σ."""

    sigmas: np.ndarray
    force_mae: np.ndarray
    best_sigma: float
    model: GDMLModel


def select_sigma(R, z, E, F, R_val, F_val, sigmas, settings: TrainSettings | None = None
                 ) -> SigmaScan:
    """Train one model per σ in ``sigmas`` and keep the lowest validation force MAE.

    Warns (``UserWarning``) when the best σ lies at an edge of the grid, where the optimum
    may lie outside it.
    """
    sigmas = np.sort(np.asarray(sigmas, dtype=float).reshape(-1))
    if len(sigmas) == 0:
        raise InputError("sigmas is empty; give a grid of length scales, e.g. range(10, 110, 10)")
    s = settings or TrainSettings()
    R_val, _, _, F_val = check_arrays(R_val, z, None, F_val)
    maes, best = [], None
    for sigma in sigmas:
        model = train_gdml(R, z, E, F, replace(s, sigma=float(sigma)))
        mae = float(np.abs(model.predict(R_val)[1] - F_val).mean())
        log.info("sigma=%g: validation force MAE %.4g eV/Å", sigma, mae)
        if best is None or mae < min(maes):
            best = model
        maes.append(mae)
    i = int(np.argmin(maes))
    if len(sigmas) > 1 and i in (0, len(sigmas) - 1):
        warnings.warn(f"best sigma={sigmas[i]:g} lies at the edge of the grid "
                      f"[{sigmas[0]:g}, {sigmas[-1]:g}]; extend the grid beyond it",
                      UserWarning, stacklevel=2)
    return SigmaScan(sigmas=sigmas, force_mae=np.array(maes), best_sigma=float(sigmas[i]),
                     model=best)
