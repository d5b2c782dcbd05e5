"""The pipeline submitted to a daemon on a ``core.zeromq`` broker profile (no RabbitMQ)."""

from __future__ import annotations

import os
import sys

import pytest
from aiida.engine import submit
from aiida.engine.daemon.client import DaemonException, get_daemon_client
from ase.calculators.emt import EMT
from workflows_aiida_helpers import TINY

from mlip_plugin.pipeline.structures import StructureSpec, generate_structures
from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain
from mlip_plugin.workflows.aiida.provenance import trace_model

pytestmark = pytest.mark.slow


@pytest.fixture
def verdi_of_this_interpreter(tmp_path, monkeypatch):
    """Make the daemon run ``verdi`` with the interpreter of the tests, so that its workers
    import the same mlip-plugin (a ``verdi`` elsewhere on PATH may belong to another env)."""
    from aiida.engine.daemon import client

    verdi = tmp_path / "verdi"
    verdi.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiida "$@"\n')
    verdi.chmod(0o755)
    monkeypatch.setattr(client, "VERDI_BIN", str(verdi))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def daemon_profile(aiida_config, aiida_profile_factory, run_aiida_broker_service_for_profile,
                   verdi_of_this_interpreter):
    """A sqlite_dos profile with a ZeroMQ broker, its broker service and a running daemon.

    The profile context of AiiDA restores the session profile only on a clean exit, so an
    error while stopping the daemon (a slow machine) is raised after leaving it.
    """
    error = None
    with aiida_profile_factory(aiida_config, storage_backend="core.sqlite_dos",
                               broker_backend="core.zeromq") as profile, \
            run_aiida_broker_service_for_profile(profile):
        client = get_daemon_client(profile.name)
        client.start_daemon(number_workers=1, timeout=60)
        try:
            yield profile, client
        finally:
            try:
                client.stop_daemon(wait=True, timeout=60)
            except DaemonException as err:
                error = err
    if error is not None:
        raise error


def await_node(node, client, timeout=120.0):
    import time

    start = time.monotonic()
    while not node.is_terminated:
        if time.monotonic() - start > timeout:
            log = open(client.daemon_log_file).read()[-3000:]
            raise TimeoutError(f"process <{node.pk}> did not finish; daemon log:\n{log}")
        time.sleep(0.2)
    return node


def test_pipeline_runs_on_a_daemon(daemon_profile):
    profile, client = daemon_profile
    assert profile.process_control_backend == "core.zeromq"
    settings = {k: v for k, v in TINY.items() if k not in ("element", "lattice")}
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", overrides={"structure_settings": settings, "run_validation": False})
    builder.reference.chunk_size = 5  # three chunk work chains, handed out by the broker
    node = submit(builder)
    await_node(node, client)
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.training_set.numsteps == 12
    assert node.outputs.model.family == "linear_ace"
    labels = [n.base.attributes.get("process_label") for n in node.called_descendants]
    assert labels.count("ReferenceChunkWorkChain") == labels.count("collect_reference") == 3
    assert {"ReferenceWorkChain", "merge_reference", "FitWorkChain", "fit_model"} <= set(labels)
    trace = trace_model(node.outputs.model)
    expected = generate_structures(StructureSpec.from_preset(**TINY), EMT())
    assert [a.info["structure_id"] for a in trace.structures] == [
        a.info["structure_id"] for a in expected]
    assert trace.reference_parameters == [{"calculator": "ase.calculators.emt.EMT",
                                           "parameters": {}}]
