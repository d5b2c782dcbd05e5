"""The scaled least-squares problem every solver works on, in Gram form.

The caller's problem is ``min_c ||A c - y||²`` with a smoothness prior γ (a positive vector):
the solvers work on ``Â = A D`` with ``D = diag(d)`` and return ``c = D x̂``.  With the prior
alone ``d = 1/γ`` (solve on ``A Γ⁻¹`` and unscale); with ``normalize=True`` the columns of
``A Γ⁻¹`` are also scaled to unit norm, so ``d_j = 1/||a_j||`` (selection by correlation, as
in the sparse-ACE paper; the prior then drops out of the selection).  All-zero columns get
``d_j = 0`` and are never selected.

``Ĝ = D G D`` is never formed: the path solvers read one column at a time,
``Ĝ[:, j] = d * G[:, j] * d[j]``, so a 5000 × 5000 Gram matrix is not copied.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConvergenceWarning
from ._checks import check_design, check_gram, check_prior

__all__ = ["ScaledGram", "gram_from_design", "blas_guard", "LARGE_FACTOR"]

logger = logging.getLogger(__name__)

#: Above this size dense factorisations run with one BLAS thread: the OpenBLAS bundled with
#: numpy 2.4 segfaults in a Cholesky of n ≈ 18 000 with two threads (see ECOSYSTEM.md).
LARGE_FACTOR = 12_000


def blas_guard(n: int):
    """Context manager: one BLAS thread for a dense factorisation of size ``n`` > LARGE_FACTOR."""
    if n > LARGE_FACTOR:
        logger.info("dense factorisation of size %d: limiting BLAS to one thread", n)
        return threadpool_limits(1, user_api="blas")
    return nullcontext()


def gram_from_design(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``G = AᵀA`` (p, p), ``b = Aᵀy`` (p,), ``yy = yᵀy``; ``A`` is not copied."""
    G = A.T @ A  # numpy calls BLAS syrk here: the result is exactly symmetric
    return G, A.T @ y, float(y @ y)


@dataclass(frozen=True)
class ScaledGram:
    """``Ĝ = D G D``, ``b̂ = D b`` and ``yᵀy`` without forming ``Ĝ``.

    Attributes
    ----------
    G : ndarray (p, p)
        The caller's Gram matrix (read only, never modified).
    b : ndarray (p,)
        Scaled right-hand side ``D Aᵀy``.
    yy : float
        ``yᵀy``.
    n_rows : int
        Number of rows of the design matrix.
    d : ndarray (p,)
        Column scale; caller's coefficients are ``d * x̂``.
    usable : ndarray of bool (p,)
        False for all-zero columns.
    """

    G: np.ndarray
    b: np.ndarray
    yy: float
    n_rows: int
    d: np.ndarray
    usable: np.ndarray

    @classmethod
    def build(cls, G, b, yy, n_rows, prior=None, normalize=True) -> ScaledGram:
        G, b, yy, n_rows = check_gram(G, b, yy, n_rows)
        gamma = check_prior(prior, G.shape[0])
        diag = np.diag(G).copy()
        usable = diag > 1e-300
        if not usable.all():
            warnings.warn(
                f"{int((~usable).sum())} all-zero column(s) (e.g. index "
                f"{int(np.flatnonzero(~usable)[0])}); they are excluded and get coefficient 0",
                ConvergenceWarning, stacklevel=3,
            )
        d = np.zeros_like(diag)
        if normalize:
            d[usable] = 1.0 / np.sqrt(diag[usable])
        else:
            d[usable] = 1.0 if gamma is None else 1.0 / gamma[usable]
        return cls(G=G, b=d * b, yy=yy, n_rows=n_rows, d=d, usable=usable)

    @classmethod
    def from_design(cls, A, y, prior=None, normalize=True) -> ScaledGram:
        A, y = check_design(A, y)
        G, b, yy = gram_from_design(A, y)
        return cls.build(G, b, yy, A.shape[0], prior=prior, normalize=normalize)

    @property
    def p(self) -> int:
        return self.G.shape[0]

    def column(self, j: int) -> np.ndarray:
        """``Ĝ[:, j]`` as a new array (p,)."""
        col = self.G[j] if self.G.flags.c_contiguous else self.G[:, j]
        return self.d * col * self.d[j]

    def diag(self) -> np.ndarray:
        return self.d**2 * np.diag(self.G)

    def unscale(self, x_hat: np.ndarray, support: np.ndarray) -> np.ndarray:
        """Caller's coefficients of the support (same order) from the scaled ones."""
        return self.d[support] * x_hat
