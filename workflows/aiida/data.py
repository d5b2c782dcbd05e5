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
from mlip_plugin.pipeline.reference import STARTING_ARRAYS, stacked_starting_values

__all__ = ["ModelData", "TrainingSetData", "UNITS", "json_safe", "to_training_set"]

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
    ``weights`` (S, 3) (energy, forces, virial).  A missing label is NaN.  Optional:
    ``initial_magmoms`` (N,) μB and ``initial_charges`` (N,) e, the starting magnetic
    moments and charges a spin-polarised reference calculator (GPAW, VASP's MAGMOM) starts
    from, stored only when some structure has them (zeros for one without; a node stored
    before they were kept has none).  Attributes:
    ``config_types`` and ``structure_ids`` (one per step), ``symbols`` (the species, sorted:
    :attr:`species`), ``units``.

    The TrajectoryData interface that assumes the same atoms in every step
    (:attr:`symbols`, :meth:`get_positions`, the XSF export of all steps) works for a
    training set whose steps have the same atoms and raises :class:`InputError` for a
    ragged one; per-step access (:meth:`get_step_structure`, :meth:`get_atoms`), the XSF
    export of one step and the ``json`` and ``cif`` (with PyCifRW) exports work for every
    training set.
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
        for name, values in stacked_starting_values([c.atoms for c in configs],
                                                    "structure {i}").items():
            node.set_array(name, values)
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
            shapes.update({name: (total,) for name in STARTING_ARRAYS
                           if name in self.get_arraynames()})
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
    def species(self) -> list[str]:
        """The chemical species of all structures, sorted (the attribute ``symbols``)."""
        return list(self.base.attributes.get("symbols"))

    def _same_atoms_in_every_step(self, what: str) -> np.ndarray:
        """The atomic numbers (n,) that every step shares, in the same order and with the
        same periodicity; :class:`InputError` naming ``what`` for a ragged training set."""
        n_atoms, numbers = self.get_array("n_atoms"), self.get_array("numbers")
        sizes = sorted({int(n) for n in n_atoms})
        if len(sizes) == 1:
            per_step = numbers.reshape(n_atoms.size, sizes[0])
            if (per_step == per_step[0]).all() and self.pbc is not None:
                return per_step[0]
        raise InputError(
            f"{what} needs the same atoms (species, order and periodicity) in every step, "
            f"as in a trajectory; this training set of {self.numsteps} structures has steps "
            f"of {sizes} atoms or differing species or periodicity. Take the structures one "
            "at a time (get_atoms(index), get_step_structure(index)), or export one step "
            "(index=...) or use the format 'json' (or 'cif', which needs PyCifRW).")

    @property
    def symbols(self) -> list[str]:
        """One chemical symbol per atom of a step (the TrajectoryData contract), for a
        training set whose steps all have the same atoms; :class:`InputError` otherwise.
        The sorted species are :attr:`species` (stored as the attribute ``symbols``)."""
        numbers = self._same_atoms_in_every_step("TrainingSetData.symbols")
        return Atoms(numbers).get_chemical_symbols()

    def get_positions(self) -> np.ndarray:
        """Positions (S, n, 3) in Å of a training set whose steps all have the same atoms,
        as TrajectoryData gives them; :class:`InputError` for a ragged set (the stored
        array ``positions`` (N, 3) holds the atoms of all steps, concatenated)."""
        numbers = self._same_atoms_in_every_step("TrainingSetData.get_positions()")
        return self.get_array("positions").reshape(self.numsteps, numbers.size, 3)

    def _prepare_xsf(self, index: int | None = None, main_file_name: str = ""):
        """XSF (XCrySDen) of step ``index``, or of all steps as an animation, which needs
        the same atoms in every step (``verdi data core.trajectory export --format xsf``)."""
        import io

        from ase.io import write

        if index is None:
            self._same_atoms_in_every_step("The XSF export of all steps (an animation)")
        indices = range(self.numsteps) if index is None else [index]
        text = io.StringIO()
        write(text, [self.get_atoms(i) for i in indices], format="xsf")
        return text.getvalue().encode("utf-8"), {}

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
        """One structure as :class:`ase.Atoms` with ``config_type`` and ``structure_id``,
        and its starting magnetic moments and charges when it has any."""
        sl = self._slice(index)
        atoms = Atoms(self.get_array("numbers")[sl], self.get_array("positions")[sl],
                      cell=self.get_array("cells")[index], pbc=self.get_array("pbcs")[index])
        for name in STARTING_ARRAYS:
            if name in self.get_arraynames() and np.any(self.get_array(name)[sl]):
                atoms.set_array(name, np.array(self.get_array(name)[sl], dtype=float))
        atoms.info["config_type"] = self.config_types[index]
        atoms.info["structure_id"] = self.structure_ids[index]
        return atoms

    def get_configurations(self) -> list[Configuration]:
        """All steps as :class:`Configuration` objects (NaN labels become None; the
        atoms keep their starting magnetic moments and charges, so that a chunk of
        structures split from a set, :func:`~.calculations.split_chunks`, keeps them)."""
        energies, forces = self.get_array("energies"), self.get_array("forces")
        stresses, weights = self.get_array("stresses"), self.get_array("weights")
        out = []
        for i in range(self.numsteps):
            atoms = self.get_atoms(i)
            info, atoms.info = atoms.info, {}
            f = forces[self._slice(i)]
            out.append(Configuration(
                atoms=atoms,
                energy=None if np.isnan(energies[i]) else float(energies[i]),
                forces=None if np.isnan(f).any() else f,
                stress=None if np.isnan(stresses[i]).any() else stresses[i],
                config_type=info["config_type"], weights=Weights(*weights[i]),
                info={"structure_id": info["structure_id"]}))
        return out


#: Attributes of a :class:`ModelData` read from its file.
_MODEL_ATTRIBUTES = ("family", "format_version", "species", "cutoff", "provenance")


def to_training_set(value):
    """The serializer of the work chains' ``structures`` inputs: a sequence of ``ase.Atoms``
    becomes an (unstored) :class:`TrainingSetData`, as ``job.structures = [...]`` does in
    pyiron; anything else is returned for the port's type check.

    Raises
    ------
    InputError
        If an item of a sequence of structures is not an ``ase.Atoms``.
    """
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and value \
            and any(isinstance(item, Atoms) for item in value):
        for i, item in enumerate(value):
            if not isinstance(item, Atoms):
                raise InputError(f"structures[{i}] is a {type(item).__name__}, not an "
                                 "ase.Atoms; give a list of ase.Atoms or a TrainingSetData")
        return TrainingSetData.from_atoms(list(value))
    return value


class ModelData(SinglefileData):
    """A fitted model file (``model.json``) with its provenance record as attributes.

    Attributes: ``family``, ``species``, ``cutoff`` (Å), ``format_version`` and
    ``provenance`` (the record the file carries: training-data hash, basis/kernel spec,
    solver, seed, metrics, ...), so models can be queried by them without opening the file.
    They are read from the file whenever it is set (``ModelData(file)`` or
    :meth:`set_file`).
    """

    def set_file(self, file, filename: str | None = None, **kwargs) -> None:
        """Store the model file ``file`` (absolute path or file-like object) and set the
        attributes from it; :class:`InputError` if it is not a loadable model file.

        ``__init__`` (``ModelData(file)``, ``ModelData(content=...)``) comes through here
        too, so the attributes always describe the file the node holds.
        """
        super().set_file(file, filename=filename, **kwargs)
        try:
            self._set_attributes_from_file()
        except Exception:
            # attributes of a file this node held before must not describe this one
            self.base.attributes.delete_many(
                [k for k in _MODEL_ATTRIBUTES if k in self.base.attributes.keys()])
            raise

    @classmethod
    def from_model(cls, model, filename: str = "model.json") -> ModelData:
        """Save ``model`` (a :class:`mlip_plugin.models.Model`) into a new unstored node."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / filename)
            return cls(file=str(path), filename=filename)

    def _set_attributes_from_file(self) -> None:
        """Set :data:`_MODEL_ATTRIBUTES` from the file (loading the model checks it)."""
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
    def family(self) -> str | None:
        """The model family (``linear_ace``, ``kernel``, ...); None before a file is set."""
        return self.base.attributes.get("family", None)

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
