"""Entry points, help texts and exit codes of every mlip process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiida.plugins import entry_point

from mlip_plugin.workflows.aiida.exit_codes import EXIT_CODES, exit_code, reason
from mlip_plugin.workflows.aiida.fit import FitWorkChain
from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain
from mlip_plugin.workflows.aiida.validate import ValidateWorkChain

WORKFLOWS = ("mlip.reference", "mlip.reference_chunk", "mlip.fit", "mlip.validate",
             "mlip.pipeline")
CALCULATIONS = ("mlip.generate_structures", "mlip.structure_stage", "mlip.collect_reference",
                "mlip.split_structures", "mlip.split_chunks", "mlip.merge_reference",
                "mlip.gather_reference", "mlip.fit_model", "mlip.evaluate_model",
                "mlip.reference_property", "mlip.validate_model")


def load(group, name):
    return entry_point.load_entry_point(group, name)


def test_entry_points_load():
    for name in WORKFLOWS:
        assert load("aiida.workflows", name).__name__.endswith("WorkChain")
    for name in CALCULATIONS:
        assert load("aiida.calculations", name).is_process_function
    assert load("aiida.data", "mlip.model").__name__ == "ModelData"
    assert load("aiida.data", "mlip.training_set").__name__ == "TrainingSetData"


def test_verdi_plugin_list_shows_the_workchains(aiida_config):
    env = dict(os.environ, AIIDA_PATH=str(aiida_config.dirpath))
    out = subprocess.run([sys.executable, "-m", "aiida", "plugin", "list", "aiida.workflows"],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    listed = {line[2:].strip() for line in out.stdout.splitlines() if line.startswith("* ")}
    assert set(WORKFLOWS) <= listed


def _ports(namespace, prefix=""):
    for name, port in namespace.items():
        if hasattr(port, "items"):
            yield from _ports(port, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", port


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_input_has_help(name):
    spec = load("aiida.workflows", name).spec()
    for path, port in _ports(spec.inputs):
        if path.startswith("metadata.") or "metadata" in path.split("."):
            continue
        assert port.help and len(port.help) > 20, f"{name}: input {path} has no help"
    for path, port in _ports(spec.outputs):
        assert port.help, f"{name}: output {path} has no help"


def test_exit_codes_are_unique_named_and_not_in_the_100s():
    status_of, label_of = {}, {}
    for name in WORKFLOWS:
        codes = load("aiida.workflows", name).spec().exit_codes
        statuses = [c.status for c in codes.values()]
        assert len(statuses) == len(set(statuses)), f"{name} repeats an exit status"
        for label, code in codes.items():
            if label not in EXIT_CODES:
                continue  # codes every AiiDA process has
            assert not 100 <= code.status < 200 and code.status > 0
            assert code.message
            assert status_of.setdefault(label, code.status) == code.status
            assert label_of.setdefault(code.status, label) == label
    statuses = [status for status, _ in EXIT_CODES.values()]
    assert len(statuses) == len(set(statuses))
    assert set(status_of) == set(EXIT_CODES)  # every code is declared by some work chain


@pytest.mark.parametrize("label", [label for label, (_, text) in EXIT_CODES.items()
                                   if text.endswith(": {message}") and text.count("{") == 1])
def test_a_passed_on_message_carries_its_prefix_once(label):
    """A work chain reporting its calcfunction's exit code under the same label."""
    inner = exit_code(label, message="bad value").message
    outer = exit_code(label, message=reason(label, inner)).message
    assert outer == inner and outer.endswith(": bad value")
    assert reason(label, "The process returned an invalid output.") == (
        "The process returned an invalid output.")  # another code's message: kept whole
    assert reason(label, None) == ""


def test_protocols_of_every_workchain():
    for cls in (FitWorkChain, ValidateWorkChain, PipelineWorkChain):
        assert set(cls.get_available_protocols()) == {"fast", "balanced", "stringent"}
    sizes = [FitWorkChain.get_protocol_inputs(p)["settings"]["max_active"]
             for p in ("fast", "balanced", "stringent")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Al", "fcc", "stringent", overrides={"fit": {"settings": {"max_active": 7}}})
    assert builder.structure_settings["element"] == "Al"
    assert builder.fit.settings["max_active"] == 7
    assert builder.fit.settings["basis"]["total_degree"] == 14
