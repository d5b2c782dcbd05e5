"""Structures and labelled configurations as flat arrays, the way a pyiron job stores them.

A list of structures becomes one record of plain arrays (``job.output.configurations``;
in the HDF5 file, the ``key_<name>`` datasets under the job's ``configurations`` group), so
the training data of a job can be read with h5py alone:

================  ===============  =====================================================
key               shape, dtype     meaning
================  ===============  =====================================================
``n_atoms``       (n,) int         atoms per configuration; they index the per-atom rows
``numbers``       (N,) int         atomic numbers of all atoms, configuration by configuration
``positions``     (N, 3) float     positions in Å
``cells``         (n, 3, 3) float  cell vectors (rows) in Å
``pbc``           (n, 3) bool      periodic directions
``config_types``  (n,) bytes       ``config_type`` of each configuration (UTF-8)
``structure_ids`` (n,) bytes       ``info["structure_id"]`` (UTF-8; empty if absent)
``energies``      (n,) float       total energy in eV; NaN where absent
``forces``        (N, 3) float     forces in eV/Å; NaN rows for configurations without
``stresses``      (n, 6) float     Voigt stress in eV/Å³ (ASE sign); NaN where absent
``weights``       (n, 3) float     fitting weights (energy, forces, virial)
``initial_magmoms`` (N,) float     starting magnetic moments in μB (optional)
``initial_charges`` (N,) float     starting charges in e (optional)
================  ===============  =====================================================

with ``n`` configurations and ``N = sum(n_atoms)`` atoms.  Structures without labels (the
input of a reference job) use only the first seven keys, and the starting magnetic moments
and charges, which a spin-polarised reference calculator starts from (GPAW, VASP's
MAGMOM), when some structure has them (zeros stand for a structure without; a record
without these keys, as written before they were kept, has none).  Metadata in
``atoms.info`` other than ``config_type`` and ``structure_id`` is not kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from ase import Atoms

from mlip_plugin.data import Configuration, Weights
from mlip_plugin.errors import InputError
from mlip_plugin.pipeline.reference import STARTING_ARRAYS, stacked_starting_values

__all__ = ["structures_to_arrays", "arrays_to_structures", "configurations_to_arrays",
           "arrays_to_configurations", "STRUCTURE_KEYS", "LABEL_KEYS"]

STRUCTURE_KEYS = ("n_atoms", "numbers", "positions", "cells", "pbc", "config_types",
                  "structure_ids")
LABEL_KEYS = ("energies", "forces", "stresses", "weights")


def structures_to_arrays(structures: Sequence[Atoms]) -> dict:
    """Flatten ``structures`` into the arrays described in the module docstring.

    Raises
    ------
    InputError
        If an item is not an :class:`ase.Atoms`.
    """
    structures = list(structures)
    for i, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise InputError(f"structures[{i}] is a {type(atoms).__name__}, not an ase.Atoms; "
                             "pass a list of ase.Atoms")
    n = len(structures)
    out = {
        "n_atoms": np.array([len(a) for a in structures], dtype=np.int64),
        "numbers": _concat([a.numbers for a in structures], (0,), np.int64),
        "positions": _concat([a.positions for a in structures], (0, 3), float),
        "cells": (np.array([a.cell.array for a in structures], dtype=float) if n
                  else np.zeros((0, 3, 3))),
        "pbc": np.array([a.pbc for a in structures], dtype=bool).reshape(n, 3),
        "config_types": _encode([a.info.get("config_type", "default") for a in structures]),
        "structure_ids": _encode([a.info.get("structure_id", "") for a in structures]),
    }
    # only when some structure has them: records without them are written as before
    out.update(stacked_starting_values(structures))
    return out


def arrays_to_structures(arrays: Mapping) -> list[Atoms]:
    """Inverse of :func:`structures_to_arrays` (``info`` holds config_type, structure_id)."""
    _check_keys(arrays, STRUCTURE_KEYS)
    n_atoms = np.asarray(arrays["n_atoms"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    numbers = np.asarray(arrays["numbers"], dtype=np.int64)
    positions = np.asarray(arrays["positions"], dtype=float).reshape(-1, 3)
    if len(numbers) != offsets[-1] or len(positions) != offsets[-1]:
        raise InputError(f"stored structures are inconsistent: n_atoms sums to {offsets[-1]} "
                         f"but there are {len(numbers)} numbers and {len(positions)} positions")
    cells = np.asarray(arrays["cells"], dtype=float).reshape(-1, 3, 3)
    pbc = np.asarray(arrays["pbc"], dtype=bool).reshape(-1, 3)
    config_types = _decode(arrays["config_types"])
    structure_ids = _decode(arrays["structure_ids"])
    starting = {}
    for name in STARTING_ARRAYS:
        if arrays.get(name) is not None:
            starting[name] = np.asarray(arrays[name], dtype=float).reshape(-1)
            if len(starting[name]) != offsets[-1]:
                raise InputError(f"stored structures are inconsistent: n_atoms sums to "
                                 f"{offsets[-1]} but there are {len(starting[name])} {name}")
    out = []
    for k in range(len(n_atoms)):
        sl = slice(offsets[k], offsets[k + 1])
        atoms = Atoms(numbers=numbers[sl], positions=positions[sl], cell=cells[k], pbc=pbc[k])
        for name, values in starting.items():
            if np.any(values[sl]):
                atoms.set_array(name, values[sl].copy())
        atoms.info["config_type"] = config_types[k]
        if structure_ids[k]:
            atoms.info["structure_id"] = structure_ids[k]
        out.append(atoms)
    return out


def configurations_to_arrays(configs: Sequence[Configuration]) -> dict:
    """Flatten labelled configurations (structure keys plus label keys)."""
    configs = list(configs)
    for i, c in enumerate(configs):
        if not isinstance(c, Configuration):
            raise InputError(f"configurations[{i}] is a {type(c).__name__}, not a "
                             "mlip_plugin.data.Configuration; read data with "
                             "mlip_plugin.data.read_configs")
    atoms = []
    for c in configs:
        a = c.atoms.copy()
        a.info = {"config_type": c.config_type, "structure_id": c.info.get("structure_id", "")}
        atoms.append(a)
    out = structures_to_arrays(atoms)
    nan3 = [np.full((c.n_atoms, 3), np.nan) if c.forces is None else c.forces for c in configs]
    out.update({
        "energies": np.array([np.nan if c.energy is None else c.energy for c in configs],
                             dtype=float),
        "forces": _concat(nan3, (0, 3), float),
        "stresses": np.array([np.full(6, np.nan) if c.stress is None else c.stress
                              for c in configs], dtype=float).reshape(len(configs), 6),
        "weights": np.array([[c.weights.energy, c.weights.forces, c.weights.virial]
                             for c in configs], dtype=float).reshape(len(configs), 3),
    })
    return out


def arrays_to_configurations(arrays: Mapping) -> list[Configuration]:
    """Inverse of :func:`configurations_to_arrays`; NaN labels come back as None."""
    _check_keys(arrays, STRUCTURE_KEYS + LABEL_KEYS)
    structures = arrays_to_structures(arrays)
    offsets = np.concatenate([[0], np.cumsum(np.asarray(arrays["n_atoms"], dtype=np.int64))])
    forces = np.asarray(arrays["forces"], dtype=float).reshape(-1, 3)
    energies = np.asarray(arrays["energies"], dtype=float)
    stresses = np.asarray(arrays["stresses"], dtype=float).reshape(-1, 6)
    weights = np.asarray(arrays["weights"], dtype=float).reshape(-1, 3)
    if len(forces) != offsets[-1] or not len(energies) == len(stresses) == len(structures):
        raise InputError("stored configurations are inconsistent: the label arrays do not "
                         f"match {len(structures)} configurations of {offsets[-1]} atoms")
    out = []
    for k, atoms in enumerate(structures):
        f = forces[offsets[k]:offsets[k + 1]]
        info = {key: atoms.info.pop(key) for key in ("structure_id",) if key in atoms.info}
        config_type = atoms.info.pop("config_type")
        out.append(Configuration(
            atoms=atoms,
            energy=None if np.isnan(energies[k]) else float(energies[k]),
            forces=None if np.isnan(f).all() else f.copy(),
            stress=None if np.isnan(stresses[k]).all() else stresses[k].copy(),
            config_type=config_type, weights=Weights(*(float(w) for w in weights[k])),
            info=info))
    return out


def _concat(parts: list, empty_shape: tuple, dtype) -> np.ndarray:
    if not parts:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate([np.asarray(p, dtype=dtype).reshape((-1,) + empty_shape[1:])
                           for p in parts])


def _encode(strings: list) -> np.ndarray:
    return np.array([str(s).encode("utf-8") for s in strings], dtype=np.bytes_)


def _decode(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _check_keys(arrays: Mapping, keys: tuple) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise InputError(f"stored configurations lack the arrays {missing}; expected the keys "
                         f"{list(keys)} (see mlip_plugin.workflows.pyiron.arrays)")
