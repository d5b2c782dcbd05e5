"""What every fitted model offers: prediction, species checks, saving and loading."""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from ase import Atoms

from ..errors import InputError, ModelFormatError
from .fileformat import read_model_document, write_model_document
from .provenance import Provenance

__all__ = ["Prediction", "Model", "load_model", "register_family", "FAMILIES"]

#: family name -> module that defines it (imported on first load of such a file)
FAMILY_MODULES = {
    "linear_ace": "mlip_plugin.models.linear_ace",
    "kernel": "mlip_plugin.models.kernel",
}
FAMILIES: dict[str, type[Model]] = {}


@dataclass
class Prediction:
    """A model's prediction for one structure (ASE units).

    energy : float, eV; energies : (n_atoms,) eV, or None for models without a site
    decomposition (molecular kernels); forces : (n_atoms, 3) eV/Å;
    stress : (6,) eV/Å³ Voigt, ASE sign, or None (not periodic, or not requested).
    extras : per-property uncertainties and the like (e.g. ``energy_std``).
    """

    energy: float
    energies: np.ndarray | None
    forces: np.ndarray
    stress: np.ndarray | None = None
    extras: dict | None = None


def register_family(cls: type[Model]) -> type[Model]:
    """Class decorator: make ``cls`` loadable by :func:`load_model` under ``cls.family``."""
    FAMILIES[cls.family] = cls
    return cls


class Model(ABC):
    """A fitted interatomic potential."""

    family: ClassVar[str] = ""
    provenance: Provenance

    @property
    @abstractmethod
    def species(self) -> tuple[str, ...]:
        """Chemical symbols the model knows."""

    @property
    def cutoff(self) -> float | None:
        """Interaction cutoff in Å (None for models without one, such as molecular kernels)."""
        return None

    def check_atoms(self, atoms: Atoms) -> None:
        """Raise :class:`InputError` before any work if the model cannot handle ``atoms``."""
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.species))
        if unknown:
            raise InputError(
                f"the structure contains species {unknown} that the model was not fitted "
                f"for; it knows {list(self.species)}"
            )
        if not np.all(np.isfinite(atoms.positions)):
            raise InputError("the structure has non-finite (NaN or inf) atomic positions; "
                             "fix the structure before computing with the model")
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not np.all(np.isfinite(atoms.cell.array)):
            raise InputError("the structure's cell contains NaN or inf; give a finite cell")
        if pbc.any():
            periodic = np.asarray(atoms.cell)[pbc]
            if np.linalg.matrix_rank(periodic, tol=1e-8) < pbc.sum():
                axes = "".join("xyz"[i] for i in np.flatnonzero(pbc))
                raise InputError(
                    f"the structure is periodic along {axes} (pbc={atoms.pbc.tolist()}) but its "
                    "cell vectors there are zero or linearly dependent; give it a cell "
                    "(atoms.set_cell) or switch periodicity off (atoms.pbc = False)")

    @abstractmethod
    def predict(self, atoms: Atoms, stress: bool = True) -> Prediction:
        """Energy, per-atom energies, forces and (for 3-D periodic cells) stress."""

    @abstractmethod
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-safe parameters and numeric arrays that fully define the model."""

    @classmethod
    @abstractmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray],
                   provenance: Provenance) -> Model:
        """Inverse of :meth:`to_state`."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file (see :mod:`mlip_plugin.models.fileformat`)."""
        params, arrays = self.to_state()
        return write_model_document(path, self.family, params, arrays,
                                    self.provenance.to_dict())


def load_model(path: str | os.PathLike) -> Model:
    """Load any model file written by :meth:`Model.save`.

    Raises
    ------
    ModelFormatError
        If the file is missing, corrupted, of a newer format version or of an unknown family,
        or if its parameters lack an entry or do not fit together.
    """
    family, params, arrays, provenance = read_model_document(path)
    if family not in FAMILIES and family in FAMILY_MODULES:
        importlib.import_module(FAMILY_MODULES[family])
    cls = FAMILIES.get(family)
    if cls is None:
        raise ModelFormatError(
            f"{str(path)!r} holds a model of unknown family {family!r}; known: "
            f"{sorted(set(FAMILIES) | set(FAMILY_MODULES))}"
        )
    try:
        return cls.from_state(params, arrays, Provenance.from_dict(provenance))
    except KeyError as err:
        raise ModelFormatError(
            f"{str(path)!r}: the {family} model lacks the entry {err}; the file was edited or "
            "not written by mlip-plugin: refit or restore it") from err
    except (ValueError, TypeError, AttributeError) as err:
        # AttributeError: an entry of the wrong type (a list where a mapping belongs)
        raise ModelFormatError(f"{str(path)!r}: inconsistent {family} model: {err}") from err
