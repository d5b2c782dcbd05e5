r"""The ASE calculator for every fitted mlip-plugin model.

For a model with total energy :math:`E(\{\mathbf r_i\}, \mathbf h)` (positions
:math:`\mathbf r_i`, cell :math:`\mathbf h`), the calculator returns

* ``energy`` and ``free_energy``: :math:`E` in eV (no electronic entropy: both equal);
* ``energies``: the per-atom site energies :math:`E_i` with :math:`\sum_i E_i = E`;
* ``forces``: :math:`\mathbf F_i = -\partial E/\partial \mathbf r_i` in eV/Å;
* ``stress``: :math:`\sigma = \frac{1}{V}\,\partial E/\partial \varepsilon` at
  :math:`\varepsilon = 0` for a homogeneous strain :math:`\mathbf r \to (1+\varepsilon)\mathbf r`,
  :math:`\mathbf h \to (1+\varepsilon)\mathbf h`. For a pair decomposition this is
  :math:`\sigma = -\frac{1}{V}\sum_{ij} \mathbf r_{ij} \otimes \mathbf f_{ij}` (the virial
  over volume, with a minus sign), returned as the Voigt vector
  ``[xx, yy, zz, yz, xz, xy]`` in eV/Å³, negative under compression (ASE's convention).

Each model family derives these from one evaluation (see its module); the calculator checks
species (and, for molecular kernel models, atom count and order) before any work and
leaves caching to ASE's ``check_state``.
"""

from __future__ import annotations

import os

from ase.calculators.calculator import (
    Calculator,
    PropertyNotImplementedError,
    all_changes,
)

from mlip_plugin.errors import InputError
from mlip_plugin.models import Model, load_model

__all__ = ["MLIPCalculator"]


class MLIPCalculator(Calculator):
    """ASE calculator of a fitted model.

    Parameters
    ----------
    model : Model or path-like
        A fitted model, or the path of a model file (``model.json``).
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator` (``label``, ``atoms``...).

    Examples
    --------
    >>> from mlip_plugin.calculators import MLIPCalculator  # doctest: +SKIP
    >>> atoms.calc = MLIPCalculator(model="model.json")  # doctest: +SKIP
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    default_parameters: dict = {}
    nolabel = True

    def __init__(self, model: Model | str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        if not isinstance(model, Model):
            raise InputError(
                f"model={model!r} is neither a fitted mlip-plugin model nor a model file path"
            )
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.model.check_atoms(self.atoms)
        periodic = (self.atoms.cell.rank == 3 and all(self.atoms.pbc)
                    and self.model.cutoff is not None)
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError(
                "stress needs a three-dimensional periodic cell and a model with a cutoff; "
                "this structure or model has none"
            )
        # stress costs little next to forces: compute it whenever it exists, so that a later
        # get_stress() is served from the cache
        pred = self.model.predict(self.atoms, stress=periodic)
        self.results["energy"] = pred.energy
        self.results["free_energy"] = pred.energy
        if pred.energies is not None:  # molecular kernel models have no site energies
            self.results["energies"] = pred.energies
        self.results["forces"] = pred.forces
        if pred.stress is not None:
            self.results["stress"] = pred.stress
        if pred.extras:
            self.results.update(pred.extras)
