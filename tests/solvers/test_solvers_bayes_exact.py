"""Evidence maximisation on Gram forms of nearly exact, rank-deficient fits (as ACE gives)."""

from __future__ import annotations

import numpy as np

from mlip_plugin.solvers import bayes


def test_blr_gram_stays_finite_on_an_exact_rank_deficient_fit(rng):
    A = rng.standard_normal((400, 60)) * 10 ** rng.uniform(-8, 4, 60)  # scales as ACE's
    A[:, 59] = A[:, 58] * (1 + 1e-13)  # numerically dependent pair
    x = rng.standard_normal(60)
    y = A @ x  # exact: yᵀy ≫ the residual, as for the energy rows of an ACE fit
    G, b, yy = A.T @ A, A.T @ y, float(y @ y)
    sol = bayes.blr_gram(G, b, yy, len(y))
    assert np.all(np.isfinite(sol.coef))
    assert np.isfinite(sol.noise_precision) and np.all(np.isfinite(sol.weight_precision))
    rel = np.linalg.norm(A @ sol.coef - y) / np.linalg.norm(y)
    assert rel < 1e-6 and sol.info.stop_reason == "converged"
