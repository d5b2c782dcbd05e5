"""A plain summary of a set of configurations (what ``mlip data info`` prints)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .configuration import Configuration

__all__ = ["summarize", "format_summary"]

UNITS = {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å³ (Voigt, ASE sign)",
         "positions": "Å"}


def summarize(configs: Sequence[Configuration]) -> dict:
    """Counts, species, labels present and units, as a JSON-serialisable dict."""
    if len(configs) == 0:
        raise InputError("no configurations to summarise; check the data file and its "
                         "index/format settings")
    n_atoms = np.array([c.n_atoms for c in configs])
    species = Counter(s for c in configs for s in c.symbols)
    labels = {
        name: int(sum(getattr(c, name) is not None for c in configs))
        for name in ("energy", "forces", "stress")
    }
    return {
        "n_configs": len(configs),
        "n_atoms_total": int(n_atoms.sum()),
        "atoms_per_config": {"min": int(n_atoms.min()), "max": int(n_atoms.max())},
        "species": dict(sorted(species.items())),
        "config_types": dict(sorted(Counter(c.config_type for c in configs).items())),
        "labels": labels,
        "periodic": int(sum(any(c.atoms.pbc) for c in configs)),
        "units": UNITS,
    }


def format_summary(summary: dict, title: str = "") -> str:
    """Human-readable text of :func:`summarize`'s dict."""
    lines = [title] if title else []
    lines.append(
        f"configurations: {summary['n_configs']}  atoms: {summary['n_atoms_total']} "
        f"({summary['atoms_per_config']['min']}–{summary['atoms_per_config']['max']} per "
        f"configuration, {summary['periodic']} periodic)"
    )
    lines.append("species: " + ", ".join(f"{k} ×{v}" for k, v in summary["species"].items()))
    lines.append("labels present: " + ", ".join(
        f"{k} {v}/{summary['n_configs']}" for k, v in summary["labels"].items()))
    lines.append("config types: " + ", ".join(
        f"{k} ({v})" for k, v in summary["config_types"].items()))
    lines.append("units: " + "; ".join(f"{k} {v}" for k, v in summary["units"].items()))
    return "\n".join(lines)
