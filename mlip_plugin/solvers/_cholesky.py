"""A Cholesky factor of the active Gram submatrix, grown and shrunk one column at a time.

``Ĝ_SS = L Lᵀ`` with ``L`` lower triangular, kept as an exactly (k, k) Fortran-ordered array
so that LAPACK's triangular solves (``dtrtrs``) read it in place.  Appending a column costs a
triangular solve and one copy of the factor, O(k²); deleting column ``i`` restores the
triangle with ``k - i`` Givens rotations, O(k²) (Golub & Van Loan §12.5).  The rotations can
be applied to forward-substituted vectors ``F = L⁻¹ B`` too, so that a caller can keep
``L⁻¹ B`` up to date without solving again.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import drot
from scipy.linalg.lapack import dtrtrs

__all__ = ["GrowingCholesky"]


class GrowingCholesky:
    """Updatable lower Cholesky factor of a symmetric positive-definite matrix."""

    def __init__(self):
        self.L = np.zeros((0, 0), order="F")

    @property
    def k(self) -> int:
        return self.L.shape[0]

    @property
    def factor(self) -> np.ndarray:
        """The current factor ``L`` (k, k)."""
        return self.L

    def _trtrs(self, rhs: np.ndarray, trans: int) -> np.ndarray:
        if self.k == 0:
            return np.zeros_like(rhs, dtype=float)
        if rhs.ndim == 2:  # one vector at a time: OpenBLAS's multi-threaded dtrsm is far
            # slower than dtrsv for a few right-hand sides
            return np.column_stack([self._trtrs(rhs[:, m], trans) for m in range(rhs.shape[1])])
        out, info = dtrtrs(self.L, rhs, lower=1, trans=trans)
        if info != 0:  # only for a zero pivot, which append never lets in
            raise RuntimeError(f"LAPACK dtrtrs failed with info={info}")
        return out

    def forward(self, rhs: np.ndarray) -> np.ndarray:
        """``L⁻¹ rhs`` for rhs (k,) or (k, m)."""
        return self._trtrs(rhs, 0)

    def backward(self, rhs: np.ndarray) -> np.ndarray:
        """``L⁻ᵀ rhs`` for rhs (k,) or (k, m)."""
        return self._trtrs(rhs, 1)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``(L Lᵀ)⁻¹ rhs`` for rhs (k,) or (k, m)."""
        return self.backward(self.forward(rhs))

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
        w = self.forward(np.asarray(g_sj, dtype=float))
        pivot = g_jj - float(w @ w)
        rel = pivot / g_jj if g_jj > 0 else 0.0
        if not rel > rel_tol:
            return False, rel
        grown = np.empty((k + 1, k + 1), order="F")
        grown[:k, :k] = self.L
        grown[:k, k] = 0.0
        grown[k, :k] = w
        grown[k, k] = np.sqrt(pivot)
        self.L = grown
        return True, rel

    def delete(self, i: int, vectors: np.ndarray | None = None) -> np.ndarray | None:
        """Remove row and column ``i`` of the factored matrix.

        ``vectors`` (k, m), if given, holds ``F = L⁻¹ B``; the updated ``L'⁻¹ B'`` (B without
        row i), (k - 1, m), is returned.
        """
        k, L = self.k, self.L
        N = np.empty((k - 1, k - 1), order="F")  # L without row i and without its last column
        N[:i] = L[:i, : k - 1]
        N[i:] = L[i + 1 :, : k - 1]
        last = np.zeros(k - 1)  # that last column: only its bottom entry is non-zero
        last[-1] = L[k - 1, k - 1]
        # columns of L⁻¹ B as Python lists: the rotations touch two entries each
        F = [] if vectors is None else [list(v) for v in np.asarray(vectors, dtype=float).T]
        col = [N[:, j] for j in range(i, k - 1)] + [last]  # col[r - i]: column r
        for r in range(i, k - 1):
            x, y = col[r - i], col[r + 1 - i]
            a, b = float(x[r]), float(y[r])
            h = math.hypot(a, b)
            if h == 0.0:
                continue
            c, s = a / h, b / h
            # rotate columns r and r+1 (rows r..k-2) in place so that entry (r, r+1) becomes 0
            drot(x[r:], y[r:], c, s, overwrite_x=1, overwrite_y=1)
            y[r] = 0.0
            for f in F:  # the same rotation on the components r, r+1 of L⁻¹ B
                f[r], f[r + 1] = c * f[r] + s * f[r + 1], c * f[r + 1] - s * f[r]
        self.L = N
        return None if vectors is None else np.array(F).T[: k - 1].reshape(k - 1, -1)
