"""The rule of thumb for the preconditioner rank and its calibration.

Blücher, Müller & Chmiela (2023) balance the cost of the preconditioner (``O(k² n)``) against
that of CG (iterations × ``O(n²)``).  Modelling the iterations as ``t(k) = n (k_min / k)^m``
and minimising ``k² n + t(k) n²`` over ``k`` gives

    k* = (k_min^m · m · n² / 2)^(1 / (2 + m)),

with the defaults ``m = 1``, ``k_min = 100``.  :func:`calibrate_rule_of_thumb` fits ``(m,
k_min)`` to iteration counts of short PCG runs on a subset of the training data, and from the
same runs the coefficients of the measured cost model of :mod:`.cost` (build, application and
kernel-vector product times): :meth:`RuleFit.k` is the paper's formula with the fitted
``(m, k_min)``, :meth:`RuleFit.k_cost` the rank minimising the measured cost model.

The paper's law has the iterations grow like ``n`` at a fixed rank.  The calibration also
runs on a second subset of twice the frames and fits the growth ``n^a`` with the slope
``m`` (``log t = a log n + c - m log k``): on rMD17 ethanol and uracil ``a ≈ 0.6``, and the
law of 50 + 100 frames predicts the iterations of 300 frames within 25 % where ``a = 1``
predicted 2.4-3.6× too many.  Both ranks use the law at the size of the full problem
(:meth:`RuleFit.k_min_at`); with one subset size only, ``a = 1``.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceWarning, InputError
from .cost import CostModel, check_power_law, fit_nonnegative
from .gdml import GDMLOperator
from .preconditioners import WoodburyPreconditioner, incomplete_cholesky
from .solve import pcg

__all__ = ["rule_of_thumb_k", "RuleFit", "calibrate_rule_of_thumb", "MAX_TIMING_FRAMES"]

log = logging.getLogger(__name__)

#: Kernel-vector products for the cost model are timed on at most this many frames.
MAX_TIMING_FRAMES = 2000


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
    n = check_power_law(n, m, k_min)
    k = (k_min**m * m * float(n) ** 2 / 2.0) ** (1.0 / (2.0 + m))
    return int(min(n, max(1, round(k))))


@dataclass(frozen=True)
class RuleFit:
    """Result of :func:`calibrate_rule_of_thumb`.

    Attributes
    ----------
    m, k_min : float
        Fitted iteration law at the subset's order: ``t(k) = n_sub (k_min / k)^m``.
    ks, iterations : ndarray of int
        Ranks tried and the PCG iterations each needed (converged runs, both subsets).
    n_sub : int
        Order of the (first) subset system.
    cost : CostModel, optional
        Timing coefficients fitted to the same runs (``None`` when not measured).
    n_exponent : float
        Growth ``a`` of the iterations with the order at a fixed rank, ``t ∝ n^a`` (1: the
        paper's law, also when only one subset size was run).
    sizes : ndarray of int, optional
        Order of the system of each run (``None``: all ``n_sub``).
    """

    m: float
    k_min: float
    ks: np.ndarray
    iterations: np.ndarray
    n_sub: int
    cost: CostModel | None = None
    n_exponent: float = 1.0
    sizes: np.ndarray | None = None

    def k_min_at(self, n: int) -> float:
        """``k_min`` of the law at order ``n``: ``t(k) = n (k_min_at(n) / k)^m`` equals
        ``n_sub (k_min / k)^m (n / n_sub)^a``."""
        n = check_power_law(n, self.m, self.k_min)
        return self.k_min * (n / self.n_sub) ** ((self.n_exponent - 1.0) / self.m)

    def iterations_at(self, k, n: int) -> np.ndarray:
        """Iterations the fitted law predicts at rank(s) ``k`` for a system of order ``n``."""
        return n * (self.k_min_at(n) / np.asarray(k, dtype=float)) ** self.m

    def k(self, n: int) -> int:
        """The paper's rule-of-thumb rank for a system of order ``n`` with the fitted
        law: :func:`rule_of_thumb_k` with ``m`` and :meth:`k_min_at` ``(n)``."""
        return rule_of_thumb_k(n, self.m, self.k_min_at(n))

    def k_cost(self, n: int) -> int:
        """The rank in ``[1, n]`` minimising the measured time to solution
        (:meth:`CostModel.k`) with the fitted law at order ``n``."""
        if self.cost is None:
            raise InputError("this RuleFit has no timings (cost=None), so k_cost is not "
                             "defined; make it with calibrate_rule_of_thumb, or use k(n)")
        return self.cost.k(n, self.m, self.k_min_at(n))


@dataclass(frozen=True)
class _Runs:
    """What the short calibration runs measured (converged runs only)."""

    ks: list[int]
    iterations: list[int]
    build: list[float]  # seconds to build the preconditioner
    apply: list[float]  # seconds per iteration besides the product (precondition, update)
    product: float  # median seconds of one kernel-vector product, all runs


def _timed(fn, times: list):
    def wrapped(v):
        start = time.perf_counter()
        out = fn(v)
        times.append(time.perf_counter() - start)
        return out
    return wrapped


def _subset_runs(op: GDMLOperator, y: np.ndarray, lam: float, ks: list[int],
                 tol: float) -> _Runs:
    """PCG (incomplete Cholesky of rank k) for each k, timing the build, the whole CG loop and
    every kernel-vector product in it; the rest of the loop, per iteration, is the
    application of the preconditioner and the CG vector updates.  The runs that stop at
    ``maxiter = n`` without converging are left out (logged): their counts are only lower
    bounds and would flatten the fitted slope."""
    kept: dict[str, list] = {"ks": [], "iterations": [], "build": [], "apply": []}
    products: list[float] = []
    for k in ks:
        start = time.perf_counter()
        P = WoodburyPreconditioner(incomplete_cholesky(op, k), lam)
        build = time.perf_counter() - start
        mine: list[float] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            res = pcg(_timed(lambda v: op.matvec(v) + lam * v, mine), y, P, tol=tol,
                      maxiter=op.n)
            loop = time.perf_counter() - start
        products += mine
        if not res.converged:
            log.warning("rule-of-thumb calibration: k=%d did not converge within %d "
                        "iterations (residual %.3g > tol=%.3g); left out of the fit", k,
                        op.n, res.residuals[-1], tol)
            continue
        n_iter = max(res.n_iter, 1)
        for name, value in (("ks", k), ("iterations", n_iter), ("build", build),
                            ("apply", (loop - sum(mine)) / n_iter)):
            kept[name].append(value)
    return _Runs(**kept, product=float(np.median(products)))


def _product_times(R: np.ndarray, sigma: float, frames: list[int], reps: int = 5,
                   perms: np.ndarray | None = None) -> list[float]:
    """Median seconds of one kernel-vector product on the first ``M`` frames, for each M."""
    out = []
    for M in frames:
        op = GDMLOperator(R[:M], sigma, perms)
        v = np.random.default_rng(0).standard_normal(op.n)
        times: list[float] = []
        product = _timed(op.matvec, times)
        for _ in range(reps + 1):
            product(v)
        out.append(float(np.median(times[1:])))  # the first call warms the caches
    return out


def _fit_costs(subsets: list[tuple[GDMLOperator, _Runs]], R: np.ndarray, sigma: float,
               perms: np.ndarray | None = None) -> CostModel:
    """Least-squares fits (relative errors, non-negative coefficients) of the timings:
    build ``= n (t_build k² + t_rows k)`` and the rest of an iteration besides the product
    (preconditioner application and CG updates) ``= n (t_pc k + t_vec)`` over the runs of
    every subset, and product ``= t_mv1 n + t_mv2 n²`` over the subsets' runs and products
    timed at larger frame counts (up to all of ``R`` or :data:`MAX_TIMING_FRAMES`).  With one
    frame count only, the product is scaled as ``n²``."""
    n = np.concatenate([np.full(len(r.ks), op.n, dtype=float) for op, r in subsets])
    k = np.concatenate([np.asarray(r.ks, dtype=float) for _, r in subsets])
    build = np.concatenate([r.build for _, r in subsets])
    apply = np.concatenate([r.apply for _, r in subsets])
    floor = 1e-9  # s: keeps the relative weights finite for a timer reading of 0
    t_build, t_rows = fit_nonnegative(np.c_[k**2 * n, k * n], np.maximum(build, floor))
    t_pc, t_vec = fit_nonnegative(np.c_[k * n, n], np.maximum(apply, floor))
    largest = max((op for op, _ in subsets), key=lambda op: op.n)
    top = min(len(R), MAX_TIMING_FRAMES)
    frames = [M for M in np.unique(np.geomspace(largest.n_frames, top, 3).astype(int))
              if M > largest.n_frames]
    sizes = np.array([op.n for op, _ in subsets] + [M * largest.dim for M in frames],
                     dtype=float)
    t_mv = np.maximum([r.product for _, r in subsets]
                      + _product_times(R, sigma, frames, perms=perms), floor)
    if len(np.unique(sizes)) > 1:
        t_mv1, t_mv2 = fit_nonnegative(np.c_[sizes, sizes**2], t_mv)
    else:
        t_mv1, t_mv2 = 0.0, float(np.median(t_mv)) / sizes[0]**2
    log.info("cost-model timings: build %s s at ks=%s (n=%s); iteration besides the product "
             "%s s; products %s s at n=%s", np.round(build, 4).tolist(), k.astype(int).tolist(),
             n.astype(int).tolist(), np.round(apply, 6).tolist(), np.round(t_mv, 6).tolist(),
             sizes.astype(int).tolist())
    cost = CostModel(t_build=float(t_build), t_rows=float(t_rows), t_pc=float(t_pc),
                     t_vec=float(t_vec), t_mv1=float(t_mv1), t_mv2=float(t_mv2))
    log.info("cost-model fit: t_build=%.3g s/(k²n), t_rows=%.3g s/(kn), t_pc=%.3g s/(kn), "
             "t_vec=%.3g s/n, t_mv1=%.3g s/n, t_mv2=%.3g s/n²", cost.t_build, cost.t_rows,
             cost.t_pc, cost.t_vec, cost.t_mv1, cost.t_mv2)
    return cost


#: The second calibration subset is skipped when it would hold fewer than this many times the
#: frames of the first: the growth with n would be fitted over too short a range.
MIN_SIZE_RATIO = 1.5


def _second_size(n_data: int, n_first: int, second_frames) -> int:
    """Frames of the second calibration subset, or 0 for none (see
    :func:`calibrate_rule_of_thumb`)."""
    if second_frames is None:
        n2 = min(2 * n_first, n_data // 2)
    elif isinstance(second_frames, bool) or not isinstance(second_frames, (int, np.integer)):
        raise InputError(f"second_frames={second_frames!r} is not allowed; give an integer "
                         "number of frames (or None for the default)")
    else:
        n2 = min(int(second_frames), n_data)
    if n2 < MIN_SIZE_RATIO * n_first:
        if n2 > n_first:
            log.info("rule-of-thumb calibration: a second subset of %d frames would be less "
                     "than %.1f x the first (%d); one subset, the paper's law (a = 1)", n2,
                     MIN_SIZE_RATIO, n_first)
        return 0
    return n2


def _law_fit(n, ks, iters, n_ref: int, growth: bool) -> tuple[float, float, float]:
    """Least squares of ``log t = a log n + c - m log k`` over runs of orders ``n``, with ``a``
    fitted (``growth``) or ``a = 1`` (the paper's law): ``(a, m, k_min)``, ``k_min`` that of
    the law at order ``n_ref`` (``n_ref (k_min / k)^m = e^c n_ref^a k^-m``; nan for m <= 0)."""
    log_n, y = np.log(np.asarray(n, dtype=float)), np.log(np.asarray(iters, dtype=float))
    cols = [np.ones(len(y)), -np.log(np.asarray(ks, dtype=float))]
    if growth:
        a, c, m = np.linalg.lstsq(np.column_stack([log_n, *cols]), y, rcond=None)[0]
    else:
        a, (c, m) = 1.0, np.linalg.lstsq(np.column_stack(cols), y - log_n, rcond=None)[0]
    k_min = np.exp((c + (a - 1.0) * np.log(n_ref)) / m) if m > 0 else np.nan
    return float(a), float(m), float(k_min)


def calibrate_rule_of_thumb(R: np.ndarray, F: np.ndarray, sigma: float, lam: float, *,
                            n_frames: int = 50, ks=None, tol: float = 1e-6,
                            seed: int = 0, perms: np.ndarray | None = None,
                            second_frames: int | None = None) -> RuleFit:
    """Fit the iteration law from short incomplete-Cholesky PCG runs on two subsets.

    Parameters
    ----------
    R, F : ndarray, shape (n_frames, n_atoms, 3)
        Training positions (Å) and forces (eV/Å), already checked.
    sigma, lam : float
        Kernel length scale and ridge parameter of the full problem.
    n_frames : int
        Frames drawn (without replacement) for the first subset.
    ks : sequence of int, optional
        Ranks to try on the first subset (default: 4 values from ``n_sub/40`` to
        ``n_sub/5``, geometric); the second subset tries them scaled by its size.
    tol : float
        PCG tolerance of the short runs.
    perms : ndarray of int, shape (n_perms, n_atoms), optional
        Permutation group of the symmetrised kernel (checked), as in training.
    second_frames : int, optional
        Frames of the second subset, which holds the first (default ``2 n_frames``, at most
        half of ``R``, so that the runs stay well below the size of the full problem; given,
        at most all of ``R``).  Below :data:`MIN_SIZE_RATIO` times the first subset: no
        second subset and the paper's ``a = 1``.

    Returns
    -------
    RuleFit
        ``(m, k_min)`` and the growth ``a`` (``n_exponent``) from the least-squares fit of
        ``log t = a log n + c - m log k`` over the converged runs of both subsets; the
        paper's law (``a = 1``, ``log t = log n_sub + m log k_min - m log k`` on the first
        subset) when there is no second subset, fewer than two of its runs converged or the
        fit gives ``a`` outside ``(0, 2]`` or ``m <= 0`` (logged).  In ``cost`` the timing
        coefficients (logged): build and application of the preconditioner from the same
        runs, kernel-vector products from the runs and from products timed on larger frame
        counts of ``R`` (see :class:`CostModel`).  The timings are wall-clock times:
        calibrate with the BLAS threads and on the machine of the training; on a busy
        machine they, and ``RuleFit.k_cost``, vary from call to call.
    """
    rng = np.random.default_rng(seed)
    sub = np.sort(rng.choice(len(R), size=min(n_frames, len(R)), replace=False))
    op = GDMLOperator(R[sub], sigma, perms)
    if ks is None:
        ks = np.unique(np.geomspace(max(2, op.n // 40), max(3, op.n // 5), 4).astype(int))
    first = _subset_runs(op, F[sub].reshape(-1), lam, [int(k) for k in ks], tol)
    iters, ks_ok = first.iterations, first.ks
    if len(ks_ok) < 2:
        raise InputError(f"calibration: fewer than two of the ranks converged within "
                         f"{op.n} PCG iterations (converged: ks={ks_ok}, iterations={iters}); "
                         "pass larger ks, raise tol (TrainSettings.calib_tol) or lam, or use the "
                         "default m=1, k_min=100")
    a, m, k_min = _law_fit([op.n] * len(ks_ok), ks_ok, iters, op.n, growth=False)
    if not m > 0:
        raise InputError(f"calibration found iterations not decreasing with k (ks={ks_ok}, "
                         f"iterations={iters}); use the default m=1, k_min=100 or a larger "
                         "subset (n_frames)")
    subsets: list[tuple[GDMLOperator, _Runs]] = [(op, first)]
    n2 = _second_size(len(R), len(sub), second_frames)
    if n2:
        rest = np.setdiff1d(np.arange(len(R)), sub)
        idx = np.sort(np.r_[sub, rng.choice(rest, size=n2 - len(sub), replace=False)])
        op2 = GDMLOperator(R[idx], sigma, perms)
        scaled = np.clip(np.round(np.asarray(ks, dtype=float) * op2.n / op.n), 1, op2.n)
        second = _subset_runs(op2, F[idx].reshape(-1), lam,
                              [int(k) for k in np.unique(scaled.astype(int))], tol)
        subsets.append((op2, second))
        if len(second.ks) < 2:
            log.warning("rule-of-thumb calibration: %d of the ranks converged on the second "
                        "subset (%d frames), fewer than two; the paper's law (a = 1) of the "
                        "first subset is used", len(second.ks), n2)
    all_n = np.concatenate([np.full(len(r.ks), o.n) for o, r in subsets])
    all_ks = np.concatenate([r.ks for _, r in subsets]).astype(int)
    all_iters = np.concatenate([r.iterations for _, r in subsets]).astype(int)
    if len(subsets) > 1 and len(subsets[1][1].ks) >= 2:
        a_fit, m_fit, k_fit = _law_fit(all_n, all_ks, all_iters, op.n, growth=True)
        if 0 < a_fit <= 2 and m_fit > 0:
            a, m, k_min = a_fit, m_fit, k_fit
        else:
            log.warning("rule-of-thumb calibration: the growth of the iterations with n "
                        "fitted to a=%.3g, m=%.3g (ks=%s, n=%s, iterations=%s), outside a in "
                        "(0, 2], m > 0; the paper's law (a = 1) of the first subset is used",
                        a_fit, m_fit, all_ks.tolist(), all_n.tolist(), all_iters.tolist())
    log.info("rule-of-thumb calibration on %s frames: m=%.3g, k_min=%.3g at n=%d, a=%.3g "
             "(ks=%s, n=%s, iterations=%s)", [len(sub)] + ([n2] if n2 else []), m, k_min, op.n, a,
             all_ks.tolist(), all_n.tolist(), all_iters.tolist())
    return RuleFit(m=float(m), k_min=k_min, ks=all_ks, iterations=all_iters, n_sub=op.n,
                   cost=_fit_costs(subsets, R, sigma, perms), n_exponent=float(a),
                   sizes=all_n.astype(int))
