"""ASE calculators for fitted mlip-plugin models (installed as ``mlip_plugin.calculators``).

Importing this package registers :class:`MLIPCalculator` with ASE under the name ``"mlip"``
(``ase.calculators.calculator.get_calculator_class("mlip")``).
"""

from __future__ import annotations

from ase.calculators import calculator as _ase_calculator

from .mlip import MLIPCalculator

if "mlip" not in _ase_calculator.external_calculators:
    _ase_calculator.register_calculator_class("mlip", MLIPCalculator)

__all__ = ["MLIPCalculator"]
