"""Gradient-domain (GDML) kernel force fields trained by Nyström-preconditioned CG.

Blücher, Müller & Chmiela, "Reconstructing kernel-based machine learning force fields with
super-linear convergence" (J. Chem. Theory Comput. 2023).

Typical use::

    from mlip_plugin.kernels import TrainSettings, train_gdml
    model = train_gdml(R, z, E, F, TrainSettings(sigma=20, lam=1e-10, solver="pcg"))
    E_pred, F_pred = model.predict(R_test)
"""

from __future__ import annotations

from .cost import CostModel, cost_optimal_k
from .descriptor import Molecules, arrays_from_configs, check_arrays
from .gdml import GDMLOperator, Matern52
from .model import GDMLModel, TrainingRecord
from .preconditioners import (
    PRECONDITIONERS,
    LowRank,
    WoodburyPreconditioner,
    build_factor,
    eigen_factor,
    incomplete_cholesky,
    leverage_factor,
    uniform_factor,
)
from .rule import RuleFit, calibrate_rule_of_thumb, rule_of_thumb_k
from .solve import CGResult, analytic_solve, blas_guard, estimate_memory, pcg
from .symmetry import check_permutations, find_permutations, pair_permutations
from .train import K_CHOICES, SigmaScan, TrainSettings, choose_rank, select_sigma, train_gdml

__all__ = [
    "CostModel",
    "cost_optimal_k",
    "Molecules",
    "arrays_from_configs",
    "check_arrays",
    "GDMLOperator",
    "Matern52",
    "GDMLModel",
    "TrainingRecord",
    "PRECONDITIONERS",
    "LowRank",
    "WoodburyPreconditioner",
    "build_factor",
    "eigen_factor",
    "incomplete_cholesky",
    "leverage_factor",
    "uniform_factor",
    "RuleFit",
    "calibrate_rule_of_thumb",
    "rule_of_thumb_k",
    "CGResult",
    "analytic_solve",
    "blas_guard",
    "estimate_memory",
    "pcg",
    "check_permutations",
    "find_permutations",
    "pair_permutations",
    "K_CHOICES",
    "choose_rank",
    "SigmaScan",
    "TrainSettings",
    "select_sigma",
    "train_gdml",
]
