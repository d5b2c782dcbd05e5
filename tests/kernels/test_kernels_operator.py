"""The descriptor, its Jacobian products and the matrix-free GDML kernel operator."""

from __future__ import annotations

import numpy as np

from mlip_plugin.kernels import GDMLOperator, Molecules
from mlip_plugin.kernels.descriptor import pair_indices


def jacobian_fd(R: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central finite-difference descriptor Jacobian of one frame, shape (D, 3 d)."""
    d = R.shape[0]
    cols = []
    for q in range(3 * d):
        e = np.zeros(3 * d)
        e[q] = h
        xp = Molecules.from_positions((R.reshape(-1) + e).reshape(1, d, 3)).x[0]
        xm = Molecules.from_positions((R.reshape(-1) - e).reshape(1, d, 3)).x[0]
        cols.append((xp - xm) / (2 * h))
    return np.array(cols).T


def brute_force_kernel(R: np.ndarray, sigma: float) -> np.ndarray:
    """``K_ab = J_aᵀ (-H(x_a - x_b)) J_b`` with the Matérn-5/2 Hessian written out."""
    X = Molecules.from_positions(R).x
    J = [jacobian_fd(r) for r in R]
    a, c = np.sqrt(5.0) / sigma, 5.0 / (3.0 * sigma**2)
    m, dim = len(R), R.shape[1] * 3
    K = np.zeros((m * dim, m * dim))
    for i in range(m):
        for j in range(m):
            dx = X[i] - X[j]
            r = np.linalg.norm(dx)
            H = c * np.exp(-a * r) * ((1 + a * r) * np.eye(len(dx)) - a * a * np.outer(dx, dx))
            K[i * dim:(i + 1) * dim, j * dim:(j + 1) * dim] = J[i].T @ H @ J[j]
    return K


def test_descriptor_is_inverse_distances(make_molecule):
    R, _ = make_molecule(3)
    x = Molecules.from_positions(R).x
    i, j = pair_indices(5)
    assert np.allclose(x, 1.0 / np.linalg.norm(R[:, i] - R[:, j], axis=-1), rtol=1e-14)


def test_jacobian_products_match_finite_differences(make_molecule, rng):
    R, _ = make_molecule(2)
    mol = Molecules.from_positions(R)
    v = rng.standard_normal(R.shape)
    u = rng.standard_normal(mol.x.shape)
    for f in range(2):
        J = jacobian_fd(R[f])
        assert np.allclose(mol.jvp(v)[f], J @ v[f].reshape(-1), rtol=1e-7, atol=1e-9)
        assert np.allclose(mol.jtvp(u)[f].reshape(-1), J.T @ u[f], rtol=1e-7, atol=1e-9)


def test_operator_dense_matches_brute_force(make_molecule):
    R, _ = make_molecule(4)
    op = GDMLOperator(R, sigma=3.0)
    K = brute_force_kernel(R, 3.0)
    assert np.allclose(op.dense(), K, rtol=1e-6, atol=1e-8 * np.abs(K).max())


def test_matvec_rows_diagonal_agree_with_dense(make_molecule, rng):
    R, _ = make_molecule(7, seed=3)
    op = GDMLOperator(R, sigma=2.0)
    K = op.dense()
    v = rng.standard_normal(op.n)
    scale = np.abs(K).max()
    assert np.allclose(op.matvec(v), K @ v, atol=1e-13 * scale * np.abs(v).sum())
    idx = [0, 5, 17, op.n - 1]
    assert np.allclose(op.rows(idx), K[idx], atol=1e-14 * scale)
    assert np.allclose(op.diagonal(), np.diag(K), atol=1e-14 * scale)
    assert np.allclose(K, K.T, atol=1e-14 * scale)
    assert np.linalg.eigvalsh(K).min() > -1e-12 * scale  # positive semi-definite


def test_rigid_motions_are_in_the_null_space(make_molecule):
    """The descriptor ignores rigid motions, so K annihilates each frame's translations and
    infinitesimal rotations (ω × r leaves every distance unchanged to first order)."""
    R, _ = make_molecule(3)
    op = GDMLOperator(R, sigma=2.0)
    scale = np.abs(op.dense()).max()
    t = np.zeros((3, 5, 3))
    t[1, :, 0] = 1.0  # translate frame 1 along x
    assert np.abs(op.matvec(t.reshape(-1))).max() < 1e-12 * scale
    w = np.zeros((3, 5, 3))
    w[2] = np.cross([0.3, -0.8, 0.5], R[2] - R[2].mean(axis=0))  # rotate frame 2
    assert np.abs(op.matvec(w.reshape(-1))).max() < 1e-12 * scale
    assert np.abs(op.matvec(R.reshape(-1))).max() > 1e-3 * scale  # not a null vector
