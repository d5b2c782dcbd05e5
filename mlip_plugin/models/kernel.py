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
        energy, forces = self.gdml.predict_single(_whole_molecule(atoms))
        return Prediction(energy=float(energy), energies=None, forces=forces)

    def to_state(self):
        arrays, params = self.gdml.to_arrays()
        return params, arrays

    @classmethod
    def from_state(cls, params, arrays, provenance):
        return cls(GDMLModel.from_arrays(arrays, params), provenance)


def _whole_molecule(atoms: Atoms) -> np.ndarray:
    """Positions of the molecule made whole: in a periodic cell every atom is taken at its
    image nearest to atom 0, so atoms wrapped across the boundary count where they are
    bonded (the model describes one isolated molecule; its images do not interact).

    Raises
    ------
    InputError
        If some atom is not at its nearest image and the molecule spans half a period or
        more along a periodic axis, where the nearest image is not well defined.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return atoms.positions
    from ase.geometry import find_mic

    d, _ = find_mic(atoms.positions - atoms.positions[0], atoms.cell, atoms.pbc)
    R = atoms.positions[0] + d
    if np.allclose(R, atoms.positions, rtol=0.0, atol=1e-9):
        return atoms.positions  # whole already (and nearest images agree)
    recip = atoms.cell.complete().reciprocal()  # rows: b_i with a_j . b_i = delta_ij
    spread = np.ptp(R @ recip.T, axis=0)  # extent in fractions of each period
    wide = [int(i) for i in np.flatnonzero(pbc & (spread >= 0.5))]
    if wide:
        raise InputError(
            f"the molecule spans {spread[wide[0]]:.2f} of the periodic cell along axis "
            f"{'xyz'[wide[0]]}, too much to tell which periodic image of an atom is bonded; "
            "a kernel model describes one isolated molecule: enlarge the cell (at least "
            "twice the molecule's size) or set pbc=False")
    return R
