"""Atomic Cluster Expansion: basis, evaluation (values, forces, virials), design matrices.

>>> from mlip_plugin.ace import ACEBasis, design_matrix
>>> basis = ACEBasis(["Si"], correlation_order=3, total_degree=12, r_cut=5.0)
>>> dm = design_matrix(basis, configs, e0={"Si": -158.54})          # doctest: +SKIP
"""

from .basis import ACEBasis, BasisFunction, basis_from_data, r0_from_data
from .design import DesignMatrix, GramForm, design_matrix, gram_form
from .evaluate import BasisValues, evaluate_basis, site_values
from .model_eval import energy_forces_virial
from .prior import smoothness_prior

__all__ = [
    "ACEBasis",
    "BasisFunction",
    "basis_from_data",
    "r0_from_data",
    "BasisValues",
    "evaluate_basis",
    "site_values",
    "DesignMatrix",
    "GramForm",
    "design_matrix",
    "gram_form",
    "smoothness_prior",
    "energy_forces_virial",
]
