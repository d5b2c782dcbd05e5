"""Selection along a path and TSVD de-biasing."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.errors import InputError
from mlip_plugin.solvers import (
    SolutionPath,
    SolverInfo,
    asp_path,
    by_size,
    by_validation,
    by_validation_gram,
    final,
    omp_path,
    sse_from_gram,
    tsvd_debias,
    tsvd_debias_gram,
)


@pytest.fixture(scope="module")
def split_problem():
    """Training and validation rows of one noisy sparse problem."""
    rng = np.random.default_rng(21)
    n, p = 260, 50
    Z = rng.standard_normal((n, p + 1))
    A = (Z[:, 1:] + 0.8 * Z[:, :-1]) * 10.0 ** rng.uniform(-1, 1, p)
    c = np.zeros(p)
    c[rng.choice(p, 8, replace=False)] = rng.uniform(1, 2, 8)
    c /= np.where(c != 0, np.linalg.norm(A, axis=0), 1.0)
    y = A @ c + 0.05 * rng.standard_normal(n)
    return A[:200], y[:200], A[200:], y[200:]


def test_sparse_storage_and_rules(split_problem):
    A, y, _, _ = split_problem
    path = omp_path(A, y, 20)
    assert path.to_sparse().shape == (50, 20)
    np.testing.assert_array_equal(path.to_sparse().toarray()[:, 7], path.coef(7))
    assert path.sizes.tolist() == list(range(1, 21))
    sel = path.select(final())
    assert sel.index == 19 and sel.rule == "final"
    np.testing.assert_array_equal(path.select("final").coef, path.coef(-1))
    sel = path.select(by_size(5))
    assert sel.index == 4 and len(sel.support) == 5
    np.testing.assert_array_equal(sel.coef, path.coef(4))


def test_by_size_on_a_homotopy_path_stops_before_exceeding_n(split_problem):
    A, y, _, _ = split_problem
    path = asp_path(A, y, 30)
    sel = path.select(by_size(10))
    assert len(sel.support) <= 10
    assert path.sizes[: sel.index + 1].max() <= 10 and path.sizes[sel.index + 1] > 10


def test_by_size_below_the_smallest_model_of_a_path_is_refused():
    # a path of chosen model sizes (as the benchmarks build from RRQR pivots) starts above
    # 1 function: by_size(n) below its first size returned the last, largest model
    supports = [np.array([3, 1]), np.array([3, 1, 4]), np.array([3, 1, 4, 0, 2])]
    path = SolutionPath(n_features=6, indptr=np.array([0, 2, 5, 10]),
                        indices=np.concatenate(supports),
                        values=np.arange(1.0, 11.0), rss=np.zeros(3), lambdas=None,
                        info=SolverInfo(solver="pivots", n_iter=3, stop_reason="max_active"))
    assert path.select(by_size(2)).index == 0
    assert path.select(by_size(4)).index == 1
    assert path.select(by_size(9)).index == 2
    with pytest.raises(InputError, match=r"by_size\(1\): the path has no point with at "
                                         r"most 1 functions \(its first has 2\)"):
        path.select(by_size(1))


def test_by_validation_is_the_brute_force_minimum(split_problem):
    A, y, A_val, y_val = split_problem
    path = omp_path(A, y, 30)
    rmse = [np.sqrt(np.mean((A_val @ path.coef(i) - y_val) ** 2)) for i in range(len(path))]
    mae = [np.mean(np.abs(A_val @ path.coef(i) - y_val)) for i in range(len(path))]
    sel = path.select(by_validation(A_val, y_val))
    assert sel.index == int(np.argmin(rmse))
    np.testing.assert_allclose(sel.scores, rmse, rtol=1e-10)
    assert path.select(by_validation(A_val, y_val, "mae")).index == int(np.argmin(mae))
    gram_sel = path.select(by_validation_gram(A_val.T @ A_val, A_val.T @ y_val,
                                              y_val @ y_val, len(y_val)))
    assert gram_sel.index == sel.index
    np.testing.assert_allclose(gram_sel.scores, rmse, rtol=1e-6)
    assert 5 <= sel.index < 29  # noise makes the largest model overfit


def test_sse_from_gram(split_problem):
    A, y, _, _ = split_problem
    S, v = np.array([3, 7, 11]), np.array([0.5, -1.0, 2.0])
    r = A[:, S] @ v - y
    assert sse_from_gram(A.T @ A, A.T @ y, y @ y, S, v) == pytest.approx(r @ r, rel=1e-10)


def test_tsvd_full_rank_is_least_squares_on_the_support(split_problem):
    A, y, A_val, y_val = split_problem
    S = np.array([1, 4, 9, 16, 25])
    res = tsvd_debias(A, y, S, A_val, y_val)
    ls = np.linalg.lstsq(A[:, S], y, rcond=None)[0]
    rank_k = tsvd_debias(A, y, S, A, y)  # validating on training data picks full rank
    assert rank_k.rank == len(S)
    np.testing.assert_allclose(rank_k.values, ls, rtol=1e-9)
    assert res.scores[res.rank - 1] == res.scores.min()
    assert res.info.solver == "tsvd" and res.info.n_iter == len(S)
    assert res.coef.shape == (50,) and np.all(res.coef[np.setdiff1d(np.arange(50), S)] == 0)


def test_tsvd_gram_form_agrees_with_design_form(split_problem):
    A, y, A_val, y_val = split_problem
    rng = np.random.default_rng(22)
    S = np.sort(rng.choice(50, 25, replace=False))
    gamma = rng.uniform(0.5, 3.0, 50)
    ref = tsvd_debias(A, y, S, A_val, y_val, prior=gamma)
    res = tsvd_debias_gram(A.T @ A, A.T @ y, S, A_val.T @ A_val, A_val.T @ y_val,
                           y_val @ y_val, len(y_val), prior=gamma)
    assert res.rank == ref.rank
    np.testing.assert_allclose(res.singular_values, ref.singular_values, rtol=1e-8)
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-6)
    np.testing.assert_allclose(res.values, ref.values, rtol=1e-6)


def test_tsvd_truncation_regularises_a_near_singular_support():
    rng = np.random.default_rng(23)
    A = rng.standard_normal((120, 6))
    A[:, 5] = A[:, 4] + 1e-6 * rng.standard_normal(120)  # almost a duplicate
    c = np.array([1.0, -1.0, 0.5, 0.0, 1.0, 0.0])
    y = A @ c + 0.1 * rng.standard_normal(120)
    res = tsvd_debias(A[:80], y[:80], np.arange(6), A[80:], y[80:])
    assert res.rank == 5
    assert np.abs(res.values).max() < 5  # least squares blows up along the tiny direction
    assert np.abs(np.linalg.lstsq(A[:80], y[:80], rcond=None)[0]).max() > 100


def test_zero_target_gives_empty_models(split_problem):
    from mlip_plugin.errors import InputError
    from mlip_plugin.solvers import ActiveSetPursuit, OrthogonalMatchingPursuit

    A = split_problem[0]
    y = np.zeros(len(A))
    omp = OrthogonalMatchingPursuit(max_active=5).fit(A, y)
    assert len(omp.path_) == 0 and omp.path_.info.stop_reason == "orthogonal"
    assert np.all(omp.coef_ == 0) and len(omp.active_) == 0
    with pytest.raises(InputError, match="the path is empty"):
        omp.path_.select(final())
    asp = ActiveSetPursuit(max_active=5).fit(A, y)
    assert asp.path_.info.stop_reason == "zero_correlation" and len(asp.path_) == 1
    assert np.all(asp.coef_ == 0) and asp.lambda_ == 0.0


def test_validation_from_gram_equals_rows_on_a_long_homotopy_path(split_problem):
    A, y, A_val, y_val = split_problem
    path = asp_path(A, y, 50)
    assert len(path) > 40  # two chunks of the Gram evaluation
    rows = path.select(by_validation(A_val, y_val, metric="sse"))
    gram = path.select(by_validation_gram(A_val.T @ A_val, A_val.T @ y_val, y_val @ y_val,
                                          len(y_val), metric="sse"))
    assert gram.index == rows.index
    np.testing.assert_allclose(gram.scores, rows.scores, rtol=1e-7, atol=1e-9 * (y_val @ y_val))


def test_tsvd_gram_keeps_an_informative_direction_near_the_rounding_level():
    # a support whose prior-scaled Gram matrix has σ_k/σ_1 ≈ 3e-8 (as on the Zuo data at
    # 1000 functions), and the target needs that direction: validation keeps full rank
    rng = np.random.default_rng(3)
    A = rng.standard_normal((300, 5))
    gamma = np.array([1.0, 1.0, 1.0, 1.0, 3e7])
    y = A @ np.array([1.0, -0.5, 0.3, 0.2, 1.0]) + 1e-6 * rng.standard_normal(300)
    tr, va = slice(0, 200), slice(200, 300)
    G, b = A[tr].T @ A[tr], A[tr].T @ y[tr]
    Gv, bv, yyv = A[va].T @ A[va], A[va].T @ y[va], float(y[va] @ y[va])
    res = tsvd_debias_gram(G, b, np.arange(5), Gv, bv, yyv, 100, prior=gamma)
    assert res.singular_values[-1] / res.singular_values[0] < 1e-7
    assert res.rank == 5
    assert res.scores[4] < 1e-3 * res.scores[3]
    np.testing.assert_allclose(res.values[4], 1.0, rtol=1e-3)
