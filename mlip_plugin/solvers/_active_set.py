"""Shared pieces of the ℓ1 active-set solvers (homotopy and BPdual), see ``asp``."""

from __future__ import annotations

import logging
import warnings

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
    addition, so nothing of size p × k is ever shifted.  ``F = L⁻¹ [b̂_S, s]`` (k, 2) is
    kept up to date on every change, so a solve needs one back substitution.
    """

    def __init__(self, P: ScaledGram, capacity: int, dependence_tol: float):
        self.P = P
        self.cols = np.empty((P.p, capacity), order="F")
        self.chol = GrowingCholesky()
        self.F = np.zeros((0, 2))
        self.index: list[int] = []
        self.signs: list[float] = []
        self.slot_of: list[int] = []  # buffer slot of each position of S
        self.free: list[int] = []
        self.n_slots = 0
        self.dependence_tol = dependence_tol
        self.notes: list[str] = []

    def __len__(self) -> int:
        return len(self.index)

    @property
    def S(self) -> np.ndarray:
        return np.array(self.index, dtype=np.intp)

    def add(self, j: int, sign: float) -> bool:
        """Add column ``j``; False (with a warning) when it is numerically dependent."""
        col = self.P.column(j)
        added, rel = self.chol.append(col[self.index], col[j], self.dependence_tol)
        if added:
            k, L = len(self), self.chol.factor
            row = (np.array([self.P.b[j], sign]) - L[k, :k] @ self.F) / L[k, k]
            self.F = np.vstack([self.F, row])
        else:
            msg = (f"basis function {j} is numerically dependent on the {len(self)} active ones "
                   f"(relative pivot {rel:.2e} <= dependence_tol={self.dependence_tol:.1e}); "
                   "skipping it")
            self.notes.append(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
            return False
        if self.free:
            slot = self.free.pop()
        else:
            slot, self.n_slots = self.n_slots, self.n_slots + 1
            if slot == self.cols.shape[1]:  # full: double the buffer
                self.cols = np.concatenate([self.cols, np.empty_like(self.cols)], axis=1)
        self.cols[:, slot] = col
        self.slot_of.append(slot)
        self.index.append(j)
        self.signs.append(sign)
        return True

    def remove(self, i: int) -> int:
        """Remove the column at position ``i`` of S; returns its index."""
        self.F = self.chol.delete(i, self.F)
        self.free.append(self.slot_of.pop(i))
        self.signs.pop(i)
        return self.index.pop(i)

    def solve(self, lam: float, refresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``x_S = Ĝ_SS⁻¹(b̂_S - λ s)`` and ``d = Ĝ_SS⁻¹ s``.

        ``refresh`` recomputes ``F`` by a forward substitution (against drift).
        """
        if refresh and len(self):
            self.F = self.chol.forward(np.column_stack([self.P.b[self.index], self.signs]))
        sol = self.chol.backward(np.column_stack([self.F[:, 0] - lam * self.F[:, 1],
                                                  self.F[:, 1]]))
        return sol[:, 0], sol[:, 1]

    def times(self, v: np.ndarray) -> np.ndarray:
        """``Ĝ[:, S] v`` for v (k,): one matrix-vector product over the used slots."""
        w = np.zeros(self.n_slots)
        w[self.slot_of] = v
        return self.cols[:, : self.n_slots] @ w


def entering_step(c: np.ndarray, a: np.ndarray, lam: float, open_: np.ndarray):
    """First γ > 0 at which an open column reaches ``|c_j - γ a_j| = λ - γ``.

    Only columns moving outward count (``1 ∓ a_j > SLOPE_TOL``), so a column that just left
    cannot re-enter at γ = 0.  Returns ``(γ, j, sign)``; γ = inf when none does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(open_ & (1.0 - a > SLOPE_TOL), (lam - c) / (1.0 - a), np.inf)
        dn = np.where(open_ & (1.0 + a > SLOPE_TOL), (lam + c) / (1.0 + a), np.inf)
    ju, jd = int(np.argmin(up)), int(np.argmin(dn))
    if up[ju] <= dn[jd]:
        return max(float(up[ju]), 0.0), ju, 1.0
    return max(float(dn[jd]), 0.0), jd, -1.0


def leaving_step(x: np.ndarray, d: np.ndarray, protect: int | None):
    """First γ > 0 at which an active ``x_i + γ d_i`` reaches 0 (position ``protect`` exempt).

    Returns ``(γ, i)``; γ = inf when no coefficient shrinks towards zero.
    """
    shrinking = (x * d) < 0
    if protect is not None:
        shrinking[protect] = False
    if not shrinking.any():
        return np.inf, -1
    g = np.full(len(x), np.inf)
    g[shrinking] = -x[shrinking] / d[shrinking]
    i = int(np.argmin(g))
    return max(float(g[i]), 0.0), i


def check_asp_settings(P: ScaledGram, max_active, lambda_min, dependence_tol, max_iter):
    max_active = min(check_positive_int(max_active, "max_active"), P.p)
    lambda_min = check_nonneg_float(lambda_min, "lambda_min")
    dependence_tol = check_fraction(dependence_tol, "dependence_tol")
    max_iter = (max(50 * max_active, 1000) if max_iter is None
                else check_positive_int(max_iter, "max_iter"))
    return max_active, lambda_min, dependence_tol, max_iter
