"""Isolated-atom reference energies E0 (eV per atom of each species).

A linear model fits the binding energy ``E - Σ_i E0[Z_i]``; E0 comes from isolated-atom
configurations in the data, is given explicitly, is 0 (energies already referenced to free
atoms), or is fitted by least squares of the total energies against the composition.

E0 matters beyond an offset: the data fix only energy differences between the configurations
they hold, but an atom whose neighbours are removed tends to E0, so E0 decides how the model
extrapolates to low coordination (surfaces, clusters, vacancies).  The fitted E0 puts a free
atom at the *mean* energy of the data, as bound as a bulk atom, and the ACE basis has no
constant function to undo that (Zuo et al. 2020 data, VASP: with E0 = 0 instead, the test
energy MAE of the default OMP fits drops by 4–28 % on Si and Mo over two train/validation
splits; see benchmarks/README.md).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .configuration import Configuration

log = logging.getLogger(__name__)

__all__ = ["isolated_atom_energies", "fit_e0", "resolve_e0", "reference_energy"]

ISOLATED_ATOM_TYPES = ("isolated_atom", "IsolatedAtom", "isolated")

#: ``e0="auto"`` takes E0 = 0 when every labelled configuration has |E| / N below this (eV):
#: energies on the scale of cohesive energies (≤ 9 eV/atom for every element) are already
#: referenced to (approximately) free atoms, as VASP's PAW and GPAW energies are; the total
#: energies of most other codes are hundreds of eV per atom.
FREE_ATOM_SCALE = 20.0


def isolated_atom_energies(configs: Sequence[Configuration]) -> dict[str, float]:
    """E0 from single-atom configurations whose ``config_type`` marks an isolated atom.

    Raises
    ------
    InputError
        If two isolated-atom configurations of one species disagree by more than 1 meV.
    """
    e0: dict[str, float] = {}
    for i, c in enumerate(configs):
        if c.n_atoms != 1 or c.config_type not in ISOLATED_ATOM_TYPES or c.energy is None:
            continue
        sym = c.symbols[0]
        if sym in e0 and abs(e0[sym] - c.energy) > 1e-3:
            raise InputError(
                f"configuration {i}: isolated-atom energy of {sym} is {c.energy} eV but an "
                f"earlier one is {e0[sym]} eV; keep one or give e0 explicitly"
            )
        e0[sym] = c.energy
    return e0


def fit_e0(configs: Sequence[Configuration],
           fixed: Mapping[str, float] | None = None) -> dict[str, float]:
    """E0 per species by least squares of total energies on the composition.

    With one species this is the mean energy per atom, which makes the fitted binding
    energies centred.  With several species whose compositions are all proportional the
    split between species is not determined: the minimum-norm solution is returned with a
    warning.  ``fixed`` gives the E0 (eV) of species that are known: they are subtracted
    from the energies, returned as given, and only the other species are fitted.
    """
    labelled = [c for c in configs if c.energy is not None]
    if not labelled:
        raise InputError("fit_e0 needs configurations with energies; none has one")
    fixed = dict(fixed or {})
    known = {s: fixed[s] for s in sorted({s for c in labelled for s in c.symbols})
             if s in fixed}
    species = sorted({s for c in labelled for s in c.symbols} - set(known))
    if not species:
        return known
    counts = np.array([[Counter(c.symbols)[s] for s in species] for c in labelled], float)
    energies = np.array([c.energy - sum(known.get(s, 0.0) for s in c.symbols)
                         for c in labelled])
    if np.linalg.matrix_rank(counts) < len(species):
        warnings.warn(
            f"E0 of {species} is not determined by the data (the compositions are linearly "
            "dependent); using the minimum-norm least-squares values. Give e0 explicitly or "
            "add isolated-atom configurations for physically meaningful E0.",
            UserWarning, stacklevel=2,
        )
    coef, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return dict(sorted({**known, **dict(zip(species, (float(x) for x in coef)))}.items()))


def resolve_e0(
    configs: Sequence[Configuration], e0: str | Mapping[str, float] = "auto"
) -> dict[str, float]:
    """E0 per species from a rule.

    Parameters
    ----------
    e0 : "auto", "isolated", "fit", "zero" or mapping
        ``"isolated"`` takes isolated-atom configurations (all species must have one);
        ``"fit"`` fits; ``"zero"`` uses 0; ``"auto"`` takes isolated atoms where present;
        a species without one gets 0 when every configuration's |E| / N is below
        :data:`FREE_ATOM_SCALE` (the energies are referenced to free atoms), else its E0
        is fitted with those of the isolated atoms held fixed (the choice is logged); a
        mapping is used as given (every species must be in it, with a finite value in eV).
    """
    species = sorted({s for c in configs for s in c.symbols})
    if isinstance(e0, Mapping):
        missing = [s for s in species if s not in e0]
        if missing:
            raise InputError(f"e0 has no entry for species {missing}; give one per species")
        return {s: _finite_e0(s, e0[s]) for s in species}
    if e0 == "zero":
        return dict.fromkeys(species, 0.0)
    if e0 == "fit":
        return fit_e0(configs)
    if e0 in ("isolated", "auto"):
        iso = {s: v for s, v in isolated_atom_energies(configs).items() if s in species}
        missing = [s for s in species if s not in iso]
        if not missing:
            return {s: iso[s] for s in species}
        if e0 == "isolated":
            raise InputError(
                f"e0='isolated' but no isolated-atom configuration for {missing}; "
                "add them, give e0 explicitly, or use e0='fit'"
            )
        scale = max((abs(c.energy) / c.n_atoms for c in configs
                     if c.energy is not None and c.n_atoms),
                    default=np.inf)
        if scale < FREE_ATOM_SCALE:
            log.info("e0='auto': no isolated atom of %s, energies within %.3g eV/atom of 0 "
                     "(referenced to free atoms): E0 = 0 for them", missing, scale)
            return {s: iso.get(s, 0.0) for s in species}
        log.info("e0='auto': no isolated atom of %s, energies up to %.3g eV/atom: their E0 "
                 "fitted", missing, scale)
        return fit_e0(configs, fixed=iso)
    raise InputError(f"e0={e0!r} is not allowed; use 'auto', 'isolated', 'fit', 'zero' or a dict")


def _finite_e0(species: str, value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = np.nan
    if not np.isfinite(out):
        raise InputError(f"e0[{species!r}]={value!r} is not allowed; give a finite energy in "
                         "eV per atom")
    return out


def reference_energy(config: Configuration, e0: Mapping[str, float]) -> float:
    """Σ_i E0[species_i] of one configuration (eV)."""
    try:
        return float(sum(e0[s] for s in config.symbols))
    except KeyError as err:
        raise InputError(f"no E0 for species {err.args[0]!r}; known: {sorted(e0)}") from None
