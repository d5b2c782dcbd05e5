"""A measured cost model of incomplete-Cholesky PCG and the rank ``k`` that minimises it.

The rule of thumb of Blücher, Müller & Chmiela (2023), :func:`.rule.rule_of_thumb_k`, assumes
that one CG iteration costs ``O(n²)`` and the preconditioner ``O(k² n)`` to build.  For the
matrix-free GDML operator both assumptions are loose: a kernel-vector product costs
``O(M² D + n D)`` (``M`` frames, ``D`` descriptor entries, ``n = 3 N M``), far less than a
dense ``n²`` product, and every iteration also applies the rank-``k`` Woodbury preconditioner,
``O(k n)``, which the rule leaves out.  :class:`CostModel` writes the time to solution as

    T(k) = n (t_build k² + t_rows k) + iters(k) · (t_mv(n) + n (t_pc k + t_vec)),
    iters(k) = n (k_min / k)^m,
    t_mv(n) = t_mv1 n + t_mv2 n²,

with coefficients fitted to timings (:func:`.rule.calibrate_rule_of_thumb` measures them),
and :func:`cost_optimal_k` finds its minimiser over the integers ``1 … n``.  ``t_rows`` is the
kernel rows of the pivots (``O(k n D)``), ``t_vec`` the ``O(n)`` vector work of one
iteration besides the product (the CG updates and the ``O(n)`` part of the application).
With ``t_rows = t_pc = t_vec = t_mv1 = 0`` and ``t_mv2 = t_build`` the model is the paper's,
and the minimiser is the rule of thumb.

``T`` has exactly one minimiser on ``k > 0``: ``g(k) = T'(k) k^{m+1} / n`` is

    g(k) = 2 t_build k^{m+2} + t_rows k^{m+1} + k_min^m ((1 - m) n t_pc k - m (t_mv + n t_vec)),

negative near 0; for ``m <= 1`` it increases, for ``m > 1`` its derivative increases from a
negative value, so ``g`` falls, then rises: one sign change either way.  The application term
``iters(k) · t_pc k n ∝ k^{1-m}`` lowers the optimal ``k`` for ``m < 1``, does not move it
for ``m = 1`` and raises it for ``m > 1``; what lowers ``k`` against the rule of thumb for
``m >= 1`` is a product cheaper than the build (``t_mv(n) ≪ t_build n²``) and ``t_rows``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, nnls

from ..errors import InputError

__all__ = ["CostModel", "cost_optimal_k", "fit_nonnegative", "check_power_law"]

log = logging.getLogger(__name__)


def check_power_law(n, m: float, k_min: float) -> int:
    """Return ``n`` as an int; :class:`InputError` unless ``n >= 1`` is an integer and the
    iteration law's ``m``, ``k_min`` are finite and > 0."""
    if not (np.isfinite(m) and m > 0 and np.isfinite(k_min) and k_min > 0):
        raise InputError(f"rule-of-thumb parameters m={m!r}, k_min={k_min!r} are not allowed; "
                         "both must be finite and > 0 (defaults m=1, k_min=100)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"system size n={n!r} must be an integer >= 1 (3 * n_atoms * n_train)")
    return int(n)


def _check_times(**times: float) -> None:
    for name, value in times.items():
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name}={value!r} is not allowed; times of the cost model must be "
                             "finite and >= 0 seconds (fit them with calibrate_rule_of_thumb)")
    if not times["t_mv"] > 0:
        raise InputError(f"t_mv={times['t_mv']!r}: the time of one kernel-vector product must "
                         "be > 0 seconds, else CG iterations would be free")


def _seconds(k, n, m, k_min, t_build, t_mv, t_pc, t_rows, t_vec):
    k = np.asarray(k, dtype=float)
    iters = n * (k_min / k) ** m
    return n * (t_build * k**2 + t_rows * k) + iters * (t_mv + n * (t_pc * k + t_vec))


def cost_optimal_k(n: int, m: float, k_min: float, *, t_build: float, t_mv: float,
                   t_pc: float = 0.0, t_rows: float = 0.0, t_vec: float = 0.0) -> int:
    """Integer ``k`` in ``[1, n]`` minimising the time to solution ``T(k)`` of the module
    docstring.

    Parameters
    ----------
    n : int
        Order of the system (``3 · n_atoms · n_train``).
    m, k_min : float
        Iteration law ``iters(k) = n (k_min / k)^m`` (> 0).
    t_build : float
        Seconds per ``k² n`` of building the preconditioner.
    t_mv : float
        Seconds of one kernel-vector product of order ``n`` (> 0).
    t_pc : float
        Seconds per ``k n`` of applying the preconditioner once.
    t_rows : float
        Seconds per ``k n`` of building it (kernel rows of the pivots).
    t_vec : float
        Seconds per ``n`` of one iteration besides the product, independent of ``k``.

    Returns
    -------
    int
        The minimiser (the root of ``g``, see the module docstring, rounded to the better
        neighbouring integer; 1 or ``n`` when ``g`` has no sign change inside).
    """
    n = check_power_law(n, m, k_min)
    _check_times(t_build=t_build, t_mv=t_mv, t_pc=t_pc, t_rows=t_rows, t_vec=t_vec)
    coef = dict(t_build=t_build, t_mv=t_mv, t_pc=t_pc, t_rows=t_rows, t_vec=t_vec)

    def g(u: float) -> float:  # g(k) / k_min^m at k = e^u, scaled to stay O(1)
        k = np.exp(u)
        return ((2 * t_build * k ** (m + 2) + t_rows * k ** (m + 1)) / k_min**m
                + (1 - m) * n * t_pc * k - m * (t_mv + n * t_vec))

    if g(0.0) >= 0 or n == 1:
        return 1
    if g(np.log(n)) <= 0:
        return n
    root = float(np.exp(brentq(g, 0.0, np.log(n), xtol=1e-12, rtol=1e-12)))
    cand = np.unique(np.clip([np.floor(root), np.ceil(root)], 1, n)).astype(int)
    return int(cand[np.argmin(_seconds(cand, n, m, k_min, **coef))])


def fit_nonnegative(columns: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Coefficients ``c >= 0`` of ``t ≈ columns @ c`` minimising the relative squared error
    ``Σ ((columns @ c - t) / t)²`` (non-negative least squares on rows scaled by ``1 / t``).

    Parameters
    ----------
    columns : ndarray, shape (n_samples, n_terms)
    t : ndarray, shape (n_samples,)
        Measured seconds (> 0).
    """
    t = np.asarray(t, dtype=float)
    A = np.asarray(columns, dtype=float) / t[:, None]
    scale = np.abs(A).max(0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, np.ones(len(t)))
    return c / scale


@dataclass(frozen=True)
class CostModel:
    """Fitted coefficients (seconds) of the time to solution of the module docstring.

    Attributes
    ----------
    t_build, t_rows : float
        Building the preconditioner: seconds per ``k² n`` and per ``k n``.
    t_pc, t_vec : float
        One iteration besides the kernel-vector product (applying the preconditioner, the CG
        updates): seconds per ``k n`` and per ``n``.
    t_mv1, t_mv2 : float
        One kernel-vector product: seconds per ``n`` and per ``n²``.  The product is
        ``O(M² D)`` in the frames ``M`` plus the ``O(n D)`` Jacobian products, i.e.
        ``t_mv1 n + t_mv2 n²`` for one molecule (``n ∝ M``); a fit of both terms to products
        timed at several frame counts scales it to other ``n``.
    """

    t_build: float
    t_rows: float
    t_pc: float
    t_vec: float
    t_mv1: float
    t_mv2: float

    def t_mv(self, n: int) -> float:
        """Seconds of one kernel-vector product of order ``n``."""
        return self.t_mv1 * n + self.t_mv2 * float(n) ** 2

    def seconds(self, k, n: int, m: float, k_min: float) -> np.ndarray:
        """Modelled time to solution (s) at rank(s) ``k`` for the iteration law ``(m, k_min)``."""
        n = check_power_law(n, m, k_min)
        return _seconds(k, n, m, k_min, self.t_build, self.t_mv(n), self.t_pc, self.t_rows,
                        self.t_vec)

    def k(self, n: int, m: float, k_min: float) -> int:
        """The rank minimising :meth:`seconds` (:func:`cost_optimal_k`)."""
        n = check_power_law(n, m, k_min)
        return cost_optimal_k(n, m, k_min, t_build=self.t_build, t_mv=self.t_mv(n),
                              t_pc=self.t_pc, t_rows=self.t_rows, t_vec=self.t_vec)
