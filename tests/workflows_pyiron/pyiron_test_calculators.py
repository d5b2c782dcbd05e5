"""An importable calculator for the pyiron job tests (reference specs name it by path)."""

from __future__ import annotations

from ase.calculators.emt import EMT


class SelectivelyFailingEMT(EMT):
    """EMT that raises for structures with an atom count in ``fail_natoms`` (or for every
    structure with ``fail_natoms="all"``), like a DFT code whose SCF does not converge."""

    def __init__(self, fail_natoms=(), **kwargs):
        super().__init__(**kwargs)
        self.fail_natoms = fail_natoms if fail_natoms == "all" else set(fail_natoms)

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and (self.fail_natoms == "all" or len(atoms) in self.fail_natoms):
            raise RuntimeError(f"simulated SCF failure for {len(atoms)} atoms")
        super().calculate(atoms, *args, **kwargs)


class TransientEMT(EMT):
    """EMT that raises for cells of more than 4 atoms while the class attribute ``failing``
    is true (a transient failure, e.g. a crashed node, that a rerun should get past);
    ``calls`` counts the calculations by number of atoms."""

    failing = True
    calls: dict = {}

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None:
            TransientEMT.calls[len(atoms)] = TransientEMT.calls.get(len(atoms), 0) + 1
            if TransientEMT.failing and len(atoms) > 4:
                raise RuntimeError(f"simulated transient failure for {len(atoms)} atoms")
        super().calculate(atoms, *args, **kwargs)
