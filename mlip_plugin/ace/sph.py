"""Real spherical harmonics Y_lm(r̂) and their gradients with respect to the vector r.

Convention (no Condon–Shortley phase), with ``K_lm = sqrt((2l+1)/(4π) (l-m)!/(l+m)!)``,
``Q_lm(z) = d^m P_l(z) / dz^m`` and ``c_m + i s_m = (x + i y)^m`` on the unit sphere:

* ``Y_l0 = K_l0 Q_l0(z)``
* ``Y_lm = √2 K_lm Q_lm(z) c_m(x, y)`` for m > 0
* ``Y_l,-m = √2 K_lm Q_lm(z) s_m(x, y)`` for m > 0

They are orthonormal on the sphere.  Index of (l, m) in the flat arrays: ``l*l + l + m``.
The unitary map to the complex (Condon–Shortley) harmonics used by the Clebsch–Gordan
coupling is computed numerically in :func:`real_to_complex`, so the two conventions can
never drift apart.
"""

from __future__ import annotations

from functools import cache
from math import factorial, pi, sqrt

import numpy as np

__all__ = ["lm_index", "real_sph_harm", "real_to_complex"]


def lm_index(l: int, m: int) -> int:
    """Flat index of (l, m): ``l*l + l + m``."""
    return l * l + l + m


def _norms(lmax: int) -> np.ndarray:
    k = np.zeros((lmax + 1, lmax + 1))
    for l in range(lmax + 1):
        for m in range(l + 1):
            k[l, m] = sqrt((2 * l + 1) / (4 * pi) * factorial(l - m) / factorial(l + m))
    return k


def _legendre_derivs(z: np.ndarray, lmax: int) -> np.ndarray:
    """``Q[l, m] = d^m P_l / dz^m`` at z, shape (lmax+2, lmax+2, n) (zero where m > l)."""
    q = np.zeros((lmax + 2, lmax + 2) + z.shape)
    for m in range(lmax + 2):
        dfact = 1.0
        for k in range(1, 2 * m, 2):
            dfact *= k
        q[m, m] = dfact
        if m + 1 <= lmax + 1:
            q[m + 1, m] = (2 * m + 1) * z * q[m, m]
        for l in range(m + 2, lmax + 2):
            q[l, m] = ((2 * l - 1) * z * q[l - 1, m] - (l + m - 1) * q[l - 2, m]) / (l - m)
    return q


def real_sph_harm(vectors: np.ndarray, lmax: int, gradient: bool = True):
    """Real spherical harmonics of the directions of ``vectors`` and their gradients.

    Parameters
    ----------
    vectors : ndarray of shape (n, 3)
        Non-zero vectors r (Å); only their directions matter for Y.
    lmax : int
        Largest degree l.
    gradient : bool
        Also return ∇_r Y_lm(r/|r|).

    Returns
    -------
    Y : ndarray of shape (n, (lmax+1)**2)
    dY : ndarray of shape (n, (lmax+1)**2, 3), only with ``gradient`` (units 1/Å)
    """
    r = np.linalg.norm(vectors, axis=1)
    u = vectors / r[:, None]
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    n = len(r)
    nlm = (lmax + 1) ** 2
    q = _legendre_derivs(z, lmax)
    kn = _norms(lmax)
    c = np.zeros((lmax + 1, n))
    s = np.zeros((lmax + 1, n))
    c[0] = 1.0
    for m in range(1, lmax + 1):
        c[m] = x * c[m - 1] - y * s[m - 1]
        s[m] = x * s[m - 1] + y * c[m - 1]
    Y = np.empty((n, nlm))
    dYu = np.zeros((n, nlm, 3)) if gradient else None
    for l in range(lmax + 1):
        Y[:, lm_index(l, 0)] = kn[l, 0] * q[l, 0]
        if gradient:
            dYu[:, lm_index(l, 0), 2] = kn[l, 0] * q[l, 1]
        for m in range(1, l + 1):
            f = sqrt(2.0) * kn[l, m]
            Y[:, lm_index(l, m)] = f * q[l, m] * c[m]
            Y[:, lm_index(l, -m)] = f * q[l, m] * s[m]
            if gradient:
                ip, im = lm_index(l, m), lm_index(l, -m)
                dYu[:, ip, 0] = f * q[l, m] * m * c[m - 1]
                dYu[:, ip, 1] = -f * q[l, m] * m * s[m - 1]
                dYu[:, ip, 2] = f * q[l, m + 1] * c[m]
                dYu[:, im, 0] = f * q[l, m] * m * s[m - 1]
                dYu[:, im, 1] = f * q[l, m] * m * c[m - 1]
                dYu[:, im, 2] = f * q[l, m + 1] * s[m]
    if not gradient:
        return Y
    # chain rule through u = r/|r|: ∇_r Y = (I - u uᵀ) ∇_u Y / |r|
    radial = np.einsum("nkx,nx->nk", dYu, u)
    dY = (dYu - radial[:, :, None] * u[:, None, :]) / r[:, None, None]
    return Y, dY


@cache
def real_to_complex(l: int) -> np.ndarray:
    """Matrix V with ``Y^complex_{l m} = Σ_μ V[m + l, μ + l] Y^real_{l μ}``.

    Computed by least squares against ``scipy.special.sph_harm_y`` at random points, so it
    holds for exactly the conventions of both implementations; checked to be unitary.
    """
    from scipy.special import sph_harm_y

    rng = np.random.default_rng(12345 + l)
    npts = 8 * l + 16
    v = rng.normal(size=(npts, 3))
    Yr = real_sph_harm(v, l, gradient=False)[:, l * l:(l + 1) ** 2]
    u = v / np.linalg.norm(v, axis=1)[:, None]
    theta = np.arccos(np.clip(u[:, 2], -1, 1))
    phi = np.arctan2(u[:, 1], u[:, 0])
    Yc = np.stack([sph_harm_y(l, m, theta, phi) for m in range(-l, l + 1)], axis=1)
    V, *_ = np.linalg.lstsq(Yr.astype(complex), Yc, rcond=None)
    V = V.T
    if not np.allclose(V @ V.conj().T, np.eye(2 * l + 1), atol=1e-10):
        raise RuntimeError(f"real/complex spherical harmonics map for l={l} is not unitary")
    V.flags.writeable = False
    return V
