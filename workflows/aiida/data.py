"""AiiDA data types: a fitted model (``mlip.model``) and a training set (``mlip.training_set``).

A training set is ONE node for all its structures (each calcfunction and each node costs
provenance time, so never one node per structure): a :class:`TrajectoryData` whose steps are
the structures, with energies, forces and stresses as arrays beside them.  Structures of
different sizes are stored ragged (atoms of all steps concatenated, ``n_atoms`` per step).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from aiida.common.exceptions import ValidationError
from aiida.orm import SinglefileData, StructureData, TrajectoryData
from ase import Atoms

from mlip_plugin.data import Configuration, Weights
from mlip_plugin.errors import InputError

__all__ = ["ModelData", "TrainingSetData", "UNITS", "json_safe"]

#: Units of the arrays of a :class:`TrainingSetData`.
UNITS = {
    "positions": "Angstrom",
    "cells": "Angstrom",
    "energies": "eV (total energy per structure)",
    "forces": "eV/Angstrom",
    "stresses": "eV/Angstrom^3, Voigt [xx, yy, zz, yz, xz, xy], negative under compression",
}


def json_safe(value):
    """``value`` with NaN and ±inf replaced by None and numpy scalars by Python numbers
    (AiiDA attributes reject non-finite floats)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class TrainingSetData(TrajectoryData):
    """Structures with optional reference labels, one trajectory step per structure.

    Arrays (``S`` structures, ``N`` atoms in all): ``steps`` (S,), ``cells`` (S, 3, 3) Å,
    ``positions`` (N, 3) Å, ``numbers`` (N,), ``n_atoms`` (S,), ``pbcs`` (S, 3),
    ``energies`` (S,) eV, ``forces`` (N, 3) eV/Å, ``stresses`` (S, 6) eV/Å³ and
    ``weights`` (S, 3) (energy, forces, virial).  A missing label is NaN.  Attributes:
    ``config_types`` and ``structure_ids`` (one per step), ``symbols`` (the species, sorted),
    ``units``.
    """

    @classmethod
    def from_configurations(cls, configs: Sequence[Configuration]) -> TrainingSetData:
        """Build an unstored node from labelled configurations (labels may be None)."""
        if not configs:
            raise InputError("a training set needs at least one configuration; got none")
        node = cls()
        n_atoms = np.array([c.n_atoms for c in configs], dtype=int)
        node.set_array("steps", np.arange(len(configs)))
        node.set_array("cells", np.array([c.atoms.cell.array for c in configs], dtype=float))
        node.set_array("positions", np.concatenate([c.atoms.positions for c in configs]))
        node.set_array("numbers", np.concatenate([c.atoms.numbers for c in configs]))
        node.set_array("n_atoms", n_atoms)
        node.set_array("pbcs", np.array([c.atoms.pbc for c in configs], dtype=bool))
        node.set_array("energies", np.array(
            [np.nan if c.energy is None else c.energy for c in configs], dtype=float))
        node.set_array("forces", np.concatenate(
            [np.full((c.n_atoms, 3), np.nan) if c.forces is None else c.forces
             for c in configs]))
        node.set_array("stresses", np.array(
            [np.full(6, np.nan) if c.stress is None else c.stress for c in configs]))
        node.set_array("weights", np.array(
            [[c.weights.energy, c.weights.forces, c.weights.virial] for c in configs]))
        species = sorted({s for c in configs for s in c.symbols})
        node.base.attributes.set_many({
            "symbols": species,
            "config_types": [str(c.config_type) for c in configs],
            "structure_ids": [str(c.info.get("structure_id", i)) for i, c in enumerate(configs)],
            "units": UNITS,
        })
        return node

    @classmethod
    def from_atoms(cls, structures: Sequence[Atoms]) -> TrainingSetData:
        """Unlabelled structures; ``info["config_type"]`` and ``info["structure_id"]`` kept."""
        configs = [Configuration(atoms=a, config_type=str(a.info.get("config_type", "default")),
                                 info={"structure_id": a.info.get("structure_id", str(i))})
                   for i, a in enumerate(structures)]
        return cls.from_configurations(configs)

    # --- TrajectoryData interface, for ragged steps --------------------------------------

    def _validate(self) -> bool:
        try:
            n = self.get_array("n_atoms")
            s, total = n.size, int(n.sum())
            shapes = {"steps": (s,), "cells": (s, 3, 3), "positions": (total, 3),
                      "numbers": (total,), "pbcs": (s, 3), "energies": (s,),
                      "forces": (total, 3), "stresses": (s, 6), "weights": (s, 3)}
            for name, shape in shapes.items():
                if self.get_shape(name) != shape:
                    raise ValueError(f"array {name!r} has shape {self.get_shape(name)}, "
                                     f"expected {shape}")
            for name in ("config_types", "structure_ids"):
                if len(self.base.attributes.get(name)) != s:
                    raise ValueError(f"attribute {name!r} needs one entry per structure")
        except (KeyError, ValueError, AttributeError) as err:
            raise ValidationError(f"the TrainingSetData is inconsistent: {err}") from err
        return True

    @property
    def numsites(self) -> int:
        """Number of atoms of all structures together."""
        return int(self.get_array("n_atoms").sum())

    @property
    def pbc(self):
        """The common periodicity of all steps, or None when it differs between steps."""
        rows = {tuple(bool(x) for x in row) for row in self.get_array("pbcs")}
        return rows.pop() if len(rows) == 1 else None

    @property
    def config_types(self) -> list[str]:
        return list(self.base.attributes.get("config_types"))

    @property
    def structure_ids(self) -> list[str]:
        return list(self.base.attributes.get("structure_ids"))

    def _slice(self, index: int) -> slice:
        if not 0 <= index < self.numsteps:
            raise IndexError(f"index={index} is outside 0 .. {self.numsteps - 1}")
        offsets = np.concatenate([[0], np.cumsum(self.get_array("n_atoms"))])
        return slice(int(offsets[index]), int(offsets[index + 1]))

    def get_step_data(self, index: int):
        """``(stepid, time, cell, symbols, positions, velocities)`` of one structure."""
        sl = self._slice(index)
        atoms = Atoms(self.get_array("numbers")[sl])
        return (int(self.get_array("steps")[index]), None, self.get_array("cells")[index],
                atoms.get_chemical_symbols(), self.get_array("positions")[sl], None)

    def get_step_structure(self, index: int, custom_kinds=None) -> StructureData:
        """One structure as an unstored :class:`StructureData` (with its own pbc)."""
        if custom_kinds is not None:
            raise InputError("custom_kinds is not supported by TrainingSetData; leave it None")
        return StructureData(ase=self.get_atoms(index))

    def get_atoms(self, index: int) -> Atoms:
        """One structure as :class:`ase.Atoms` with ``config_type`` and ``structure_id``."""
        sl = self._slice(index)
        atoms = Atoms(self.get_array("numbers")[sl], self.get_array("positions")[sl],
                      cell=self.get_array("cells")[index], pbc=self.get_array("pbcs")[index])
        atoms.info["config_type"] = self.config_types[index]
        atoms.info["structure_id"] = self.structure_ids[index]
        return atoms

    def get_configurations(self) -> list[Configuration]:
        """All steps as :class:`Configuration` objects (NaN labels become None)."""
        energies, forces = self.get_array("energies"), self.get_array("forces")
        stresses, weights = self.get_array("stresses"), self.get_array("weights")
        out = []
        for i in range(self.numsteps):
            atoms = self.get_atoms(i)
            f = forces[self._slice(i)]
            out.append(Configuration(
                atoms=Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc),
                energy=None if np.isnan(energies[i]) else float(energies[i]),
                forces=None if np.isnan(f).any() else f,
                stress=None if np.isnan(stresses[i]).any() else stresses[i],
                config_type=atoms.info["config_type"], weights=Weights(*weights[i]),
                info={"structure_id": atoms.info["structure_id"]}))
        return out


class ModelData(SinglefileData):
    """A fitted model file (``model.json``) with its provenance record as attributes.

    Attributes: ``family``, ``species``, ``format_version`` and ``provenance`` (the record the
    file carries: training-data hash, basis/kernel spec, solver, seed, metrics, ...), so
    models can be queried by them without opening the file.
    """

    def __init__(self, file=None, filename: str | None = None, **kwargs):
        super().__init__(file, filename=filename, **kwargs)
        if file is not None:
            self._set_attributes_from_file()

    @classmethod
    def from_model(cls, model, filename: str = "model.json") -> ModelData:
        """Save ``model`` (a :class:`mlip_plugin.models.Model`) into a new unstored node."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / filename)
            return cls(file=str(path), filename=filename)

    def _set_attributes_from_file(self) -> None:
        try:
            doc = json.loads(self.get_content("r"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"file {self.filename!r} is not an mlip-plugin model file: "
                             f"{err}") from err
        model = self.get_model()
        self.base.attributes.set_many({
            "family": doc.get("family"), "format_version": doc.get("format_version"),
            "species": list(model.species), "cutoff": model.cutoff,
            "provenance": json_safe(doc.get("provenance", {}))})

    @property
    def family(self) -> str:
        return self.base.attributes.get("family")

    @property
    def provenance(self) -> dict:
        """The model file's provenance record (a JSON-safe dict)."""
        return dict(self.base.attributes.get("provenance", {}))

    def get_model(self):
        """Load the model (checks format version and checksum)."""
        from mlip_plugin.models import load_model

        with self.as_path() as path:
            return load_model(path)

    def get_calculator(self):
        """The model as an ASE calculator (:class:`mlip_plugin.calculators.MLIPCalculator`)."""
        from mlip_plugin.calculators import MLIPCalculator

        return MLIPCalculator(model=self.get_model())
