"""mlip.reference: ASE calculator path, reference_workflow path, failures, protocols."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching
from ase.calculators.emt import EMT
from workflows_aiida_helpers import MOCK_ENTRY_POINT, MockReferenceWorkChain, TransientEMT

from mlip_plugin import InputError
from mlip_plugin.workflows.aiida.calculations import check_reference_output
from mlip_plugin.workflows.aiida.data import TrainingSetData
from mlip_plugin.workflows.aiida.reference import ReferenceWorkChain

FAILING = {"calculator": "workflows_aiida_helpers.FailOn31AtomsEMT", "parameters": {}}


@pytest.fixture
def mock_workflow(entry_points):
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    return MOCK_ENTRY_POINT


@pytest.fixture
def few_atoms(tiny_atoms):
    """Three structures of different sizes (4, 31 and 16 atoms), one is the vacancy cell."""
    return [a for a in tiny_atoms if a.info["structure_id"] in (
        "ground_state", "vacancy-0", "surface-111")]


def assert_emt_labels(structures, training_set, atol=1e-12, stress=True):
    """``training_set`` holds exactly ``structures`` (in order) with their EMT labels."""
    configs = training_set.get_configurations()
    assert [c.info["structure_id"] for c in configs] == [
        a.info["structure_id"] for a in structures]
    for atoms, config in zip(structures, configs, strict=True):
        a = atoms.copy()
        a.calc = EMT()
        assert config.energy == pytest.approx(a.get_potential_energy(), abs=atol)
        np.testing.assert_allclose(config.forces, a.get_forces(), atol=atol)
        assert (config.stress is not None) == stress


def test_ase_path_labels_all_structures_in_one_calcfunction(tiny_structures, tiny_atoms):
    builder = ReferenceWorkChain.get_builder_from_protocol(tiny_structures, "fast")
    result, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert result["failed_structures"].get_list() == []
    assert_emt_labels(tiny_atoms, result["training_set"])
    [calc] = node.called_descendants  # one calcfunction for all structures
    assert calc.process_label == "collect_reference"
    assert calc.inputs.calculator.get_dict() == {"calculator": "ase.calculators.emt.EMT",
                                                 "parameters": {}}


def test_failing_structure_is_reported_not_fatal(tiny_structures):
    result, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                calculator=orm.Dict(FAILING))
    assert node.is_finished_ok, node.exit_message
    failed = result["failed_structures"].get_list()
    assert [(f["structure_id"], f["error_type"]) for f in failed] == [
        ("vacancy-0", "RuntimeError")]
    assert "simulated SCF failure" in failed[0]["message"]
    assert result["training_set"].numsteps == tiny_structures.numsteps - 1
    assert "vacancy-0" not in result["training_set"].structure_ids


def test_too_many_failures_and_all_failed_exit_codes(tiny_structures, tiny_atoms):
    _, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                           calculator=orm.Dict(FAILING), max_failed_fraction=orm.Float(0.0))
    assert node.exit_status == ReferenceWorkChain.exit_codes.ERROR_TOO_MANY_REFERENCE_FAILED.status
    assert "1 of 12" in node.exit_message
    assert len(node.outputs.failed_structures.get_list()) == 1
    vacancy = TrainingSetData.from_atoms([a for a in tiny_atoms if len(a) == 31])
    _, node = run_get_node(ReferenceWorkChain, structures=vacancy, calculator=orm.Dict(FAILING))
    assert node.exit_status == ReferenceWorkChain.exit_codes.ERROR_ALL_REFERENCE_FAILED.status
    assert "training_set" not in node.outputs
    # the message names the failure and what to do, not only where to look
    assert "structure 'vacancy-0': RuntimeError: simulated SCF failure for 31 atoms" in (
        node.exit_message)
    assert "Check the reference calculator" in node.exit_message


def test_reference_workflow_path_matches_ase_path(few_atoms, mock_workflow):
    structures = TrainingSetData.from_atoms(few_atoms)
    builder = ReferenceWorkChain.get_builder_from_protocol(
        structures, "fast", reference_workflow=mock_workflow,
        reference_inputs={"parameters": orm.Dict({"fixed_cutoff": False})})
    result, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert "calculator" not in node.inputs
    # the common-workflows outputs carry no stress
    assert_emt_labels(few_atoms, result["training_set"], atol=1e-10, stress=False)
    launched = [n for n in node.called if n.process_class is MockReferenceWorkChain]
    assert len(launched) == len(few_atoms)


def test_reference_workflow_failure_is_reported(few_atoms, mock_workflow):
    result, node = run_get_node(
        ReferenceWorkChain, structures=TrainingSetData.from_atoms(few_atoms),
        reference_workflow=orm.Str(mock_workflow),
        reference_inputs={"parameters": orm.Dict(), "fail_if_n_atoms": orm.Int(31)})
    assert node.is_finished_ok, node.exit_message
    [failed] = result["failed_structures"].get_list()
    assert failed["structure_id"] == "vacancy-0" and failed["error_type"] == "exit_status_400"
    assert failed["message"] == "simulated SCF failure"
    assert orm.load_node(failed["process_pk"]).exit_status == 400


@pytest.mark.parametrize(("inputs", "match"), [
    ({"calculator": {"calculator": "ase.calculators.emt.EMT"},
      "reference_workflow": "mlip.fit"}, "not both"),
    ({"reference_workflow": "no.such.workflow"}, "not a loadable"),
    ({"reference_inputs": {"parameters": {}}}, "only used with `reference_workflow`"),
    ({"max_failed_fraction": 1.5}, r"must lie in \[0, 1\]"),
    ({"chunk_size": 0}, "chunk_size=0 must be a positive"),
    ({"chunk_size": 2, "reference_workflow": "mlip.fit"}, "applies to the in-process ASE"),
])
def test_invalid_inputs_are_rejected(tiny_structures, inputs, match):
    if "reference_inputs" in inputs:
        inputs = {"reference_inputs": {"parameters": orm.Dict()}}
    with pytest.raises(ValueError, match=match):
        run_get_node(ReferenceWorkChain, structures=tiny_structures, **inputs)


def test_protocols(tiny_structures):
    assert set(ReferenceWorkChain.get_available_protocols()) == {"fast", "balanced",
                                                                 "stringent"}
    fractions = [ReferenceWorkChain.get_protocol_inputs(p)["max_failed_fraction"]
                 for p in ("fast", "balanced", "stringent")]
    assert fractions == sorted(fractions, reverse=True)
    builder = ReferenceWorkChain.get_builder_from_protocol(
        tiny_structures, "stringent", overrides={"calculator": {"parameters": {"a": 1}}})
    assert builder.calculator.get_dict() == {"calculator": "ase.calculators.emt.EMT",
                                             "parameters": {"a": 1}}
    with pytest.raises(InputError, match="protocol='precise' is not known"):
        ReferenceWorkChain.get_builder_from_protocol(tiny_structures, "precise")


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_unusable_calculator_returns_an_exit_code(tiny_structures, chunk_size):
    extra = {} if chunk_size is None else {"chunk_size": chunk_size}
    _, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                           calculator={"calculator": "ase.calculators.emt.NoSuchEMT"}, **extra)
    code = ReferenceWorkChain.exit_codes.ERROR_REFERENCE_CALCULATION_FAILED
    assert node.exit_status == code.status
    assert "unknown calculator class 'ase.calculators.emt.NoSuchEMT'" in node.exit_message
    prefix = "The reference calculation step failed: "
    assert node.exit_message.startswith(prefix) and node.exit_message.count(prefix) == 1


def test_chunks_give_the_same_labels_and_global_failure_indices(tiny_structures, tiny_atoms):
    result, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                calculator=FAILING, chunk_size=5)
    assert node.is_finished_ok, node.exit_message
    chunks = [n for n in node.called if n.process_label == "ReferenceChunkWorkChain"]
    assert [n.inputs.structures.numsteps for n in chunks] == [5, 5, 2]
    assert all([c.process_label for c in n.called] == ["collect_reference"] for n in chunks)
    [failed] = result["failed_structures"].get_list()
    vacancy = next(i for i, a in enumerate(tiny_atoms) if a.info["structure_id"] == "vacancy-0")
    assert (failed["index"], failed["structure_id"]) == (vacancy, "vacancy-0")
    assert_emt_labels([a for a in tiny_atoms if len(a) != 31], result["training_set"])


def _collect_calcs(node):
    return [n for n in node.called_descendants if n.process_label == "collect_reference"]


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_failed_structures_are_computed_again_not_reused_from_the_cache(
        tiny_structures, monkeypatch, chunk_size):
    spec = {"calculator": "workflows_aiida_helpers.TransientEMT", "parameters": {}}
    extra = {} if chunk_size is None else {"chunk_size": chunk_size}
    monkeypatch.setattr(TransientEMT, "failing", True)
    with enable_caching():
        first, _ = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                calculator=spec, **extra)
        assert [f["structure_id"] for f in first["failed_structures"].get_list()] == [
            "vacancy-0"]
        monkeypatch.setattr(TransientEMT, "failing", False)  # the failure has gone away
        second, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                    calculator=spec, **extra)
        third, again = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                    calculator=spec, **extra)
    assert node.is_finished_ok, node.exit_message
    assert second["failed_structures"].get_list() == []
    assert second["training_set"].numsteps == tiny_structures.numsteps
    # what was reused came from calculations without failures
    for calc in _collect_calcs(node):
        source = calc.base.caching.get_cache_source()
        if source is not None:
            assert orm.load_node(source).outputs.failed_structures.get_list() == []
    assert any(c.base.caching.get_cache_source() is None for c in _collect_calcs(node))
    # a success is still reused
    assert all(c.base.caching.is_created_from_cache for c in _collect_calcs(again))
    assert third["failed_structures"].get_list() == []


def test_a_failure_stored_before_is_not_reused_either(tiny_structures, monkeypatch):
    """A failure stored as a valid cache source (by a direct call of the calcfunction, or an
    older version) must not come back from the cache in a work chain."""
    from mlip_plugin.workflows.aiida.calculations import collect_reference

    # parameters of this test only (EMT's default value): no other test's results match
    spec = orm.Dict({"calculator": "workflows_aiida_helpers.TransientEMT",
                     "parameters": {"asap_cutoff": False}})
    monkeypatch.setattr(TransientEMT, "failing", True)
    _, old = collect_reference.run_get_node(structures=tiny_structures, calculator=spec)
    assert len(old.outputs.failed_structures.get_list()) == 1
    assert old.base.caching.is_valid_cache  # what a direct call (or an older version) left
    monkeypatch.setattr(TransientEMT, "failing", False)
    with enable_caching():
        results, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                     calculator=spec)
    assert results["failed_structures"].get_list() == []
    assert not old.base.caching.is_valid_cache
    [calc] = [c for c in _collect_calcs(node) if not c.base.caching.is_created_from_cache]
    assert calc.outputs.failed_structures.get_list() == []


def test_failed_calculation_is_not_reused_from_the_cache(tiny_structures, monkeypatch):
    """The calculator's package was missing (exit code), then installed: the rerun works."""
    spec = {"calculator": "mlip_test_late_plugin.EMT", "parameters": {}}
    code = ReferenceWorkChain.exit_codes.ERROR_REFERENCE_CALCULATION_FAILED
    with enable_caching():
        _, failed = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                 calculator=spec)
        assert failed.exit_status == code.status
        assert "unknown calculator class 'mlip_test_late_plugin.EMT'" in failed.exit_message
        plugin = types.ModuleType("mlip_test_late_plugin")
        plugin.EMT = EMT
        monkeypatch.setitem(sys.modules, "mlip_test_late_plugin", plugin)
        result, node = run_get_node(ReferenceWorkChain, structures=tiny_structures,
                                    calculator=spec)
    assert node.is_finished_ok, node.exit_message
    [calc] = _collect_calcs(node)
    assert not calc.base.caching.is_created_from_cache
    assert result["training_set"].numsteps == tiny_structures.numsteps


@pytest.mark.parametrize(("spoil", "match"), [
    ("shape", r"has shape \(30, 3\), expected \(31, 3\) for a structure of 31 atoms"),
    ("name", r"has no array 'forces'"),
    ("nan", r"has 1 non-finite entries \(NaN or inf\)"),
])
def test_spoiled_workflow_output_is_a_failure_not_a_crash(few_atoms, mock_workflow, spoil,
                                                         match):
    result, node = run_get_node(
        ReferenceWorkChain, structures=TrainingSetData.from_atoms(few_atoms),
        reference_workflow=orm.Str(mock_workflow),
        reference_inputs={"parameters": orm.Dict(), "spoil_if_n_atoms": orm.Int(31),
                          "spoil": orm.Str(spoil)})
    assert node.is_finished_ok, node.exit_message
    [failed] = result["failed_structures"].get_list()
    assert (failed["structure_id"], failed["error_type"]) == ("vacancy-0", "bad_output")
    assert orm.load_node(failed["process_pk"]).is_finished_ok
    assert re.search(match, failed["message"]), failed
    assert_emt_labels([a for a in few_atoms if len(a) != 31], result["training_set"],
                      atol=1e-10, stress=False)


def test_check_reference_output_of_energy_and_forces():
    forces = orm.ArrayData()
    forces.set_array("forces", np.zeros((2, 3)))
    assert check_reference_output(orm.Float(-1.0), forces, 2) is None
    assert "expected (3, 3)" in check_reference_output(orm.Float(-1.0), forces, 3)
    assert "not a Float" in check_reference_output(orm.Str("-1"), forces, 2)
    assert "not finite" in check_reference_output(types.SimpleNamespace(value=np.inf),
                                                  forces, 2)
    assert "has no array 'forces'" in check_reference_output(orm.Float(-1.0), orm.Dict(), 2)


@pytest.mark.parametrize(("workflow", "match"), [
    ("core.arithmetic.add_multiply", "is a process function .*cannot be submitted"),
    ("core.arithmetic.multiply_add", "has no input `structure`"),
])
def test_unusable_reference_workflow_is_rejected(tiny_structures, workflow, match):
    with pytest.raises(ValueError, match=match):
        run_get_node(ReferenceWorkChain, structures=tiny_structures,
                     reference_workflow=workflow)


@pytest.mark.parametrize(("reference_inputs", "match"), [
    ({}, "reference_inputs do not fit .*required value was not provided for 'parameters'"),
    ({"parameters": 1}, "reference_inputs do not fit .*'parameters' is not of the right type"),
    ({"parameters": {}, "colour": "red"}, r"reference_inputs \['colour'\] are not inputs of"),
    ({"parameters": {}, "structure": None}, "must not contain `structure`"),
])
def test_reference_inputs_are_checked_against_the_workflow(tiny_structures, mock_workflow,
                                                           reference_inputs, match):
    nodes = {key: orm.StructureData(cell=np.eye(3)) if key == "structure"
             else orm.to_aiida_type(value) for key, value in reference_inputs.items()}
    with pytest.raises(ValueError, match=match):
        run_get_node(ReferenceWorkChain, structures=tiny_structures,
                     reference_workflow=mock_workflow, reference_inputs=nodes)


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_the_calculator_gets_the_starting_moments_of_the_structures(aiida_profile, tmp_path,
                                                                    monkeypatch, chunk_size):
    """The structures' starting magnetic moments reach the ASE calculator of mlip.reference
    through the TrainingSetData (and its chunks), as in the CLI run (a spin-polarised
    reference, GPAW or VASP, would otherwise label them non-magnetic)."""
    import json
    from pathlib import Path

    from ase.build import bulk

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "pipeline"))
    log = tmp_path / "calls.jsonl"
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    ni.set_initial_magnetic_moments([0.6, 0.6, -0.6, -0.6])
    cu = bulk("Cu", "fcc", a=3.61, cubic=True)
    builder = ReferenceWorkChain.get_builder_from_protocol([ni, cu], "fast")
    builder.calculator = orm.Dict({"calculator": "pipeline_test_calculators.StartingMomentsEMT",
                                   "parameters": {"log": str(log)}})
    if chunk_size is not None:
        builder.chunk_size = orm.Int(chunk_size)
    result, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["magmoms"] for c in calls] == [[0.6, 0.6, -0.6, -0.6], [0.0] * 4]
