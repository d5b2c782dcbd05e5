"""The measured cost model of PCG and its optimal preconditioner rank: the minimiser against a
brute-force scan, the reduction to the paper's rule of thumb, the fits of the timings, the
``TrainSettings.k`` choices and their bad inputs."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from mlip_plugin.errors import InputError
from mlip_plugin.kernels import (
    CostModel,
    RuleFit,
    TrainSettings,
    calibrate_rule_of_thumb,
    cost_optimal_k,
    rule_of_thumb_k,
    train_gdml,
)
from mlip_plugin.kernels import train as train_mod
from mlip_plugin.kernels.cost import fit_nonnegative


def brute_force_k(n, m, k_min, t_build, t_mv, t_pc=0.0, t_rows=0.0, t_vec=0.0) -> int:
    """argmin over every k in 1..n of the time to solution, written out independently."""
    k = np.arange(1, n + 1, dtype=float)
    iterations = n * (k_min / k) ** m
    build = t_build * k**2 * n + t_rows * k * n
    per_iteration = t_mv + t_pc * k * n + t_vec * n
    return int(k[np.argmin(build + iterations * per_iteration)])


CASES = [  # n, m, k_min, t_build, t_mv, t_pc, t_rows, t_vec
    (8100, 1.04, 67.5, 1e-10, 2e-3, 1e-9, 2e-7, 0.0),
    (10800, 1.66, 70.0, 1e-10, 3.5e-3, 1.2e-9, 2e-7, 1e-9),
    (5400, 0.87, 10.0, 2e-10, 1e-3, 5e-10, 0.0, 0.0),
    (27000, 0.6, 300.0, 0.0, 3e-2, 1e-9, 1e-7, 0.0),  # no k² term, m < 1
    (4000, 2.5, 50.0, 1e-9, 1e-4, 0.0, 0.0, 0.0),
    (3000, 1.0, 100.0, 1e-4, 1e-6, 0.0, 0.0, 0.0),  # expensive build: k = 1
    (2000, 3.0, 500.0, 0.0, 1.0, 0.0, 0.0, 0.0),  # free preconditioner, m > 1: k = n
]


@pytest.mark.parametrize("n, m, k_min, t_build, t_mv, t_pc, t_rows, t_vec", CASES)
def test_cost_optimal_k_is_the_brute_force_minimum(n, m, k_min, t_build, t_mv, t_pc, t_rows,
                                                   t_vec):
    times = dict(t_build=t_build, t_mv=t_mv, t_pc=t_pc, t_rows=t_rows, t_vec=t_vec)
    assert cost_optimal_k(n, m, k_min, **times) == brute_force_k(n, m, k_min, **times)


def test_cost_model_reduces_to_the_rule_of_thumb():
    """t_pc = t_rows = t_vec = 0 and t_mv = c n² with c = t_build is the paper's model; a
    different ratio r = t_mv2 / t_build gives k = (k_min^m m n² r / 2)^(1/(2+m))."""
    for n, m, k_min in ((27000, 1.0, 100.0), (5400, 0.87, 10.0), (36000, 1.07, 32.0),
                        (8100, 1.66, 70.0)):
        paper = CostModel(t_build=3e-10, t_rows=0, t_pc=0, t_vec=0, t_mv1=0, t_mv2=3e-10)
        assert abs(paper.k(n, m, k_min) - rule_of_thumb_k(n, m, k_min)) <= 1
        for ratio in (0.05, 0.3, 7.0):
            model = replace(paper, t_mv2=ratio * paper.t_build)
            closed = (k_min**m * m * n**2 * ratio / 2) ** (1 / (2 + m))
            assert abs(model.k(n, m, k_min) - closed) <= 1
    m, k_min = 1.3, 40.0  # the exponent: k ∝ n^(2/(2+m))
    big = [paper.k(n, m, k_min) for n in (10**5, 16 * 10**5)]
    assert np.log(big[1] / big[0]) / np.log(16) == pytest.approx(2 / (2 + m), rel=1e-3)


def test_how_the_iteration_costs_move_the_optimal_rank():
    """iters(k) · t_pc k n ∝ k^(1-m): it lowers k for m < 1, leaves it for m = 1, raises it
    for m > 1; a dearer kernel-vector product always raises k."""
    base = dict(t_build=1e-10, t_mv=2e-3, t_rows=2e-7)
    t_pcs = (0.0, 1e-10, 1e-9, 1e-8)
    for m, order in ((0.8, -1), (1.0, 0), (1.5, 1)):
        ks = [cost_optimal_k(8100, m, 67.5, **base, t_pc=t) for t in t_pcs]
        assert np.all(np.sign(np.diff(ks)) == order) if order else len(set(ks)) == 1
    ks = [cost_optimal_k(8100, 1.0, 67.5, **{**base, "t_mv": t}) for t in (1e-4, 1e-3, 1e-2)]
    assert np.all(np.diff(ks) > 0)


def test_fit_nonnegative_recovers_planted_coefficients():
    k = np.array([40.0, 80.0, 160.0, 320.0])
    n = 1350.0
    t = 2e-10 * k**2 * n + 3e-7 * k * n
    assert np.allclose(fit_nonnegative(np.c_[k**2 * n, k * n], t), [2e-10, 3e-7], rtol=1e-9)
    c = fit_nonnegative(np.c_[k * n, np.full_like(k, n)], 1e-9 * k * n)  # no O(n) term
    assert c[0] == pytest.approx(1e-9, rel=1e-9) and c[1] >= 0 and c[1] * n < 1e-15
    c = fit_nonnegative(np.c_[k, np.ones_like(k)], 5.0 - 0.01 * k)  # falling: slope clipped
    assert c[0] == 0.0 and c[1] > 0


def test_calibration_measures_the_cost_model(ethanol, caplog):
    R, _, _, F = ethanol
    with caplog.at_level(logging.INFO, logger="mlip_plugin.kernels.rule"):
        fit = calibrate_rule_of_thumb(R[:60], F[:60], 20.0, 1e-6, n_frames=15, tol=1e-4)
    assert "cost-model fit: t_build=" in caplog.text and "products [" in caplog.text
    cost = fit.cost
    coefs = [cost.t_build, cost.t_rows, cost.t_pc, cost.t_vec, cost.t_mv1, cost.t_mv2]
    assert all(np.isfinite(c) and c >= 0 for c in coefs)
    assert cost.t_build + cost.t_rows > 0 and cost.t_mv(fit.n_sub) > 0
    n = 60 * 27
    k_min = fit.k_min_at(n)  # the law at the full size
    assert fit.k(n) == rule_of_thumb_k(n, fit.m, k_min)  # the paper's formula, unchanged
    assert fit.k_cost(n) == cost.k(n, fit.m, k_min) and 1 <= fit.k_cost(n) <= n
    assert fit.k_cost(n) == brute_force_k(
        n, fit.m, k_min, cost.t_build, cost.t_mv(n), cost.t_pc, cost.t_rows, cost.t_vec)


def fixed_fit(n_sub: int = 405) -> RuleFit:
    cost = CostModel(t_build=1e-10, t_rows=2e-7, t_pc=1e-9, t_vec=0.0, t_mv1=6e-8,
                     t_mv2=1.4e-11)
    return RuleFit(m=1.0, k_min=30.0, ks=np.array([20, 40]), iterations=np.array([60, 30]),
                   n_sub=n_sub, cost=cost)


@pytest.mark.parametrize("choice", ["rule", None, "calibrated", "cost", 37])
def test_train_gdml_records_how_k_was_chosen(choice, ethanol, monkeypatch, caplog):
    R, z, E, F = ethanol
    R, E, F = R[:15], E[:15], F[:15]
    calls = []

    def fake_calibration(*args, **kwargs):
        calls.append(kwargs)
        return fixed_fit()

    monkeypatch.setattr(train_mod, "calibrate_rule_of_thumb", fake_calibration)
    settings = TrainSettings(solver="pcg", k=choice, lam=1e-6, tol=1e-6, calib_frames=12,
                             calib_tol=1e-3)
    with caplog.at_level(logging.INFO, logger="mlip_plugin.kernels.train"):
        record = train_gdml(R, z, E, F, settings).record
    n = R.size
    expected = {"rule": rule_of_thumb_k(n), None: rule_of_thumb_k(n), 37: 37,
                "calibrated": fixed_fit().k(n), "cost": fixed_fit().k_cost(n)}[choice]
    assert record.k == expected and record.converged
    assert record.k_choice == {None: "rule", 37: "given"}.get(choice, choice)
    calibrated = choice in ("calibrated", "cost")
    assert len(calls) == calibrated
    if calibrated:
        perms = calls[0].pop("perms")
        assert calls[0] == dict(n_frames=12, tol=1e-3, seed=0)
        assert len(perms) == 12 == record.n_perms  # the calibration sees the training kernel
        assert f"preconditioner rank k={expected} (k={choice!r}" in caplog.text


def test_train_gdml_with_the_measured_cost_model(ethanol):
    R, z, E, F = ethanol
    model = train_gdml(R[:20], z, E[:20], F[:20], TrainSettings(
        solver="pcg", k="cost", lam=1e-6, tol=1e-6, calib_frames=10))
    assert model.record.k_choice == "cost" and model.record.converged
    assert 1 <= model.record.k <= R[:20].size
    assert train_gdml(R[:10], z, E[:10], F[:10], TrainSettings(solver="analytic",
                                                               k="cost")).record.k_choice == "none"


@pytest.mark.parametrize("kwargs, match", [
    (dict(t_build=1e-10, t_mv=0.0), "t_mv=0.0: the time of one kernel-vector product"),
    (dict(t_build=-1e-10, t_mv=1e-3), "t_build=-1e-10 is not allowed"),
    (dict(t_build=1e-10, t_mv=1e-3, t_pc=float("nan")), "t_pc=nan is not allowed"),
    (dict(t_build=1e-10, t_mv=1e-3, t_rows=float("inf")), "t_rows=inf is not allowed"),
])
def test_bad_cost_model_times(kwargs, match):
    with pytest.raises(InputError, match=match):
        cost_optimal_k(1000, 1.0, 100.0, **kwargs)


def test_bad_cost_model_sizes_and_power_law():
    with pytest.raises(InputError, match="system size n=0 must be an integer >= 1"):
        cost_optimal_k(0, 1.0, 100.0, t_build=1e-10, t_mv=1e-3)
    with pytest.raises(InputError, match="system size n=2.5"):
        fixed_fit().cost.k(2.5, 1.0, 100.0)
    with pytest.raises(InputError, match="m=0.0, k_min=100.0 are not allowed"):
        cost_optimal_k(1000, 0.0, 100.0, t_build=1e-10, t_mv=1e-3)
    with pytest.raises(InputError, match="k_min=-3.0 are not allowed"):
        fixed_fit().cost.seconds(10, 1000, 1.0, -3.0)
    with pytest.raises(InputError, match="has no timings .* use k"):
        replace(fixed_fit(), cost=None).k_cost(1000)


@pytest.mark.parametrize("kwargs, match", [
    (dict(k="fast"), r"k='fast' is not known; give an integer rank or one of \('rule', "),
    (dict(k=2.5), "k=2.5 is not allowed; give an integer rank >= 1"),
    (dict(k=True), "k=True is not allowed"),
    (dict(calib_frames=1), "calib_frames=1 is not allowed"),
    (dict(calib_frames=10.0), "calib_frames=10.0 is not allowed"),
    (dict(calib_tol=0.0), r"calib_tol=0.0 must lie in \(0, 1\)"),
    (dict(solver="analytic", k=31), "rank k=31"),
])
def test_bad_rank_choice(kwargs, match, make_molecule):
    R, z = make_molecule(2)
    with pytest.raises(InputError, match=match):
        train_gdml(R, z, np.zeros(2), np.zeros(R.shape), TrainSettings(**kwargs))
