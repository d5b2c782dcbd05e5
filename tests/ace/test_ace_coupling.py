"""Clebsch–Gordan coefficients, real harmonics and rotation-invariant couplings."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.ace.coupling import (
    cg_block,
    clebsch_gordan,
    coupling_paths,
    invariant_couplings,
)
from mlip_plugin.ace.sph import real_sph_harm, real_to_complex


def test_cg_matches_sympy():
    wigner = pytest.importorskip("sympy.physics.wigner")
    for args in [(1, 0, 1, 0, 2, 0), (2, 1, 1, -1, 1, 0), (3, -2, 2, 2, 3, 0),
                 (7, 3, 6, -5, 9, -2), (12, 5, 10, -3, 14, 2)]:
        j1, m1, j2, m2, J, M = args
        assert clebsch_gordan(*args) == pytest.approx(
            float(wigner.clebsch_gordan(j1, j2, J, m1, m2, M)), rel=1e-14, abs=1e-15)


def test_cg_orthogonality():
    j1, j2 = 5, 4
    rows = np.concatenate([cg_block(j1, j2, J).reshape(-1, 2 * J + 1)
                           for J in range(1, j1 + j2 + 1)], axis=1)
    assert np.allclose(rows.T @ rows, np.eye(rows.shape[1]), atol=1e-13)


def test_real_harmonics_orthonormal_and_gradient(rng):
    pts = rng.normal(size=(4000, 3))
    # exact quadrature: Gauss–Legendre in z times the trapezoidal rule in φ
    z, wz = np.polynomial.legendre.leggauss(12)
    phi = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    s = np.sqrt(1 - zz**2)
    u = np.stack([s * np.cos(pp), s * np.sin(pp), zz], -1).reshape(-1, 3)
    w = (wz[:, None] * np.full(phi.size, 2 * np.pi / phi.size)).ravel()
    Y = real_sph_harm(u, 5, gradient=False)
    assert np.allclose(Y.T @ (Y * w[:, None]), np.eye(36), atol=1e-13)
    Y, dY = real_sph_harm(pts[:20], 8)
    h = 1e-6
    for x in range(3):
        e = np.zeros(3)
        e[x] = h
        fd = (real_sph_harm(pts[:20] + e, 8, False) - real_sph_harm(pts[:20] - e, 8, False))
        assert np.allclose(fd / (2 * h), dY[:, :, x], rtol=1e-6, atol=1e-7)


def test_real_to_complex_unitary():
    for l in range(10):
        V = real_to_complex(l)
        assert np.allclose(V @ V.conj().T, np.eye(2 * l + 1), atol=1e-12)


def test_coupling_paths():
    assert coupling_paths((0,)) == [()]
    assert coupling_paths((2,)) == []
    assert coupling_paths((1, 1)) == [()]
    assert coupling_paths((1, 2)) == []
    assert coupling_paths((1, 1, 2)) == [(2,)]
    assert len(coupling_paths((2, 2, 2, 2))) == 5


def _value(coef, ls, R, pattern=None):
    """Σ_m C Π_t A_t with A_t = Σ_j g_t(r_j) Y(r̂_j), g_t distinct for distinct labels."""
    pattern = tuple(range(len(ls))) if pattern is None else pattern
    Y = real_sph_harm(R, max(ls), gradient=False)
    r = np.linalg.norm(R, axis=1)
    facs = [(r ** pattern[t] * np.exp(-r)) @ Y[:, l * l:(l + 1) ** 2] for t, l in enumerate(ls)]
    prod = facs[0]
    for f in facs[1:]:
        prod = np.multiply.outer(prod, f)
    return coef.reshape(coef.shape[0], -1) @ prod.ravel()


@pytest.mark.parametrize("ls,pattern,count", [
    ((1, 1), (0, 0), 1), ((2, 2, 2), (0, 0, 0), 1), ((1, 2, 3), (0, 1, 2), 1),
    ((2, 2, 2, 2), (0, 0, 0, 0), 1), ((2, 2, 2, 2), (0, 1, 2, 3), 5),
    ((1, 1, 2, 2), (0, 1, 2, 2), 2), ((3, 3, 2, 2, 2), (0, 0, 1, 1, 1), 4),
    ((3, 5, 4), (0, 1, 2), 1)])
def test_invariant_couplings(rng, rotation, ls, pattern, count):
    coef = invariant_couplings(ls, pattern)
    assert coef.shape[0] == count
    if count == 0:
        return
    flat = coef.reshape(count, -1)
    assert np.allclose(flat @ flat.T, np.eye(count), atol=1e-12)
    R = rng.normal(size=(9, 3)) * 2
    Q = rotation
    ref = _value(coef, ls, R, pattern)
    assert np.abs(ref).max() > 1e-6
    for moved in (R @ Q.T, -R, R[::-1]):
        assert np.allclose(_value(coef, ls, moved, pattern), ref, rtol=1e-11, atol=1e-14)


def test_odd_couplings_are_pseudoscalars(rng, rotation):
    """Σ l odd: invariant under rotations but odd under reflection (so the basis drops it)."""
    coef = invariant_couplings((1, 1, 1), (0, 1, 2))
    assert coef.shape[0] == 1
    R = rng.normal(size=(6, 3)) * 2
    ref = _value(coef, (1, 1, 1), R)
    assert abs(ref[0]) > 1e-6
    assert np.allclose(_value(coef, (1, 1, 1), R @ rotation.T), ref, rtol=1e-12)
    assert np.allclose(_value(coef, (1, 1, 1), -R), -ref, rtol=1e-12)
