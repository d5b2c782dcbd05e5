"""Linear ACE model: E = Σ_i E0[Z_i] + Σ_k c_k B_k, on the selected basis functions only.

The stored basis is pruned to the selected functions (:meth:`ACEBasis.prune`), so the
evaluator builds only the radial functions, harmonics and couplings they need; energies,
forces and virials come from one adjoint pass (:func:`mlip_plugin.ace.energy_forces_virial`).
With a coefficient committee (Bayesian fits) the model also reports the committee's
standard deviation of the energy and forces.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms

from ..ace.basis import ACEBasis
from ..ace.model_eval import CoreRepulsion, energy_forces_virial, energy_forces_virial_many
from ..errors import InputError
from .base import Model, Prediction, register_family
from .provenance import Provenance

__all__ = ["LinearACEModel"]


@register_family
class LinearACEModel(Model):
    """A fitted linear ACE potential.

    Parameters
    ----------
    basis : ACEBasis
        The basis of the selected functions (already pruned).
    coef : ndarray of shape (basis.size,)
        Coefficients, eV per unit basis value.
    e0 : mapping of str to float
        Isolated-atom energies (eV) per species.
    committee : ndarray of shape (n_members, basis.size), optional
        Coefficient samples for uncertainties (``energy_std``, ``forces_std``).
    provenance : Provenance, optional
    core : CoreRepulsion or bool
        Fixed short-range repulsion added to the energy so that MD cannot collapse atoms:
        True (default) uses :meth:`CoreRepulsion.for_basis` (``r_in = 0.75 r0``, below the
        distances of usual training data, so the fit is unaffected), False none.  Recorded
        in the model file.
    """

    family = "linear_ace"

    def __init__(self, basis: ACEBasis, coef, e0: Mapping[str, float], *, committee=None,
                 provenance: Provenance | None = None, core: CoreRepulsion | bool = True):
        coef = np.asarray(coef, dtype=float)
        if coef.shape != (basis.size,):
            raise InputError(f"coef has shape {coef.shape}; the basis has {basis.size} "
                             "functions")
        missing = [s for s in basis.elements if s not in e0]
        if missing:
            raise InputError(f"e0 has no entry for species {missing}")
        self.basis = basis
        self.coef = coef
        self.e0 = {s: float(e0[s]) for s in basis.elements}
        self.committee = None if committee is None else np.asarray(committee, float)
        if self.committee is not None and self.committee.shape[1:] != coef.shape:
            raise InputError(f"committee has shape {self.committee.shape}; expected "
                             f"(n_members, {basis.size})")
        self.provenance = provenance or Provenance()
        if core is True:
            core = CoreRepulsion.for_basis(basis)
        elif core is not False and not isinstance(core, CoreRepulsion):
            raise InputError(f"core={core!r} is not allowed; give True (default core "
                             "repulsion), False (none) or a CoreRepulsion")
        if core:
            core.check_basis(basis)
        self.core = core or None

    @classmethod
    def from_support(cls, basis: ACEBasis, support, values, e0, **kwargs) -> LinearACEModel:
        """Model from a full basis and the support/coefficients a solver selected.

        ``values[t]`` is the coefficient of column ``support[t]`` of ``basis``; a
        ``committee`` keyword, if given, has shape (n_members, len(support)) with its
        columns in the same order as ``values``.  The other keywords go to the constructor.
        """
        values = np.asarray(values, dtype=float)
        if values.shape != (len(support),):
            raise InputError(f"values has shape {values.shape}; give one coefficient per "
                             f"entry of support ({len(support)})")
        pruned, index_map = basis.prune(support)
        position = {int(k): t for t, k in enumerate(support)}
        take = [position[int(k)] for k in index_map]
        coef = values[take]
        committee = kwargs.pop("committee", None)
        if committee is not None:
            committee = np.asarray(committee, dtype=float)[:, take]
        return cls(pruned, coef, e0, committee=committee, **kwargs)

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(self.basis.elements)

    @property
    def cutoff(self) -> float:
        return float(self.basis.r_cut)

    @property
    def n_functions(self) -> int:
        return int(self.basis.size)

    def _e0_sites(self, atoms: Atoms) -> np.ndarray:
        return np.array([self.e0[s] for s in atoms.get_chemical_symbols()])

    def predict(self, atoms: Atoms, stress: bool = True) -> Prediction:
        self.check_atoms(atoms)
        if self.committee is None:
            res = energy_forces_virial(self.basis, atoms, self.coef, self.core)
        else:  # one neighbour list and atomic base for the model and its members
            res, *members = energy_forces_virial_many(
                self.basis, atoms, np.vstack([self.coef[None, :], self.committee]), self.core)
        e_sites = self._e0_sites(atoms)
        out = Prediction(energy=float(res.energy + e_sites.sum()),
                         energies=res.site_energies + e_sites, forces=res.forces)
        if stress and atoms.cell.rank == 3 and all(atoms.pbc):  # else None, as documented
            out.stress = -res.virial / atoms.get_volume()
        if self.committee is not None:
            out.extras = {
                "energy_std": float(np.std([m.energy for m in members])),
                "forces_std": np.std([m.forces for m in members], axis=0),
            }
        return out

    def to_state(self):
        params = {"basis": self.basis.to_dict(), "e0": self.e0,
                  "core": None if self.core is None else self.core.to_dict()}
        arrays = {"coef": self.coef}
        if self.committee is not None:
            arrays["committee"] = self.committee
        return params, arrays

    @classmethod
    def from_state(cls, params, arrays, provenance):
        core = params.get("core")  # absent in files written before the core repulsion
        return cls(ACEBasis.from_dict(params["basis"]), arrays["coef"], params["e0"],
                   committee=arrays.get("committee"), provenance=provenance,
                   core=False if core is None else CoreRepulsion.from_dict(core))
