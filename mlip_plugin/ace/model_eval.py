"""Energy, forces and virial of a linear ACE model ``E = Σ_k c_k B_k`` by the adjoint.

Instead of differentiating every basis function, the coefficients are folded into the
couplings (one coefficient per product term), the site energies give ``dE/dA`` in one pass,
and forces follow from contracting ``dE/dA`` with ``dφ/dr`` over the pairs.  On a pruned
basis (:meth:`ACEBasis.prune`) only the radial functions, harmonics and couplings of the
selected functions are evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..errors import InputError
from . import _kernels
from .basis import ACEBasis
from .evaluate import KERNEL_LOCK, Neighbours, neighbours, one_particle, plan_for
from .radial import pair_basis

__all__ = ["ModelResult", "energy_forces_virial"]


@dataclass(frozen=True)
class ModelResult:
    """Energy (eV, without E0), site energies (n_atoms,), forces (n_atoms, 3) eV/Å and
    virial (6,) Voigt eV of one configuration."""

    energy: float
    site_energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray


def _collapsed(basis: ACEBasis, coef: np.ndarray) -> np.ndarray:
    plan = plan_for(basis)
    out = np.zeros(len(plan.term_v))
    for g in range(len(plan.grp_center)):
        t0, t1 = plan.grp_term_off[g], plan.grp_term_off[g + 1]
        cols = plan.grp_cols[plan.grp_col_off[g]:plan.grp_col_off[g + 1]]
        C = plan.coef[plan.coef_off[g]:plan.coef_off[g] + (t1 - t0) * len(cols)]
        out[t0:t1] = C.reshape(t1 - t0, len(cols)) @ coef[cols]
    return out


def _pair_energy(basis: ACEBasis, nbr: Neighbours, coef: np.ndarray):
    """Pair part: site energies (n_atoms,) and dE/dr_p (n_pairs, 3)."""
    n_atoms = len(nbr.species)
    e = np.zeros(n_atoms)
    g = np.zeros((len(nbr.r), 3))
    si, sj = nbr.species[nbr.i], nbr.species[nbr.j]
    lo, hi = np.minimum(si, sj), np.maximum(si, sj)
    K = basis.pair_degree
    for q, (a, b) in enumerate(basis.pair_pairs):
        sel = (basis.pair_columns[:, 1] >= q * K) & (basis.pair_columns[:, 1] < (q + 1) * K)
        mask = np.flatnonzero((lo == a) & (hi == b))
        if not sel.any() or mask.size == 0:
            continue
        cols, ks = basis.pair_columns[sel, 0], basis.pair_columns[sel, 1] - q * K
        V, dV = pair_basis(nbr.r[mask], basis.transform(a, b), int(ks.max()) + 1,
                           basis.pair_exponent)
        v = 0.5 * V[:, ks] @ coef[cols]
        dv = 0.5 * dV[:, ks] @ coef[cols]
        e += np.bincount(nbr.i[mask], v, minlength=n_atoms)
        g[mask] = dv[:, None] * nbr.rvec[mask] / nbr.r[mask, None]
    return e, g


def energy_forces_virial(basis: ACEBasis, atoms: Atoms, coef) -> ModelResult:
    """E = Σ_k c_k B_k(atoms), its forces and virial, by the adjoint method.

    Parameters
    ----------
    basis : ACEBasis
    atoms : ase.Atoms
    coef : array_like of shape (basis.size,)
    """
    coef = np.asarray(coef, dtype=float)
    if coef.shape != (basis.size,):
        raise InputError(f"coef has shape {coef.shape}; expected ({basis.size},), one per "
                         "basis function")
    plan = plan_for(basis)
    nbr = neighbours(basis, [atoms])
    n_atoms = len(atoms)
    site, g = _pair_energy(basis, nbr, coef)
    if len(plan.grp_center):
        ns = len(basis.elements)
        with KERNEL_LOCK:
            phi, dphi = one_particle(basis, plan, nbr)
            A = _kernels.atomic_base(phi, nbr.i, nbr.species[nbr.j], n_atoms, ns)
            e_mb, dEdA = _kernels.adjoint_many_body(
                A, nbr.species, plan.grp_center, plan.grp_nu, plan.grp_term_off, plan.term_v,
                _collapsed(basis, coef))
            g = g + _kernels.contract_adjoint(dEdA, dphi, nbr.start, nbr.species[nbr.j],
                                              plan.v1)
        site = site + e_mb
    dEdx = np.zeros((n_atoms, 3))
    for x in range(3):
        dEdx[:, x] = (np.bincount(nbr.j, g[:, x], minlength=n_atoms)
                      - np.bincount(nbr.i, g[:, x], minlength=n_atoms))
    W = -np.einsum("pa,pb->ab", g, nbr.rvec)
    virial = np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])
    return ModelResult(float(site.sum()), site, -dEdx, virial)
