"""Prediction errors of a model on labelled configurations (the ``errors`` of metrics.json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data import Configuration
from ..models import Model

__all__ = ["Predictions", "predict_configs", "error_metrics"]


@dataclass
class Predictions:
    """Reference and predicted values, flattened for metrics and parity plots.

    energy_* : (n_configs_with_energy,) eV/atom; force_* : (3 · n_atoms,) eV/Å;
    virial_* : (6 · n_configs_with_stress,) eV/atom.
    """

    energy_ref: np.ndarray
    energy_pred: np.ndarray
    force_ref: np.ndarray
    force_pred: np.ndarray
    virial_ref: np.ndarray
    virial_pred: np.ndarray


def predict_configs(model: Model, configs: Sequence[Configuration]) -> Predictions:
    """Predict every configuration with ``model`` and pair the values with the labels."""
    out = {k: [] for k in ("er", "ep", "fr", "fp", "vr", "vp")}
    for c in configs:
        periodic = c.atoms.cell.rank == 3 and all(c.atoms.pbc)
        pred = model.predict(c.atoms, stress=periodic and c.stress is not None)
        n = c.n_atoms
        if c.energy is not None:
            out["er"].append(c.energy / n)
            out["ep"].append(pred.energy / n)
        if c.forces is not None:
            out["fr"].append(c.forces.ravel())
            out["fp"].append(pred.forces.ravel())
        if c.stress is not None and pred.stress is not None:
            out["vr"].append(c.virial / n)
            out["vp"].append(-c.volume * pred.stress / n)

    def cat(key, flat):
        if not out[key]:
            return np.zeros(0)
        return np.concatenate(out[key]) if flat else np.asarray(out[key], float)

    return Predictions(cat("er", False), cat("ep", False), cat("fr", True), cat("fp", True),
                       cat("vr", True), cat("vp", True))


def _mae(a, b):
    return float(np.mean(np.abs(a - b))) if a.size else None


def _rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else None


def _scaled(x, factor):
    return None if x is None else x * factor


def error_metrics(model: Model, configs: Sequence[Configuration]) -> dict:
    """MAE and RMSE of energies (meV/atom), forces (eV/Å) and virials (meV/atom)."""
    p = predict_configs(model, configs)
    return {
        "n_configs": len(configs),
        "energy_mae_meV_per_atom": _scaled(_mae(p.energy_ref, p.energy_pred), 1e3),
        "energy_rmse_meV_per_atom": _scaled(_rmse(p.energy_ref, p.energy_pred), 1e3),
        "force_mae_eV_per_A": _mae(p.force_ref, p.force_pred),
        "force_rmse_eV_per_A": _rmse(p.force_ref, p.force_pred),
        "virial_mae_meV_per_atom": _scaled(_mae(p.virial_ref, p.virial_pred), 1e3),
    }
