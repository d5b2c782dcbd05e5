"""The engine-free steps: generate (or read) structures, collect reference data, fit,
validate, report.

Each step is a plain function with a settings object; ``run_pipeline`` chains them, and the
AiiDA and pyiron adapters wrap them one by one::

    from mlip_plugin.pipeline import (StructureSpec, generate_structures,
                                      collect_reference_data, fit, validate, run_pipeline)
"""

from __future__ import annotations

from .config import DataSettings, FitSettings, RunConfig, ValidateSettings, load_config
from .fit import FitResult
from .fit import fit as fit
from .reference import CalculatorSpec, CollectionResult, collect_reference_data
from .run import RunResult, run_pipeline
from .stress_order import apply_stress_order, detect_stress_order
from .structure_file import StructureFile, read_structure_file
from .structures import PRESETS, StructureSpec, generate_structures
from .validate import ValidationResult
from .validate import validate as validate

__all__ = ["StructureSpec", "PRESETS", "generate_structures", "StructureFile",
           "read_structure_file", "CalculatorSpec",
           "CollectionResult", "collect_reference_data", "FitSettings", "FitResult", "fit",
           "ValidateSettings", "ValidationResult", "validate", "DataSettings", "RunConfig",
           "load_config", "RunResult", "run_pipeline", "detect_stress_order",
           "apply_stress_order"]
