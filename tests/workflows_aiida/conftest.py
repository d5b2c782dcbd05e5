"""Fixtures of the AiiDA tests: a temporary sqlite profile (no broker) and small data sets."""

from __future__ import annotations

import pytest

pytest.importorskip("aiida")

from aiida.tools.pytest_fixtures import (  # noqa: E402, F401 - fixtures used by the tests
    aiida_config,
    aiida_config_factory,
    aiida_profile_factory,
    entry_points,
    run_aiida_broker_service_for_profile,
)
from ase.calculators.emt import EMT  # noqa: E402
from workflows_aiida_helpers import TINY  # noqa: E402

from mlip_plugin.pipeline.structures import StructureSpec, generate_structures  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def aiida_profile(aiida_config, aiida_profile_factory):  # noqa: F811
    """The session profile: in-memory sqlite storage (``core.sqlite_temp``), no broker.

    It replaces the fixture of the same name from ``aiida.tools.pytest_fixtures``, whose
    on-disk sqlite commits cost seconds per work chain on a busy disk.
    """
    with aiida_profile_factory(aiida_config, storage_backend="core.sqlite_temp",
                               storage_config={}) as profile:
        yield profile


@pytest.fixture(scope="session")
def tiny_atoms():
    spec = StructureSpec.from_preset(**TINY)
    return generate_structures(spec, EMT())


@pytest.fixture
def tiny_structures(aiida_profile, tiny_atoms):
    """The tiny structures as one stored TrainingSetData."""
    from mlip_plugin.workflows.aiida.data import TrainingSetData

    return TrainingSetData.from_atoms(tiny_atoms).store()
