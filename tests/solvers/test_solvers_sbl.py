"""Sequential ARD (Tipping & Faul): rank-one updates, fixed point, recovery, scale invariance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import ARDRegression

from mlip_plugin.errors import ConvergenceWarning, InputError
from mlip_plugin.solvers import ard_path, ard_path_gram, by_size
from mlip_plugin.solvers._problem import ScaledGram
from mlip_plugin.solvers.sbl import _best_action, _State


def _noisy_sparse(fx, n=300, p=80, k=8, noise=0.02, seed=0):
    A = fx.design(n, p, seed=seed, spread=1.0)
    c, y = fx.planted(A, k, seed=seed + 1, noise=noise)
    return A, c, y


def _state(A, y, max_active=20, beta=50.0):
    P = ScaledGram.from_design(A, y)
    st = _State(P, max_active)
    st.beta = beta
    st.S, st.Q = beta * st.diag, beta * P.b
    return st


def test_rank_one_updates_equal_a_fresh_posterior(fx):
    A, _, y = _noisy_sparse(fx)
    st = _state(A, y)
    for j in (3, 17, 40, 41, 60):
        st.add(j, float(np.exp(np.random.default_rng(j).uniform(-3, 1))))
    st.reestimate(1, 0.3 * st.alpha[1])
    st.delete(2)  # moves the last slot into slot 2
    st.reestimate(2, 4.0 * st.alpha[2])
    st.delete(st.m - 1)
    kept = (st.S.copy(), st.Q.copy(), st.mu.copy(), st.Sigma.copy())
    st.refresh()
    for got, fresh in zip(kept, (st.S, st.Q, st.mu, st.Sigma)):
        np.testing.assert_allclose(got, fresh, rtol=1e-9, atol=1e-9 * np.abs(fresh).max())
    assert st.active == [3, 17, 60]  # 60 moved into the slot of 40, then 41 went


def test_fixed_point_of_the_evidence_at_convergence(fx, monkeypatch):
    A, _, y = _noisy_sparse(fx)
    seen = {}
    init = _State.__init__

    def spy(self, *args):
        init(self, *args)
        seen["state"] = self

    monkeypatch.setattr(_State, "__init__", spy)
    path = ard_path(A, y, 80, tol=1e-8, rel_alpha=1e-6)
    assert path.info.stop_reason == "converged"
    st = seen["state"]
    st.refresh()
    s, q = st.factors()
    theta = q**2 - s
    active = np.asarray(st.active)
    others = np.setdiff1d(np.arange(A.shape[1]), active)
    assert np.all(theta[active] > 0) and np.all(theta[others] <= 0)
    # α_j = s_j² / θ_j in the model (to the re-estimation threshold), β at its fixed point
    np.testing.assert_allclose(st.alpha[: st.m], s[active] ** 2 / theta[active], rtol=1e-3)
    assert st.noise_precision() == pytest.approx(st.beta, rel=1e-6)
    assert _best_action(st, st.P.usable, 1e-6, 0.0) is None or \
        _best_action(st, st.P.usable, 1e-6, 0.0)[0] < 1e-8


def test_recovers_a_planted_support_as_well_as_scikit_learns_ard(fx):
    """Both maximise the same evidence (scikit-learn by MacKay's fixed point, here without
    its pruning threshold, which is scale dependent); the maxima found may differ."""
    A, c, y = _noisy_sparse(fx, noise=0.01)
    noise = np.linalg.norm(y - A @ c)
    path = ard_path(A, y, 80)
    coef = path.coef(-1)
    assert set(np.flatnonzero(c)) <= set(path.support(-1))
    sk = ARDRegression(fit_intercept=False, max_iter=3000, tol=1e-10,
                       threshold_lambda=1e12).fit(A, y)
    assert np.linalg.norm(A @ coef - y) == pytest.approx(np.linalg.norm(A @ sk.coef_ - y),
                                                         rel=0.1)
    assert np.linalg.norm(A @ (coef - c)) < min(0.5 * noise, np.linalg.norm(A @ (sk.coef_ - c)))


def test_a_large_offset_does_not_stall_it(fx):
    """Targets far from centred (energies without E0): one function carries most of y."""
    A, c, y = _noisy_sparse(fx, noise=0.01)
    A = np.hstack([np.ones((len(y), 1)), A])
    c = np.r_[1e4, c]
    y = y + 1e4
    path = ard_path(A, y, 80)
    assert path.info.stop_reason == "converged"
    assert set(np.flatnonzero(c)) <= set(path.support(-1))
    rel = np.linalg.norm(A @ (path.coef(-1) - c)) / np.linalg.norm(A @ c - 1e4)
    assert rel < 0.05


def test_max_active_gives_models_of_each_size_and_column_scales_do_not_matter(fx):
    A, _, y = _noisy_sparse(fx, noise=0.3)
    path = ard_path(A, y, 12)
    assert path.info.stop_reason == "max_active" and path.sizes.max() == 12
    sel = path.select(by_size(5))
    assert len(sel.support) == 5
    scale = 10.0 ** np.random.default_rng(3).uniform(-3, 3, A.shape[1])
    G, b = A.T @ A, A.T @ y
    other = ard_path_gram(G * np.outer(scale, scale), b * scale, float(y @ y), len(y), 12,
                          prior=np.linspace(1, 5, A.shape[1]))
    np.testing.assert_array_equal(other.support(-1), path.support(-1))
    np.testing.assert_allclose(other.coef(-1) * scale, path.coef(-1), rtol=1e-6,
                               atol=1e-9 * np.abs(path.coef(-1)).max())


def test_zero_target_gives_an_empty_path(fx):
    A = fx.design(50, 10)
    path = ard_path(A, np.zeros(50), 5)
    assert len(path) == 0 and path.info.stop_reason == "zero_target"


def test_refresh_of_a_singular_block_warns_and_stays_finite(fx):
    A, _, y = _noisy_sparse(fx)
    A[:, 5] = A[:, 4]  # an exact duplicate, and no α floor to regularise it
    st = _state(A, y)
    st.add(4, 1e-300)
    st.add(5, 1e-300)
    with pytest.warns(ConvergenceWarning, match="not numerically positive definite"):
        st.refresh()
    assert np.all(np.isfinite(st.mu)) and np.all(np.isfinite(st.S))


def test_bad_settings_are_named(fx):
    A, _, y = _noisy_sparse(fx)
    with pytest.raises(InputError, match="max_active=0 must be a positive integer"):
        ard_path(A, y, 0)
    with pytest.raises(InputError, match="alpha_floor=-1.0 must be a finite number >= 0"):
        ard_path(A, y, 5, alpha_floor=-1.0)
    with pytest.raises(InputError, match="beta_every=0 must be a positive integer"):
        ard_path(A, y, 5, beta_every=0)
    with pytest.raises(InputError, match="y has"):
        ard_path(A, y[:-1], 5)
