"""Train / validation / test splits of a list of configurations.

Random splits are seeded and stratified by ``config_type`` (every type is split in the same
proportions, rounding so that a type with a single member goes to training, and every type
keeps at least one member in training).  Isolated-atom configurations (one atom, a
``config_type`` of :data:`~mlip_plugin.data.e0.ISOLATED_ATOM_TYPES`) always go to training:
they fix the reference energies E0, which are read from the training part.  Predefined
splits read a per-configuration ``info`` key and keep them as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .configuration import Configuration
from .e0 import ISOLATED_ATOM_TYPES

__all__ = ["DataSplit", "random_split", "repeated_splits", "predefined_split"]


@dataclass(frozen=True)
class DataSplit:
    """Index arrays (into the original list) of the three parts."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def take(self, configs: Sequence[Configuration], part: str) -> list[Configuration]:
        return [configs[i] for i in getattr(self, part)]


def random_split(
    configs: Sequence[Configuration],
    validation: float = 0.15,
    test: float = 0.0,
    seed: int = 0,
    stratify: bool = True,
) -> DataSplit:
    """Seeded random split into fractions ``1 - validation - test``, ``validation``, ``test``.

    Isolated-atom configurations all go to training (E0 is read from them); the fractions
    apply to the others, per ``config_type`` when ``stratify``, rounded to whole
    configurations while leaving at least one of every type in training.
    """
    for name, frac in (("validation", validation), ("test", test)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float, np.number)) \
                or not 0.0 <= frac < 1.0:
            raise InputError(f"{name}={frac!r} must be a fraction in [0, 1), a number")
    if validation + test >= 1.0:
        raise InputError(
            f"validation + test = {validation + test} leaves no training data; keep it below 1"
        )
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, c in enumerate(configs):
        if c.n_atoms == 1 and c.config_type in ISOLATED_ATOM_TYPES:
            parts["train"].append(i)  # E0 is read from the training part
        else:
            groups[c.config_type if stratify else ""].append(i)
    for key in sorted(groups):
        idx = np.array(groups[key])
        rng.shuffle(idx)
        n = len(idx)
        # always leave a member of every type for training
        n_test = min(int(np.floor(test * n + 0.5)), n - 1)
        n_val = min(int(np.floor(validation * n + 0.5)), n - 1 - n_test)
        parts["test"] += idx[:n_test].tolist()
        parts["validation"] += idx[n_test:n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val:].tolist()
    return DataSplit(**{k: np.array(sorted(v), dtype=int) for k, v in parts.items()})


def repeated_splits(
    configs: Sequence[Configuration], k: int, validation: float = 0.15, test: float = 0.0,
    seed: int = 0, stratify: bool = True,
) -> list[DataSplit]:
    """``k`` independent random splits (seeds ``seed, seed+1, ...``)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k={k!r} must be a positive whole number of splits")
    return [random_split(configs, validation, test, seed + r, stratify) for r in range(k)]


def predefined_split(configs: Sequence[Configuration], key: str = "split") -> DataSplit:
    """Split by ``info[key]`` with values ``train``, ``validation``/``val``, ``test``."""
    names = {"train": "train", "validation": "validation", "val": "validation",
             "valid": "validation", "test": "test"}
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, c in enumerate(configs):
        value = str(c.info.get(key, "")).lower()
        if value not in names:
            raise InputError(
                f"configuration {i}: info[{key!r}]={c.info.get(key)!r} is not one of "
                f"{sorted(names)}; use random_split instead"
            )
        parts[names[value]].append(i)
    return DataSplit(**{k: np.array(v, dtype=int) for k, v in parts.items()})
