"""Every bad input raises InputError with a message naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.errors import InputError
from mlip_plugin.solvers import (
    EvidenceSettings,
    ard_gram,
    ard_path_gram,
    asp_path,
    asp_path_gram,
    blr_gram,
    bpdual_gram,
    by_size,
    by_validation,
    by_validation_gram,
    omp_path,
    omp_path_gram,
    ridge,
    ridge_gram,
    rrqr,
    tsvd_debias,
    tsvd_debias_gram,
)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 6))
    y = rng.standard_normal(20)
    return A, y, A.T @ A, A.T @ y, float(y @ y)


@pytest.mark.parametrize("A, y, match", [
    (np.ones((5, 3)), np.ones(4), "A has 5 rows but y has 4"),
    (np.ones(5), np.ones(5), "A must be a 2-d array"),
    (np.ones((5, 3)), np.ones((5, 1)), "y must be a 1-d array"),
    (np.full((5, 3), np.nan), np.ones(5), "A contains 15 NaN"),
    (np.ones((5, 3)), np.array([1, 2, np.inf, 4, 5.0]), "y contains 1 NaN or infinite"),
    (np.ones((0, 3)), np.ones(0), "at least one row"),
    ([["a", "b"]], ["c"], "A must be a numeric array"),
    # complex input lost its imaginary part with only a ComplexWarning
    (np.ones((5, 3)) * 1j, np.ones(5), "A is complex"),
    (np.ones((5, 3)), np.ones(5) + 1j, "y is complex"),
])
def test_bad_design(A, y, match):
    with pytest.raises(InputError, match=match):
        omp_path(A, y, 2)


def test_bad_gram(small):
    A, y, G, b, yy = small
    with pytest.raises(InputError, match="G must be square"):
        omp_path_gram(G[:, :5], b, yy, 20, 2)
    with pytest.raises(InputError, match=r"b must have shape \(6,\)"):
        asp_path_gram(G, b[:5], yy, 20, 2)
    bad = G.copy()
    bad[0, 1] += 1.0
    with pytest.raises(InputError, match="G is not symmetric"):
        omp_path_gram(bad, b, yy, 20, 2)
    neg = G - 2 * np.diag(np.diag(G))
    with pytest.raises(InputError, match="negative diagonal"):
        omp_path_gram(neg, b, yy, 20, 2)
    with pytest.raises(InputError, match="yy=-1.0 must be a finite number >= 0"):
        omp_path_gram(G, b, -1.0, 20, 2)
    with pytest.raises(InputError, match="yy='x' must be a number >= 0"):
        omp_path_gram(G, b, "x", 20, 2)
    with pytest.raises(InputError, match="n_rows=0 must be a positive integer"):
        omp_path_gram(G, b, yy, 0, 2)


def test_bad_settings(small):
    A, y, G, b, yy = small
    with pytest.raises(InputError, match="max_active=0 must be a positive integer"):
        omp_path(A, y, 0)
    with pytest.raises(InputError, match="max_active=True must be a positive integer"):
        asp_path(A, y, True)
    with pytest.raises(InputError, match="on_dependent='ignore' is not one of"):
        omp_path(A, y, 2, on_dependent="ignore")
    with pytest.raises(InputError, match="tol=-1.0 must be a finite number >= 0"):
        omp_path(A, y, 2, tol=-1.0)
    with pytest.raises(InputError, match="lambda_min='low' must be a number"):
        asp_path(A, y, 2, lambda_min="low")
    with pytest.raises(InputError, match="max_iter=0 must be a positive integer"):
        asp_path(A, y, 2, max_iter=0)
    with pytest.raises(InputError, match=r"lam=0.0 must be > 0"):
        bpdual_gram(G, b, yy, 20, 0.0)
    with pytest.raises(InputError, match="alpha=-1 must be a finite number >= 0"):
        ridge(A, y, -1)
    with pytest.raises(InputError, match="rtol=1.5 must be below 1"):
        rrqr(A, y, rtol=1.5)
    with pytest.raises(InputError, match="max_iter=0 must be a positive integer"):
        blr_gram(G, b, yy, 20, settings=EvidenceSettings(max_iter=0))


@pytest.mark.parametrize("solver", [blr_gram, ard_gram, ard_path_gram])
@pytest.mark.parametrize("value", [0.0, -1.0, np.inf])
def test_a_noise_precision_start_must_be_positive(small, solver, value):
    # β = 0 is an infinite noise variance: blr_gram divided by it (ZeroDivisionError)
    A, y, G, b, yy = small
    args = (G, b, yy, 20) + ((3,) if solver is ard_path_gram else ())
    with pytest.raises(InputError, match=f"noise_precision_init={value!r} must be a finite "
                                         "number > 0"):
        solver(*args, noise_precision_init=value)


@pytest.mark.parametrize("prior, match", [
    (np.ones(5), r"prior must have one entry per column, shape \(6,\)"),
    (np.array([1, 1, 1, 0, 1, 1.0]), "prior must be finite and positive"),
    (np.array([1, 1, 1, np.nan, 1, 1.0]), "prior must be finite and positive"),
    # a non-finite entry is named as such (the message gave the smallest finite entry, 1)
    (np.array([1, 1, 1, np.nan, 1, 1.0]), r"1 NaN or infinite entries \(first at index 3\)"),
    (np.array([1, np.inf, 1, 1, 1, 1.0]), r"1 NaN or infinite entries \(first at index 1\)"),
    (np.full(6, np.nan), "6 NaN or infinite entries"),
    (np.array([1, 1, -2, 0, 1, 1.0]), r"smallest entry -2 at index 2"),
])
def test_bad_prior(small, prior, match):
    A, y, G, b, yy = small
    with pytest.raises(InputError, match=match):
        omp_path(A, y, 2, prior=prior)
    with pytest.raises(InputError, match=match):
        ridge_gram(G, b, 1.0, prior=prior)


def test_bad_selection(small):
    A, y, G, b, yy = small
    path = omp_path(A, y, 4)
    with pytest.raises(InputError, match="dependence_tol=2.0 must be below 1"):
        asp_path(A, y, 2, dependence_tol=2.0)
    with pytest.raises(InputError, match="dependence_tol=1 must be below 1"):
        omp_path(A, y, 2, dependence_tol=1)
    with pytest.raises(InputError, match="n=0 must be a positive integer"):
        by_size(0)
    with pytest.raises(InputError, match="rule='best': pass 'final'"):
        path.select("best")
    with pytest.raises(InputError, match="is not a selection rule"):
        path.select(3)
    with pytest.raises(InputError, match="path point 9 out of range; the path has 4 points"):
        path.coef(9)
    with pytest.raises(InputError, match="metric='r2' is not one of"):
        by_validation(A, y, metric="r2")
    with pytest.raises(InputError, match="metric='mae' is not one of"):
        by_validation_gram(G, b, yy, 20, metric="mae")
    with pytest.raises(InputError, match="A_val has 5 columns, the path 6"):
        path.select(by_validation(A[:, :5], y))
    with pytest.raises(InputError, match="G_val is 5-square, the path has 6"):
        path.select(by_validation_gram(G[:5, :5], b[:5], yy, 20))


def test_bad_tsvd(small):
    A, y, G, b, yy = small
    with pytest.raises(InputError, match="support must hold distinct indices in \\[0, 6\\)"):
        tsvd_debias(A, y, [0, 7], A, y)
    with pytest.raises(InputError, match="support must hold distinct indices"):
        tsvd_debias(A, y, [1, 1], A, y)
    with pytest.raises(InputError, match="support must be a non-empty 1-d array"):
        tsvd_debias(A, y, [], A, y)
    with pytest.raises(InputError, match="A_val has 5 columns, A has 6"):
        tsvd_debias(A, y, [0, 1], A[:, :5], y)
    with pytest.raises(InputError, match="G_val is 5-square, G is 6-square"):
        tsvd_debias_gram(G, b, [0, 1], G[:5, :5], b[:5], yy, 20)
    # rtol >= 1 excludes every rank: rank 1 came back with every score inf
    with pytest.raises(InputError, match="rtol=1.0 must be below 1"):
        tsvd_debias(A, y, [0, 1], A, y, rtol=1.0)
    with pytest.raises(InputError, match="rtol=5 must be below 1"):
        tsvd_debias_gram(G, b, [0, 1], G, b, yy, 20, rtol=5)
    Z = A.copy()
    Z[:, :2] = 0.0
    with pytest.raises(InputError, match="every column of the support is zero"):
        tsvd_debias(Z, y, [0, 1], Z, y)
