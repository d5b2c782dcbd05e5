"""Test-only processes and calculators for the AiiDA tests (importable by class path).

``MockReferenceWorkChain`` stands in for a DFT wrapper (aiida-quantumespresso, VASP, ...):
it takes ``structure`` and pass-through inputs and returns ``total_energy`` (Float, eV) and
``forces`` (ArrayData ``forces``, eV/Å), computed here with EMT.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import WorkChain, calcfunction
from ase.calculators.emt import EMT

from mlip_plugin.models import Model, Prediction, Provenance, register_family

MOCK_ENTRY_POINT = "mlip_test.mock_reference"

#: Tiny Cu protocol with exactly one 31-atom (vacancy) cell and no MD: 12 structures.
TINY = {"preset": "tiny", "element": "Cu", "lattice": "fcc", "n_vacancy": 1,
        "n_rattled": 2, "md_snapshots": 0}


class FailOn31AtomsEMT(EMT):
    """EMT that fails for 31-atom cells (a simulated SCF failure of the vacancy cell)."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and len(atoms) == 31:
            raise RuntimeError("simulated SCF failure for 31 atoms")
        super().calculate(atoms, *args, **kwargs)


class TransientEMT(EMT):
    """EMT that fails for 31-atom cells while the class attribute ``failing`` is true (a
    transient failure, e.g. a crashed node, that a rerun should try again)."""

    failing = True

    def calculate(self, atoms=None, *args, **kwargs):
        if TransientEMT.failing and atoms is not None and len(atoms) == 31:
            raise RuntimeError("simulated transient failure for 31 atoms")
        super().calculate(atoms, *args, **kwargs)


@calcfunction
def spoiled_single_point(structure: orm.StructureData, parameters: orm.Dict, kind: orm.Str):
    """EMT outputs spoiled as ``kind`` says: ``shape`` (one row of forces missing),
    ``name`` (the array is called 'force') or ``nan`` (a NaN force component)."""
    atoms = structure.get_ase()
    atoms.calc = EMT(**parameters.get_dict())
    f = atoms.get_forces()
    forces = orm.ArrayData()
    if kind.value == "shape":
        forces.set_array("forces", f[:-1])
    elif kind.value == "name":
        forces.set_array("force", f)
    else:
        f[0, 1] = np.nan
        forces.set_array("forces", f)
    return {"total_energy": orm.Float(atoms.get_potential_energy()), "forces": forces}


@calcfunction
def emt_single_point(structure: orm.StructureData, parameters: orm.Dict):
    atoms = structure.get_ase()
    atoms.calc = EMT(**parameters.get_dict())
    forces = orm.ArrayData()
    forces.set_array("forces", atoms.get_forces())
    return {"total_energy": orm.Float(atoms.get_potential_energy()), "forces": forces}


class MockReferenceWorkChain(WorkChain):
    """A stand-in reference workflow with the common-workflows outputs."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="Structure (Angstrom).")
        spec.input("parameters", valid_type=orm.Dict, help="EMT keyword parameters.")
        spec.input("fail_if_n_atoms", valid_type=orm.Int, required=False,
                   help="Simulate a failure for structures with this many atoms.")
        spec.input("spoil_if_n_atoms", valid_type=orm.Int, required=False,
                   help="Finish OK but with spoiled outputs for structures with this many "
                        "atoms.")
        spec.input("spoil", valid_type=orm.Str, required=False,
                   help="How to spoil them: 'shape', 'name' or 'nan' (spoiled_single_point).")
        spec.outline(cls.run_calculation)
        spec.output("total_energy", valid_type=orm.Float, help="Total energy (eV).")
        spec.output("forces", valid_type=orm.ArrayData, help="Forces (eV/Angstrom).")
        spec.exit_code(400, "ERROR_SCF_NOT_CONVERGED", message="simulated SCF failure")

    def run_calculation(self):
        n_fail = self.inputs.get("fail_if_n_atoms")
        if n_fail is not None and len(self.inputs.structure.sites) == n_fail.value:
            return self.exit_codes.ERROR_SCF_NOT_CONVERGED
        n_spoil = self.inputs.get("spoil_if_n_atoms")
        if n_spoil is not None and len(self.inputs.structure.sites) == n_spoil.value:
            self.out_many(spoiled_single_point(self.inputs.structure, self.inputs.parameters,
                                               self.inputs.get("spoil", orm.Str("shape"))))
            return None
        self.out_many(emt_single_point(self.inputs.structure, self.inputs.parameters))
        return None


class NamespacedReferenceWorkChain(WorkChain):
    """A thin wrapper with its DFT inputs in a namespace (like one around aiida-quantum-
    espresso's PwBaseWorkChain): ``expose_inputs`` brings a ``metadata`` namespace with
    defaults along."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="Structure (Angstrom).")
        spec.expose_inputs(MockReferenceWorkChain, namespace="base", exclude=("structure",))
        spec.outline(cls.run_calculation)
        spec.output("total_energy", valid_type=orm.Float, help="Total energy (eV).")
        spec.output("forces", valid_type=orm.ArrayData, help="Forces (eV/Angstrom).")

    def run_calculation(self):
        self.out_many(emt_single_point(self.inputs.structure, self.inputs.base.parameters))


NAMESPACED_ENTRY_POINT = "mlip_test.namespaced_reference"


@register_family
class PerAtomTestModel(Model):
    """E = Σ_i e_{Z_i}: a trivial model to test the model node without fitting."""

    family = "test_per_atom"

    def __init__(self, species, energies, provenance=None):
        self._species = tuple(species)
        self.energies = np.asarray(energies, float)
        self.provenance = provenance or Provenance(solver="none", seed=7)

    @property
    def species(self):
        return self._species

    def predict(self, atoms, stress=True):
        self.check_atoms(atoms)
        e = self.energies[[self._species.index(s) for s in atoms.get_chemical_symbols()]]
        return Prediction(energy=float(e.sum()), energies=e, forces=np.zeros((len(atoms), 3)),
                          stress=np.zeros(6) if stress else None)

    def to_state(self):
        return {"species": list(self._species)}, {"energies": self.energies}

    @classmethod
    def from_state(cls, params, arrays, provenance):
        return cls(params["species"], arrays["energies"], provenance)
