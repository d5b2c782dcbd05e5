"""A Cholesky factor of the active Gram submatrix, grown and shrunk one column at a time.

``Ĝ_SS = L Lᵀ`` with ``L`` lower triangular, stored in a preallocated (capacity, capacity)
array.  Appending a column costs one triangular solve, O(k²); deleting column ``i``
restores the triangle with ``k - i`` Givens rotations, O(k²) (Golub & Van Loan §12.5).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.linalg.blas import drot
from scipy.linalg.lapack import dpotrs

__all__ = ["GrowingCholesky"]


class GrowingCholesky:
    """Updatable lower Cholesky factor of a symmetric positive-definite matrix.

    Parameters
    ----------
    capacity : int
        Largest number of columns the factor will hold.
    """

    def __init__(self, capacity: int):
        self.L = np.zeros((capacity, capacity), order="F")
        self.k = 0

    @property
    def factor(self) -> np.ndarray:
        """The current factor ``L`` (k, k), a view."""
        return self.L[: self.k, : self.k]

    def forward(self, rhs: np.ndarray) -> np.ndarray:
        """``L⁻¹ rhs`` for rhs (k,) or (k, m)."""
        if self.k == 0:
            return np.zeros_like(rhs)
        return solve_triangular(self.factor, rhs, lower=True, check_finite=False)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(L Lᵀ)⁻¹ rhs`` for rhs (k,) or (k, m)."""
        if self.k == 0:
            return np.zeros_like(rhs)
        out, info = dpotrs(self.factor, rhs, lower=1)
        if info != 0:  # only on a malformed call; the factor itself cannot fail here
            raise RuntimeError(f"LAPACK dpotrs failed with info={info}")
        return out

    def append(self, g_sj: np.ndarray, g_jj: float, rel_tol: float) -> tuple[bool, float]:
        """Try to add a column with off-diagonal part ``g_sj`` (k,) and diagonal ``g_jj``.

        Returns
        -------
        added : bool
            False when the new pivot ``g_jj - |L⁻¹ g_sj|²`` is at most ``rel_tol * g_jj``,
            i.e. the column is numerically dependent on the active ones; nothing changes.
        rel_pivot : float
            The pivot relative to ``g_jj`` (the squared sine of the angle between the new
            column and the span of the active ones).
        """
        k = self.k
        if k == self.L.shape[0]:
            raise RuntimeError("GrowingCholesky is full; allocate a larger capacity")
        w = self.forward(g_sj) if k else np.empty(0)
        pivot = g_jj - float(w @ w)
        rel = pivot / g_jj if g_jj > 0 else 0.0
        if not rel > rel_tol:
            return False, rel
        self.L[k, :k] = w
        self.L[k, k] = np.sqrt(pivot)
        self.k = k + 1
        return True, rel

    def delete(self, i: int) -> None:
        """Remove row and column ``i`` of the factored matrix."""
        k = self.k
        L = self.L
        L[i : k - 1, :k] = L[i + 1 : k, :k]
        for r in range(i, k - 1):
            a, b = L[r, r], L[r, r + 1]
            h = np.hypot(a, b)
            if h == 0.0:
                continue
            # rotate columns r and r+1 (rows r..k-2) in place so that L[r, r+1] becomes 0
            drot(L[r : k - 1, r], L[r : k - 1, r + 1], a / h, b / h, overwrite_x=1,
                 overwrite_y=1)
            L[r, r + 1] = 0.0
        L[k - 1, :k] = 0.0
        L[:k, k - 1] = 0.0
        self.k = k - 1
