"""Preconditioner building blocks against independent references: the incomplete Cholesky
against LAPACK's pivoted Cholesky (dpstrf), the approximate ridge leverage scores against the
exact ones, and the rule-of-thumb calibration's handling of runs that do not converge."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
from scipy.linalg.lapack import dpstrf

from mlip_plugin.errors import InputError
from mlip_plugin.kernels import GDMLOperator, calibrate_rule_of_thumb, incomplete_cholesky
from mlip_plugin.kernels import rule as rule_mod
from mlip_plugin.kernels.preconditioners import (
    leverage_factor,
    leverage_scores,
    nystrom_factor,
    ridge_leverage_scores,
    uniform_factor,
)


@pytest.mark.parametrize("block", [1, 64])
def test_incomplete_cholesky_matches_lapack_pivoted_cholesky(ethanol, block):
    R = ethanol[0][:20]
    op = GDMLOperator(R, 20.0)
    K = op.dense()
    k = 150  # below the rank 21 · 20 = 420 of K (inverse distances have 21 dof per frame)
    C, piv, rank, _ = dpstrf(K.copy(), lower=1)
    assert rank == 420
    piv = piv - 1
    f = incomplete_cholesky(op, k, block=block)
    assert f.inducing.tolist() == piv[:k].tolist()
    # dpstrf: P^T K P = C C^T, so row i of C belongs to the original index piv[i].
    L = np.zeros((op.n, k))
    L[piv] = np.tril(C)[:, :k]
    assert np.abs(f.Lt.T - L).max() <= 1e-10 * np.abs(L).max()


def exact_ridge_leverage(K: np.ndarray, mu: float) -> np.ndarray:
    e, U = np.linalg.eigh(K)
    e = np.maximum(e, 0.0)
    return (U**2 * (e / (e + mu))).sum(1)


def test_ridge_leverage_scores_bound_the_exact_ones(make_molecule, rng):
    R, _ = make_molecule(12, seed=3)
    op = GDMLOperator(R, 2.0)
    K = op.dense()
    for mu in (1e-6, 1e-3):
        exact = exact_ridge_leverage(K, mu)
        full = ridge_leverage_scores(op, np.arange(op.n), mu)
        assert np.allclose(full, exact, rtol=1e-6, atol=1e-8)
        part = ridge_leverage_scores(op, rng.choice(op.n, 40, replace=False), mu)
        assert np.all(part >= exact - 1e-8) and part.sum() > exact.sum() + 1.0


def test_leverage_scores_sum_to_k_with_matching_ridge(make_molecule, rng):
    R, _ = make_molecule(12, seed=5)
    op = GDMLOperator(R, 2.0)
    k = 30
    ell = leverage_scores(op, k, rng, sketch=op.n)
    assert abs(ell.sum() - k) <= 1e-6 * k
    e = np.maximum(np.linalg.eigvalsh(op.dense()), 0.0)
    lo, hi = -60.0, 10.0  # the μ at which the exact effective dimension is k
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (e / (e + np.exp(mid))).sum() > k else (lo, mid)
    assert np.allclose(ell, exact_ridge_leverage(op.dense(), np.exp(hi)), atol=1e-6)


def test_leverage_factor_is_the_nystrom_factor_of_its_columns(make_molecule):
    """The factor built from the sketch's reused kernel rows equals a fresh Nyström factor on
    the same k distinct columns, half of which (the sketch) are the uniform draw; it costs k
    kernel rows, as many as k uniform columns."""
    R, _ = make_molecule(12, seed=7)
    op = GDMLOperator(R, 2.0)
    rows, counted = [], op.rows
    op.rows = lambda idx: (rows.append(len(idx)), counted(idx))[1]
    for k in (1, 2, 31, 60):
        rows.clear()
        f = leverage_factor(op, k, np.random.default_rng(4))
        assert sum(rows) == k  # the sketch's rows serve the scores and the factor
        assert f.k == k and len(set(f.inducing.tolist())) == k
        assert f.inducing.tolist() == sorted(f.inducing.tolist())
        ref = nystrom_factor(op, f.inducing, "reference")
        assert np.abs(f.Lt - ref.Lt).max() <= 1e-10 * np.abs(ref.Lt).max()
        sketch = np.random.default_rng(4).choice(op.n, size=k - k // 2, replace=False)
        assert set(sketch.tolist()) <= set(f.inducing.tolist())


def test_leverage_columns_go_where_the_sketch_approximates_poorly(make_molecule):
    """The second half of the leverage columns lowers the Nyström error more than uniform
    columns do: over 8 seeds, both the trace and the spectral norm of K - L Lᵀ are smaller
    than those of k uniform columns (same sketch seeds), and every second-stage column lies
    where the sketch's residual diagonal is non-zero."""
    R, _ = make_molecule(40, seed=2, scale=0.2)
    op = GDMLOperator(R, 1.0)
    K = op.dense()
    k = 40

    def errors(f):
        E = K - f.Lt.T @ f.Lt
        return np.trace(E), np.linalg.eigvalsh(E)[-1]

    lev = np.array([errors(leverage_factor(op, k, np.random.default_rng(s))) for s in range(8)])
    uni = np.array([errors(uniform_factor(op, k, np.random.default_rng(s))) for s in range(8)])
    assert np.all(lev.mean(0) < 0.9 * uni.mean(0))
    f = leverage_factor(op, k, np.random.default_rng(0))
    sketch = np.random.default_rng(0).choice(op.n, size=k - k // 2, replace=False)
    half = nystrom_factor(op, sketch, "sketch")
    resid = np.diag(K) - (half.Lt**2).sum(0)
    second = np.setdiff1d(f.inducing, sketch)
    assert np.all(resid[second] > 1e-8 * np.diag(K).max())


def stalling_pcg(n_fail: int, real=rule_mod.pcg):
    """``pcg`` whose first ``n_fail`` calls report non-convergence at maxiter."""
    calls = []

    def fake(matvec, y, precond=None, *, tol, maxiter):
        res = real(matvec, y, precond, tol=tol, maxiter=maxiter)
        calls.append(1)
        return replace(res, converged=False, n_iter=maxiter) if len(calls) <= n_fail else res

    return fake


def test_calibration_leaves_out_runs_that_did_not_converge(ethanol, monkeypatch, caplog):
    R, _, _, F = ethanol
    ks = [40, 80, 160]
    ref = calibrate_rule_of_thumb(R[:15], F[:15], 20.0, 1e-6, n_frames=15, ks=ks, tol=1e-4)
    monkeypatch.setattr(rule_mod, "pcg", stalling_pcg(1))
    with caplog.at_level(logging.WARNING, logger="mlip_plugin.kernels.rule"):
        fit = calibrate_rule_of_thumb(R[:15], F[:15], 20.0, 1e-6, n_frames=15, ks=ks,
                                      tol=1e-4)
    assert "k=40 did not converge" in caplog.text
    assert fit.ks.tolist() == [80, 160]
    assert fit.iterations.tolist() == ref.iterations.tolist()[1:]
    slope = np.polyfit(np.log([80, 160]), np.log(ref.iterations[1:]), 1)[0]
    assert fit.m == pytest.approx(-slope)


def test_calibration_needs_two_converged_runs(ethanol, monkeypatch):
    R, _, _, F = ethanol
    monkeypatch.setattr(rule_mod, "pcg", stalling_pcg(2))
    with pytest.raises(InputError, match="fewer than two of the ranks converged"):
        calibrate_rule_of_thumb(R[:10], F[:10], 20.0, 1e-6, n_frames=10, ks=[20, 40, 80],
                                tol=1e-4)


def test_rule_fit_law_at_other_sizes():
    """The law t(k; n) = n_sub (k_min / k)^m (n / n_sub)^a written out; a = 1 is the paper's
    (the same k_min at every n)."""
    fit = rule_mod.RuleFit(m=1.3, k_min=20.0, ks=np.array([10, 20]), iterations=np.array([9, 4]),
                           n_sub=400, n_exponent=0.6)
    for n in (400, 1000, 8100):
        for k in (10, 50, 300):
            assert fit.iterations_at(k, n) == pytest.approx(
                400 * (20.0 / k) ** 1.3 * (n / 400) ** 0.6, rel=1e-12)
        assert fit.k(n) == rule_mod.rule_of_thumb_k(n, 1.3, fit.k_min_at(n))
    assert fit.k_min_at(400) == pytest.approx(20.0)
    assert fit.k_min_at(8100) < 20.0  # slower growth than n: a smaller k_min at larger n
    paper = replace(fit, n_exponent=1.0)
    assert paper.k_min_at(8100) == 20.0 and paper.k(8100) == rule_mod.rule_of_thumb_k(
        8100, 1.3, 20.0)
    with pytest.raises(InputError, match="system size n=0"):
        fit.k_min_at(0)


def test_calibration_on_two_sizes_predicts_a_larger_system(ethanol):
    """The growth with n fitted on 15 + 30 frames predicts the PCG iterations at 60 frames
    better than the paper's t ∝ n from the 15 frames alone (rMD17 ethanol grows like n^0.5)."""
    from mlip_plugin.kernels.preconditioners import WoodburyPreconditioner
    from mlip_plugin.kernels.solve import pcg

    R, _, _, F = ethanol
    R, F, lam = R[:60], F[:60], 1e-6
    fit = calibrate_rule_of_thumb(R, F, 20.0, lam, n_frames=15, tol=1e-4)
    one = calibrate_rule_of_thumb(R, F, 20.0, lam, n_frames=15, tol=1e-4, second_frames=15)
    assert 0 < fit.n_exponent < 1 and one.n_exponent == 1.0
    assert set(fit.sizes.tolist()) == {405, 810} and set(one.sizes.tolist()) == {405}
    op = GDMLOperator(R, 20.0)
    err_two = err_one = 0.0
    for k in (op.n // 40, op.n // 20, op.n // 10):
        P = WoodburyPreconditioner(incomplete_cholesky(op, k), lam)
        res = pcg(lambda v: op.matvec(v) + lam * v, F.reshape(-1), P, tol=1e-4, maxiter=op.n)
        assert res.converged
        err_two += abs(np.log(fit.iterations_at(k, op.n) / res.n_iter))
        err_one += abs(np.log(one.iterations_at(k, op.n) / res.n_iter))
    assert err_two < 0.6 * err_one


def test_calibration_keeps_the_paper_law_without_a_second_size(ethanol, monkeypatch, caplog):
    """No converged run on the second subset: a = 1 and the first subset's fit, logged.
    (The first subset's runs come first: a failing first subset stops before the second.)"""
    R, _, _, F = ethanol
    ks = [40, 80, 160]
    ref = calibrate_rule_of_thumb(R[:60], F[:60], 20.0, 1e-6, n_frames=15, ks=ks, tol=1e-4,
                                  second_frames=15)
    monkeypatch.setattr(rule_mod, "pcg", stalling_pcg_after(len(ks)))
    with caplog.at_level(logging.WARNING, logger="mlip_plugin.kernels.rule"):
        fit = calibrate_rule_of_thumb(R[:60], F[:60], 20.0, 1e-6, n_frames=15, ks=ks,
                                      tol=1e-4)
    assert "0 of the ranks converged on the second subset (30 frames)" in caplog.text
    assert fit.n_exponent == 1.0 and fit.ks.tolist() == ks
    assert fit.m == pytest.approx(ref.m) and fit.k_min == pytest.approx(ref.k_min)


def stalling_pcg_after(n_ok: int, real=rule_mod.pcg):
    """``pcg`` that reports non-convergence at maxiter after its first ``n_ok`` calls."""
    calls = []

    def fake(matvec, y, precond=None, *, tol, maxiter):
        res = real(matvec, y, precond, tol=tol, maxiter=maxiter)
        calls.append(1)
        return res if len(calls) <= n_ok else replace(res, converged=False, n_iter=maxiter)

    return fake


def exact_law_runs(a: float, m: float, c: float, seen: list, converged=lambda n, k: True):
    """``_subset_runs`` whose iterations follow ``exp(c) n^a k^-m`` exactly (rounded); the
    ranks asked for at each size are kept in ``seen``."""

    def fake(op, y, lam, ks, tol):
        seen.append((op.n, list(ks)))
        ok = [k for k in ks if converged(op.n, k)]
        iters = [int(round(np.exp(c) * op.n**a * k ** -m)) for k in ok]
        return rule_mod._Runs(ks=ok, iterations=iters, build=[1e-7 * k * op.n for k in ok],
                              apply=[1e-9 * k * op.n + 1e-8 * op.n for k in ok],
                              product=1e-7 * op.n)

    return fake


def test_calibration_recovers_an_exact_growth_law(ethanol, monkeypatch):
    """Iterations exp(c) n^a k^-m on the two subsets give back (a, m) and the k_min of the law
    at n_sub, and the second subset tries the first's ranks scaled by its size."""
    R, _, _, F = ethanol
    seen: list = []
    monkeypatch.setattr(rule_mod, "_subset_runs", exact_law_runs(0.6, 1.2, 9.0, seen))
    fit = calibrate_rule_of_thumb(R[:200], F[:200], 20.0, 1e-6, n_frames=20, ks=[10, 20, 40],
                                  tol=1e-4)
    assert seen == [(540, [10, 20, 40]), (1080, [20, 40, 80])]
    assert fit.n_exponent == pytest.approx(0.6, abs=2e-3)
    assert fit.m == pytest.approx(1.2, abs=2e-3)
    n_sub = 540  # n_sub (k_min / k)^m = exp(c) n_sub^a k^-m
    assert fit.k_min == pytest.approx((np.exp(9.0) * n_sub ** (0.6 - 1)) ** (1 / 1.2), rel=5e-3)
    assert fit.iterations_at(100, 5400) == pytest.approx(np.exp(9.0) * 5400**0.6 * 100**-1.2,
                                                         rel=5e-3)
    assert fit.sizes.tolist() == [540] * 3 + [1080] * 3


@pytest.mark.parametrize("law, converged, message", [
    ((3.0, 1.0, 2.0), lambda n, k: True, "fitted to a=3"),  # implausible growth
    ((0.6, 1.2, 9.0), lambda n, k: n == 540 or k == 20, "1 of the ranks converged on the "
     "second subset"),
])
def test_calibration_falls_back_to_the_paper_law(ethanol, monkeypatch, caplog, law, converged,
                                                  message):
    R, _, _, F = ethanol
    seen: list = []
    monkeypatch.setattr(rule_mod, "_subset_runs", exact_law_runs(*law, seen, converged))
    with caplog.at_level(logging.WARNING, logger="mlip_plugin.kernels.rule"):
        fit = calibrate_rule_of_thumb(R[:200], F[:200], 20.0, 1e-6, n_frames=20,
                                      ks=[10, 20, 40], tol=1e-4)
    assert message in caplog.text and "the paper's law (a = 1)" in caplog.text
    a, m, c = law
    assert fit.n_exponent == 1.0 and fit.m == pytest.approx(m, abs=2e-3)
    assert fit.k_min == pytest.approx((np.exp(c) * 540 ** (a - 1)) ** (1 / m), rel=5e-3)


def test_size_of_the_second_calibration_subset():
    assert rule_mod._second_size(1000, 50, None) == 100  # twice the first
    assert rule_mod._second_size(150, 50, None) == 75  # at most half of the data
    assert rule_mod._second_size(100, 50, None) == 0  # 50 is not 1.5 x 50: none
    assert rule_mod._second_size(1000, 50, 60) == 0  # too close to the first
    assert rule_mod._second_size(1000, 50, 5000) == 1000  # given: at most all the data
    for bad in ("x", True, 2.5):
        with pytest.raises(InputError, match="second_frames=.* is not allowed"):
            rule_mod._second_size(1000, 50, bad)


def test_calibration_checks_the_ranks_it_is_given(ethanol):
    R, _, _, F = ethanol
    with pytest.raises(InputError, match="preconditioner rank k=0 is not allowed"):
        calibrate_rule_of_thumb(R[:30], F[:30], 20.0, 1e-6, n_frames=15, ks=[0, 20], tol=1e-4)
