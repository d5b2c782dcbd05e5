"""Distance transform, radial basis and repulsive pair envelope."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.ace.radial import (
    AgnesiTransform,
    _agnesi_dx_ds,
    agnesi_a,
    legendre,
    pair_basis,
    pair_envelope,
    radial_basis,
)

TRANS = AgnesiTransform(r0=2.35, r_cut=5.5)


def test_transform_range_and_slope():
    r = np.linspace(1e-6, 5.5, 2001)
    y, dy = TRANS(r)
    assert y[0] == pytest.approx(1.0, abs=1e-9)
    assert y[-1] == pytest.approx(-1.0, abs=1e-12)
    assert np.all(np.diff(y) < 0) and np.all(dy[1:] < 0)
    # the steepest point of y(r) is r0
    assert abs(r[np.argmin(dy)] - 2.35) < 0.003


@pytest.mark.parametrize("p,q", [(2.0, 4.0), (1.0, 3.0), (2.0, 6.0)])
def test_agnesi_a_is_inflection(p, q):
    a = agnesi_a(p, q)
    h = 1e-5
    s = np.array([1 - h, 1 + h])
    d2 = np.diff(_agnesi_dx_ds(s, a, p, q))[0] / (2 * h)
    assert abs(d2) < 1e-8


def test_legendre_matches_numpy():
    y = np.linspace(-1, 1, 7)
    P, dP = legendre(y, 9)
    for k in range(9):
        c = np.zeros(k + 1)
        c[k] = 1
        assert np.allclose(P[k], np.polynomial.legendre.legval(y, c), atol=1e-14)
        assert np.allclose(dP[k], np.polynomial.legendre.legval(y, np.polynomial.legendre
                                                                 .legder(c)), atol=1e-12)


@pytest.mark.parametrize("fn", [radial_basis, pair_basis])
def test_derivatives_fd(fn):
    r = np.linspace(0.8, 5.4, 37)
    h = 1e-6
    V, dV = fn(r, TRANS, 8)
    fd = (fn(r + h, TRANS, 8)[0] - fn(r - h, TRANS, 8)[0]) / (2 * h)
    assert np.allclose(fd, dV, rtol=1e-6, atol=1e-8 * np.abs(V).max())


@pytest.mark.parametrize("fn", [radial_basis, pair_basis])
def test_vanish_at_cutoff(fn):
    V, dV = fn(np.array([5.5, 5.5 - 1e-4]), TRANS, 12)
    assert np.abs(V[0]).max() < 1e-14 and np.abs(dV[0]).max() < 1e-12
    assert np.abs(V[1]).max() < 1e-6 and np.abs(dV[1]).max() < 1e-3


def test_pair_envelope_repulsive():
    r = np.array([0.2, 0.5, 1.0, 2.0])
    f, df = pair_envelope(r, 2.35, 5.5)
    assert np.all(np.diff(f) < 0) and np.all(df < 0)
    assert f[0] > 10
    # the pair functions diverge like the envelope, the many-body ones stay bounded
    V, _ = pair_basis(np.array([0.05, 0.1]), TRANS, 4)
    R, _ = radial_basis(np.array([0.05, 0.1]), TRANS, 4)
    assert np.all(V[0] > V[1]) and V[0, 0] > 40
    assert np.abs(R).max() < 1e-3
