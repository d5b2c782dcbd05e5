"""LASSO homotopy and BPdual: KKT conditions, agreement with lars_path, recovery, degeneracy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import lars_path_gram

from mlip_plugin.errors import ConvergenceWarning
from mlip_plugin.solvers import ActiveSetPursuit, asp_path, asp_path_gram, bpdual, bpdual_gram
from mlip_plugin.solvers.path import by_size


def _normalised(G, b):
    nrm = np.sqrt(np.diag(G))
    safe = np.where(nrm > 0, nrm, 1.0)
    return G / np.outer(safe, safe), b / safe, safe


def kkt_error(G, b, path) -> float:
    """Largest violation of the LASSO optimality conditions over all path points, relative
    to λ₀: |c_S - λ sign(x_S)| on the support and max(|c_j| - λ, 0) off it."""
    Gn, bn, nrm = _normalised(G, b)
    worst = 0.0
    for i in range(len(path)):
        S, lam = path.support(i), path.lambdas[i]
        x = np.zeros(len(b))
        x[S] = path.coef_values(i) * nrm[S]
        c = bn - Gn @ x
        off = np.ones(len(b), dtype=bool)
        off[S] = False
        err_on = np.abs(c[S] - lam * np.sign(x[S])).max() if len(S) else 0.0
        err_off = max(np.abs(c[off]).max() - lam, 0.0) if off.any() else 0.0
        worst = max(worst, err_on, err_off)
    return worst / path.lambdas[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kkt_holds_at_every_breakpoint_and_matches_lars(fx, seed):
    A = fx.design(200, 80, seed=seed, correlation=1.0)
    _, y = fx.planted(A, 12, seed=seed, noise=0.3)
    G, b, yy, n = fx.gram(A, y)
    path = asp_path_gram(G, b, yy, n, 60)
    assert kkt_error(G, b, path) < 1e-8
    assert np.all(np.diff(path.lambdas) < 0)
    _assert_matches_lars(G, b, path)


def _assert_matches_lars(G, b, path):
    """Same breakpoints (λ) and coefficients as scikit-learn's lars_path(method="lasso").

    lars_path stops at alpha <= alpha_min + 1.2e-7 (absolute), so the problem is scaled
    (λ scales with it, coefficients do not) to keep that far below the last λ.
    """
    Gn, bn, nrm = _normalised(G, b)
    scale = 1e3 / path.lambdas[path.lambdas > 0].min()
    alphas, _, coefs = lars_path_gram(bn * scale, Gn * scale, n_samples=1, method="lasso",
                                      alpha_min=path.lambdas[-1] * scale, max_iter=10_000)
    assert len(alphas) == len(path)
    np.testing.assert_allclose(alphas / scale, path.lambdas, rtol=1e-8,
                               atol=1e-10 * path.lambdas[0])
    ours = path.to_sparse().toarray() * nrm[:, None]
    assert np.abs(coefs - ours).max() <= 1e-8 * np.abs(ours).max()


def test_removals_are_handled(fx):
    # strongly correlated columns make coefficients cross zero along the path
    A = fx.design(120, 60, seed=3, correlation=2.0)
    _, y = fx.planted(A, 20, seed=4, noise=0.5)
    G, b, yy, n = fx.gram(A, y)
    path = asp_path_gram(G, b, yy, n, 60)
    assert path.info.n_removed > 0
    assert kkt_error(G, b, path) < 1e-8
    _assert_matches_lars(G, b, path)
    supports = [set(path.support(i)) for i in range(len(path))]
    assert any(not a <= b for a, b in zip(supports, supports[1:]))  # a function left


def test_kkt_and_lars_on_a_real_design(diabetes_poly):
    A, y = diabetes_poly
    G, b = A.T @ A, A.T @ y
    path = asp_path_gram(G, b, y @ y, len(y), 40)
    assert kkt_error(G, b, path) < 1e-8
    assert path.sizes.max() == 40
    _assert_matches_lars(G, b, path)


def test_recovers_a_planted_sparse_signal(fx):
    A = fx.design(200, 120, seed=5, correlation=0.2)
    c, y = fx.planted(A, 6, seed=6)
    path = asp_path(A, y, 10)
    chosen = path.select(by_size(6))
    assert set(chosen.support) == set(np.flatnonzero(c))
    assert np.all(np.sign(chosen.values) == np.sign(c[chosen.support]))
    assert path.sizes[:8].tolist() == list(range(8))  # no removals on the way


def test_least_squares_limit(fx):
    A = fx.design(70, 25, seed=7)
    y = np.random.default_rng(8).standard_normal(70)
    path = asp_path(A, y, 25)
    assert path.info.stop_reason == "lambda_min" and path.lambdas[-1] == 0.0
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(path.coef(-1), ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())


def test_design_form_equals_gram_form(fx):
    A = fx.design(90, 30, seed=9)
    _, y = fx.planted(A, 5, noise=0.2)
    p1, p2 = asp_path(A, y, 15), asp_path_gram(*fx.gram(A, y), 15)
    np.testing.assert_array_equal(p1.indptr, p2.indptr)
    np.testing.assert_allclose(p1.values, p2.values, rtol=1e-9)


def test_bpdual_equals_the_homotopy_between_breakpoints(fx):
    A = fx.design(150, 50, seed=10, correlation=1.0)
    _, y = fx.planted(A, 10, noise=0.3)
    G, b, yy, n = fx.gram(A, y)
    path = asp_path_gram(G, b, yy, n, 50)
    i = len(path) // 2
    t = 0.3  # the path is linear in λ between breakpoints
    lam = (1 - t) * path.lambdas[i] + t * path.lambdas[i + 1]
    expected = (1 - t) * path.coef(i) + t * path.coef(i + 1)
    sol = bpdual_gram(G, b, yy, n, lam)
    assert sol.info.stop_reason == "optimal"
    assert np.abs(sol.coef(0) - expected).max() <= 1e-9 * np.abs(expected).max()
    np.testing.assert_allclose(bpdual(A, y, lam).coef(0), sol.coef(0), rtol=1e-8, atol=1e-12)


def test_prior_weights_the_penalty_without_normalisation(fx):
    A = fx.design(80, 20, seed=11)
    _, y = fx.planted(A, 5, noise=0.1)
    gamma = np.random.default_rng(12).uniform(0.5, 5.0, 20)
    raw = asp_path(A, y, 10, prior=gamma, normalize=False)
    scaled = asp_path(A / gamma, y, 10, normalize=False)
    np.testing.assert_array_equal(raw.indices, scaled.indices)
    np.testing.assert_allclose(raw.values, scaled.values / gamma[scaled.indices], rtol=1e-10)


def test_duplicates_zero_columns_and_rank_deficiency(fx):
    A = fx.design(30, 50, seed=13)  # rank 30 < 50 columns
    A[:, 1] = A[:, 0]  # exact duplicate
    rng = np.random.default_rng(14)
    A[:, 2] = A[:, 0] + 1e-9 * np.linalg.norm(A[:, 0]) * rng.standard_normal(30)  # near dup.
    A[:, 9] = 0.0
    y = A[:, 0] + rng.standard_normal(30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = asp_path(A, y, 50)
    assert any("all-zero" in str(w.message) for w in caught)
    assert np.isfinite(path.values).all() and np.isfinite(path.lambdas).all()
    assert path.sizes.max() <= 30 and 9 not in path.indices
    assert len({0, 1, 2} & set(path.support(-1))) <= 1
    G, b, yy, n = fx.gram(A, y)
    assert kkt_error(G, b, path) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = bpdual_gram(G, b, yy, n, 0.5 * path.lambdas[len(path) // 2])
    assert sol.info.stop_reason == "optimal" and np.isfinite(sol.values).all()
    assert len({0, 1, 2} & set(sol.support(0))) <= 1


def test_max_iter_stops_with_a_warning(fx):
    A = fx.design(60, 30, seed=15)
    _, y = fx.planted(A, 10, noise=0.2)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        path = asp_path(A, y, 30, max_iter=3)
    assert path.info.stop_reason == "max_iter" and len(path) == 4


def test_bpdual_max_iter_returns_the_current_active_set_with_a_warning(fx):
    # the last iteration adds a column after its solve: the coefficients of the previous
    # active set met the new one (a ValueError in the residual instead of the warning)
    A = fx.design(60, 30, seed=15)
    _, y = fx.planted(A, 10, noise=0.2)
    G, b, yy, n = fx.gram(A, y)
    lam = 0.3 * np.abs(b / np.sqrt(np.diag(G))).max()
    full = bpdual_gram(G, b, yy, n, lam)
    assert full.info.stop_reason == "optimal" and full.info.n_iter > 3
    for max_iter in (1, 2, full.info.n_iter - 1):
        with pytest.warns(ConvergenceWarning, match=f"max_iter={max_iter} iterations"):
            sol = bpdual_gram(G, b, yy, n, lam, max_iter=max_iter)
        assert sol.info.stop_reason == "max_iter"
        assert len(sol.support(0)) == len(sol.coef_values(0)) == max_iter
        assert sol.rss[0] == pytest.approx(np.sum((A @ sol.coef(0) - y) ** 2), rel=1e-10)


def test_estimator_and_lambda_min(fx):
    A = fx.design(100, 40, seed=16)
    _, y = fx.planted(A, 6, noise=0.1)
    full = asp_path(A, y, 40)
    lam_min = 0.5 * (full.lambdas[5] + full.lambdas[6])
    est = ActiveSetPursuit(max_active=40, lambda_min=lam_min).fit(A, y)
    assert est.lambda_ == pytest.approx(lam_min)
    assert len(est.path_) == 7 and est.path_.info.stop_reason == "lambda_min"
    est2 = ActiveSetPursuit(max_active=40, lambda_min=lam_min).fit_gram(*fx.gram(A, y))
    np.testing.assert_allclose(est2.coef_, est.coef_, rtol=1e-9)
    np.testing.assert_allclose(est.predict(A), A @ est.coef_)


def test_bpdual_grows_its_storage_beyond_64_active(fx):
    A = fx.design(200, 100, seed=17)
    y = np.random.default_rng(18).standard_normal(200)
    G, b, yy, n = fx.gram(A, y)
    path = asp_path_gram(G, b, yy, n, 100)
    lam = 0.5 * (path.lambdas[-2] + path.lambdas[-1])  # near least squares: ~all active
    sol = bpdual_gram(G, b, yy, n, lam)
    assert len(sol.support(0)) > 64 and sol.info.stop_reason == "optimal"
    t = (path.lambdas[-2] - lam) / (path.lambdas[-2] - path.lambdas[-1])
    expected = (1 - t) * path.coef(-2) + t * path.coef(-1)
    assert np.abs(sol.coef(0) - expected).max() <= 1e-8 * np.abs(expected).max()


def test_cholesky_updates_match_a_fresh_factorisation():
    from mlip_plugin.solvers._cholesky import GrowingCholesky

    rng = np.random.default_rng(19)
    X = rng.standard_normal((40, 12))
    M = X.T @ X
    chol = GrowingCholesky()
    for j in range(12):
        assert chol.append(M[:j, j], M[j, j], 1e-12)[0]
    np.testing.assert_allclose(chol.factor, np.linalg.cholesky(M), rtol=1e-10)
    keep = list(range(12))
    B = rng.standard_normal((12, 2))
    F = chol.forward(B)
    for i in (4, 0, 8):
        F = chol.delete(i, F)
        keep.pop(i)
        B = np.delete(B, i, axis=0)
        np.testing.assert_allclose(chol.factor, np.linalg.cholesky(M[np.ix_(keep, keep)]),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(F, chol.forward(B), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(chol.solve(np.ones(9)), np.linalg.solve(M[np.ix_(keep, keep)],
                                                                       np.ones(9)), rtol=1e-9)
