"""Dense baselines: ridge / QR, RRQR, BLR, ARD, with the smoothness prior."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import ARDRegression, BayesianRidge
from threadpoolctl import threadpool_info

from mlip_plugin.errors import ConvergenceWarning
from mlip_plugin.solvers import (
    EvidenceSettings,
    ard,
    ard_gram,
    blr,
    blr_gram,
    ridge,
    ridge_gram,
    rrqr,
    rrqr_gram,
)
from mlip_plugin.solvers._problem import LARGE_FACTOR, blas_guard


def test_ridge_with_prior_matches_the_normal_equations(fx):
    A = fx.design(90, 30, seed=1)
    y = np.random.default_rng(2).standard_normal(90)
    gamma = np.random.default_rng(3).uniform(0.5, 4.0, 30)
    alpha = 0.7
    # min ||A c - y||² + α ||Γ c||²  <=>  (AᵀA + α Γ²) c = Aᵀy
    ref = np.linalg.solve(A.T @ A + alpha * np.diag(gamma**2), A.T @ y)
    sol_qr = ridge(A, y, alpha, prior=gamma)
    sol_ch = ridge_gram(A.T @ A, A.T @ y, alpha, prior=gamma)
    np.testing.assert_allclose(sol_qr.coef, ref, rtol=1e-8)
    np.testing.assert_allclose(sol_ch.coef, ref, rtol=1e-8)
    assert sol_qr.info.solver == "ridge_qr" and sol_ch.info.solver == "ridge_gram_cholesky"


def test_unregularised_ridge_is_least_squares_and_survives_rank_deficiency(fx):
    A = fx.design(60, 20, seed=4)
    y = np.random.default_rng(5).standard_normal(60)
    np.testing.assert_allclose(ridge(A, y).coef, np.linalg.lstsq(A, y, rcond=None)[0],
                               rtol=1e-8)
    A[:, 3] = A[:, 2]
    with pytest.warns(ConvergenceWarning, match="rank deficient"):
        sol = ridge(A, y)
    np.testing.assert_allclose(sol.coef, np.linalg.pinv(A) @ y, rtol=1e-6, atol=1e-9)
    with pytest.warns(ConvergenceWarning, match="pseudo-inverse"):
        sol_g = ridge_gram(A.T @ A, A.T @ y)
    assert np.isfinite(sol_g.coef).all()
    np.testing.assert_allclose(A @ sol_g.coef, A @ sol.coef, rtol=1e-5, atol=1e-8)


def test_unregularised_ridge_with_fewer_rows_than_columns_is_minimum_norm():
    A = np.random.default_rng(0).standard_normal((3, 6))  # QR's R is 3 x 6, not square
    y = np.ones(3)
    with pytest.warns(ConvergenceWarning, match="rank deficient"):
        sol = ridge(A, y)
    np.testing.assert_allclose(sol.coef, np.linalg.pinv(A) @ y, rtol=1e-10)


def test_rrqr_full_rank_and_rank_deficient(fx):
    A = fx.design(50, 12, seed=6)
    y = np.random.default_rng(7).standard_normal(50)
    full = rrqr(A, y)
    assert full.rank == 12
    np.testing.assert_allclose(full.coef, np.linalg.lstsq(A, y, rcond=None)[0], rtol=1e-8)
    A[:, 5] = 2.0 * A[:, 4]
    A[:, 8] = 0.0
    sol, sol_g = rrqr(A, y, rtol=1e-10), rrqr_gram(A.T @ A, A.T @ y, rtol=1e-7)
    assert sol.rank == sol_g.rank == 10
    assert np.count_nonzero(sol.coef) == 10 and sol.coef[8] == 0
    np.testing.assert_allclose(A @ sol.coef, A @ np.linalg.pinv(A) @ y, rtol=1e-7)
    np.testing.assert_allclose(A @ sol_g.coef, A @ sol.coef, rtol=1e-6)


def test_rrqr_tolerance_truncates_small_directions(fx):
    A = fx.design(80, 15, seed=8, spread=0.0)
    gamma = np.geomspace(1.0, 1e6, 15)  # prior-scaled columns shrink geometrically
    y = np.random.default_rng(9).standard_normal(80)
    r_loose = rrqr(A, y, rtol=1e-3, prior=gamma).rank
    r_tight = rrqr(A, y, rtol=1e-12, prior=gamma).rank
    assert r_loose < r_tight == 15


def _bayes_problem(fx, p=12):
    A = fx.design(150, p, seed=10, spread=0.5)
    c, y = fx.planted(A, 4, seed=11, noise=0.1)
    return A, y


def test_blr_gram_matches_sklearn_bayesian_ridge(fx):
    A, y = _bayes_problem(fx)
    s = EvidenceSettings(tol=1e-12, max_iter=1000)
    ref = BayesianRidge(fit_intercept=False, tol=1e-12, max_iter=1000,
                        alpha_init=len(y) / (y @ y)).fit(A, y)
    ours = blr_gram(A.T @ A, A.T @ y, y @ y, len(y), settings=s)
    np.testing.assert_allclose(ours.coef, ref.coef_, rtol=1e-7)
    assert ours.noise_precision == pytest.approx(ref.alpha_, rel=1e-6)
    assert ours.weight_precision[0] == pytest.approx(ref.lambda_, rel=1e-6)
    wrapped = blr(A, y, settings=s)
    np.testing.assert_allclose(wrapped.coef, ref.coef_, rtol=1e-6)


def test_blr_honours_the_prior(fx):
    A, y = _bayes_problem(fx)
    gamma = np.random.default_rng(12).uniform(0.5, 5.0, A.shape[1])
    s = EvidenceSettings(tol=1e-12, max_iter=1000)
    ours = blr_gram(A.T @ A, A.T @ y, y @ y, len(y), prior=gamma, settings=s)
    scaled = blr_gram((A / gamma).T @ (A / gamma), (A / gamma).T @ y, y @ y, len(y),
                      settings=s)
    np.testing.assert_allclose(ours.coef, scaled.coef / gamma, rtol=1e-10)
    np.testing.assert_allclose(blr(A, y, prior=gamma, settings=s).coef, ours.coef, rtol=1e-5)


def test_ard_gram_matches_sklearn_ard(fx):
    A, y = _bayes_problem(fx)
    s = EvidenceSettings(tol=1e-10, max_iter=500)
    ref = ARDRegression(fit_intercept=False, tol=1e-10, max_iter=500).fit(A, y)
    alpha0 = 1.0 / (np.var(y) + np.finfo(float).eps)  # scikit-learn's starting value
    ours = ard_gram(A.T @ A, A.T @ y, y @ y, len(y), settings=s, noise_precision_init=alpha0)
    np.testing.assert_allclose(ours.coef, ref.coef_, rtol=1e-5, atol=1e-8)
    assert ours.noise_precision == pytest.approx(ref.alpha_, rel=1e-5)
    assert ours.info.n_added == np.count_nonzero(ref.coef_)
    np.testing.assert_allclose(ard(A, y, settings=s).coef, ref.coef_, rtol=1e-10)


def test_bayes_warns_when_not_converged(fx):
    A, y = _bayes_problem(fx)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        sol = blr_gram(A.T @ A, A.T @ y, y @ y, len(y), settings=EvidenceSettings(max_iter=2,
                                                                                 tol=0.0))
    assert sol.info.stop_reason == "max_iter" and np.isfinite(sol.coef).all()


@pytest.mark.parametrize("solver, reference", [(blr, BayesianRidge), (ard, ARDRegression)])
def test_sklearn_wrappers_report_convergence_as_the_gram_forms_do(fx, solver, reference):
    # scikit-learn ends with n_iter_ = max_iter both when its last iteration converged and
    # when none did: the first was reported as "max_iter", the second had no warning
    A, y = _bayes_problem(fx)
    k = reference(fit_intercept=False).fit(A, y).n_iter_
    assert 2 < k < 300
    sol = solver(A, y, settings=EvidenceSettings(max_iter=k))
    assert sol.info.stop_reason == "converged" and sol.info.n_iter == k
    with pytest.warns(ConvergenceWarning, match=f"no convergence in max_iter={k - 1}"):
        sol = solver(A, y, settings=EvidenceSettings(max_iter=k - 1))
    assert sol.info.stop_reason == "max_iter" and sol.info.warnings


def test_blas_guard_limits_threads_only_for_large_factorisations():
    with blas_guard(LARGE_FACTOR + 1):
        assert all(m["num_threads"] == 1 for m in threadpool_info()
                   if m["user_api"] == "blas")
    before = [m["num_threads"] for m in threadpool_info()]
    with blas_guard(10):
        assert [m["num_threads"] for m in threadpool_info()] == before
