"""Property benchmarks on any ASE calculator.

Each property is a plain function ``(calculator, structure, settings) -> Result``; the
settings are frozen dataclasses with tight defaults and a ``fast()`` variant.  Suites run
many properties into one JSON-ready table; `compare` gives errors against a reference.

>>> from ase.build import bulk
>>> from ase.calculators.emt import EMT
>>> from mlip_plugin.properties import elastic_constants
>>> result = elastic_constants(EMT(), bulk("Cu", cubic=True))  # doctest: +SKIP
>>> result.c11, result.c12, result.c44                          # doctest: +SKIP
"""

from .defects import (
    INTERSTITIAL_SITES,
    DefectResult,
    DefectSettings,
    interstitial_formation,
    point_defect,
    vacancy_formation,
)
from .elastic import ElasticResult, ElasticSettings, elastic_constants
from .eos import EOSResult, EOSSettings, equation_of_state
from .md import (
    MDResult,
    MDSettings,
    diffusivity_from_positions,
    nvt_md,
    radial_distribution,
    temperature_gate_false_alarms,
)
from .phonons import PhononResult, PhononSettings, phonons
from .suites import (
    PROPERTIES,
    SUITES,
    SuiteResult,
    SuiteSettings,
    compare,
    format_table,
    run_property,
    run_suite,
)
from .surfaces import SurfaceResult, SurfaceSettings, build_slab, surface_energy

__all__ = [
    "INTERSTITIAL_SITES", "DefectResult", "DefectSettings", "interstitial_formation",
    "point_defect", "vacancy_formation",
    "ElasticResult", "ElasticSettings", "elastic_constants",
    "EOSResult", "EOSSettings", "equation_of_state",
    "MDResult", "MDSettings", "diffusivity_from_positions", "nvt_md", "radial_distribution",
    "temperature_gate_false_alarms",
    "PhononResult", "PhononSettings", "phonons",
    "PROPERTIES", "SUITES", "SuiteResult", "SuiteSettings", "compare", "format_table",
    "run_property", "run_suite",
    "SurfaceResult", "SurfaceSettings", "build_slab", "surface_energy",
]
