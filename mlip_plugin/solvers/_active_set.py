"""Shared pieces of the ℓ1 active-set solvers (homotopy and BPdual), see ``asp``."""

from __future__ import annotations

import logging
import warnings

import numba as nb
import numpy as np

from ..errors import DependentColumnWarning
from ._checks import check_fraction, check_nonneg_float, check_positive_int
from ._cholesky import GrowingCholesky
from ._problem import ScaledGram

__all__ = ["ActiveSet", "Screen", "leaving_step", "SLOPE_TOL"]

logger = logging.getLogger(__name__)

#: A column whose |c_j| approaches λ more slowly than this (relative rate) is treated as
#: moving along the boundary; the KKT error this can leave is below SLOPE_TOL · λ.
SLOPE_TOL = 1e-10


class ActiveSet:
    """Support S (in factor order), signs s, the columns Ĝ[:, S] and the Cholesky factor of Ĝ_SS.

    Columns live in slots of a (p, capacity) row-major buffer; a removal frees its slot for
    the next addition, so nothing of size p × k is ever shifted, and the part of any row j,
    ``Ĝ[j, S]``, is contiguous (what the screened step search reads, see :class:`Screen`).
    ``F = L⁻¹ [b̂_S, s]`` (k, 2) is kept up to date on every change, so a solve needs one back
    substitution.
    """

    def __init__(self, P: ScaledGram, capacity: int, dependence_tol: float):
        self.P = P
        self.cols = np.empty((P.p, capacity))
        self.chol = GrowingCholesky(min(capacity, 1024))
        self.F = np.zeros((0, 2))
        self._k = 0
        self._index = np.zeros(capacity, dtype=np.intp)  # S in factor order
        self._signs = np.zeros(capacity)
        self._slot = np.zeros(capacity, dtype=np.intp)  # buffer slot of each position of S
        self.free: list[int] = []
        self.n_slots = 0
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
            warnings.warn(msg, DependentColumnWarning, stacklevel=4)
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
        self.cols[:, slot] = col
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
        return j

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

    def direction_reach(self) -> float:
        """``||Â_S d|| = ||Lᵀ d|| = ||L⁻¹ s||`` for ``d = Ĝ_SS⁻¹ s``, from the kept ``F``.

        By Cauchy–Schwarz ``|Ĝ[j, S] d| <= ||â_j|| · ||Â_S d||`` for every column j.
        """
        return float(np.sqrt(self.F[:, 1] @ self.F[:, 1])) if len(self) else 0.0

    def weights(self, v: np.ndarray) -> np.ndarray:
        """``v`` (k, factor order) spread over the buffer's slots (zero in free slots)."""
        w = np.zeros(self.n_slots)
        w[self._slot[: self._k]] = v
        return w

    def times(self, v: np.ndarray) -> np.ndarray:
        """``Ĝ[:, S] v`` (p,) for v (k,): one matrix-vector product over the used slots."""
        return self.cols[:, : self.n_slots] @ self.weights(v)


class Screen:
    """Exact screening of the homotopy's entering-step search (the path does not change).

    Along a segment of length γ with direction d, an inactive correlation moves as
    ``c_j - γ a_j`` while λ falls by γ, so its slack ``λ - |c_j|`` shrinks at most at rate
    ``1 + |a_j| <= 1 + r_j M`` with ``r_j = ||â_j||`` and ``M = ||Â_S d||`` (Cauchy–Schwarz;
    :meth:`ActiveSet.direction_reach`).  A row's slack is known exactly when ``c_j`` and
    ``a_j`` were last computed; since then it has lost at most ``Σ_t (1 + r_j M_t) γ_t``,
    kept as two running sums ``B1 = Σ γ_t`` and ``B2 = Σ M_t γ_t``.  Hence the entering step of
    row j is at least ``lb_j = (slack_j - ΔB1 - r_j ΔB2) / (1 + r_j M)``, and a row with
    ``lb_j`` above the smallest step found so far cannot be the next to join: ``c_j``, ``a_j``
    are computed (``Ĝ[j, S] x`` and ``Ĝ[j, S] d``, one pass over the row) only for rows that
    might.  On the Zuo Si matrix this reads about one row in five per breakpoint instead
    of all of them.
    """

    #: relative safety margin on M against rounding in ``||L⁻¹ s||``
    MARGIN = 1e-6

    def __init__(self, P: ScaledGram, c: np.ndarray, lam: float):
        self.r = np.sqrt(np.maximum(P.diag(), 0.0))
        self.B1 = self.B2 = 0.0
        self.lbnum = np.empty(P.p)  # slack at the last exact evaluation + B1, r B2 then
        self.rows = np.empty(P.p, dtype=np.intp)  # rows evaluated in the last search
        self.n_rows = 0
        self.n_evaluated = 0  # over the whole path (for the record)
        self.a = np.zeros(P.p)  # Ĝ[j, S] d on the evaluated rows
        self.M = 0.0
        self.reset(c, lam)

    def reset(self, c: np.ndarray, lam: float) -> None:
        """All slacks exact (``c`` computed afresh for every row)."""
        self.lbnum[:] = (lam - np.abs(c)) + self.B1 + self.r * self.B2

    def release(self, j: int, c_j: float, lam: float) -> None:
        """Row ``j`` has just left the active set with correlation ``c_j`` at ``lam``."""
        self.lbnum[j] = (lam - abs(c_j)) + self.B1 + self.r[j] * self.B2

    def search(self, act: ActiveSet, x: np.ndarray, d: np.ndarray, c: np.ndarray, lam: float,
               open_: np.ndarray, cap: float) -> tuple[float, int, float]:
        """First γ > 0 at which an open row reaches ``|c_j - γ a_j| = λ - γ``: ``(γ, j, sign)``.

        Only rows moving outward count (``1 ∓ a_j > SLOPE_TOL``), so a row that just left
        cannot re-enter at γ = 0; the smallest index wins a tie, and a tie between the two
        sides goes to ``+1``; γ = inf (``j = 0``) when no row enters.  Exact whenever that
        step is <= ``cap`` (else some value > ``cap`` is returned).  Writes the fresh ``c_j``
        of the rows it evaluates into ``c``."""
        self.M = act.direction_reach() * (1.0 + self.MARGIN)
        up, j_up, dn, j_dn, n = _screened_entering(
            act.cols, act.n_slots, act.weights(x), act.weights(d), act.P.b, c, self.a,
            self.lbnum, self.r, self.B1, self.B2, self.M, float(lam), open_, float(cap),
            SLOPE_TOL, self.rows)
        self.n_rows = n
        self.n_evaluated += n
        g, j, sign = (up, j_up, 1.0) if up <= dn else (dn, j_dn, -1.0)
        return max(g, 0.0), int(j), sign

    def advance(self, c: np.ndarray, gamma: float, lam_new: float) -> None:
        """Move the evaluated rows' ``c`` by the step and make their slacks exact at
        ``lam_new``; every other row's bound loses this segment."""
        self.B1 += gamma
        self.B2 += self.M * gamma
        _advance_rows(self.rows, self.n_rows, c, self.a, gamma, lam_new, self.lbnum, self.r,
                      self.B1, self.B2)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _row_dots(row, wx, wd):  # pragma: no cover - compiled
    sx, sd = 0.0, 0.0
    for q in range(row.shape[0]):
        sx += row[q] * wx[q]
        sd += row[q] * wd[q]
    return sx, sd


@nb.njit(cache=True)
def _screened_entering(cols, n_slots, wx, wd, b, c, a, lbnum, r, B1, B2, M, lam, open_, cap,
                       slope_tol, rows):  # pragma: no cover - compiled
    """Rows in order of index, the one with the smallest bound first; a row is evaluated
    when its bound is <= the smallest step (or ``cap``) found so far."""
    p = c.shape[0]
    lb = np.empty(p)
    j_min, lb_min = -1, np.inf
    for j in range(p):
        if open_[j]:
            lb[j] = (lbnum[j] - B1 - r[j] * B2) / (1.0 + r[j] * M)
            if j_min < 0 or lb[j] < lb_min:
                j_min, lb_min = j, lb[j]
    best_up, j_up, best_dn, j_dn, n = np.inf, 0, np.inf, 0, 0
    for t in range(p + 1):
        j = j_min if t == 0 else t - 1
        if j < 0 or not open_[j] or (t > 0 and j == j_min):
            continue
        if t > 0 and lb[j] > min(best_up, best_dn, cap):
            continue
        sx, sd = _row_dots(cols[j, :n_slots], wx, wd)
        c[j] = b[j] - sx
        a[j] = sd
        rows[n] = j
        n += 1
        if 1.0 - sd > slope_tol:
            g = (lam - c[j]) / (1.0 - sd)
            if g < best_up or (g == best_up and j < j_up):
                best_up, j_up = g, j
        if 1.0 + sd > slope_tol:
            g = (lam + c[j]) / (1.0 + sd)
            if g < best_dn or (g == best_dn and j < j_dn):
                best_dn, j_dn = g, j
    return best_up, j_up, best_dn, j_dn, n


@nb.njit(cache=True)
def _advance_rows(rows, n, c, a, gamma, lam_new, lbnum, r, B1, B2):  # pragma: no cover
    for t in range(n):
        j = rows[t]
        c[j] -= gamma * a[j]
        lbnum[j] = (lam_new - abs(c[j])) + B1 + r[j] * B2


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


def check_asp_settings(P: ScaledGram, max_active, lambda_min, dependence_tol, max_iter):
    max_active = min(check_positive_int(max_active, "max_active"), P.p)
    lambda_min = check_nonneg_float(lambda_min, "lambda_min")
    dependence_tol = check_fraction(dependence_tol, "dependence_tol")
    max_iter = (max(50 * max_active, 1000) if max_iter is None
                else check_positive_int(max_iter, "max_iter"))
    return max_active, lambda_min, dependence_tol, max_iter
