"""The GDML force-field kernel and its matrix-free operator.

Energies are modelled as a Gaussian process in the descriptor ``x(R)`` (see
:mod:`.descriptor`) with the Matérn ν = 5/2 kernel of length scale σ,

    κ(x, x') = (1 + a r + a² r² / 3) exp(-a r),   r = |x - x'|,   a = √5 / σ.

Forces ``F = -∇_R E`` then have the covariance ``K_ab = J_aᵀ (-H(x_a - x_b)) J_b``, with
``H`` the Hessian of κ in ``d = x - x'`` and ``J`` the descriptor Jacobian:

    -H(d) v = c exp(-a r) [(1 + a r) v - a² d (d·v)],   c = 5 / (3 σ²).

Rows and columns of ``K`` (``n = 3 · n_atoms · n_frames``) are indexed frame-major:
``index = 3 · n_atoms · frame + 3 · atom + component``.  :class:`GDMLOperator` gives
kernel-vector products computed in blocks of rows (``O(n_frames² D)`` work, never the
``n × n`` matrix), single columns (for the preconditioners) and the diagonal.

With permutational symmetries ``perms`` (a group of permutations of identical atoms, see
:mod:`.symmetry`) the operator is the symmetrised kernel of sGDML,

    K_ab = Σ_P J_aᵀ (-H(x_a - Q_P x_b)) Q_P J_b,

the sum over the permuted copies of every training frame, where ``Q_P`` permutes descriptor
entries (``x(R[p]) = Q_P x(R)``).  Each product costs ``n_perms`` times the plain one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .descriptor import Molecules
from .symmetry import pair_permutations

__all__ = ["Matern52", "GDMLOperator", "check_sigma"]

#: Bytes of scratch space one block of a product may use.
BLOCK_BYTES = 64 * 2**20


def check_sigma(sigma) -> float:
    """Return ``sigma`` as a float; :class:`InputError` unless it is finite and > 0."""
    try:
        value = float(sigma)
    except (TypeError, ValueError) as err:
        raise InputError(f"sigma={sigma!r} is not a number; give a length scale > 0 "
                         "(in units of the inverse-distance descriptor, 1/Å)") from err
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"sigma={sigma!r} is not allowed; the kernel length scale must be "
                         "finite and > 0 (sGDML uses 10-100 for small molecules)")
    return value


@dataclass(frozen=True)
class Matern52:
    """Matérn ν = 5/2 kernel of length scale ``sigma`` and the radial weights of its Hessian."""

    sigma: float

    @property
    def a(self) -> float:
        return np.sqrt(5.0) / self.sigma

    @property
    def c(self) -> float:
        return 5.0 / (3.0 * self.sigma**2)

    def weights(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``w0 = c e^{-ar}`` and ``w1 = w0 (1 + a r)``: ``-H(d) v = w1 v - a² w0 d (d·v)``
        and ``∇κ(d) = -w1 d``."""
        w0 = self.c * np.exp(-self.a * r)
        return w0, w0 * (1.0 + self.a * r)


def pair_distances(XA: np.ndarray, XB: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``XA`` (m, D) and ``XB`` (p, D) → (m, p)."""
    sq = (XA**2).sum(1)[:, None] + (XB**2).sum(1)[None, :] - 2.0 * XA @ XB.T
    return np.sqrt(np.maximum(sq, 0.0))


class GDMLOperator:
    """Matrix-free force-field kernel matrix ``K`` of training positions ``R``.

    Stores the descriptors ``X`` (n_frames, D) and the stacked Jacobians ``Jᵀ`` as one
    ``(n, D)`` array (row ``3 d b + 3 i + c`` is ``∂x_b / ∂r_{b,i,c}``), ``O(n D)`` memory, so
    that products, rows and the diagonal are a few matrix products:

        K[:, (b, e)] = w1_ab J_aᵀ (J_b e) - a² w0_ab (x_a - x_b)·(J_b e) J_aᵀ (x_a - x_b).

    Parameters
    ----------
    R : ndarray, shape (n_frames, n_atoms, 3)
        Training positions in Å (checked by the caller).
    sigma : float
        Kernel length scale (> 0).
    perms : ndarray of int, shape (n_perms, n_atoms), optional
        Permutational symmetries, already checked (:func:`.symmetry.check_permutations`,
        identity first); ``None``: no symmetrisation.
    """

    def __init__(self, R: np.ndarray, sigma: float, perms: np.ndarray | None = None):
        self.kernel = Matern52(check_sigma(sigma))
        n_atoms = R.shape[1]
        self.perms = (np.arange(n_atoms)[None, :] if perms is None
                      else np.asarray(perms, dtype=int))
        self.q = pair_permutations(self.perms)  # (n_perms, D)
        self.mol = Molecules.from_positions(R)
        self.n_frames, self.n_atoms = R.shape[0], R.shape[1]
        self.dim = 3 * self.n_atoms
        self.n = self.n_frames * self.dim
        self.shape = (self.n, self.n)
        self.dtype = np.dtype(float)
        eye = np.eye(self.dim).reshape(self.dim, self.n_atoms, 3)
        jt = np.stack([self.mol.jvp(np.broadcast_to(e, R.shape)) for e in eye], axis=1)
        self.Jt = np.ascontiguousarray(jt.reshape(self.n, -1))  # (n, D)
        self.JtX = np.einsum("bqp,bp->bq", jt, self.mol.x).reshape(-1)  # J_aᵀ x_a, (n,)

    @property
    def n_perms(self) -> int:
        return len(self.q)

    def permuted_copies(self, A: np.ndarray) -> np.ndarray:
        """Per-frame descriptor-space rows ``A`` (n_frames, D) of every permuted copy,
        stacked copy by copy: shape (n_perms · n_frames, D), C-ordered.  The symmetrised
        kernel is the plain one on these copies."""
        return np.ascontiguousarray(np.concatenate([A[:, q] for q in self.q]))

    def diagonal(self) -> np.ndarray:
        """The diagonal of ``K``, shape (n,): ``c |J_b e|²`` (plus the permuted terms)."""
        kern = self.kernel
        out = kern.c * (self.Jt**2).sum(1)
        frame = np.arange(self.n) // self.dim
        for q in self.q[1:]:
            d = self.mol.x - self.mol.x[:, q]  # x_b - Q_P x_b, (n_frames, D)
            w0, w1 = kern.weights(np.sqrt((d**2).sum(1)))
            uq = self.Jt[:, q]
            dd = d[frame]
            out += (w1[frame] * np.einsum("ip,ip->i", self.Jt, uq)
                    - kern.a**2 * w0[frame] * np.einsum("ip,ip->i", dd, self.Jt)
                    * np.einsum("ip,ip->i", dd, uq))
        return out

    def matvec(self, alpha: np.ndarray) -> np.ndarray:
        """``K α`` for ``α`` of shape (n,), in blocks of rows; returns shape (n,)."""
        kern, X = self.kernel, self.mol.x
        V = np.einsum("bqp,bq->bp", self.Jt.reshape(self.n_frames, self.dim, -1),
                      np.asarray(alpha, dtype=float).reshape(self.n_frames, self.dim))
        q = np.einsum("bp,bp->b", X, V)  # the same for every permuted copy
        U = np.zeros_like(V)
        block = max(1, BLOCK_BYTES // (8 * 4 * self.n_frames))
        for perm in self.q:
            XB, VB = np.ascontiguousarray(X[:, perm]), np.ascontiguousarray(V[:, perm])
            for start in range(0, self.n_frames, block):
                XA = X[start:start + block]
                w0, w1 = kern.weights(pair_distances(XA, XB))
                T = w0 * (XA @ VB.T - q[None, :])  # w0_ab (d_ab · v_b)
                U[start:start + block] += w1 @ VB - kern.a**2 * (XA * T.sum(1)[:, None]
                                                                 - T @ XB)
        out = np.einsum("bqp,bp->bq", self.Jt.reshape(self.n_frames, self.dim, -1), U)
        return out.reshape(-1)

    def __matmul__(self, alpha: np.ndarray) -> np.ndarray:
        return self.matvec(alpha)

    def rows(self, idx) -> np.ndarray:
        """Rows ``K[idx, :]`` (= columns, ``K`` is symmetric), shape ``(len(idx), n)``."""
        idx = np.asarray(idx, dtype=int).reshape(-1)
        out = np.empty((len(idx), self.n))
        chunk = max(1, BLOCK_BYTES // (8 * 3 * self.n))
        for start in range(0, len(idx), chunk):
            sl = slice(start, start + chunk)
            out[sl] = self._rows_chunk(idx[sl])
        return out

    def _rows_chunk(self, idx: np.ndarray) -> np.ndarray:
        kern, X = self.kernel, self.mol.x
        frame = idx // self.dim
        shape = (len(idx), self.n_frames, self.dim)
        out = None
        for perm in self.q:
            v = np.ascontiguousarray(self.Jt[idx][:, perm])  # Q_P J_b e, (s, D)
            xb = np.ascontiguousarray(X[frame][:, perm])  # Q_P x_b
            w0, w1 = kern.weights(pair_distances(xb, X))  # (s, n_frames)
            proj = v @ X.T - np.einsum("sp,sp->s", v, xb)[:, None]  # (x_a - Q_P x_b)·v
            tmp = v @ self.Jt.T
            tmp.reshape(shape)[...] *= w1[:, :, None]
            if out is None:
                out = tmp
            else:
                out += tmp
            tmp = xb @ self.Jt.T
            tmp -= self.JtX[None, :]
            tmp.reshape(shape)[...] *= (kern.a**2 * w0 * proj)[:, :, None]
            out += tmp
        return out

    def dense(self, out: np.ndarray | None = None, shift: float = 0.0) -> np.ndarray:
        """The full matrix ``K + shift · I`` (n, n), written row block by row block into ``out``
        (C-ordered, allocated when not given).  Only for the analytic and eigen references."""
        if out is None:
            out = np.empty(self.shape)
        step = max(1, BLOCK_BYTES // (8 * 3 * self.n))
        for start in range(0, self.n, step):
            stop = min(self.n, start + step)
            out[start:stop] = self._rows_chunk(np.arange(start, stop))
        if shift:
            out[np.diag_indices(self.n)] += shift
        return out
