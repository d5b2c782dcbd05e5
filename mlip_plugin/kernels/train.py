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
from .rule import calibrate_rule_of_thumb, rule_of_thumb_k
from .solve import SINGLE_THREAD_ORDER, analytic_solve, estimate_memory, pcg
from .symmetry import TooManyPermutations, check_permutations, find_permutations

__all__ = ["TrainSettings", "train_gdml", "SigmaScan", "select_sigma", "SOLVERS",
           "K_CHOICES", "choose_rank"]

log = logging.getLogger(__name__)

SOLVERS = ("auto", "analytic", "pcg")
#: How :func:`train_gdml` may choose the preconditioner rank (``TrainSettings.k``).
K_CHOICES = ("rule", "calibrated", "cost")


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
    k : int or {"rule", "calibrated", "cost"}, optional
        Preconditioner rank, or how to choose it: ``"rule"`` (the default, also for
        ``None``): the paper's rule of thumb :func:`rule_of_thumb_k` with ``m``, ``k_min``;
        ``"calibrated"``: the same formula with the iteration law fitted by
        :func:`calibrate_rule_of_thumb` on ``calib_frames`` training frames and on twice as
        many (``(m, k_min)`` and the growth with the system size);
        ``"cost"``: the rank minimising the cost model measured by that calibration
        (:meth:`RuleFit.k_cost`).  The choice is logged and kept in
        ``TrainingRecord.k_choice``.
    m, k_min : float
        Rule-of-thumb parameters of ``k="rule"``.
    calib_frames : int
        Frames of the calibration subset (``k="calibrated"`` or ``"cost"``); a second subset
        of twice as many (at most half the training frames; none when that is below 1.5 times
        ``calib_frames``) measures how the iterations grow with the system size.  The
        calibration runs (incomplete-Cholesky PCG, whatever ``preconditioner`` is) use
        ``lam`` and ``seed`` of these settings.
    calib_tol : float
        PCG tolerance of the calibration runs (default 1e-4).  Looser than ``tol`` by
        default because at ``tol=1e-8``, ``lam=1e-10`` the runs with the small ranks do not
        converge within ``n_sub`` iterations (rMD17 ethanol, 50 frames: only one of four
        did), and the fit needs two.  The fitted law then counts iterations to
        ``calib_tol``; a tighter training ``tol`` needs more, whose optimal rank is larger:
        set ``calib_tol=tol`` where those runs converge.
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
    perms : "auto", None or array_like of int, shape (n_perms, n_atoms)
        Permutational symmetries of the symmetrised kernel (as sGDML, whose default is
        symmetric too): ``"auto"`` (the default) the automorphisms of the covalent bond graph
        of the first training frame (:func:`.symmetry.find_permutations`; with more than
        :data:`.symmetry.MAX_PERMUTATIONS` of them a warning and no symmetrisation);
        ``None`` none; or an explicit group of permutations (checked by
        :func:`.symmetry.check_permutations`).  Every kernel product costs ``n_perms`` times
        more; the accuracy per training frame improves (rMD17 ethanol, 1000 frames, 12
        permutations: test force MAE 0.35 instead of 0.83 kcal/mol/Å).
    """

    sigma: float = 20.0
    lam: float = 1e-10
    solver: str = "auto"
    preconditioner: str = "cholesky"
    woodbury: str = "cholesky"
    k: int | str | None = None
    m: float = 1.0
    k_min: float = 100.0
    calib_frames: int = 50
    calib_tol: float = 1e-4
    tol: float = 1e-8
    maxiter: int | None = None
    max_memory: float = 4e9
    single_thread_order: int = SINGLE_THREAD_ORDER
    seed: int = 0
    perms: object = "auto"

    def check(self) -> TrainSettings:
        """Validate; return self.  :class:`InputError` names the bad setting."""
        check_sigma(self.sigma)
        for name, example in (("lam", 1e-10), ("tol", 1e-4), ("calib_tol", 1e-2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise InputError(f"{name}={value!r} is not a number; give a float such as "
                                 f"{example!r}")
        if self.maxiter is not None and (isinstance(self.maxiter, bool) or not isinstance(
                self.maxiter, (int, np.integer)) or self.maxiter < 1):
            raise InputError(f"maxiter={self.maxiter!r} is not allowed; give an integer >= 1 "
                             "or None (PCG's default bound)")
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
        for name in ("tol", "calib_tol"):
            if not (0 < getattr(self, name) < 1):
                raise InputError(f"{name}={getattr(self, name)!r} must lie in (0, 1)")
        if isinstance(self.k, str) and self.k not in K_CHOICES:
            raise InputError(f"k={self.k!r} is not known; give an integer rank or one of "
                             f"{K_CHOICES} (default 'rule', the paper's rule of thumb)")
        if isinstance(self.k, (bool, float)) or not isinstance(self.k, (int, np.integer, str,
                                                                         type(None))):
            raise InputError(f"k={self.k!r} is not allowed; give an integer rank >= 1 or one "
                             f"of {K_CHOICES}")
        if (isinstance(self.calib_frames, bool) or not isinstance(self.calib_frames, int)
                or self.calib_frames < 2):
            raise InputError(f"calib_frames={self.calib_frames!r} is not allowed; the "
                             "calibration subset needs an integer >= 2 frames (default 50)")
        if isinstance(self.perms, str) and self.perms != "auto":
            raise InputError(f"perms={self.perms!r} is not known; give None, 'auto' or an "
                             "array of permutations (n_perms, n_atoms)")
        return self

    def permutations(self, R: np.ndarray, z: np.ndarray) -> np.ndarray | None:
        """The checked permutation group for positions ``R`` and atoms ``z`` (``None``:
        no symmetrisation)."""
        if self.perms is None:
            return None
        if isinstance(self.perms, str):
            try:
                return find_permutations(R, z)
            except TooManyPermutations as err:
                warnings.warn(f"perms='auto': {err}; training without permutational "
                              "symmetries", UserWarning, stacklevel=3)
                return None
        return check_permutations(self.perms, z)


def _choose_solver(op: GDMLOperator, s: TrainSettings) -> str:
    if s.solver != "auto":
        return s.solver
    need = estimate_memory(op, "analytic")
    solver = "analytic" if need <= s.max_memory else "pcg"
    log.info("solver='auto': analytic needs ~%.2f GB, max_memory %.2f GB -> %s", need / 1e9,
             s.max_memory / 1e9, solver)
    return solver


def choose_rank(R: np.ndarray, F: np.ndarray, s: TrainSettings, n: int,
                perms: np.ndarray | None = None) -> tuple[int, str]:
    """The preconditioner rank of settings ``s`` for training data ``R, F`` (checked arrays,
    shape (n_frames, n_atoms, 3)) of order ``n``, and how it was chosen: ``"given"``,
    ``"rule"``, ``"calibrated"`` or ``"cost"`` (see ``TrainSettings.k``).  Logged.  ``perms``:
    the permutation group of the kernel, for the calibration runs."""
    if s.k is not None and not isinstance(s.k, str):
        return check_rank(s.k, n), "given"
    choice = s.k or "rule"
    if choice == "rule":
        k = rule_of_thumb_k(n, s.m, s.k_min)
    else:
        fit = calibrate_rule_of_thumb(R, F, s.sigma, s.lam, n_frames=s.calib_frames,
                                      tol=s.calib_tol, seed=s.seed, perms=perms)
        k = fit.k(n) if choice == "calibrated" else fit.k_cost(n)
    log.info("preconditioner rank k=%d (k=%r: %s)", k, choice, {
        "rule": f"paper's rule of thumb, m={s.m:g}, k_min={s.k_min:g}",
        "calibrated": "paper's rule of thumb, calibrated (m, k_min)",
        "cost": "minimum of the measured cost model"}[choice])
    return k, choice


def _solve_pcg(op, y, s: TrainSettings, k: int, choice: str
               ) -> tuple[np.ndarray, TrainingRecord]:
    start = time.perf_counter()
    factor = build_factor(op, s.preconditioner, k, np.random.default_rng(s.seed))
    inducing = factor.inducing.copy()
    P = WoodburyPreconditioner(factor, s.lam, method=s.woodbury, overwrite=True)
    t_pre = time.perf_counter() - start
    start = time.perf_counter()
    res = pcg(lambda v: op.matvec(v) + s.lam * v, y, P, tol=s.tol, maxiter=s.maxiter)
    record = TrainingRecord(
        sigma=s.sigma, lam=s.lam, solver="pcg", preconditioner=s.preconditioner,
        k=factor.k, k_choice=choice, inducing=inducing, n_iter=res.n_iter,
        residuals=res.residuals, converged=res.converged, time_preconditioner=t_pre,
        time_solve=time.perf_counter() - start,
        peak_memory_estimate=estimate_memory(op, "pcg", factor.k), perms=_perms(op))
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
    if F is None:
        raise InputError("gradient-domain training fits forces, and none were given (F is "
                         "None); pass the forces of every frame")
    if E is None:
        log.info("no energies given: the model's energy constant e0 is 0, so its energies "
                 "are defined up to a constant")
    perms = s.permutations(R, z)
    op = GDMLOperator(R, s.sigma, perms)
    if s.k is not None and not isinstance(s.k, str):
        check_rank(s.k, op.n)  # also for the analytic solver, which does not use it
    y = F.reshape(-1)
    if _choose_solver(op, s) == "analytic":
        alpha, jitter, seconds = analytic_solve(op, y, s.lam,
                                                single_thread_order=s.single_thread_order)
        record = TrainingRecord(sigma=s.sigma, lam=s.lam, solver="analytic",
                                time_solve=seconds, jitter=jitter,
                                peak_memory_estimate=estimate_memory(op, "analytic"),
                                perms=_perms(op))
    else:
        alpha, record = _solve_pcg(op, y, s, *choose_rank(R, F, s, op.n, perms))
    return _finish(op, R, z, E, alpha, record)


def _perms(op: GDMLOperator) -> list:
    """The permutations of a symmetrised operator for the record (empty: plain kernel)."""
    return op.perms.tolist() if op.n_perms > 1 else []


def _finish(op: GDMLOperator, R, z, E, alpha, record) -> GDMLModel:
    alpha = alpha.reshape(op.n_frames, op.n_atoms, 3)
    V = op.mol.jvp(alpha)
    # the symmetrised model is the plain one on the permuted copies of the training frames
    model = GDMLModel(z=z, x_train=op.permuted_copies(op.mol.x),
                      v_train=op.permuted_copies(V), alpha=alpha,
                      sigma=op.kernel.sigma, e0=0.0, record=record)
    if E is None:
        return model
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
