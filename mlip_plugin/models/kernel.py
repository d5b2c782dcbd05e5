"""Kernel model: a trained GDML force field for one molecule, as an mlip-plugin model.

A molecular kernel model has no cutoff and no site decomposition: it needs the same atoms
in the same order as in training (checked before any work), predicts the total energy and
forces (−∇E exactly), and reports neither per-atom energies nor stress.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..errors import InputError
from ..kernels.descriptor import whole_molecule
from ..kernels.model import GDMLModel
from .base import Model, Prediction, register_family
from .provenance import Provenance

__all__ = ["KernelModel"]


@register_family
class KernelModel(Model):
    """A fitted GDML kernel force field (see :mod:`mlip_plugin.kernels`)."""

    family = "kernel"

    def __init__(self, gdml: GDMLModel, provenance: Provenance | None = None):
        # C-contiguous copies, as a loaded file gives: BLAS then sums in the same order and
        # predictions are bit-for-bit identical before and after a round trip
        self.gdml = replace(gdml, **{k: np.ascontiguousarray(getattr(gdml, k))
                                     for k in ("z", "x_train", "v_train", "alpha")})
        self.provenance = provenance or Provenance()

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(sorted({chemical_symbols[int(z)] for z in self.gdml.z}))

    def check_atoms(self, atoms: Atoms) -> None:
        super().check_atoms(atoms)
        z = atoms.numbers
        if len(z) != len(self.gdml.z) or not np.array_equal(z, self.gdml.z):
            want = "".join(chemical_symbols[int(k)] for k in self.gdml.z)
            got = atoms.get_chemical_formula(mode="all")
            raise InputError(
                f"the kernel model was trained on the molecule {want} (atoms in this order); "
                f"got {got}: give the same atoms in the same order"
            )

    def predict(self, atoms: Atoms, stress: bool = False) -> Prediction:
        self.check_atoms(atoms)
        energy, forces = self.gdml.predict_single(whole_molecule(atoms))
        return Prediction(energy=float(energy), energies=None, forces=forces)

    def to_state(self):
        arrays, params = self.gdml.to_arrays()
        return params, arrays

    @classmethod
    def from_state(cls, params, arrays, provenance):
        return cls(GDMLModel.from_arrays(arrays, params), provenance)
