"""Entry point for ASE's experimental plugin system (``ase info --plugins`` lists it).

ASE's plugin API lives in ``ase._4.plugins`` and may change; if it is missing, this module
exposes an empty plugin set instead of failing.
"""

from __future__ import annotations

import sys

try:
    from ase._4.plugins.plugin import CalculatorPlugin
except ImportError:  # an ASE without the experimental plugin system
    __ase_plugins__: set = set()
else:
    __ase_plugins__ = {
        CalculatorPlugin(
            name="mlip",
            citation="mlip-plugin: sparse linear ACE and kernel force fields",
            module=sys.modules[__name__],
            implementation="mlip_plugin.calculators.MLIPCalculator",
        )
    }
