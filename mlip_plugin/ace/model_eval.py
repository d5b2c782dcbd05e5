"""Energy, forces and virial of a linear ACE model ``E = Σ_k c_k B_k`` by the adjoint.

Instead of differentiating every basis function, the coefficients are folded into the
couplings (one coefficient per product term), the site energies give ``dE/dA`` in one pass,
and forces follow from contracting ``dE/dA`` with ``dφ/dr`` over the pairs.  On a pruned
basis (:meth:`ACEBasis.prune`) only the radial functions, harmonics and couplings of the
selected functions are evaluated.

Built for MD (many calls on one model): the evaluation plan and the collapsed product terms
are cached on the basis (the latter for the last few coefficient vectors: a model and its
committee, whose members share one neighbour list and atomic base per call,
:func:`energy_forces_virial_many`); φ and dφ/dr are never
stored per pair and basis index: A and the force contraction are small matrix products per
atom (R_iᵀ Y_i, dR_i W_i, R_i W_i); the product terms run vectorised over blocks of atoms
(:func:`_kernels.model_adjoint_blocked`).
An optional :class:`CoreRepulsion` keeps atoms from collapsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..errors import InputError
from . import _kernels
from .basis import ACEBasis
from .evaluate import Neighbours, neighbours, plan_for
from .radial import pair_basis, radial_basis
from .sph import _norms

__all__ = ["CoreRepulsion", "ModelResult", "energy_forces_virial", "energy_forces_virial_many"]


@dataclass(frozen=True)
class ModelResult:
    """Energy (eV, without E0), site energies (n_atoms,), forces (n_atoms, 3) eV/Å and
    virial (6,) Voigt eV of one configuration."""

    energy: float
    site_energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray


@dataclass(frozen=True)
class _Terms:
    """Product terms of a model with nonzero collapsed coefficient, sorted by centre species."""

    coef: np.ndarray        # (basis.size,) the coefficients these terms were built for
    off: np.ndarray         # (n_species + 1,) term range of each centre species
    nu: np.ndarray          # (n_terms,) correlation order of each term
    v: np.ndarray           # (n_terms, 8) A indices (first nu used)
    ccoef: np.ndarray       # (n_terms,) Σ_k c_k coef[τ, k]


#: How many coefficient vectors' product terms a basis keeps (a model and its committee).
_TERMS_CACHE = 16


def _collapsed(basis: ACEBasis, coef: np.ndarray) -> _Terms:
    """The model's product terms, cached on the basis for the last few coefficient vectors
    (a committee model evaluates all its members at every call)."""
    cache = basis.__dict__.get("_model_terms")
    if not isinstance(cache, dict):
        cache = basis.__dict__["_model_terms"] = {}
    key = coef.tobytes()
    cached = cache.get(key)
    if cached is not None:
        return cached
    plan = plan_for(basis)
    out = np.zeros(len(plan.term_v))
    nu = np.zeros(len(plan.term_v), dtype=np.int64)
    center = np.zeros(len(plan.term_v), dtype=np.int64)
    for g in range(len(plan.grp_center)):
        t0, t1 = plan.grp_term_off[g], plan.grp_term_off[g + 1]
        cols = plan.grp_cols[plan.grp_col_off[g]:plan.grp_col_off[g + 1]]
        C = plan.coef[plan.coef_off[g]:plan.coef_off[g] + (t1 - t0) * len(cols)]
        out[t0:t1] = C.reshape(t1 - t0, len(cols)) @ coef[cols]
        nu[t0:t1] = plan.grp_nu[g]
        center[t0:t1] = plan.grp_center[g]
    keep = np.flatnonzero(out != 0.0)
    keep = keep[np.argsort(center[keep], kind="stable")]
    off = np.searchsorted(center[keep], np.arange(len(basis.elements) + 1)).astype(np.int64)
    cached = _Terms(coef.copy(), off, np.ascontiguousarray(nu[keep]),
                    np.ascontiguousarray(plan.term_v[keep]), np.ascontiguousarray(out[keep]))
    while len(cache) >= _TERMS_CACHE:
        try:  # the oldest (another thread may evict it first)
            cache.pop(next(iter(cache)), None)
        except (RuntimeError, StopIteration):
            break
    cache[key] = cached
    return cached


def _radial_angular(basis: ACEBasis, plan, nbr: Neighbours):
    """R, dR (n_pairs, nmax), Y (n_pairs, (lmax+1)²) and ∇Y (n_pairs, (lmax+1)², 3)."""
    n_pairs = len(nbr.r)
    R = np.empty((n_pairs, plan.nmax))
    dR = np.empty((n_pairs, plan.nmax))
    si, sj = nbr.species[nbr.i], nbr.species[nbr.j]
    ns = len(basis.elements)
    for a in range(ns):
        for b in range(ns):
            mask = (si == a) & (sj == b) if ns > 1 else slice(None)
            R[mask], dR[mask] = radial_basis(nbr.r[mask], basis.transform(a, b), plan.nmax)
    Y, dY = _kernels.sph_harm_grad(nbr.rvec, plan.lmax, _norms(plan.lmax))
    return R, dR, Y, dY


@dataclass(frozen=True)
class _Geometry:
    """What the many-body part needs of a configuration, whatever the coefficients."""

    R: np.ndarray
    dR: np.ndarray
    Y: np.ndarray
    dY: np.ndarray
    A: np.ndarray
    order: np.ndarray
    atom_off: np.ndarray


def _geometry(basis: ACEBasis, nbr: Neighbours) -> _Geometry:
    plan = plan_for(basis)
    R, dR, Y, dY = _radial_angular(basis, plan, nbr)
    A = _kernels.model_base_dense(R, Y, nbr.start, plan.vn, plan.vlm)
    order = np.argsort(nbr.species, kind="stable")
    atom_off = np.searchsorted(nbr.species[order], np.arange(len(basis.elements) + 1))
    return _Geometry(R, dR, Y, dY, A, order, atom_off)


def _many_body(basis: ACEBasis, nbr: Neighbours, geo: _Geometry, coef: np.ndarray):
    """Many-body part: site energies (n_atoms,) and dE/dr_p (n_pairs, 3)."""
    plan = plan_for(basis)
    terms = _collapsed(basis, coef)
    e, dEdA = _kernels.model_adjoint_blocked(geo.A, geo.order, geo.atom_off, terms.off,
                                             terms.nu, terms.v, terms.ccoef)
    g = _kernels.model_contract_dense(dEdA, geo.R, geo.dR, geo.Y, geo.dY, nbr.rvec, nbr.r,
                                      nbr.start, plan.vn, plan.vlm)
    return e, g


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


@dataclass(frozen=True)
class CoreRepulsion:
    """A fixed, fit-independent core repulsion that keeps MD from collapsing atoms.

    ``E = Σ_{i<j} ε (x − 1)³ x⁹`` with ``x = r_in/r`` for ``r < r_in`` (zero beyond): it
    vanishes with its first two derivatives at ``r_in`` (forces stay continuous) and grows
    like ``r⁻¹²`` as r → 0, faster than any fitted pair function (those diverge like 1/r),
    whatever the sign of their coefficients.

    Parameters
    ----------
    radius : mapping of (str, str) to float
        ``r_in`` (Å) per species pair (both orders).
    epsilon : float
        Energy scale ε (eV); at r = r_in/2 one pair has 512 ε.
    """

    radius: dict
    epsilon: float = 1.0

    def __post_init__(self):
        if not isinstance(self.radius, Mapping):
            raise InputError(f"core repulsion: radius={self.radius!r} is not a mapping of "
                             "species pairs to radii (Å)")
        radius = {}
        for key, value in self.radius.items():
            pair = tuple(key.split("-")) if isinstance(key, str) else tuple(key)
            if len(pair) != 2 or not all(isinstance(s, str) for s in pair):
                raise InputError(f"core repulsion: key {key!r} is not a species pair; write "
                                 "('Si', 'Si') or 'Si-Si'")
            r = float(value) if isinstance(value, (int, float, np.number)) else np.nan
            if not (np.isfinite(r) and r > 0):
                raise InputError(f"core repulsion: radius {value!r} of {key!r} must be a "
                                 "finite number > 0 (Å)")
            radius[pair] = r
        object.__setattr__(self, "radius", radius)
        if (isinstance(self.epsilon, bool) or not isinstance(self.epsilon, (int, float, np.number))
                or not (np.isfinite(self.epsilon) and self.epsilon > 0)):
            raise InputError(f"core repulsion: epsilon={self.epsilon!r} must be > 0 (eV); a "
                             "negative one would attract")

    def check_basis(self, basis: ACEBasis) -> None:
        """The pairs are species of ``basis`` and every radius lies inside its cutoff (pairs
        are found out to r_cut only: a larger radius would cut the repulsion off there)."""
        unknown = sorted({s for pair in self.radius for s in pair} - set(basis.elements))
        if unknown:
            raise InputError(f"core repulsion: species {unknown} are not in the basis "
                             f"{basis.elements}")
        wide = {f"{a}-{b}": r for (a, b), r in self.radius.items() if r >= basis.r_cut}
        if wide:
            raise InputError(f"core repulsion: radii {wide} reach the cutoff "
                             f"r_cut={basis.r_cut} Å; they must be smaller")

    @classmethod
    def for_basis(cls, basis: ACEBasis, fraction: float = 0.75, epsilon: float = 1.0):
        """``r_in = fraction × r0`` of the basis (r0: its typical neighbour distance)."""
        if not 0 < fraction < 1 or not epsilon > 0:
            raise InputError(f"core repulsion: fraction={fraction!r} must be in (0, 1) and "
                             f"epsilon={epsilon!r} > 0")
        return cls({k: fraction * v for k, v in basis.r0.items()}, float(epsilon))

    def to_dict(self) -> dict:
        return {"radius": {f"{a}-{b}": v for (a, b), v in self.radius.items()},
                "epsilon": self.epsilon, "form": "eps*(x-1)^3*x^9, x=r_in/r, r<r_in"}

    @classmethod
    def from_dict(cls, doc) -> CoreRepulsion:
        return cls({tuple(k.split("-")): float(v) for k, v in doc["radius"].items()},
                   float(doc["epsilon"]))

    def site_and_gradient(self, basis: ACEBasis, nbr: Neighbours):
        """Site energies (n_atoms,) and dE/dr_p (n_pairs, 3) of the repulsion."""
        els = basis.elements
        r_in = np.array([[self.radius.get((a, b), self.radius.get((b, a), 0.0))
                          for b in els] for a in els])[nbr.species[nbr.i], nbr.species[nbr.j]]
        e = np.zeros(len(nbr.species))
        g = np.zeros((len(nbr.r), 3))
        close = np.flatnonzero(nbr.r < r_in)
        if close.size:
            r = nbr.r[close]
            x = r_in[close] / r
            phi = 0.5 * self.epsilon * (x - 1) ** 3 * x ** 9   # half to each atom of a pair
            dphi_dx = 0.5 * self.epsilon * (x - 1) ** 2 * x ** 8 * (12 * x - 9)
            e += np.bincount(nbr.i[close], phi, minlength=len(e))
            g[close] = (dphi_dx * -x / r / r)[:, None] * nbr.rvec[close]
        return e, g


def energy_forces_virial(basis: ACEBasis, atoms: Atoms, coef,
                         core: CoreRepulsion | None = None) -> ModelResult:
    """E = Σ_k c_k B_k(atoms) (+ a core repulsion), its forces and virial, by the adjoint.

    Parameters
    ----------
    basis : ACEBasis
    atoms : ase.Atoms
    coef : array_like of shape (basis.size,)
    core : CoreRepulsion, optional
        Added to the energy, forces and virial.
    """
    coef = np.asarray(coef, dtype=float)
    if coef.shape != (basis.size,):
        raise InputError(f"coef has shape {coef.shape}; expected ({basis.size},), one per "
                         "basis function")
    return _evaluate(basis, atoms, coef[None, :], core)[0]


def energy_forces_virial_many(basis: ACEBasis, atoms: Atoms, coefs,
                              core: CoreRepulsion | None = None) -> list[ModelResult]:
    """:func:`energy_forces_virial` for several coefficient vectors (a committee) at once.

    The neighbour list, radial functions, harmonics and atomic base are computed once; only
    the adjoint pass is repeated per vector.  ``coefs`` has shape (n_vectors, basis.size).
    """
    coefs = np.asarray(coefs, dtype=float)
    if coefs.ndim != 2 or coefs.shape[1] != basis.size:
        raise InputError(f"coefs has shape {coefs.shape}; expected (n_vectors, {basis.size})")
    return _evaluate(basis, atoms, coefs, core)


def _evaluate(basis: ACEBasis, atoms: Atoms, coefs: np.ndarray,
              core: CoreRepulsion | None) -> list[ModelResult]:
    nbr = neighbours(basis, [atoms])
    n_atoms = len(atoms)
    e_core, g_core = (core.site_and_gradient(basis, nbr) if core is not None
                      else (0.0, 0.0))
    many_body = len(plan_for(basis).grp_center) > 0 and len(nbr.r) > 0
    geo = _geometry(basis, nbr) if many_body else None
    out = []
    for coef in coefs:
        site, g = _pair_energy(basis, nbr, coef)
        site, g = site + e_core, g + g_core
        if many_body:
            e_mb, g_mb = _many_body(basis, nbr, geo, coef)
            site, g = site + e_mb, g + g_mb
        dEdx = np.zeros((n_atoms, 3))
        for x in range(3):
            dEdx[:, x] = (np.bincount(nbr.j, g[:, x], minlength=n_atoms)
                          - np.bincount(nbr.i, g[:, x], minlength=n_atoms))
        W = -np.einsum("pa,pb->ab", g, nbr.rvec)
        virial = np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])
        out.append(ModelResult(float(site.sum()), site, -dEdx, virial))
    return out
