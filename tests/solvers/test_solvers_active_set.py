"""The updatable pieces behind the homotopy: Cholesky add/delete in a growing buffer, the
slotted column buffer of the active set, the compiled step searches, the exact screening of
the entering-step search, and the homotopy path that carries x and c between breakpoints
against one that solves afresh."""

from __future__ import annotations

import numpy as np
import pytest

import mlip_plugin.solvers._cholesky as chol_mod
from mlip_plugin.solvers import asp_path_gram
from mlip_plugin.solvers._active_set import (
    SLOPE_TOL,
    ActiveSet,
    Screen,
    leaving_step,
)
from mlip_plugin.solvers._cholesky import GrowingCholesky
from mlip_plugin.solvers._problem import ScaledGram


def _spd(p: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((3 * p, p))
    return X.T @ X


@pytest.mark.parametrize("use_blas", [True, False])
def test_random_adds_and_deletes_match_a_fresh_factorisation(monkeypatch, use_blas):
    """60 random additions and removals, through several doublings of the buffer (capacity 2),
    with ``F = L⁻¹ B`` carried through the deletions; both triangular-solve paths."""
    if not use_blas:
        monkeypatch.setattr(chol_mod, "_DTRSV", None)
    rng = np.random.default_rng(3)
    M = _spd(40, 5)
    chol, order = GrowingCholesky(capacity=2), []
    B = np.zeros((0, 2))
    F = np.zeros((0, 2))
    for _ in range(60):
        if order and (rng.random() < 0.35 or len(order) == 40):
            i = int(rng.integers(len(order)))
            F = chol.delete(i, F)
            order.pop(i)
            B = np.delete(B, i, axis=0)
        else:
            j = int(rng.choice(sorted(set(range(40)) - set(order))))
            assert chol.append(M[order, j], M[j, j], 1e-12)[0]
            order.append(j)
            B = np.vstack([B, rng.standard_normal(2)])
            F = chol.forward(B)
        sub = M[np.ix_(order, order)]
        np.testing.assert_allclose(chol.factor, np.linalg.cholesky(sub), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(F, np.linalg.solve(chol.factor, B), rtol=1e-9, atol=1e-11)
        v = rng.standard_normal(len(order))
        np.testing.assert_allclose(chol.solve(v), np.linalg.solve(sub, v), rtol=1e-8)
    assert chol._buf.shape[0] >= len(order) and chol._buf.shape[0] > 2
    # the buffer outside the factor stays zero (a later append relies on it)
    k = chol.k
    assert not chol._buf[k:].any() and not np.triu(chol._buf[:k, :k], 1).any()


def test_blas_and_copy_solves_agree():
    M = _spd(30, 8)
    chol = GrowingCholesky(capacity=4)
    for j in range(30):
        chol.append(M[:j, j], M[j, j], 1e-12)
    r = np.random.default_rng(1).standard_normal((30, 3))
    for trans in (0, 1):
        np.testing.assert_allclose(chol._trtrs(r, trans),
                                   np.column_stack([chol._solve_copy(r[:, m].copy(), trans)
                                                    for m in range(3)]), rtol=1e-13)


def test_delete_rejects_a_bad_position_and_a_mismatched_rhs():
    chol = GrowingCholesky()
    chol.append(np.zeros(0), 2.0, 1e-12)
    with pytest.raises(IndexError, match="cannot delete column 1"):
        chol.delete(1)
    with pytest.raises(ValueError, match="right-hand side has 2 rows"):
        chol.forward(np.ones(2))


def _active_set_after_adds_and_removals(P):
    act = ActiveSet(P, 4, 1e-12)  # capacity 4: the column buffer has to grow
    rng = np.random.default_rng(0)
    for j in (3, 17, 0, 29, 8, 11):
        assert act.add(j, float(rng.choice([-1, 1])))
    for i in (2, 0):
        act.remove(i)
    for j in (2, 5, 0):
        act.add(j, 1.0)
    return act


def test_active_set_products_after_adds_and_removals(fx):
    """``times`` equals Ĝ[:, S] v computed directly, whatever the order of additions and
    removals (slots are reused), and ``direction_reach`` is ||Â_S d||."""
    A = fx.design(80, 30, seed=4)
    G = A.T @ A
    P = ScaledGram.build(G, np.zeros(30), 0.0, 80)
    Gh = G * np.outer(P.d, P.d)
    act = _active_set_after_adds_and_removals(P)
    S = act.S
    assert sorted(S) == sorted([17, 29, 8, 11, 2, 5, 0])
    v = np.random.default_rng(1).standard_normal(len(S))
    np.testing.assert_allclose(act.times(v), Gh[:, S] @ v, rtol=1e-12, atol=1e-12)
    x, d = act.solve(0.5, refresh=True)
    np.testing.assert_allclose(Gh[np.ix_(S, S)] @ d, act.signs, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(act.direction(), d, rtol=1e-12)
    Ahat = A * P.d
    assert act.direction_reach() == pytest.approx(np.linalg.norm(Ahat[:, S] @ d), rel=1e-10)


@pytest.mark.parametrize("normalize", [True, False])
def test_screened_search_equals_the_full_search(fx, normalize):
    """With any valid slack bounds (exact ones minus arbitrary losses) the screened search
    returns what the array formulas return on the exact c and a over all open rows, when that
    step is below the cap, and otherwise something above the cap; it writes the exact c_j of
    the rows it evaluates, and it skips rows.  Duplicate columns make exact ties."""
    rng = np.random.default_rng(5)
    A = fx.design(120, 40, seed=7)
    A[:, 33] = A[:, 12]  # exact ties between two columns
    A[:, 34] = A[:, 12]
    y = A @ rng.standard_normal(40)
    G, b, yy, n = fx.gram(A, y)
    P = ScaledGram.build(G, b, yy, n, prior=np.linspace(1, 3, 40), normalize=normalize)
    Gh = G * np.outer(P.d, P.d)
    act = _active_set_after_adds_and_removals(P)
    S = act.S
    open_ = np.ones(40, bool)
    open_[S] = False
    open_[[7, 21]] = False  # e.g. skipped as dependent
    n_skipped = 0
    for trial in range(60):
        x = rng.standard_normal(len(S))
        lam_ = float(np.abs(P.b - Gh[:, S] @ x).max()) * rng.uniform(1.0, 1.5)
        _, d = act.solve(lam_)
        c_exact = P.b - Gh[:, S] @ x
        a_exact = Gh[:, S] @ d
        a_exact[S] = act.signs
        ref = _entering_reference(c_exact, a_exact, lam_, open_)
        screen = Screen(P, c_exact, lam_)
        loss = rng.uniform(0, 0.5, 40) * (lam_ - np.abs(c_exact))  # bounds below the truth
        screen.lbnum -= loss
        cap = np.inf if trial % 3 else ref[0] * rng.uniform(0.5, 1.5)
        c = np.full(40, np.nan)
        got = screen.search(act, x, d, c, lam_, open_, cap)
        if ref[0] <= cap:
            assert got[1:] == ref[1:] and got[0] == pytest.approx(ref[0], rel=1e-12, abs=1e-15)
        else:
            assert got[0] > cap
        rows = screen.rows[: screen.n_rows]
        np.testing.assert_allclose(c[rows], c_exact[rows], rtol=1e-10, atol=1e-12)
        assert np.isnan(np.delete(c, rows)).all()
        n_skipped += int(open_.sum()) - len(rows)
    assert n_skipped > 0


def _assert_same_path(path, ref_path):
    """Same supports and λ at every point, coefficients to 1e-9, on a path with removals."""
    assert path.info.n_removed > 0 and len(path) == len(ref_path)
    np.testing.assert_allclose(path.lambdas, ref_path.lambdas, rtol=1e-10,
                               atol=1e-12 * ref_path.lambdas[0])
    for i in range(len(ref_path)):
        assert list(path.support(i)) == list(ref_path.support(i))
        ref = ref_path.coef_values(i)
        np.testing.assert_allclose(path.coef_values(i), ref,
                                   atol=1e-9 * max(np.abs(ref).max(initial=0), 1e-300))


def test_screening_leaves_the_path_unchanged(fx, monkeypatch):
    """A path whose screening bounds are made useless (every open row evaluated at every
    breakpoint) has the same breakpoints and coefficients; the default evaluates fewer."""
    A = fx.design(200, 120, seed=9, correlation=0.9)
    _, y = fx.planted(A, 40, noise=0.05)
    G, b, yy, n = fx.gram(A, y)
    evaluated = {}
    real_search = Screen.search

    def counting(self, *args):
        out = real_search(self, *args)
        evaluated[self.MARGIN] = evaluated.get(self.MARGIN, 0) + self.n_rows
        return out

    monkeypatch.setattr(Screen, "search", counting)
    screened = asp_path_gram(G, b, yy, n, 80)
    monkeypatch.setattr(Screen, "MARGIN", 1e30)
    full = asp_path_gram(G, b, yy, n, 80)
    assert evaluated[Screen.MARGIN] > 2 * evaluated[1e-6]
    _assert_same_path(screened, full)


def _entering_reference(c, a, lam, open_):
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(open_ & (1.0 - a > SLOPE_TOL), (lam - c) / (1.0 - a), np.inf)
        dn = np.where(open_ & (1.0 + a > SLOPE_TOL), (lam + c) / (1.0 + a), np.inf)
    ju, jd = int(np.argmin(up)), int(np.argmin(dn))
    if up[ju] <= dn[jd]:
        return max(float(up[ju]), 0.0), ju, 1.0
    return max(float(dn[jd]), 0.0), jd, -1.0


def _leaving_reference(x, d, protect):
    shrinking = (x * d) < 0
    if protect is not None:
        shrinking[protect] = False
    if not shrinking.any():
        return np.inf, -1
    g = np.full(len(x), np.inf)
    g[shrinking] = -x[shrinking] / d[shrinking]
    i = int(np.argmin(g))
    return max(float(g[i]), 0.0), i


def test_leaving_step_equals_the_array_formula():
    """The compiled leaving-step search returns what the array formula does: ties, nothing
    shrinking, a protected position.  (The entering step is checked against
    ``_entering_reference`` in ``test_screened_search_equals_the_full_search``.)"""
    rng = np.random.default_rng(2)
    for trial in range(200):
        p = int(rng.integers(1, 40))
        x = rng.standard_normal(p)
        d = np.round(rng.standard_normal(p), 1)
        protect = None if trial % 3 else int(rng.integers(p))
        assert leaving_step(x, d, protect) == _leaving_reference(x, d, protect)
    assert leaving_step(np.ones(3), np.ones(3), None) == (np.inf, -1)


def test_carried_path_equals_a_path_solved_afresh(fx, monkeypatch):
    """REFRESH = 1 recomputes x, c and L⁻¹[b̂_S, s] at every breakpoint; the default carries
    them along the path: same supports and λ, coefficients to 1e-9, on a path with removals."""
    import mlip_plugin.solvers.asp as asp_mod

    A = fx.design(150, 60, seed=6, correlation=0.9)
    _, y = fx.planted(A, 25, noise=0.05)
    G, b, yy, n = fx.gram(A, y)
    carried = asp_path_gram(G, b, yy, n, 60)
    monkeypatch.setattr(asp_mod, "REFRESH", 1)
    fresh = asp_path_gram(G, b, yy, n, 60)
    _assert_same_path(carried, fresh)
