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

__all__ = ["atomic_base", "assemble_many_body", "model_base_dense", "model_adjoint_blocked",
           "model_contract_dense", "sph_harm_grad"]


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


@nb.njit(parallel=True, cache=True)
def one_particle_kernel(R, dR, Y, dY, u, vn, vlm, pair_start):
    """φ[p, v] = R[p, vn[v]] Y[p, vlm[v]] and dφ/dr_p in the per-atom flat layout.

    The derivative block of atom i is contiguous: ``dphi[3 V1 P0 + (v nb_i + q) 3 + x]`` for
    its pair q (p = P0 + q) of ``nb_i`` pairs, so one atom's data stays in cache.
    """
    n_pairs = R.shape[0]
    v1 = vn.shape[0]
    n_atoms = pair_start.shape[0]
    last = pair_start.shape[1] - 1
    phi = np.empty((n_pairs, v1))
    dphi = np.empty(n_pairs * v1 * 3)
    for i in nb.prange(n_atoms):
        P0 = pair_start[i, 0]
        nbi = pair_start[i, last] - P0
        base = 3 * v1 * P0
        for q in range(nbi):
            p = P0 + q
            for v in range(v1):
                n = vn[v]
                lm = vlm[v]
                r_ = R[p, n]
                y_ = Y[p, lm]
                phi[p, v] = r_ * y_
                dr = dR[p, n] * y_
                o = base + (v * nbi + q) * 3
                dphi[o] = dr * u[p, 0] + r_ * dY[p, lm, 0]
                dphi[o + 1] = dr * u[p, 1] + r_ * dY[p, lm, 1]
                dphi[o + 2] = dr * u[p, 2] + r_ * dY[p, lm, 2]
    return phi, dphi


@nb.njit(cache=True, fastmath=True)
def _pair_derivs(i, nfun, nslot, G, slot_v, s0, v1, pair_start, dphi, D, kk0):
    """∂B_k(i)/∂r_p = Σ_s G[k, s] dφ_s(r_p) for the group's functions: D[kk0 + k, 3 q + x]."""
    last = pair_start.shape[1] - 1
    P0 = pair_start[i, 0]
    nbi = pair_start[i, last] - P0
    base = 3 * v1 * P0
    for k in range(nfun):
        Dk = D[kk0 + k]
        for a in range(3 * nbi):
            Dk[a] = 0.0
        s = 0
        while s < nslot:
            v = slot_v[s0 + s]
            z = v // v1
            a0 = 3 * (pair_start[i, z] - P0)
            a1 = 3 * (pair_start[i, z + 1] - P0)
            o = base + (v - z * v1) * nbi * 3
            # slots are sorted by v, hence by species: four of one species share the pairs
            if s + 3 < nslot and slot_v[s0 + s + 3] < (z + 1) * v1:
                g1, g2, g3, g4 = G[k, s], G[k, s + 1], G[k, s + 2], G[k, s + 3]
                o2 = base + (slot_v[s0 + s + 1] - z * v1) * nbi * 3
                o3 = base + (slot_v[s0 + s + 2] - z * v1) * nbi * 3
                o4 = base + (slot_v[s0 + s + 3] - z * v1) * nbi * 3
                for a in range(a0, a1):
                    Dk[a] += (g1 * dphi[o + a] + g2 * dphi[o2 + a]
                              + g3 * dphi[o3 + a] + g4 * dphi[o4 + a])
                s += 4
            else:
                gk = G[k, s]
                for a in range(a0, a1):
                    Dk[a] += gk * dphi[o + a]
                s += 1


@nb.njit(cache=True)
def _scatter_block(i, cfg, col0, ncol, pair_start, pair_j, rvec, D, DT, acc, F, W):
    """Add the block's ∂E/∂r_p (D[c, 3 q + x]) to the F rows of i and its neighbours and to W.

    D is transposed into DT[3 q + x, c] first (it is small and in cache) so that every
    write into F and W is a contiguous run of ``ncol`` columns; each inner loop touches two
    arrays only, so that it vectorises.  ``acc`` (9, ≥ ncol) is scratch.
    """
    last = pair_start.shape[1] - 1
    P0 = pair_start[i, 0]
    nbi = pair_start[i, last] - P0
    for c in range(ncol):
        for a in range(3 * nbi):
            DT[a, c] = D[c, a]
    for v in range(9):
        for c in range(ncol):
            acc[v, c] = 0.0
    for q in range(nbi):
        p = P0 + q
        j = pair_j[p]
        for x in range(3):
            row = DT[3 * q + x]
            Fjx = F[j, x, col0:col0 + ncol]
            sx = acc[x]
            for c in range(ncol):
                Fjx[c] += row[c]
            for c in range(ncol):
                sx[c] += row[c]
        # virial: acc[3 + v] += D_a r_b for v = xx, yy, zz, yz, xz, xy
        for v, a, b in ((0, 0, 0), (1, 1, 1), (2, 2, 2), (3, 1, 2), (4, 0, 2), (5, 0, 1)):
            row = DT[3 * q + a]
            rb = rvec[p, b]
            wv = acc[3 + v]
            for c in range(ncol):
                wv[c] += row[c] * rb
    for x in range(3):
        for c in range(ncol):
            F[i, x, col0 + c] -= acc[x, c]
    for v in range(6):
        for c in range(ncol):
            W[cfg, v, col0 + c] -= acc[3 + v, c]


#: Columns gathered before one scatter into the force rows (cache blocking).
BLOCK = 64


@nb.njit(parallel=True, cache=True)
def assemble_many_body(A, dphi, rvec, pair_j, pair_start, species, atom_cfg, n_cfg, n_cols,
                       grp_center, grp_nu, grp_col_off, grp_cols, grp_term_off, term_v,
                       term_slot, coef, coef_off, grp_slot_off, slot_v, chunk_off, v1,
                       with_forces, site, F, W):
    """Add site values, ∂E/∂x and virials of all many-body columns to site, F and W.

    The coupling groups are split into chunks of similar cost (``chunk_off``) that run in
    parallel (coarse-grained: robust on a busy machine) and write disjoint columns; within
    a chunk, atoms run one after another, and the columns of consecutive groups (their
    columns are consecutive) are gathered in blocks of about ``BLOCK`` before they are
    scattered into the force rows, so that the writes are contiguous.

    site : (n_atoms, n_cols);  F : (n_atoms, 3, n_cols) ∂(Σ_i B_k(i))/∂x_j;
    W : (n_cfg, 6, n_cols) virial −Σ_p ∂E/∂r_p ⊗ r_p (Voigt).
    """
    n_atoms = A.shape[0]
    n_chunks = chunk_off.shape[0] - 1
    last = pair_start.shape[1] - 1
    max_fun = 1
    max_slot = 1
    for g in range(grp_center.shape[0]):
        max_fun = max(max_fun, grp_col_off[g + 1] - grp_col_off[g])
        max_slot = max(max_slot, grp_slot_off[g + 1] - grp_slot_off[g])
    max_nb = 1
    for i in range(n_atoms):
        max_nb = max(max_nb, pair_start[i, last] - pair_start[i, 0])
    for c in nb.prange(n_chunks):
        B = np.empty(max_fun)
        G = np.empty((max_fun, max_slot))
        D = np.empty((BLOCK + max_fun, 3 * max_nb))
        DT = np.empty((3 * max_nb, BLOCK + max_fun))
        acc = np.empty((9, BLOCK + max_fun))
        for i in range(n_atoms):
            g = chunk_off[c]
            while g < chunk_off[c + 1]:
                # a block of groups of the centre species with consecutive columns
                col0 = -1
                ncol = 0
                while g < chunk_off[c + 1] and ncol < BLOCK:
                    if species[i] != grp_center[g]:
                        g += 1
                        if ncol:
                            break
                        continue
                    c0, c1 = grp_col_off[g], grp_col_off[g + 1]
                    nfun = c1 - c0
                    if col0 < 0:
                        col0 = grp_cols[c0]
                    elif grp_cols[c0] != col0 + ncol:
                        break
                    s0 = grp_slot_off[g]
                    nslot = grp_slot_off[g + 1] - s0
                    _group_values(A[i], g, grp_term_off, grp_nu, term_v, term_slot, coef,
                                  coef_off, nfun, nslot, B, G)
                    for k in range(nfun):
                        site[i, grp_cols[c0 + k]] += B[k]
                    if with_forces:
                        _pair_derivs(i, nfun, nslot, G, slot_v, s0, v1, pair_start, dphi, D,
                                     ncol)
                    ncol += nfun
                    g += 1
                if with_forces and ncol:
                    _scatter_block(i, atom_cfg[i], col0, ncol, pair_start, pair_j, rvec, D, DT,
                                   acc, F, W)


@nb.njit(cache=True, fastmath=True)
def sph_harm_grad(rvec, lmax, kn):
    """Real spherical harmonics Y_lm(r/|r|) and ∇_r Y_lm of every row of rvec, pair by pair.

    The same construction as :func:`mlip_plugin.ace.sph.real_sph_harm` (``kn`` its norms,
    shape (lmax+1, lmax+1)): Q[l, m] = d^m P_l/dz^m by recurrence, cos/sin(mφ) sin^m θ by
    the complex power (x + iy)^m, and the chain rule through u = r/|r|.
    Returns Y (n, (lmax+1)²) and dY (n, (lmax+1)², 3) in 1/Å.
    """
    n = rvec.shape[0]
    nlm = (lmax + 1) ** 2
    Y = np.empty((n, nlm))
    dY = np.empty((n, nlm, 3))
    q = np.zeros((lmax + 2, lmax + 2))
    c = np.empty(lmax + 1)
    s = np.empty(lmax + 1)
    sq2 = np.sqrt(2.0)
    for p in range(n):
        r = np.sqrt(rvec[p, 0] ** 2 + rvec[p, 1] ** 2 + rvec[p, 2] ** 2)
        x, y, z = rvec[p, 0] / r, rvec[p, 1] / r, rvec[p, 2] / r
        dfact = 1.0
        for m in range(lmax + 2):
            if m > 0:
                dfact *= 2 * m - 1
            q[m, m] = dfact
            if m + 1 <= lmax + 1:
                q[m + 1, m] = (2 * m + 1) * z * q[m, m]
            for l in range(m + 2, lmax + 2):
                q[l, m] = ((2 * l - 1) * z * q[l - 1, m] - (l + m - 1) * q[l - 2, m]) / (l - m)
        c[0] = 1.0
        s[0] = 0.0
        for m in range(1, lmax + 1):
            c[m] = x * c[m - 1] - y * s[m - 1]
            s[m] = x * s[m - 1] + y * c[m - 1]
        for l in range(lmax + 1):
            k0 = l * l + l
            _sph_store(p, k0, kn[l, 0] * q[l, 0], 0.0, 0.0, kn[l, 0] * q[l, 1],
                       x, y, z, r, Y, dY)
            for m in range(1, l + 1):
                f = sq2 * kn[l, m]
                fq = f * q[l, m]
                _sph_store(p, k0 + m, fq * c[m], fq * m * c[m - 1], -fq * m * s[m - 1],
                           f * q[l, m + 1] * c[m], x, y, z, r, Y, dY)
                _sph_store(p, k0 - m, fq * s[m], fq * m * s[m - 1], fq * m * c[m - 1],
                           f * q[l, m + 1] * s[m], x, y, z, r, Y, dY)
    return Y, dY


@nb.njit(cache=True, inline="always")
def _sph_store(p, k, val, gx, gy, gz, x, y, z, r, Y, dY):
    """Y[p, k] = val; dY[p, k] = (I − u uᵀ) (gx, gy, gz) / r."""
    Y[p, k] = val
    rad = gx * x + gy * y + gz * z
    dY[p, k, 0] = (gx - rad * x) / r
    dY[p, k, 1] = (gy - rad * y) / r
    dY[p, k, 2] = (gz - rad * z) / r


#: Atoms evaluated together by :func:`model_adjoint_blocked` (their A rows are transposed
#: into a (V, BLOCK_ATOMS) block, so every term is a short vector loop over atoms; 2 × V ×
#: 128 doubles stay in a 2 MB L2 cache; 32: 1.5×, 128: 2.9× faster than atom by atom).
BLOCK_ATOMS = 128


@nb.njit(cache=True, fastmath=True)
def model_adjoint_blocked(A, atom_order, atom_off, term_off, term_nu, term_v, ccoef):
    """:func:`model_adjoint` vectorised over blocks of atoms of one species.

    ``atom_order[atom_off[z]:atom_off[z + 1]]`` are the atoms of species z.  For each block
    of up to BLOCK_ATOMS of them, A is transposed into ``AT[v, k]`` and every product term
    updates the energies and ``∂E/∂A`` of all atoms of the block in one contiguous loop.
    """
    n_atoms, nv = A.shape
    e = np.zeros(n_atoms)
    dEdA = np.zeros((n_atoms, nv))
    most = 1
    for z in range(atom_off.shape[0] - 1):
        most = max(most, atom_off[z + 1] - atom_off[z])
    nb_ = min(BLOCK_ATOMS, (most + 7) // 8 * 8)  # small cells: no padding beyond 8
    AT = np.zeros((nv, nb_))
    DT = np.zeros((nv, nb_))
    eb = np.zeros(nb_)
    tmp = np.empty((3, nb_))
    for z in range(atom_off.shape[0] - 1):
        for b0 in range(atom_off[z], atom_off[z + 1], nb_):
            nk = min(nb_, atom_off[z + 1] - b0)
            AT[:, :] = 0.0
            DT[:, :] = 0.0
            eb[:] = 0.0
            for k in range(nk):
                Ai = A[atom_order[b0 + k]]
                for v in range(nv):
                    AT[v, k] = Ai[v]
            for tau in range(term_off[z], term_off[z + 1]):
                _term_block(ccoef[tau], term_nu[tau], term_v[tau], AT, DT, eb, tmp)
            for k in range(nk):
                i = atom_order[b0 + k]
                e[i] = eb[k]
                for v in range(nv):
                    dEdA[i, v] = DT[v, k]
    return e, dEdA


@nb.njit(cache=True, fastmath=True, inline="always")
def _term_block(c, nu, tv, AT, DT, eb, tmp):
    """One product term c Π_t A[tv[t]] on a block of atoms: energies and ∂E/∂A."""
    nb_ = eb.shape[0]
    if nu == 1:
        a0, d0 = AT[tv[0]], DT[tv[0]]
        for k in range(nb_):
            eb[k] += c * a0[k]
            d0[k] += c
    elif nu == 2:
        a0, a1, d0, d1 = AT[tv[0]], AT[tv[1]], DT[tv[0]], DT[tv[1]]
        for k in range(nb_):
            ca0 = c * a0[k]
            eb[k] += ca0 * a1[k]
            d0[k] += c * a1[k]
            d1[k] += ca0
    elif nu == 3:
        a0, a1, a2 = AT[tv[0]], AT[tv[1]], AT[tv[2]]
        t0, t1, t2 = tmp[0], tmp[1], tmp[2]
        for k in range(nb_):
            c2 = c * a2[k]
            c01 = c * a0[k] * a1[k]
            eb[k] += c01 * a2[k]
            t2[k] = c01
            t0[k] = c2 * a1[k]
            t1[k] = c2 * a0[k]
        _add(DT[tv[0]], t0)
        _add(DT[tv[1]], t1)
        _add(DT[tv[2]], t2)
    else:
        for k in range(nb_):
            full = c
            for t in range(nu):
                full *= AT[tv[t], k]
            eb[k] += full
            for t in range(nu):
                part = c
                for u in range(nu):
                    if u != t:
                        part *= AT[tv[u], k]
                DT[tv[t], k] += part


@nb.njit(cache=True, fastmath=True, inline="always")
def _add(d, t):
    for k in range(t.shape[0]):
        d[k] += t[k]


@nb.njit(cache=True)
def model_base_dense(R, Y, pair_start, vn, vlm):
    """Atomic base ``A[i, z V1 + v] = Σ_p R[p, n_v] Y[p, lm_v]`` over the pairs of atom i
    with species z, by one small matrix product per atom and species: ``M = R_iᵀ Y_i``
    (nmax, nlm), then ``A[i, z V1 + v] = M[n_v, lm_v]``; φ is never stored.

    Computes all (n, lm) (a few times the flops of the V1 needed) but at BLAS speed.
    """
    n_atoms = pair_start.shape[0]
    last = pair_start.shape[1] - 1
    v1 = vn.shape[0]
    A = np.zeros((n_atoms, last * v1))
    for i in range(n_atoms):
        for z in range(last):
            p0, p1 = pair_start[i, z], pair_start[i, z + 1]
            if p1 == p0:
                continue
            M = np.dot(np.ascontiguousarray(R[p0:p1].T), Y[p0:p1])
            off = z * v1
            for v in range(v1):
                A[i, off + v] = M[vn[v], vlm[v]]
    return A


@nb.njit(cache=True, fastmath=True)
def model_contract_dense(dEdA, R, dR, Y, dY, rvec, r, pair_start, vn, vlm):
    """``g[p] = Σ_v dE/dA[i_p, z_p V1 + v] ∂φ_v/∂r_p`` (n_pairs, 3), with ∂φ/∂r =
    R'_n Y_lm r/|r| + R_n ∇Y_lm, by small matrix products per atom and species: with
    ``W[n, lm] = dE/dA[i, z V1 + v(n, lm)]``, ``T = dR_i W`` and ``S = R_i W`` (n_pairs_i,
    nlm), ``g_p = (Σ_lm T Y / r) r_p + Σ_lm S ∇Y``; dφ is never stored."""
    n_atoms = pair_start.shape[0]
    last = pair_start.shape[1] - 1
    v1 = vn.shape[0]
    g = np.zeros((R.shape[0], 3))
    W = np.zeros((R.shape[1], Y.shape[1]))
    for i in range(n_atoms):
        for z in range(last):
            p0, p1 = pair_start[i, z], pair_start[i, z + 1]
            if p1 == p0:
                continue
            off = z * v1
            for v in range(v1):
                W[vn[v], vlm[v]] = dEdA[i, off + v]
            T = np.dot(dR[p0:p1], W)
            S = np.dot(R[p0:p1], W)
            for q in range(p1 - p0):
                p = p0 + q
                s = 0.0
                gx = 0.0
                gy = 0.0
                gz = 0.0
                for lm in range(Y.shape[1]):
                    s += T[q, lm] * Y[p, lm]
                    gx += S[q, lm] * dY[p, lm, 0]
                    gy += S[q, lm] * dY[p, lm, 1]
                    gz += S[q, lm] * dY[p, lm, 2]
                s /= r[p]
                g[p, 0] = gx + s * rvec[p, 0]
                g[p, 1] = gy + s * rvec[p, 1]
                g[p, 2] = gz + s * rvec[p, 2]
    return g
