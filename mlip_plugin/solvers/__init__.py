"""Linear least-squares solvers and solution paths (arrays in, arrays out).

Every solver minimises ``||A c - y||²`` (rows of A and y already carry the square-root
weights), optionally with a smoothness prior γ (it works on ``A Γ⁻¹`` and returns ``c`` in
the caller's scale), and accepts either the design matrix or its Gram form
(``G = AᵀA``, ``b = Aᵀy``, ``yy = yᵀy``, ``n_rows``) so that streamed Gram matrices can be
fitted without the design matrix.

Paths (sparse models of growing size, :class:`SolutionPath`):
    :func:`omp_path`, :func:`omp_path_gram` — orthogonal matching pursuit;
    :func:`asp_path`, :func:`asp_path_gram` — exact LASSO / BPDN homotopy;
    :func:`bpdual`, :func:`bpdual_gram` — the LASSO at one λ (BPdual active-set method).
Selection along a path: ``path.select(final() | by_size(n) | by_validation(A_val, y_val)
| by_validation_gram(G_val, b_val, yy_val, n_val))``, then :func:`tsvd_debias` /
:func:`tsvd_debias_gram` on the selected support.
Dense baselines (:class:`DenseSolution`): :func:`ridge`, :func:`ridge_gram`, :func:`rrqr`,
:func:`rrqr_gram`, :func:`blr`, :func:`blr_gram`, :func:`ard`, :func:`ard_gram`.
Sequential ARD as a path (Tipping & Faul): :func:`ard_path`, :func:`ard_path_gram`.
"""

from .asp import ActiveSetPursuit, asp_path, asp_path_gram, bpdual, bpdual_gram
from .bayes import EvidenceSettings, ard, ard_gram, blr, blr_gram
from .dense import DenseSolution, ridge, ridge_gram, rrqr, rrqr_gram
from .omp import OrthogonalMatchingPursuit, omp_path, omp_path_gram
from .path import (
    Selection,
    SolutionPath,
    SolverInfo,
    by_size,
    by_validation,
    by_validation_gram,
    final,
    sse_from_gram,
)
from .sbl import ard_path, ard_path_gram
from .tsvd import TSVDResult, tsvd_debias, tsvd_debias_gram

__all__ = [
    "ActiveSetPursuit", "asp_path", "asp_path_gram", "bpdual", "bpdual_gram",
    "EvidenceSettings", "ard", "ard_gram", "blr", "blr_gram", "ard_path", "ard_path_gram",
    "DenseSolution", "ridge", "ridge_gram", "rrqr", "rrqr_gram",
    "OrthogonalMatchingPursuit", "omp_path", "omp_path_gram",
    "Selection", "SolutionPath", "SolverInfo", "by_size", "by_validation",
    "by_validation_gram", "final", "sse_from_gram",
    "TSVDResult", "tsvd_debias", "tsvd_debias_gram",
]
