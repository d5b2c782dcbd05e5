"""Solvers: PCG against the analytic reference, preconditioners, the large-Cholesky guard,
the rule of thumb, solver choice and σ selection."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest
import scipy.linalg as sla
from threadpoolctl import threadpool_info

from mlip_plugin.errors import ConvergenceWarning, InputError
from mlip_plugin.kernels import (
    GDMLOperator,
    TrainSettings,
    WoodburyPreconditioner,
    analytic_solve,
    blas_guard,
    build_factor,
    calibrate_rule_of_thumb,
    estimate_memory,
    incomplete_cholesky,
    pcg,
    rule_of_thumb_k,
    select_sigma,
    train_gdml,
)
from mlip_plugin.kernels import solve as solve_mod

LAM = 1e-10


@pytest.fixture(scope="module", params=[None, "auto"], ids=["plain", "symmetric"])
def analytic_200(ethanol, request):
    R, z, E, F = ethanol
    return train_gdml(R[:200], z, E[:200], F[:200], TrainSettings(
        sigma=20.0, lam=LAM, solver="analytic", perms=request.param)), request.param


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cholesky", "leverage", "uniform"])
def test_pcg_reaches_analytic_solution_200_frames(kind, ethanol, ethanol_test, analytic_200):
    """The plain kernel (the issue's acceptance): α to 1e-6.  The symmetrised one is worse
    conditioned (largest eigenvalue 23 instead of 1.9 at the same λ): PCG runs to any
    tolerance agree with each other but stay 2.0e-6 from the Cholesky solution, whose
    rounding error that is; the forces agree to 3e-8.  Tolerances just above the true
    residual CG can attain in floating point here (~7e-10 plain, ~5e-9 symmetrised)."""
    R, z, E, F = ethanol
    ref, perms = analytic_200
    model = train_gdml(R[:200], z, E[:200], F[:200],
                       TrainSettings(sigma=20.0, lam=LAM, solver="pcg", preconditioner=kind,
                                     tol=2e-9 if perms is None else 1e-8, perms=perms))
    assert model.record.converged and model.record.k == rule_of_thumb_k(5400)
    assert model.record.n_perms == (1 if perms is None else 12)
    tol = 1e-6 if perms is None else 5e-6
    assert np.linalg.norm(model.alpha - ref.alpha) <= tol * np.linalg.norm(ref.alpha)
    Fp, Fa = model.predict(ethanol_test[0])[1], ref.predict(ethanol_test[0])[1]
    assert np.linalg.norm(Fp - Fa) <= 1e-6 * np.linalg.norm(Fa)


def test_eigen_preconditioner_reaches_analytic_solution(ethanol):
    R, z, E, F = ethanol
    s = TrainSettings(sigma=20.0, lam=LAM, solver="pcg", preconditioner="eigen", k=250,
                      tol=1e-10)
    model = train_gdml(R[:20], z, E[:20], F[:20], s)
    ref = train_gdml(R[:20], z, E[:20], F[:20], TrainSettings(sigma=20.0, lam=LAM,
                                                              solver="analytic"))
    assert np.linalg.norm(model.alpha - ref.alpha) <= 1e-6 * np.linalg.norm(ref.alpha)


def test_training_record_is_complete(ethanol):
    R, z, E, F = ethanol
    m = train_gdml(R[:20], z, E[:20], F[:20], TrainSettings(solver="pcg", k=100, tol=1e-6))
    rec = m.record
    assert (rec.solver, rec.preconditioner, rec.k, rec.sigma, rec.lam) == \
        ("pcg", "cholesky", 100, 20.0, 1e-10)
    assert len(rec.inducing) == 100 and len(set(rec.inducing.tolist())) == 100
    assert len(rec.residuals) == rec.n_iter + 1 and rec.residuals[-1] <= 1e-6
    assert rec.time_preconditioner > 0 and rec.time_solve > 0 and rec.peak_memory_estimate > 0


def test_iterations_cholesky_not_worse_than_sampling(ethanol):
    R, _, _, F = ethanol
    op = GDMLOperator(R[:40], 20.0)
    y = F[:40].reshape(-1)
    iters = {}
    for kind in ("cholesky", "uniform"):
        P = WoodburyPreconditioner(build_factor(op, kind, 200, np.random.default_rng(1)), LAM)
        iters[kind] = pcg(lambda v: op.matvec(v) + LAM * v, y, P, tol=1e-5).n_iter
    assert iters["cholesky"] <= iters["uniform"]


def naive_pivoted_cholesky(K: np.ndarray, k: int):
    """Unblocked greedy pivoted Cholesky on a dense matrix (the textbook algorithm)."""
    d = np.diag(K).copy()
    L = np.zeros((len(K), k))
    piv = []
    for j in range(k):
        p = int(np.argmax(d))
        col = K[:, p] - L[:, :j] @ L[p, :j]
        L[:, j] = col / np.sqrt(col[p])
        d -= L[:, j] ** 2
        d[p] = 0.0
        piv.append(p)
    return L, piv


def test_incomplete_cholesky_blocked_equals_textbook(make_molecule):
    R, _ = make_molecule(12, seed=2)
    op = GDMLOperator(R, 2.0)
    L, piv = naive_pivoted_cholesky(op.dense(), 60)
    for block, over in ((1, 1), (16, 2), (64, 3)):
        f = incomplete_cholesky(op, 60, block=block, oversample=over)
        assert f.inducing.tolist() == piv
        assert np.allclose(f.Lt.T, L, atol=1e-10 * np.abs(L).max())


def test_incomplete_cholesky_needs_only_pivot_columns(make_molecule, monkeypatch):
    R, _ = make_molecule(10, seed=4)
    op = GDMLOperator(R, 2.0)
    asked = []
    rows = op.rows
    monkeypatch.setattr(op, "rows", lambda idx: asked.extend(np.ravel(idx)) or rows(idx))
    monkeypatch.setattr(op, "dense", None)  # would fail if called
    f = incomplete_cholesky(op, 40, block=1, oversample=1)
    assert sorted(asked) == sorted(f.inducing.tolist())


def test_woodbury_matches_dense_inverse(make_molecule, rng):
    R, _ = make_molecule(8)
    op = GDMLOperator(R, 2.0)
    for kind in ("cholesky", "leverage", "uniform", "eigen"):
        f = build_factor(op, kind, 30, np.random.default_rng(0))
        L = f.Lt.T.copy()
        v = rng.standard_normal(op.n)
        x = np.linalg.solve(L @ L.T + LAM * np.eye(op.n), v)
        for method in ("cholesky", "qr"):
            P = WoodburyPreconditioner(f, LAM, method=method)
            assert np.array_equal(f.Lt.T, L)  # the caller's factor is untouched
            assert np.linalg.norm(P(v) - x) <= 1e-5 * np.linalg.norm(x)


def test_cholesky_woodbury_costs_few_extra_iterations(ethanol):
    """The cheap Woodbury form loses accuracy for λ ≪ |L|², which costs CG few iterations."""
    R, _, _, F = ethanol
    op = GDMLOperator(R[:30], 20.0)
    f = build_factor(op, "cholesky", 150, np.random.default_rng(0))
    iters = [pcg(lambda v: op.matvec(v) + LAM * v, F[:30].reshape(-1),
                 WoodburyPreconditioner(f, LAM, method=m), tol=1e-8).n_iter
             for m in ("cholesky", "qr")]
    assert iters[0] <= 1.15 * iters[1]


def test_pcg_solves_spd_system_and_warns_when_stopped(rng):
    A = rng.standard_normal((60, 60))
    A = A @ A.T + 5.0 * np.eye(60)
    y = rng.standard_normal(60)
    res = pcg(lambda v: A @ v, y, tol=1e-10, maxiter=500)
    assert res.converged and np.allclose(res.x, np.linalg.solve(A, y), rtol=1e-8)
    with pytest.warns(ConvergenceWarning, match="raise maxiter"):
        res = pcg(lambda v: A @ v, y, tol=1e-12, maxiter=3)
    assert not res.converged and res.n_iter == 3


@pytest.fixture(scope="module")
def system_30(ethanol):
    """``(A, y, P)``: the plain ethanol kernel system of 30 frames, incomplete Cholesky
    k=400 (CG's attainable relative residual here is ~1e-10)."""
    R, _, _, F = ethanol
    op = GDMLOperator(R[:30], 20.0)
    P = WoodburyPreconditioner(incomplete_cholesky(op, 400), LAM)
    return (lambda v: op.matvec(v) + LAM * v), F[:30].reshape(-1), P


def test_pcg_converges_on_the_true_residual(system_30):
    """PCG stopped when its recursively updated residual reached tol and reported convergence
    while ``|y - A x| / |y|`` was 5.4e-10 at tol=2e-10; it now checks ``y - A x`` and
    restarts from it."""
    A, y, P = system_30
    res = pcg(A, y, P, tol=2e-10)
    true = np.linalg.norm(y - A(res.x)) / np.linalg.norm(y)
    assert res.converged and true <= 2e-10
    assert res.residuals[-1] == pytest.approx(true, rel=1e-6)


def test_pcg_gives_up_below_the_attainable_accuracy(system_30):
    A, y, P = system_30
    with pytest.warns(ConvergenceWarning, match="attainable accuracy"):
        res = pcg(A, y, P, tol=1e-14)
    true = np.linalg.norm(y - A(res.x)) / np.linalg.norm(y)
    assert not res.converged and res.n_iter < len(y)  # not run on to maxiter
    assert res.residuals[-1] == pytest.approx(true, rel=1e-6) and true < 1e-8


def test_blas_guard_decision():
    assert type(blas_guard(100, single_thread_order=200)).__name__ == "nullcontext"
    with blas_guard(200, single_thread_order=200):
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


def test_analytic_solver_takes_guarded_path(make_molecule, rng, monkeypatch, caplog):
    """With the threshold lowered, the factorisation runs with one BLAS thread and agrees with
    a plain dense solve."""
    R, _ = make_molecule(40, seed=5)
    op = GDMLOperator(R, 2.0)
    y = rng.standard_normal(op.n)
    seen = []
    real = sla.cho_factor

    def spy(*args, **kwargs):
        seen.append(max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"))
        return real(*args, **kwargs)

    monkeypatch.setattr(solve_mod.sla, "cho_factor", spy)
    with caplog.at_level(logging.INFO, logger="mlip_plugin.kernels.solve"):
        alpha, jitter, _ = analytic_solve(op, y, 1e-6, single_thread_order=op.n)
    assert seen == [1] and jitter == 0.0
    assert "limiting BLAS to one thread" in caplog.text
    ref = np.linalg.solve(op.dense(shift=1e-6), y)
    assert np.linalg.norm(alpha - ref) <= 1e-7 * np.linalg.norm(ref)


def test_analytic_solver_retries_with_logged_jitter(make_molecule, rng, monkeypatch, caplog):
    R, _ = make_molecule(10, seed=6)
    op = GDMLOperator(R, 2.0)
    y = rng.standard_normal(op.n)
    calls = []
    real = sla.cho_factor

    def flaky(*args, **kwargs):  # a false "not positive definite", as OpenBLAS gave
        calls.append(1)
        if len(calls) == 1:
            raise np.linalg.LinAlgError("not positive definite")
        return real(*args, **kwargs)

    monkeypatch.setattr(solve_mod.sla, "cho_factor", flaky)
    alpha, jitter, _ = analytic_solve(op, y, 1e-6)
    assert jitter > 0 and "retrying with jitter" in caplog.text
    ref = np.linalg.solve(op.dense(shift=1e-6 + jitter), y)
    assert np.linalg.norm(alpha - ref) <= 1e-7 * np.linalg.norm(ref)


def test_rule_of_thumb_minimises_the_cost_model():
    """k* minimises k² n + n² · n (k_min / k)^m, the model behind the rule."""
    for n, m, k_min in ((27000, 1.0, 100.0), (5400, 0.87, 10.0), (36000, 1.07, 32.0)):
        ks = np.arange(1, n + 1)
        cost = ks**2 * n + n**3 * (k_min / ks) ** m
        assert abs(rule_of_thumb_k(n, m, k_min) - ks[np.argmin(cost)]) <= 1
    assert rule_of_thumb_k(10) == 10  # clipped to n


def test_calibration_fits_a_decreasing_power_law(ethanol):
    R, _, _, F = ethanol
    fit = calibrate_rule_of_thumb(R, F, 20.0, 1e-6, n_frames=15, tol=1e-4)
    assert fit.m > 0 and fit.k_min > 0 and 0 < fit.n_exponent <= 2
    assert sorted(set(fit.sizes.tolist())) == [15 * 27, 30 * 27]  # two subsets
    for n in (15 * 27, 30 * 27):  # fewer iterations at a larger rank, at each size
        assert np.all(np.diff(fit.iterations[fit.sizes == n]) <= 0)
    assert 1 <= fit.k(5400) <= 5400


def test_solver_choice_is_logged(ethanol, caplog):
    R, z, E, F = ethanol
    with caplog.at_level(logging.INFO, logger="mlip_plugin.kernels.train"):
        small = train_gdml(R[:10], z, E[:10], F[:10], TrainSettings(max_memory=1e9))
        big = train_gdml(R[:10], z, E[:10], F[:10],
                         TrainSettings(max_memory=1e5, k=50, tol=1e-6))
    assert small.record.solver == "analytic" and big.record.solver == "pcg"
    assert caplog.text.count("solver='auto'") == 2


def test_select_sigma_warns_at_grid_edge(ethanol):
    R, z, E, F = ethanol
    with pytest.warns(UserWarning, match="edge of the grid"):
        scan = select_sigma(R[:15], z, E[:15], F[:15], R[500:520], F[500:520],
                            [0.5, 1.0], TrainSettings(solver="analytic"))
    assert scan.best_sigma == scan.sigmas[np.argmin(scan.force_mae)]
    assert scan.model.sigma == scan.best_sigma


def test_qr_woodbury_of_a_rank_deficient_factor(make_molecule, rng):
    """k above the rank of K: the eigen factor has zero rows (clipped eigenvalues <= 0),
    which the shifted Cholesky QR cannot orthonormalise (it raised LinAlgError); the exact
    form still applies P⁻¹, and training with it reaches the dense solution."""
    R, z = make_molecule(4)
    op = GDMLOperator(R, 2.0)  # n = 60, rank K <= 4 * (15 - 6) = 36
    assert np.linalg.matrix_rank(op.dense()) <= 36
    f = build_factor(op, "eigen", 50, np.random.default_rng(0))
    L = f.Lt.T.copy()
    v = rng.standard_normal(op.n)
    x = np.linalg.solve(L @ L.T + 1e-6 * np.eye(op.n), v)
    P = WoodburyPreconditioner(f, 1e-6, method="qr")
    assert np.linalg.norm(P(v) - x) <= 1e-8 * np.linalg.norm(x)
    F = rng.standard_normal(R.shape)
    s = TrainSettings(sigma=2.0, lam=1e-6, solver="pcg", preconditioner="eigen", k=50,
                      woodbury="qr", tol=1e-9, perms=None)
    model = train_gdml(R, z, None, F, s)
    ref = np.linalg.solve(op.dense(shift=1e-6), F.reshape(-1))
    assert model.record.converged
    assert np.linalg.norm(model.alpha.reshape(-1) - ref) <= 1e-6 * np.linalg.norm(ref)


@pytest.mark.parametrize("lam", [0.0, -1e-10, float("nan"), float("inf")])
def test_woodbury_refuses_a_ridge_it_cannot_divide_by(lam, make_molecule):
    R, _ = make_molecule(2)
    f = build_factor(GDMLOperator(R, 2.0), "cholesky", 10, np.random.default_rng(0))
    for method in ("cholesky", "qr"):
        with pytest.raises(InputError, match=f"lam={lam!r} is not allowed"):
            WoodburyPreconditioner(f, lam, method=method)


def test_memory_estimate_covers_what_the_operator_holds():
    """The estimate left out the stacked Jacobians ``(n, D)``, the operator's largest array
    (``D`` grows as the square of the atom count)."""
    rng = np.random.default_rng(0)
    R = rng.uniform(0.0, 6.0, (30, 3))[None] + 0.05 * rng.standard_normal((4, 30, 3))
    tracemalloc.start()
    try:
        op = GDMLOperator(R, 20.0)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    k = 20
    assert estimate_memory(op, "pcg", k) - solve_mod.BLOCK_BYTES >= held + 8 * k * op.n
    assert estimate_memory(op, "analytic") - solve_mod.BLOCK_BYTES >= held + 8 * op.n**2
