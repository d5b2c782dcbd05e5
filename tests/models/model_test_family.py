"""A small, exact pair model used to test the model file format and the calculator
independently of the ACE and kernel families."""

from __future__ import annotations

import numpy as np
from matscipy.neighbours import neighbour_list

from mlip_plugin.models import Model, Prediction, Provenance, register_family


@register_family
class SmoothPairModel(Model):
    """E = ½ Σ_{i≠j} ε_{ZiZj} (1 − r/rc)³ (σ/r)^4  with a cutoff rc (test model)."""

    family = "test_smooth_pair"

    def __init__(self, species, eps, sigma=2.0, rc=5.0, provenance=None):
        self._species = tuple(species)
        self.eps = np.asarray(eps, float)
        self.sigma, self.rc = float(sigma), float(rc)
        self.provenance = provenance or Provenance(solver="none")

    @property
    def species(self):
        return self._species

    @property
    def cutoff(self):
        return self.rc

    def predict(self, atoms, stress=True):
        if atoms.cell.rank == 3:
            i, j, d, D = neighbour_list("ijdD", atoms, self.rc)
        else:
            from ase.neighborlist import neighbor_list

            i, j, d, D = neighbor_list("ijdD", atoms, self.rc)
        kind = np.array([self._species.index(s) for s in atoms.get_chemical_symbols()])
        e = self.eps[kind[i], kind[j]]
        x = 1 - d / self.rc
        phi = e * x**3 * (self.sigma / d) ** 4
        dphi = e * (-3 * x**2 / self.rc * (self.sigma / d) ** 4 - 4 * x**3 * (
            self.sigma / d) ** 4 / d)
        energies = 0.5 * np.bincount(i, phi, minlength=len(atoms))
        g = (dphi / d)[:, None] * D  # dφ/dD_ij with D_ij = r_j - r_i
        grad = np.zeros((len(atoms), 3))
        np.add.at(grad, j, 0.5 * g)
        np.add.at(grad, i, -0.5 * g)
        out = Prediction(energy=float(energies.sum()), energies=energies, forces=-grad)
        if stress:
            virial = 0.5 * np.einsum("pa,pb->ab", D, g)
            s = virial / atoms.get_volume()
            out.stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return out

    def to_state(self):
        return ({"species": list(self._species), "sigma": self.sigma, "rc": self.rc},
                {"eps": self.eps})

    @classmethod
    def from_state(cls, params, arrays, provenance):
        return cls(params["species"], arrays["eps"], params["sigma"], params["rc"],
                   provenance)
