"""Numba kernels of the many-body evaluation (private).

Notation: pairs p = (i, j) are sorted by centre i and then by neighbour species z, with
``pair_start[i, z] … pair_start[i, z + 1]`` the pairs of atom i with neighbours of species z.
A-basis index v = z * V1 + v_local.  A group g holds terms τ (m-tuples) with A indices
``term_v[τ, t]`` and support slots ``term_slot[τ, t]``; ``coef[τ, k]`` its coupling
coefficients for its K_g functions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["atomic_base", "assemble_many_body", "adjoint_many_body"]


@nb.njit(cache=True)
def atomic_base(phi, pair_i, pair_z, n_atoms, n_species):
    """``A[i, z*V1 + v] = Σ_{p: i_p = i, z_p = z} phi[p, v]``; phi has shape (n_pairs, V1)."""
    n_pairs, v1 = phi.shape
    A = np.zeros((n_atoms, n_species * v1))
    for p in range(n_pairs):
        off = pair_z[p] * v1
        i = pair_i[p]
        for v in range(v1):
            A[i, off + v] += phi[p, v]
    return A


@nb.njit(cache=True)
def _group_values(Ai, g, grp_term_off, grp_nu, term_v, term_slot, coef, coef_off, nfun, nslot,
                  B, G):
    """B[k] and G[k, s] = ∂B_k/∂A[slot s] of one atom for group g."""
    t0, t1 = grp_term_off[g], grp_term_off[g + 1]
    nu = grp_nu[g]
    for k in range(nfun):
        B[k] = 0.0
        for s in range(nslot):
            G[k, s] = 0.0
    part = np.empty(8)
    for tau in range(t0, t1):
        full = 1.0
        for t in range(nu):
            part[t] = 1.0
        for t in range(nu):
            a = Ai[term_v[tau, t]]
            for u in range(nu):
                if u != t:
                    part[u] *= a
            full *= a
        base = coef_off[g] + (tau - t0) * nfun
        for k in range(nfun):
            c = coef[base + k]
            if c == 0.0:
                continue
            B[k] += c * full
            for t in range(nu):
                G[k, term_slot[tau, t]] += c * part[t]


@nb.njit(cache=True)
def _scatter_group(i, cfg, cols, nfun, nslot, G, slot_v, s0, v1, pair_start, pair_j, rvec,
                   dphi, D, F, W):
    """Contract G with dφ over the pairs of atom i; add to forces F and virials W."""
    P0 = pair_start[i, 0]
    npi = pair_start[i, pair_start.shape[1] - 1] - P0
    for k in range(nfun):
        for q in range(npi):
            D[k, q, 0] = 0.0
            D[k, q, 1] = 0.0
            D[k, q, 2] = 0.0
    for s in range(nslot):
        v = slot_v[s0 + s]
        z = v // v1
        vl = v - z * v1
        p0, p1 = pair_start[i, z], pair_start[i, z + 1]
        for k in range(nfun):
            gk = G[k, s]
            if gk == 0.0:
                continue
            for p in range(p0, p1):
                q = p - P0
                D[k, q, 0] += gk * dphi[vl, p, 0]
                D[k, q, 1] += gk * dphi[vl, p, 1]
                D[k, q, 2] += gk * dphi[vl, p, 2]
    for k in range(nfun):
        col = cols[k]
        for q in range(npi):
            p = P0 + q
            j = pair_j[p]
            for x in range(3):
                F[col, j, x] += D[k, q, x]
                F[col, i, x] -= D[k, q, x]
            W[col, cfg, 0] -= D[k, q, 0] * rvec[p, 0]
            W[col, cfg, 1] -= D[k, q, 1] * rvec[p, 1]
            W[col, cfg, 2] -= D[k, q, 2] * rvec[p, 2]
            W[col, cfg, 3] -= D[k, q, 1] * rvec[p, 2]
            W[col, cfg, 4] -= D[k, q, 0] * rvec[p, 2]
            W[col, cfg, 5] -= D[k, q, 0] * rvec[p, 1]


@nb.njit(parallel=True, cache=True)
def assemble_many_body(A, dphi, rvec, pair_j, pair_start, species, atom_cfg, n_cfg, n_cols,
                       grp_center, grp_nu, grp_col_off, grp_cols, grp_term_off, term_v,
                       term_slot, coef, coef_off, grp_slot_off, slot_v, v1, with_forces):
    """Site values, ∂E/∂x (eV/Å per unit coefficient) and virials of all many-body columns.

    Returns
    -------
    site : (n_cols, n_atoms) basis values per atom
    F : (n_cols, n_atoms, 3) ∂(Σ_i B_k(i))/∂x_j
    W : (n_cols, n_cfg, 6) virial −Σ_p ∂E/∂r_p ⊗ r_p (Voigt)
    """
    n_atoms = A.shape[0]
    n_groups = grp_center.shape[0]
    site = np.zeros((n_cols, n_atoms))
    nf = n_atoms if with_forces else 0
    F = np.zeros((n_cols, nf, 3))
    W = np.zeros((n_cols, n_cfg if with_forces else 0, 6))
    max_nb = 0
    for i in range(n_atoms):
        max_nb = max(max_nb, pair_start[i, pair_start.shape[1] - 1] - pair_start[i, 0])
    for g in nb.prange(n_groups):
        c0, c1 = grp_col_off[g], grp_col_off[g + 1]
        nfun = c1 - c0
        s0 = grp_slot_off[g]
        nslot = grp_slot_off[g + 1] - s0
        cols = grp_cols[c0:c1]
        B = np.empty(nfun)
        G = np.empty((nfun, nslot))
        D = np.empty((nfun, max_nb, 3))
        for i in range(n_atoms):
            if species[i] != grp_center[g]:
                continue
            _group_values(A[i], g, grp_term_off, grp_nu, term_v, term_slot, coef, coef_off,
                          nfun, nslot, B, G)
            for k in range(nfun):
                site[cols[k], i] += B[k]
            if with_forces:
                _scatter_group(i, atom_cfg[i], cols, nfun, nslot, G, slot_v, s0, v1,
                               pair_start, pair_j, rvec, dphi, D, F, W)
    return site, F, W


@nb.njit(cache=True)
def adjoint_many_body(A, species, grp_center, grp_nu, grp_term_off, term_v, ccoef):
    """Site energies and the adjoint ``dE/dA[i, v]`` for collapsed coefficients.

    ``ccoef[τ] = Σ_k c_k coef[τ, k]`` is the model's coefficient of term τ, so a group costs
    one pass over its terms whatever its number of functions.
    """
    n_atoms, nv = A.shape
    e = np.zeros(n_atoms)
    dEdA = np.zeros((n_atoms, nv))
    part = np.empty(8)
    for i in range(n_atoms):
        for g in range(grp_center.shape[0]):
            if species[i] != grp_center[g]:
                continue
            nu = grp_nu[g]
            for tau in range(grp_term_off[g], grp_term_off[g + 1]):
                c = ccoef[tau]
                if c == 0.0:
                    continue
                full = c
                for t in range(nu):
                    part[t] = c
                for t in range(nu):
                    a = A[i, term_v[tau, t]]
                    for u in range(nu):
                        if u != t:
                            part[u] *= a
                    full *= a
                e[i] += full
                for t in range(nu):
                    dEdA[i, term_v[tau, t]] += part[t]
    return e, dEdA
