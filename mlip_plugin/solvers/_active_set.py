"""Shared pieces of the ℓ1 active-set solvers (homotopy and BPdual), see ``asp``."""

from __future__ import annotations

import logging
import warnings

import numba as nb
import numpy as np

from ..errors import ConvergenceWarning
from ._checks import check_fraction, check_nonneg_float, check_positive_int
from ._cholesky import GrowingCholesky
from ._problem import ScaledGram

__all__ = ["ActiveSet", "entering_step", "leaving_step", "SLOPE_TOL"]

logger = logging.getLogger(__name__)

#: A column whose |c_j| approaches λ more slowly than this (relative rate) is treated as
#: moving along the boundary; the KKT error this can leave is below SLOPE_TOL · λ.
SLOPE_TOL = 1e-10


class ActiveSet:
    """Support S (in factor order), signs s, the columns Ĝ[:, S] and the Cholesky factor of Ĝ_SS.

    Columns live in slots of a (p, capacity) buffer; a removal frees its slot for the next
    addition, so nothing of size p × k is ever shifted.  The buffer's rows are permuted so
    that the rows of the active functions come last (``perm``: buffer row → function,
    ``pos`` its inverse; one row swap per change): the product needed at every breakpoint,
    ``Ĝ[j, S] v`` for the p - k inactive j only, reads only the first p - k rows (the active
    rows of ``Ĝ[:, S] d`` are ``s`` by construction).  ``F = L⁻¹ [b̂_S, s]`` (k, 2) is kept
    up to date on every change, so a solve needs one back substitution.
    """

    def __init__(self, P: ScaledGram, capacity: int, dependence_tol: float):
        self.P = P
        self.cols = np.empty((P.p, capacity), order="F")
        self.chol = GrowingCholesky(min(capacity, 1024))
        self.F = np.zeros((0, 2))
        self._k = 0
        self._index = np.zeros(capacity, dtype=np.intp)  # S in factor order
        self._signs = np.zeros(capacity)
        self._slot = np.zeros(capacity, dtype=np.intp)  # buffer slot of each position of S
        self.free: list[int] = []
        self.n_slots = 0
        self.perm = np.arange(P.p)  # buffer row -> function index
        self.pos = np.arange(P.p)  # function index -> buffer row
        self.dependence_tol = dependence_tol
        self.notes: list[str] = []

    def __len__(self) -> int:
        return self._k

    @property
    def index(self) -> np.ndarray:
        """S (k,) in factor order (a view, valid until the next change)."""
        return self._index[: self._k]

    @property
    def signs(self) -> np.ndarray:
        """s (k,) (a view, valid until the next change)."""
        return self._signs[: self._k]

    @property
    def S(self) -> np.ndarray:
        """A copy of S (k,)."""
        return self.index.copy()

    def add(self, j: int, sign: float) -> bool:
        """Add column ``j``; False (with a warning) when it is numerically dependent."""
        col = self.P.column(j)
        added, rel = self.chol.append(col[self.index], col[j], self.dependence_tol)
        if not added:
            msg = (f"basis function {j} is numerically dependent on the {len(self)} active ones "
                   f"(relative pivot {rel:.2e} <= dependence_tol={self.dependence_tol:.1e}); "
                   "skipping it")
            self.notes.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
            return False
        k, L = self._k, self.chol.factor
        row = (np.array([self.P.b[j], sign]) - L[k, :k] @ self.F) / L[k, k]
        self.F = np.vstack([self.F, row])
        if self.free:
            slot = self.free.pop()
        else:
            slot, self.n_slots = self.n_slots, self.n_slots + 1
            if slot == self.cols.shape[1]:  # full: double the buffers
                self.cols = np.concatenate([self.cols, np.empty_like(self.cols)], axis=1)
        if k == len(self._index):
            self._index, self._signs, self._slot = (np.concatenate([v, np.zeros_like(v)])
                                                    for v in (self._index, self._signs,
                                                              self._slot))
        self._move_row(j, self.P.p - k - 1)  # the last inactive row
        self.cols[:, slot] = col[self.perm]
        self._index[k], self._signs[k], self._slot[k] = j, sign, slot
        self._k = k + 1
        return True

    def remove(self, i: int) -> int:
        """Remove the column at position ``i`` of S; returns its index."""
        self.F = self.chol.delete(i, self.F)
        k, j = self._k, int(self._index[i])
        self.free.append(int(self._slot[i]))
        for v in (self._index, self._signs, self._slot):
            v[i : k - 1] = v[i + 1 : k].copy()
        self._k = k - 1
        self._move_row(j, self.P.p - k)  # the first active row
        return j

    def _move_row(self, j: int, row: int) -> None:
        """Swap buffer rows so that function ``j`` sits in buffer row ``row``."""
        here, other = int(self.pos[j]), int(self.perm[row])
        if here == row:
            return
        _swap_rows(self.cols, here, row, self.n_slots)
        self.perm[here], self.perm[row] = other, j
        self.pos[other], self.pos[j] = here, row

    def solve(self, lam: float, refresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``x_S = Ĝ_SS⁻¹(b̂_S - λ s)`` and ``d = Ĝ_SS⁻¹ s``.

        ``refresh`` recomputes ``F`` by a forward substitution (against drift).
        """
        if refresh and len(self):
            self.F = self.chol.forward(np.column_stack([self.P.b[self.index], self.signs]))
        sol = self.chol.backward(np.column_stack([self.F[:, 0] - lam * self.F[:, 1],
                                                  self.F[:, 1]]))
        return sol[:, 0], sol[:, 1]

    def direction(self) -> np.ndarray:
        """``d = Ĝ_SS⁻¹ s``: one back substitution of the kept ``L⁻¹ s``."""
        return self.chol.backward(self.F[:, 1])

    def _weights(self, v: np.ndarray) -> np.ndarray:
        w = np.zeros(self.n_slots)
        w[self._slot[: self._k]] = v
        return w

    def times(self, v: np.ndarray) -> np.ndarray:
        """``Ĝ[:, S] v`` (p,) for v (k,): one matrix-vector product over the used slots."""
        out = np.empty(self.P.p)
        out[self.perm] = self.cols[:, : self.n_slots] @ self._weights(v)
        return out

    def times_inactive(self, v: np.ndarray, active: np.ndarray) -> np.ndarray:
        """``Ĝ[:, S] v`` (p,) computed on the inactive rows only; ``active`` (k,) is put in
        the rows of S (``s`` when ``v = d``, where ``Ĝ_SS d = s``)."""
        m = self.P.p - len(self)
        out = np.empty(self.P.p)
        out[self.perm[:m]] = self.cols[:m, : self.n_slots] @ self._weights(v)
        out[self.index] = active
        return out


def entering_step(c: np.ndarray, a: np.ndarray, lam: float, open_: np.ndarray):
    """First γ > 0 at which an open column reaches ``|c_j - γ a_j| = λ - γ``.

    Only columns moving outward count (``1 ∓ a_j > SLOPE_TOL``), so a column that just left
    cannot re-enter at γ = 0.  Returns ``(γ, j, sign)``; γ = inf when none does (then
    ``j = 0``).  The smallest index wins a tie, and a tie between the two sides goes to
    ``+1``.  One compiled pass over the p columns.
    """
    g, j, sign = _entering(c, a, float(lam), open_, SLOPE_TOL)
    return max(g, 0.0), int(j), sign


@nb.njit(cache=True)
def _entering(c, a, lam, open_, slope_tol):  # pragma: no cover - compiled
    best_up, j_up, best_dn, j_dn = np.inf, 0, np.inf, 0
    for j in range(c.shape[0]):
        if not open_[j]:
            continue
        if 1.0 - a[j] > slope_tol:
            g = (lam - c[j]) / (1.0 - a[j])
            if g < best_up:
                best_up, j_up = g, j
        if 1.0 + a[j] > slope_tol:
            g = (lam + c[j]) / (1.0 + a[j])
            if g < best_dn:
                best_dn, j_dn = g, j
    if best_up <= best_dn:
        return best_up, j_up, 1.0
    return best_dn, j_dn, -1.0


def leaving_step(x: np.ndarray, d: np.ndarray, protect: int | None):
    """First γ > 0 at which an active ``x_i + γ d_i`` reaches 0 (position ``protect`` exempt).

    Returns ``(γ, i)``; γ = inf when no coefficient shrinks towards zero (then i = -1); the
    smallest position wins a tie.
    """
    g, i = _leaving(x, d, -1 if protect is None else int(protect))
    return max(g, 0.0), int(i)


@nb.njit(cache=True)
def _leaving(x, d, protect):  # pragma: no cover - compiled
    best, i_best = np.inf, -1
    for i in range(x.shape[0]):
        if i != protect and x[i] * d[i] < 0:
            g = -x[i] / d[i]
            if g < best:
                best, i_best = g, i
    return best, i_best


@nb.njit(cache=True)
def _swap_rows(cols, r1, r2, n):  # pragma: no cover - compiled
    """Swap rows r1 and r2 of ``cols[:, :n]`` in place."""
    for q in range(n):
        cols[r1, q], cols[r2, q] = cols[r2, q], cols[r1, q]


def check_asp_settings(P: ScaledGram, max_active, lambda_min, dependence_tol, max_iter):
    max_active = min(check_positive_int(max_active, "max_active"), P.p)
    lambda_min = check_nonneg_float(lambda_min, "lambda_min")
    dependence_tol = check_fraction(dependence_tol, "dependence_tol")
    max_iter = (max(50 * max_active, 1000) if max_iter is None
                else check_positive_int(max_iter, "max_iter"))
    return max_active, lambda_min, dependence_tol, max_iter
