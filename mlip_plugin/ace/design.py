"""Design matrix and streamed Gram form of a linear ACE fit.

Rows (ACEpotentials.jl convention), per configuration in order, only for the labels it has
(rows of absent labels are omitted):

* one energy row: target ``E - Σ_i E0[Z_i]`` (eV), weight ``w_E / √N_atoms``;
* 3 N force rows (atom-major, x y z): target forces (eV/Å), weight ``w_F``;
* 6 virial rows (Voigt xx yy zz yz xz xy): target ``Configuration.virial`` (eV), weight
  ``w_V / √N_atoms``.

The weights are square-root weights w: a fit minimises ``‖diag(w) (A c - y)‖²``.  ``A`` and
``y`` are returned unweighted.  The Gram form ``(AᵀWA, AᵀWy, yᵀWy)`` with ``W = diag(w²)``
is accumulated over chunks of configurations and can be computed by any
``concurrent.futures``-style executor (``.map`` or ``.submit``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..data.configuration import ZERO_VOLUME, Configuration
from ..data.e0 import reference_energy
from ..errors import InputError
from .basis import ACEBasis
from .evaluate import evaluate_basis

__all__ = ["DesignMatrix", "GramForm", "design_matrix", "gram_form", "ROW_KINDS"]

log = logging.getLogger(__name__)

#: Row kinds: energy, force, virial.
ROW_KINDS = ("E", "F", "V")

#: Default number of atoms evaluated together (bounds the memory of one pass).
ATOMS_PER_PASS = 256


@dataclass(frozen=True)
class DesignMatrix:
    """Unweighted design matrix with targets and square-root row weights.

    Attributes
    ----------
    A : ndarray of shape (n_rows, n_basis)
    y : ndarray of shape (n_rows,)
        Targets (eV for energy and virial rows, eV/Å for force rows).
    w : ndarray of shape (n_rows,)
        Square-root weights (see the module docstring).
    row_kind : ndarray of shape (n_rows,), dtype '<U1'
        "E", "F" or "V".
    config_index : ndarray of shape (n_rows,)
        Index of the configuration (in the input sequence) a row belongs to.
    """

    A: np.ndarray
    y: np.ndarray
    w: np.ndarray
    row_kind: np.ndarray
    config_index: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]

    def weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(diag(w) A, diag(w) y)``."""
        return self.A * self.w[:, None], self.y * self.w


@dataclass(frozen=True)
class GramForm:
    """``AᵀWA`` (p, p), ``AᵀWy`` (p,), ``yᵀWy`` and the number of rows behind them (rows
    of weight zero are not observations and do not count: Bayesian noise estimates use it)."""

    AtWA: np.ndarray
    AtWy: np.ndarray
    ytWy: float
    n_rows: int

    def __add__(self, other: GramForm) -> GramForm:
        if not isinstance(other, GramForm):
            return NotImplemented
        if other.AtWA.shape != self.AtWA.shape:
            raise InputError(f"cannot add Gram forms of sizes {self.AtWA.shape[0]} and "
                             f"{other.AtWA.shape[0]}; they come from different bases")
        return GramForm(self.AtWA + other.AtWA, self.AtWy + other.AtWy,
                        self.ytWy + other.ytWy, self.n_rows + other.n_rows)

    @classmethod
    def zeros(cls, n_basis: int) -> GramForm:
        return cls(np.zeros((n_basis, n_basis)), np.zeros(n_basis), 0.0, 0)

    @classmethod
    def from_design(cls, dm: DesignMatrix) -> GramForm:
        Aw, yw = dm.weighted()
        return cls(Aw.T @ Aw, Aw.T @ yw, float(yw @ yw), int(np.count_nonzero(dm.w)))

    @staticmethod
    def accumulate(forms) -> GramForm:
        """Sum of an iterable of Gram forms (at least one)."""
        total = None
        for f in forms:
            total = f if total is None else total + f
        if total is None:
            raise InputError("accumulate needs at least one Gram form; got none")
        return total


def _row_layout(configs: Sequence[Configuration], e0: Mapping[str, float]):
    """Per configuration: (has_energy, has_forces, has_virial) and targets/weights."""
    kinds, ys, ws, idx = [], [], [], []
    for c, cfg in enumerate(configs):
        n = cfg.n_atoms
        wt = cfg.weights
        if cfg.energy is not None:
            kinds.append(["E"])
            ys.append([cfg.energy - reference_energy(cfg, e0)])
            ws.append([wt.energy / np.sqrt(n)])
            idx.append([c])
        if cfg.forces is not None:
            kinds.append(["F"] * 3 * n)
            ys.append(np.asarray(cfg.forces, float).ravel())
            ws.append(np.full(3 * n, wt.forces))
            idx.append(np.full(3 * n, c))
        if cfg.stress is not None:
            kinds.append(["V"] * 6)
            ys.append(cfg.virial)
            ws.append(np.full(6, wt.virial / np.sqrt(n)))
            idx.append(np.full(6, c))
    def cat(xs, dt):
        return (np.concatenate([np.asarray(x, dt) for x in xs]) if xs
               else np.zeros(0, dt))
    return cat(kinds, "<U1"), cat(ys, float), cat(ws, float), cat(idx, np.int64)


def _passes(configs: Sequence[Configuration], atoms_per_pass: int) -> list[list[int]]:
    out, cur, n = [], [], 0
    for c, cfg in enumerate(configs):
        if cur and n + cfg.n_atoms > atoms_per_pass:
            out.append(cur)
            cur, n = [], 0
        cur.append(c)
        n += cfg.n_atoms
    if cur:
        out.append(cur)
    return out


def refuse_unfittable(configs: Sequence[Configuration],
                      name: str = "configurations") -> None:
    """InputError naming (by their positions in ``configs``) the configurations that have
    no rows to fit: those without atoms (their energy row would have the weight w_E / √0)
    and those with a stress label on a cell without volume (their virial target
    ``-volume * stress`` would be 0).  ``name`` is what the message calls ``configs``;
    entries that are no Configuration are left to the caller's type check."""
    configs = [c if isinstance(c, Configuration) else None for c in configs]
    empty = [c for c, cfg in enumerate(configs) if cfg is not None and cfg.n_atoms == 0]
    if empty:
        raise InputError(f"{name} {empty} have no atoms; remove them from the data")
    no_volume = [c for c, cfg in enumerate(configs)
                 if cfg is not None and cfg.stress is not None and cfg.volume < ZERO_VOLUME]
    if no_volume:
        raise InputError(
            f"{name} {no_volume} have a stress label but a cell without volume (no cell, or "
            "a zero cell vector), so their virial -volume * stress is undefined; drop their "
            "stress (stress=None) or give them their cell")


def design_matrix(basis: ACEBasis, configs: Sequence[Configuration],
                  e0: Mapping[str, float], *, atoms_per_pass: int = ATOMS_PER_PASS
                  ) -> DesignMatrix:
    """Design matrix of ``configs`` on ``basis`` (see the module docstring for the rows).

    Parameters
    ----------
    basis : ACEBasis
    configs : sequence of Configuration
    e0 : mapping of str to float
        Isolated-atom energies (eV) per species, e.g. from ``mlip_plugin.data.resolve_e0``.
    atoms_per_pass : int
        Atoms evaluated together; memory of one pass grows with it.
    """
    configs = list(configs)
    if not configs:
        raise InputError("configs is empty; give at least one Configuration")
    if any(not isinstance(c, Configuration) for c in configs):
        raise InputError("configs must be Configuration objects (mlip_plugin.data); wrap "
                         "ase.Atoms with Configuration(atoms, energy=..., forces=...)")
    refuse_unfittable(configs)
    kind, y, w, index = _row_layout(configs, e0)
    A = np.empty((len(y), basis.size))
    starts = np.searchsorted(index, np.arange(len(configs) + 1))
    for chunk in _passes(configs, atoms_per_pass):
        vals = evaluate_basis(basis, [configs[c].atoms for c in chunk])
        atom0 = 0
        for local, c in enumerate(chunk):
            cfg, row = configs[c], starts[c]
            n = cfg.n_atoms
            if cfg.energy is not None:
                A[row] = vals.energy[local]
                row += 1
            if cfg.forces is not None:
                A[row:row + 3 * n] = vals.forces[atom0:atom0 + n].reshape(3 * n, -1)
                row += 3 * n
            if cfg.stress is not None:
                A[row:row + 6] = vals.virial[local]
            atom0 += n
    return DesignMatrix(A, y, w, kind, index)


def _chunk_gram(basis: ACEBasis, e0: Mapping[str, float], configs: Sequence[Configuration],
                atoms_per_pass: int = ATOMS_PER_PASS) -> GramForm:
    return GramForm.from_design(design_matrix(basis, configs, e0,
                                              atoms_per_pass=atoms_per_pass))


def gram_form(basis: ACEBasis, configs: Sequence[Configuration], e0: Mapping[str, float], *,
              chunk_size: int = 32, executor=None,
              atoms_per_pass: int = ATOMS_PER_PASS) -> GramForm:
    """Streamed Gram form ``(AᵀWA, AᵀWy, yᵀWy)``, accumulated over chunks of configurations.

    Memory is O(p²) for p basis functions plus one chunk's design matrix.

    Parameters
    ----------
    chunk_size : int
        Configurations per chunk (> 0).
    executor : object with ``.map`` or ``.submit``, optional
        E.g. a ``concurrent.futures`` pool or a Dask client; chunks are computed by it and
        summed here.  Without one, chunks run one after another in this process.
    """
    configs = list(configs)
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise InputError(f"chunk_size={chunk_size!r} is not allowed; give an integer > 0")
    if not configs:
        raise InputError("configs is empty; give at least one Configuration")
    refuse_unfittable(configs)  # positions in configs, not in a chunk
    chunks = [configs[k:k + chunk_size] for k in range(0, len(configs), chunk_size)]
    work = partial(_chunk_gram, basis, dict(e0), atoms_per_pass=atoms_per_pass)
    log.info("Gram form of %d configurations in %d chunks (%d basis functions)",
             len(configs), len(chunks), basis.size)
    if executor is None:
        results = map(work, chunks)
    elif hasattr(executor, "map"):
        results = executor.map(work, chunks)
    elif hasattr(executor, "submit"):
        results = (f.result() for f in [executor.submit(work, ch) for ch in chunks])
    else:
        raise InputError(f"executor={executor!r} has neither .map nor .submit; give a "
                         "concurrent.futures executor or a Dask client")
    # a Dask client's .map returns futures rather than results
    return GramForm.accumulate(r if isinstance(r, GramForm) else r.result() for r in results)
