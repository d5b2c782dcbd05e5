"""Evaluation of an :class:`ACEBasis` on configurations: values, forces and virials.

One pass over a batch of configurations computes, for every basis function k,

* the site values B_k(i) of every atom (their sum is the energy column),
* ∂E_k/∂x_j for every atom j (forces are minus this),
* the virial ``W_k = -Σ_p ∂E_k/∂r_p ⊗ r_p`` (Voigt [xx, yy, zz, yz, xz, xy], eV per unit
  coefficient), r_p = x_j - x_i + shift the pair vectors.

All pairs of the batch are processed together: radial functions and harmonics in numpy, the
products, couplings and the contraction with dφ in numba (parallel over coupling groups).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from matscipy.neighbours import neighbour_list

from ..data.configuration import MIN_DISTANCE, with_full_rank_cell
from ..errors import InputError
from . import _kernels
from .basis import ACEBasis
from .radial import pair_basis, radial_basis
from .sph import real_sph_harm

__all__ = ["BasisValues", "evaluate_basis", "site_values", "Plan", "plan_for", "Neighbours",
           "neighbours"]


#: numba's "workqueue" threading layer must not be entered by two threads at once (the
#: "omp" and "tbb" layers may); parallel kernels run under this lock, so evaluation can be
#: called from a thread pool on any machine.
KERNEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class Plan:
    """Flat arrays that drive the many-body kernels (built once per basis)."""

    v1: int
    vn: np.ndarray          # (V1,) radial index n-1 of each local A index
    vlm: np.ndarray         # (V1,) harmonic index l*l + l + m
    nmax: int
    lmax: int
    grp_center: np.ndarray
    grp_nu: np.ndarray
    grp_col_off: np.ndarray
    grp_cols: np.ndarray
    grp_term_off: np.ndarray
    term_v: np.ndarray
    term_slot: np.ndarray
    coef: np.ndarray
    coef_off: np.ndarray
    grp_slot_off: np.ndarray
    slot_v: np.ndarray
    chunk_off: np.ndarray   # group ranges of similar cost, run in parallel

    def kernel_args(self) -> tuple:
        return (self.grp_center, self.grp_nu, self.grp_col_off, self.grp_cols,
                self.grp_term_off, self.term_v, self.term_slot, self.coef, self.coef_off,
                self.grp_slot_off, self.slot_v, self.chunk_off)


#: Chunks of coupling groups per atom that the kernel runs in parallel.
N_CHUNKS = 32


def _chunks(nfun: np.ndarray, nslot: np.ndarray, nterm: np.ndarray) -> np.ndarray:
    """Split groups into ≤ N_CHUNKS contiguous ranges of about equal estimated cost."""
    cost = nfun * (30.0 * nslot + nterm)
    if cost.size == 0:
        return np.zeros(1, dtype=np.int64)
    edges = np.searchsorted(np.cumsum(cost), np.linspace(0, cost.sum(), N_CHUNKS + 1)[1:-1])
    return np.unique(np.r_[0, edges, cost.size]).astype(np.int64)


def plan_for(basis: ACEBasis) -> Plan:
    """The evaluation plan of ``basis`` (cached on the basis object)."""
    cached = getattr(basis, "_plan", None)
    if cached is None:
        cached = _build_plan(basis)
        basis._plan = cached
    return cached


def _build_plan(basis: ACEBasis) -> Plan:
    nls = sorted({(n, l) for g in basis.groups for _, n, l in g.labels})
    nl_off, vn, vlm = {}, [], []
    for n, l in nls:
        nl_off[(n, l)] = len(vn)
        vn.extend([n - 1] * (2 * l + 1))
        vlm.extend(range(l * l, (l + 1) ** 2))
    v1 = len(vn)
    arrays: dict[str, list] = {k: [] for k in ("center", "nu", "cols", "tv", "ts", "coef",
                                               "slot")}
    offs = {k: [0] for k in ("col", "term", "coef", "slot")}
    for g in basis.groups:
        nu = len(g.labels)
        shape = tuple(2 * l + 1 for _, _, l in g.labels)
        keep = np.flatnonzero(np.abs(g.coef).max(axis=0) > 1e-14)
        mu = np.array(np.unravel_index(keep, shape)).T.reshape(len(keep), nu)
        tv = np.full((len(keep), 8), -1, dtype=np.int64)
        for t, (z, n, l) in enumerate(g.labels):
            tv[:, t] = z * v1 + nl_off[(n, l)] + mu[:, t]
        slots, inverse = np.unique(tv[:, :nu], return_inverse=True)
        ts = np.full_like(tv, -1)
        ts[:, :nu] = inverse.reshape(len(keep), nu)
        arrays["center"].append(g.center)
        arrays["nu"].append(nu)
        arrays["cols"].append(g.columns)
        arrays["tv"].append(tv)
        arrays["ts"].append(ts)
        arrays["coef"].append(np.ascontiguousarray(g.coef[:, keep].T).ravel())
        arrays["slot"].append(slots)
        offs["col"].append(offs["col"][-1] + len(g.columns))
        offs["term"].append(offs["term"][-1] + len(keep))
        offs["coef"].append(offs["coef"][-1] + g.coef.shape[0] * len(keep))
        offs["slot"].append(offs["slot"][-1] + len(slots))

    def cat(key, dtype, width=None):
        if arrays[key]:
            return np.ascontiguousarray(np.concatenate(arrays[key]).astype(dtype))
        return np.zeros((0,) if width is None else (0, width), dtype=dtype)

    i64 = np.int64
    nfun, nslot, nterm = (np.diff(offs[k]) for k in ("col", "slot", "term"))
    return Plan(
        v1=v1, vn=np.array(vn, dtype=i64), vlm=np.array(vlm, dtype=i64),
        nmax=max((n for n, _ in nls), default=1), lmax=max((l for _, l in nls), default=0),
        grp_center=np.array(arrays["center"], dtype=i64), grp_nu=np.array(arrays["nu"], i64),
        grp_col_off=np.array(offs["col"], i64), grp_cols=cat("cols", i64),
        grp_term_off=np.array(offs["term"], i64), term_v=cat("tv", i64, 8),
        term_slot=cat("ts", i64, 8), coef=cat("coef", float),
        coef_off=np.array(offs["coef"][:-1] or [0], i64),
        grp_slot_off=np.array(offs["slot"], i64), slot_v=cat("slot", i64),
        chunk_off=_chunks(nfun, nslot, nterm))


@dataclass(frozen=True)
class Neighbours:
    """Pairs of a batch of configurations, sorted by centre atom and neighbour species."""

    i: np.ndarray           # (n_pairs,) centre (global atom index in the batch)
    j: np.ndarray           # (n_pairs,) neighbour
    rvec: np.ndarray        # (n_pairs, 3) r_j - r_i (+ shift), Å
    r: np.ndarray           # (n_pairs,) |rvec|
    start: np.ndarray       # (n_atoms, n_species + 1) pair ranges per centre and species
    species: np.ndarray     # (n_atoms,) species index of every atom
    atom_cfg: np.ndarray    # (n_atoms,) configuration index of every atom
    n_cfg: int


def _single_neighbours(atoms: Atoms, r_cut: float):
    if len(atoms) == 0:  # nothing to list (and no extent to complete an open cell with)
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    return neighbour_list("ijD", with_full_rank_cell(atoms, r_cut), r_cut)


def neighbours(basis: ACEBasis, atoms_list: Sequence[Atoms], where: str = "atoms") -> Neighbours:
    """Neighbour pairs within ``basis.r_cut`` of all configurations, concatenated."""
    ns = len(basis.elements)
    ii, jj, dd, spec, cfg = [], [], [], [], []
    offset = 0
    for c, atoms in enumerate(atoms_list):
        z = basis.species_index(atoms.get_chemical_symbols(), f"{where} {c}")
        i, j, D = _single_neighbours(atoms, basis.r_cut)
        ii.append(i + offset)
        jj.append(j + offset)
        dd.append(D)
        spec.append(z)
        cfg.append(np.full(len(atoms), c))
        offset += len(atoms)
    species = np.concatenate(spec) if spec else np.zeros(0, np.int64)
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    rvec = np.concatenate(dd).reshape(-1, 3)
    r = np.linalg.norm(rvec, axis=1)
    if r.size and r.min() < MIN_DISTANCE:
        p = int(np.argmin(r))
        c = int(np.concatenate(cfg)[i[p]])
        raise InputError(f"{where} {c}: atoms are {r[p]:.3g} Å apart, closer than "
                         f"{MIN_DISTANCE} Å (overlapping atoms); fix or remove the configuration")
    order = np.lexsort((species[j], i))
    i, j, rvec, r = i[order], j[order], rvec[order], r[order]
    key = i * ns + species[j]
    bounds = np.searchsorted(key, np.arange(offset * ns + 1))
    start = np.empty((offset, ns + 1), dtype=np.int64)
    start[:, :ns] = bounds[:-1].reshape(offset, ns) if offset else bounds[:0].reshape(0, ns)
    start[:, ns] = bounds[ns::ns][:offset] if offset else bounds[:0]
    return Neighbours(i, j, np.ascontiguousarray(rvec), r, start, species.astype(np.int64),
                      np.concatenate(cfg).astype(np.int64) if cfg else np.zeros(0, np.int64),
                      len(atoms_list))


@dataclass(frozen=True)
class BasisValues:
    """Basis values of a batch of configurations (columns = basis functions).

    Attributes
    ----------
    site : ndarray of shape (n_atoms, n_basis)
        Site values B_k(i) (pair functions split half to each atom of a pair).
    energy : ndarray of shape (n_cfg, n_basis)
        Σ_i B_k(i) per configuration.
    forces : ndarray of shape (n_atoms, 3, n_basis) or None
        -∂E_k/∂x_j (eV/Å per unit coefficient).
    virial : ndarray of shape (n_cfg, 6, n_basis) or None
        Virial -Σ_p ∂E_k/∂r_p ⊗ r_p, Voigt [xx, yy, zz, yz, xz, xy] (eV).
    atom_cfg : ndarray of shape (n_atoms,)
        Configuration index of each atom.
    """

    site: np.ndarray
    energy: np.ndarray
    forces: np.ndarray | None
    virial: np.ndarray | None
    atom_cfg: np.ndarray


def one_particle(basis: ACEBasis, plan: Plan, nbr: Neighbours, gradient: bool = True):
    """φ_v(r_p) of every pair, shape (n_pairs, V1), and dφ_v/dr_p (flat, per-atom blocks).

    See :func:`_kernels.one_particle_kernel` for the layout of the derivative.
    """
    n_pairs = len(nbr.r)
    ns = len(basis.elements)
    R = np.empty((n_pairs, plan.nmax))
    dR = np.empty((n_pairs, plan.nmax))
    si, sj = nbr.species[nbr.i], nbr.species[nbr.j]
    for a in range(ns):
        for b in range(ns):
            mask = (si == a) & (sj == b)
            if mask.any():
                R[mask], dR[mask] = radial_basis(nbr.r[mask], basis.transform(a, b), plan.nmax)
    if not gradient:
        Y = real_sph_harm(nbr.rvec, plan.lmax, gradient=False)
        return R[:, plan.vn] * Y[:, plan.vlm], None
    Y, dY = real_sph_harm(nbr.rvec, plan.lmax)
    u = nbr.rvec / nbr.r[:, None]
    return _kernels.one_particle_kernel(R, dR, Y, dY, u, plan.vn, plan.vlm, nbr.start)


def _pair_part(basis: ACEBasis, nbr: Neighbours, site, F, W, with_forces: bool) -> None:
    """Add the pair functions' site values, ∂E/∂x and virials (in place).

    site (n_atoms, K), F (n_atoms, 3, K), W (n_cfg, 6, K).
    """
    if basis.pair_columns.size == 0:
        return
    si, sj = nbr.species[nbr.i], nbr.species[nbr.j]
    lo, hi = np.minimum(si, sj), np.maximum(si, sj)
    K = basis.pair_degree
    for (a, b) in basis.pair_pairs:
        first = basis.pair_pairs.index((a, b)) * K
        sel = (basis.pair_columns[:, 1] >= first) & (basis.pair_columns[:, 1] < first + K)
        if not sel.any():
            continue
        cols, ks = basis.pair_columns[sel, 0], basis.pair_columns[sel, 1] - first
        mask = np.flatnonzero((lo == a) & (hi == b))
        if mask.size == 0:
            continue
        V, dV = pair_basis(nbr.r[mask], basis.transform(a, b), int(ks.max()) + 1,
                           basis.pair_exponent)
        V, dV = 0.5 * V[:, ks], 0.5 * dV[:, ks]
        i, j = nbr.i[mask], nbr.j[mask]
        for c, col in enumerate(cols):
            site[:, col] += np.bincount(i, V[:, c], minlength=site.shape[0])
        if not with_forces:
            continue
        rv = nbr.rvec[mask]
        u = rv / nbr.r[mask, None]
        cfg = nbr.atom_cfg[i]
        n_atoms = F.shape[0]
        for c, col in enumerate(cols):
            D = dV[:, c, None] * u
            for x in range(3):
                F[:, x, col] += np.bincount(j, D[:, x], minlength=n_atoms)
                F[:, x, col] -= np.bincount(i, D[:, x], minlength=n_atoms)
            for v, (x, y) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
                W[:, v, col] -= np.bincount(cfg, D[:, x] * rv[:, y], minlength=nbr.n_cfg)


def evaluate_basis(basis: ACEBasis, atoms_list: Sequence[Atoms] | Atoms,
                   forces: bool = True) -> BasisValues:
    """Evaluate every basis function on a batch of configurations in one pass.

    Parameters
    ----------
    basis : ACEBasis
    atoms_list : sequence of ase.Atoms, or one Atoms
        The batch; all species must be in ``basis.elements``.
    forces : bool
        Also compute forces and virials.

    Raises
    ------
    InputError
        For a species not in the basis or atoms closer than 0.1 Å.
    """
    if isinstance(atoms_list, Atoms):
        atoms_list = [atoms_list]
    plan = plan_for(basis)
    nbr = neighbours(basis, atoms_list)
    n_atoms = len(nbr.species)
    K = basis.size
    site = np.zeros((n_atoms, K))
    F = np.zeros((n_atoms if forces else 0, 3, K))
    W = np.zeros((nbr.n_cfg if forces else 0, 6, K))
    with KERNEL_LOCK:
        phi, dphi = one_particle(basis, plan, nbr, gradient=forces)
        A = _kernels.atomic_base(phi, nbr.i, nbr.species[nbr.j], n_atoms, len(basis.elements))
        if len(plan.grp_center):
            _kernels.assemble_many_body(
                A, np.zeros(0) if dphi is None else dphi, nbr.rvec, nbr.j, nbr.start,
                nbr.species, nbr.atom_cfg, nbr.n_cfg, K, *plan.kernel_args(), plan.v1, forces,
                site, F, W)
    _pair_part(basis, nbr, site, F, W, forces)
    # Σ_i B_k(i) per configuration; reduceat over the non-empty ones only (for an empty
    # one it would copy the next configuration's first row)
    first_atom = np.searchsorted(nbr.atom_cfg, np.arange(nbr.n_cfg))
    filled = np.bincount(nbr.atom_cfg, minlength=nbr.n_cfg) > 0
    energy = np.zeros((nbr.n_cfg, K))
    if filled.any():
        energy[filled] = np.add.reduceat(site, first_atom[filled], axis=0)
    if forces:
        np.negative(F, out=F)
    return BasisValues(site=site, energy=energy, forces=F if forces else None,
                       virial=W if forces else None, atom_cfg=nbr.atom_cfg)


def site_values(basis: ACEBasis, atoms: Atoms) -> np.ndarray:
    """Site values B_k(i), shape (n_atoms, n_basis)."""
    return evaluate_basis(basis, [atoms], forces=False).site
