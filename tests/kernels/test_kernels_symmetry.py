"""Permutational symmetries: the group, the symmetrised operator, the trained model."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.errors import InputError
from mlip_plugin.kernels import (
    GDMLOperator,
    Molecules,
    TrainSettings,
    check_permutations,
    find_permutations,
    pair_permutations,
    train_gdml,
)


def test_ethanol_group_is_methyl_times_methylene(ethanol):
    R, z = ethanol[0], ethanol[1]
    P = find_permutations(R[0], z)
    assert len(P) == 12  # 3! orderings of the methyl H times 2 of the methylene H
    assert np.array_equal(P[0], np.arange(len(z)))
    moved = {i for p in P for i in np.flatnonzero(p != np.arange(len(z)))}
    assert all(z[i] == 1 for i in moved)
    assert len(moved) == 5  # the hydroxyl H stays
    check_permutations(P, z)  # a group


def test_uracil_and_a_methyl_group(shared_data, make_molecule):
    d = np.load(shared_data / "rmd17" / "uracil_rmd17_train_01.npz")
    R, z = d["R"][0], d["z"]
    assert np.array_equal(find_permutations(R, z), np.arange(len(z))[None])  # no symmetry
    R, z = make_molecule(1)  # C bonded to three H and an O: the three H permute freely
    P = find_permutations(R, z)
    assert len(P) == 6 and {tuple(p[1:4]) for p in P} == {
        (1, 2, 3), (1, 3, 2), (2, 1, 3), (2, 3, 1), (3, 1, 2), (3, 2, 1)}


def test_pair_permutation_is_the_descriptor_of_the_permuted_frame(ethanol):
    R, z = ethanol[0][:3], ethanol[1]
    P = find_permutations(R, z)
    X = Molecules.from_positions(R).x
    for p, q in zip(P, pair_permutations(P)):
        assert np.allclose(Molecules.from_positions(R[:, p]).x, X[:, q], rtol=0, atol=0)


@pytest.mark.parametrize("perms, match", [
    ([[0, 1, 2, 3, 4]], "shape"),
    ([[0, 1, 2, 3, 4, 5.5]], "non-integer"),
    ("abc", "not an integer array"),
    ([[0, 1, 2, 3, 4, 4]], "not a permutation"),
    ([[0, 1, 2, 3, 4, 5], [1, 0, 2, 3, 4, 5]], "another element"),
    ([[0, 1, 2, 4, 3, 5]], "identity"),
    ([[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]], "twice"),
    ([[0, 1, 2, 3, 4, 5], [0, 1, 3, 4, 2, 5]], "closed under composition"),
])
def test_bad_permutations_are_named(perms, match):
    z = np.array([6, 8, 1, 1, 1, 1])
    with pytest.raises(InputError, match=match):
        check_permutations(perms, z)


def test_too_many_automorphisms_warn_and_train_without_symmetries(ethanol, monkeypatch):
    from mlip_plugin.kernels import symmetry

    R, z, E, F = ethanol
    monkeypatch.setattr(symmetry, "MAX_PERMUTATIONS", 5)
    with pytest.raises(symmetry.TooManyPermutations, match="more than 5 automorphisms"):
        find_permutations(R[0], z)
    with pytest.warns(UserWarning, match="without permutational symmetries"):
        model = train_gdml(R[:5], z, E[:5], F[:5], TrainSettings(solver="analytic"))
    assert model.record.n_perms == 1 and len(model.x_train) == 5


def test_default_is_symmetric_and_none_is_plain(ethanol):
    R, z, E, F = ethanol
    s = TrainSettings(solver="analytic")
    assert len(train_gdml(R[:4], z, E[:4], F[:4], s).x_train) == 4 * 12
    plain = train_gdml(R[:4], z, E[:4], F[:4], TrainSettings(solver="analytic", perms=None))
    assert plain.record.n_perms == 1 and len(plain.x_train) == 4


def test_bad_perms_setting_is_named():
    with pytest.raises(InputError, match="perms"):
        TrainSettings(perms="all").check()


def augmented_dense(R, perms, sigma):
    """``K_sym`` from the plain operator on all permuted copies of the frames."""
    m, d = R.shape[:2]
    n = 3 * d * m
    rows = GDMLOperator(np.concatenate([R[:, p] for p in perms]), sigma).rows(np.arange(n))
    K = np.zeros((n, n))
    for g, p in enumerate(perms):
        block = rows[:, g * n:(g + 1) * n].reshape(n, m, d, 3)
        out = np.zeros_like(block)
        out[:, :, p, :] = block  # column of copy atom i = force on original atom p[i]
        K += out.reshape(n, n)
    return K


def test_symmetrised_operator_matches_the_sum_over_permuted_copies(ethanol, rng):
    R, z = ethanol[0][:6], ethanol[1]
    P = find_permutations(R, z)
    op = GDMLOperator(R, 20.0, P)
    K = augmented_dense(R, P, 20.0)
    dense = op.dense()
    scale = np.abs(K).max()
    assert np.abs(dense - K).max() <= 1e-13 * scale
    assert np.abs(dense - dense.T).max() <= 1e-14 * scale
    assert np.allclose(op.diagonal(), np.diag(K), rtol=1e-13, atol=0)
    v = rng.standard_normal(op.n)
    assert np.allclose(op.matvec(v), K @ v, rtol=0, atol=1e-13 * np.abs(K @ v).max())
    assert np.linalg.eigvalsh(dense).min() >= -1e-12 * scale  # positive semi-definite


@pytest.fixture(scope="module")
def sym_model(ethanol):
    R, z, E, F = ethanol
    return train_gdml(R[:30], z, E[:30], F[:30],
                      TrainSettings(sigma=20.0, solver="analytic", perms="auto"))


def test_symmetric_model_is_invariant_to_its_permutations(sym_model, ethanol_test):
    R, z = ethanol_test[0][:3], ethanol_test[1]
    E, F = sym_model.predict(R)
    for p in find_permutations(R, z)[1:]:
        Ep, Fp = sym_model.predict(R[:, p])
        assert np.allclose(Ep, E, rtol=1e-12, atol=0)
        assert np.allclose(Fp, F[:, p], rtol=0, atol=1e-8 * np.abs(F).max())
    assert sym_model.record.n_perms == 12
    assert np.array_equal(sym_model.record.perms, find_permutations(R, z))


def test_symmetries_lower_the_test_error(sym_model, ethanol, ethanol_test):
    R, z, E, F = ethanol
    plain = train_gdml(R[:30], z, E[:30], F[:30],
                       TrainSettings(sigma=20.0, solver="analytic", perms=None))
    Rt, _, _, Ft = ethanol_test
    mae = [np.abs(m.predict(Rt)[1] - Ft).mean() for m in (plain, sym_model)]
    assert mae[1] < 0.9 * mae[0]


def test_pcg_reaches_the_analytic_symmetric_solution(sym_model, ethanol):
    R, z, E, F = ethanol
    s = TrainSettings(sigma=20.0, solver="pcg", perms="auto", tol=1e-9)
    pcg_model = train_gdml(R[:30], z, E[:30], F[:30], s)
    a, b = sym_model.alpha, pcg_model.alpha
    assert pcg_model.record.converged and pcg_model.record.n_perms == 12
    assert np.linalg.norm(b - a) <= 1e-6 * np.linalg.norm(a)
