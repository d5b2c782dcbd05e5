"""Configurations with reference labels: reading, writing, units, weights, splits, E0, hashes."""

from __future__ import annotations

from .configuration import (
    DEFAULT_WEIGHTS,
    MIN_DISTANCE,
    Configuration,
    Weights,
    assign_weights,
    matrix_from_voigt,
    voigt_from_matrix,
)
from .e0 import fit_e0, isolated_atom_energies, reference_energy, resolve_e0
from .hashing import hash_configs
from .io import read_configs, write_extxyz
from .splits import DataSplit, predefined_split, random_split, repeated_splits
from .summary import summarize

__all__ = [
    "Configuration",
    "Weights",
    "DEFAULT_WEIGHTS",
    "MIN_DISTANCE",
    "assign_weights",
    "voigt_from_matrix",
    "matrix_from_voigt",
    "read_configs",
    "write_extxyz",
    "hash_configs",
    "isolated_atom_energies",
    "fit_e0",
    "resolve_e0",
    "reference_energy",
    "DataSplit",
    "random_split",
    "repeated_splits",
    "predefined_split",
    "summarize",
]
