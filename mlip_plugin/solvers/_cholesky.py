"""A Cholesky factor of the active Gram submatrix, grown and shrunk one column at a time.

``Ĝ_SS = L Lᵀ`` with ``L`` lower triangular (k, k), kept as the leading block of a
Fortran-ordered (capacity, capacity) buffer whose capacity doubles when it is full, so that
neither an addition nor a removal copies the factor:

* appending a column costs one triangular solve and writes one row, O(k²) flops, O(k) writes;
* deleting column ``i`` shifts the rows/columns after it in place and restores the triangle
  of the trailing block by a rank-one update ``L₃₃' L₃₃'ᵀ = L₃₃ L₃₃ᵀ + l lᵀ`` (``l`` the part
  of column i below the diagonal), i.e. ``k - i - 1`` Givens rotations (Golub & Van Loan
  §6.5.4 / §12.5), in a compiled kernel;
* the triangular solves call BLAS ``dtrsv`` on the leading block in place (leading dimension
  = capacity) through scipy's ``cython_blas`` function pointers; where those cannot be loaded,
  a contiguous copy of the block goes to LAPACK ``dtrtrs`` (same result, O(k²) more memory
  traffic per solve).

The rotations of a deletion can be applied to forward-substituted vectors ``F = L⁻¹ B`` too,
so that a caller keeps ``L⁻¹ B`` up to date without solving again.
"""

from __future__ import annotations

import ctypes
import logging
import math

import numba as nb
import numpy as np
from scipy.linalg.lapack import dtrtrs

__all__ = ["GrowingCholesky"]

logger = logging.getLogger(__name__)


def _load_dtrsv():
    """BLAS ``dtrsv`` from scipy's cython_blas capsule as a ctypes function (or None)."""
    try:
        import scipy.linalg.cython_blas as cython_blas

        capsule = cython_blas.__pyx_capi__["dtrsv"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    except (ImportError, AttributeError, KeyError, ValueError) as err:  # pragma: no cover
        logger.info("BLAS dtrsv not loadable (%s): triangular solves copy the factor", err)
        return None
    c_int_p = ctypes.POINTER(ctypes.c_int)
    # dtrsv(uplo, trans, diag, n, a, lda, x, incx), every argument by reference
    proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, c_int_p,
                             ctypes.c_void_p, c_int_p, ctypes.c_void_p, c_int_p)
    return proto(address)


#: ctypes ``dtrsv`` (None: fall back to ``dtrtrs`` on a copy).
_DTRSV = _load_dtrsv()


@nb.njit(cache=True)
def _delete_in_place(L, k, i, F):  # pragma: no cover - compiled (covered through the tests)
    """Remove row/column ``i`` of the factored matrix from ``L[:k, :k]`` (in place).

    ``F`` (k, m) holds ``L⁻¹ B``; its rows are updated in place to ``L'⁻¹ B'`` in rows
    ``0 … k-2`` (B' is B without row i).  Row and column ``k - 1`` of L are zeroed.
    """
    m = F.shape[1]
    x = L[i + 1:k, i].copy()  # the rank-one update vector
    t = F[i].copy()  # the component of F that the rotations carry along
    for j in range(i):  # columns before i: drop row i
        for r in range(i, k - 1):
            L[r, j] = L[r + 1, j]
    for j in range(i, k - 1):  # columns after i: one left and one up
        for r in range(j, k - 1):
            L[r, j] = L[r + 1, j + 1]
    for r in range(i, k - 1):
        F[r] = F[r + 1]
    for r in range(i, k - 1):  # L33' L33'ᵀ = L33 L33ᵀ + x xᵀ by Givens rotations
        a, b = L[r, r], x[r - i]
        h = math.hypot(a, b)
        if h == 0.0:
            continue
        c, s = a / h, b / h
        L[r, r] = h
        for q in range(r + 1, k - 1):
            lq, xq = L[q, r], x[q - i]
            L[q, r] = c * lq + s * xq
            x[q - i] = c * xq - s * lq
        for n in range(m):
            fr = F[r, n]
            F[r, n] = c * fr + s * t[n]
            t[n] = c * t[n] - s * fr
    for r in range(k):
        L[k - 1, r] = 0.0
        L[r, k - 1] = 0.0


class GrowingCholesky:
    """Updatable lower Cholesky factor of a symmetric positive-definite matrix.

    Parameters
    ----------
    capacity : int
        Initial size of the buffer (it doubles when needed).
    """

    def __init__(self, capacity: int = 64):
        self._buf = np.zeros((max(int(capacity), 1),) * 2, order="F")
        self._k = 0

    @property
    def k(self) -> int:
        return self._k

    @property
    def factor(self) -> np.ndarray:
        """The current factor ``L`` (k, k): a view of the buffer, valid until the next change."""
        return self._buf[: self._k, : self._k]

    def _reserve(self, k: int) -> None:
        cap = self._buf.shape[0]
        if k <= cap:
            return
        while cap < k:
            cap *= 2
        grown = np.zeros((cap, cap), order="F")
        grown[: self._k, : self._k] = self.factor
        self._buf = grown

    def _solve_vector(self, rhs: np.ndarray, trans: int) -> np.ndarray:
        k = self._k
        out = np.array(rhs, dtype=float, order="C")  # a fresh contiguous copy
        if k == 0:
            return out
        if _DTRSV is not None:
            n, lda, one = ctypes.c_int(k), ctypes.c_int(self._buf.shape[0]), ctypes.c_int(1)
            _DTRSV(b"L", b"T" if trans else b"N", b"N", ctypes.byref(n), self._buf.ctypes.data,
                   ctypes.byref(lda), out.ctypes.data, ctypes.byref(one))
            return out
        return self._solve_copy(out, trans)

    def _solve_copy(self, rhs: np.ndarray, trans: int) -> np.ndarray:
        """LAPACK ``dtrtrs`` on a contiguous copy of the factor (the fallback)."""
        out, info = dtrtrs(np.asfortranarray(self.factor), rhs, lower=1, trans=trans)
        if info != 0:  # only for a zero pivot, which append never lets in
            raise RuntimeError(f"LAPACK dtrtrs failed with info={info}")
        return out

    def _trtrs(self, rhs: np.ndarray, trans: int) -> np.ndarray:
        rhs = np.asarray(rhs, dtype=float)
        if rhs.shape[0] != self._k:
            raise ValueError(f"right-hand side has {rhs.shape[0]} rows, the factor {self._k}")
        if rhs.ndim == 2:  # one vector at a time (dtrsv): dtrsm is no faster for 2 columns
            out = np.empty(rhs.shape)
            for m in range(rhs.shape[1]):
                out[:, m] = self._solve_vector(rhs[:, m], trans)
            return out
        return self._solve_vector(rhs, trans)

    def forward(self, rhs: np.ndarray) -> np.ndarray:
        """``L⁻¹ rhs`` for rhs (k,) or (k, m); a new array."""
        return self._trtrs(rhs, 0)

    def backward(self, rhs: np.ndarray) -> np.ndarray:
        """``L⁻ᵀ rhs`` for rhs (k,) or (k, m); a new array."""
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
        k = self._k
        w = self.forward(g_sj)
        pivot = g_jj - float(w @ w)
        rel = pivot / g_jj if g_jj > 0 else 0.0
        if not rel > rel_tol:
            return False, rel
        self._reserve(k + 1)
        self._buf[k, :k] = w
        self._buf[k, k] = np.sqrt(pivot)
        self._k = k + 1
        return True, rel

    def delete(self, i: int, vectors: np.ndarray | None = None) -> np.ndarray | None:
        """Remove row and column ``i`` of the factored matrix.

        ``vectors`` (k, m), if given, holds ``F = L⁻¹ B``; the updated ``L'⁻¹ B'`` (B without
        row i), (k - 1, m), is returned as a new array.
        """
        k = self._k
        if not 0 <= i < k:
            raise IndexError(f"cannot delete column {i} of a factor of size {k}")
        F = np.zeros((k, 0)) if vectors is None else np.array(vectors, dtype=float)
        F = np.ascontiguousarray(F.reshape(k, -1))
        _delete_in_place(self._buf, k, i, F)
        self._k = k - 1
        return None if vectors is None else F[: k - 1]
