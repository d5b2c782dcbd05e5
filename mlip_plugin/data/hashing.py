"""Content hash of a training set, for provenance.

The hash covers, per configuration and in order: atomic numbers, positions, cell, pbc,
energy, forces and stress (absent labels hashed as absent), each float rounded to 1e-10 in
ASE units so the same data read from different formats hashes equally.  Weights, metadata
and ``config_type`` are not part of it (they are recorded separately in a model's provenance).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from .configuration import Configuration

__all__ = ["hash_configs"]

_DECIMALS = 10


def _feed(h, tag: bytes, arr) -> None:
    h.update(tag)
    if arr is None:
        h.update(b"\x00none")
        return
    a = np.round(np.asarray(arr, dtype=np.float64), _DECIMALS) + 0.0  # folds -0.0 into 0.0
    h.update(np.ascontiguousarray(a).tobytes())


def hash_configs(configs: Iterable[Configuration]) -> str:
    """sha256 (hex) over the canonicalised structures and labels of ``configs``."""
    h = hashlib.sha256(b"mlip-plugin-configs-v1")
    for c in configs:
        h.update(b"|cfg")
        h.update(np.asarray(c.atoms.numbers, dtype=np.int64).tobytes())
        _feed(h, b"R", c.atoms.positions)
        _feed(h, b"C", c.atoms.cell.array)
        h.update(np.asarray(c.atoms.pbc, dtype=np.int8).tobytes())
        _feed(h, b"E", c.energy)
        _feed(h, b"F", c.forces)
        _feed(h, b"S", c.stress)
    return h.hexdigest()
