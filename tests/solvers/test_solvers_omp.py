"""OMP path: agreement with scikit-learn, least-squares limit, recovery, degenerate input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import orthogonal_mp_gram

from mlip_plugin.errors import ConvergenceWarning
from mlip_plugin.solvers import OrthogonalMatchingPursuit, omp_path, omp_path_gram


def _sklearn_path(G, b, k):
    """scikit-learn's OMP path on the column-normalised Gram matrix, in the caller's scale:
    the order in which functions joined and the (p, k) coefficients."""
    nrm = np.sqrt(np.diag(G))
    C = orthogonal_mp_gram(G / np.outer(nrm, nrm), b / nrm, n_nonzero_coefs=k,
                           return_path=True)
    C = C.reshape(len(G), -1) / nrm[:, None]
    order, seen = [], set()
    for step in range(C.shape[1]):
        new = set(np.flatnonzero(C[:, step])) - seen
        assert len(new) == 1
        order += list(new)
        seen |= new
    return np.array(order), C


def _assert_same_path(path, order, C):
    assert len(path) == C.shape[1]
    for k in range(len(path)):
        np.testing.assert_array_equal(path.support(k), order[: k + 1])
        ref = C[:, k]
        assert np.abs(path.coef(k) - ref).max() <= 1e-8 * np.abs(ref).max()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_omp_matches_sklearn_on_random_designs(fx, seed):
    A = fx.design(300, 120, seed=seed)
    _, y = fx.planted(A, 15, seed=seed, noise=0.05)
    G, b, yy, n = fx.gram(A, y)
    path = omp_path_gram(G, b, yy, n, 60)
    _assert_same_path(path, *_sklearn_path(G, b, 60))
    assert path.info.stop_reason == "max_active" and path.info.n_added == 60


def test_omp_matches_sklearn_on_a_real_design(diabetes_poly):
    A, y = diabetes_poly
    G, b = A.T @ A, A.T @ y
    path = omp_path_gram(G, b, y @ y, len(y), 40)
    _assert_same_path(path, *_sklearn_path(G, b, 40))


def test_design_form_equals_gram_form_and_rss_is_the_residual(fx):
    A = fx.design(200, 60, seed=3)
    _, y = fx.planted(A, 8, noise=0.1)
    p1 = omp_path(A, y, 20)
    p2 = omp_path_gram(*fx.gram(A, y), 20)
    np.testing.assert_array_equal(p1.indices, p2.indices)
    np.testing.assert_allclose(p1.values, p2.values, rtol=1e-10)
    for k in range(len(p1)):
        r = A @ p1.coef(k) - y
        assert p1.rss[k] == pytest.approx(r @ r, rel=1e-8, abs=1e-10 * (y @ y))


def test_least_squares_limit_and_tolerance(fx):
    A = fx.design(80, 30, seed=4)
    y = np.random.default_rng(5).standard_normal(80)
    path = omp_path(A, y, 30)
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(path.coef(-1), ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())
    target = 0.5 * (path.rss[4] + path.rss[5])
    short = omp_path(A, y, 30, tol=target)
    assert len(short) == 6 and short.info.stop_reason == "tol"
    assert short.rss[-1] <= target < short.rss[-2]


def test_recovers_a_planted_sparse_signal(fx):
    A = fx.design(150, 300, seed=6, correlation=0.2)
    c, y = fx.planted(A, 10, seed=7)
    path = omp_path(A, y, 10)
    assert set(path.support(-1)) == set(np.flatnonzero(c))
    np.testing.assert_allclose(path.coef(-1), c, rtol=1e-8, atol=1e-12)


def test_small_signal_beside_a_large_explained_part_is_still_fitted(fx):
    # One column explains a part of y 1e9 times larger than the rest (like total energies
    # fitted without E0): the small planted coefficients are far above rounding noise and
    # must still enter (a threshold of sqrt(eps) |y| stopped after the first column); once
    # y is fitted exactly the rest is rounding noise and the path stops there.
    A = fx.design(150, 60, seed=11)
    c, y = fx.planted(A, 6, seed=12)
    c[0] = 0.0
    y = A @ c
    big = 1e9 * np.linalg.norm(y) / np.linalg.norm(A[:, 0])
    path = omp_path(A, y + big * A[:, 0], 10)
    assert len(path) == 7 and path.info.stop_reason == "orthogonal"
    assert set(np.flatnonzero(c)) | {0} == set(path.support(6))
    np.testing.assert_allclose(path.coef(6)[1:], c[1:], atol=1e-6 * np.abs(c).max())


def test_prior_only_matters_without_normalisation(fx):
    A = fx.design(120, 40, seed=8)
    _, y = fx.planted(A, 6, noise=0.1)
    gamma = np.random.default_rng(9).uniform(0.5, 20.0, 40)
    plain = omp_path(A, y, 12)
    np.testing.assert_array_equal(omp_path(A, y, 12, prior=gamma).indices, plain.indices)
    raw = omp_path(A, y, 12, prior=gamma, normalize=False)
    scaled = omp_path(A / gamma, y, 12, normalize=False)
    np.testing.assert_array_equal(raw.indices, scaled.indices)
    np.testing.assert_allclose(raw.values, scaled.values / gamma[scaled.indices], rtol=1e-10)



@pytest.mark.parametrize("scale", [1e-13, 1e-15])
def test_the_rounding_stop_does_not_depend_on_the_units_of_the_columns(fx, scale):
    # Without normalisation the column norms carry the units of A Γ⁻¹ (a large smoothness
    # prior makes them tiny): the path must be the same as for A itself, with coefficients
    # scaled by 1/scale.  An absolute bound on |âᵀr| called tiny columns "orthogonal" to a
    # residual that was nowhere near zero and stopped the path early.
    A = fx.design(80, 40, seed=8, spread=0.5)
    _, y = fx.planted(A, 30, noise=0.1)
    ref = omp_path(A, y, 30, normalize=False)
    small = omp_path(A * scale, y, 30, normalize=False)
    assert ref.info.stop_reason == small.info.stop_reason == "max_active"
    np.testing.assert_array_equal(small.indices, ref.indices)
    np.testing.assert_allclose(small.values * scale, ref.values, rtol=1e-9)
    np.testing.assert_allclose(small.rss, ref.rss, rtol=1e-9)

def test_read_only_inputs_are_untouched(fx):
    A = fx.design(100, 30, seed=10)
    _, y = fx.planted(A, 5)
    G, b, yy, n = fx.gram(A, y)
    copies = G.copy(), b.copy()
    for arr in (G, b):
        arr.setflags(write=False)
    omp_path_gram(G, b, yy, n, 10)
    np.testing.assert_array_equal(G, copies[0])
    np.testing.assert_array_equal(b, copies[1])


def test_dependent_column_warns_and_stops_or_skips(fx):
    # neighbouring columns are strongly correlated: with a large dependence_tol the
    # detection triggers on ordinary data, which exercises both reactions
    A = fx.design(100, 20, seed=11, correlation=1.0)
    _, y = fx.planted(A, 10, noise=0.1)
    with pytest.warns(ConvergenceWarning, match="numerically dependent"):
        path = omp_path(A, y, 20, dependence_tol=0.9)
    assert path.info.stop_reason == "dependent" and path.info.warnings
    assert np.isfinite(path.values).all()
    with pytest.warns(ConvergenceWarning, match="skipping"):
        skip = omp_path(A, y, 20, dependence_tol=0.9, on_dependent="skip")
    assert skip.info.n_skipped >= 1 and len(skip) > len(path)
    assert np.isfinite(skip.values).all()


def test_near_duplicate_columns_never_enter_together(fx):
    A = fx.design(60, 20, seed=16)
    rng = np.random.default_rng(17)
    A[:, 5] = 3.0 * A[:, 4] * (1.0 + 1e-10 * rng.standard_normal(60))
    y = A @ rng.standard_normal(20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = omp_path(A, y, 20)
    assert not {4, 5} <= set(path.support(-1))
    assert np.isfinite(path.values).all() and len(path) <= 19


def test_duplicate_zero_columns_and_rank_deficiency_stay_finite(fx):
    A = fx.design(25, 40, seed=13)  # more columns than rows: rank 25
    A[:, 3] = A[:, 2]  # exact duplicate
    A[:, 7] = 0.0  # all-zero column
    y = np.random.default_rng(14).standard_normal(25)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = omp_path(A, y, 40)
    messages = " ".join(str(w.message) for w in caught)
    assert "all-zero" in messages
    assert np.isfinite(path.values).all() and np.isfinite(path.rss).all()
    assert len(path) <= 25 and 7 not in path.support(-1)
    assert not {2, 3} <= set(path.support(-1))
    assert path.info.stop_reason in {"dependent", "orthogonal"}


def test_estimator_wraps_the_path(fx):
    A = fx.design(90, 25, seed=15)
    _, y = fx.planted(A, 4, noise=0.01)
    est = OrthogonalMatchingPursuit(max_active=8).fit(A, y)
    np.testing.assert_array_equal(est.active_, omp_path(A, y, 8).support(-1))
    np.testing.assert_allclose(est.predict(A), A @ est.coef_)
    est2 = OrthogonalMatchingPursuit(max_active=8).fit_gram(*fx.gram(A, y))
    np.testing.assert_allclose(est2.coef_, est.coef_, rtol=1e-10)
    assert est.n_iter_ == 8
