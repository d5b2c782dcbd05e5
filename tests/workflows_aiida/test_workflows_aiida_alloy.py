"""A Cu-Au alloy from structures of one's own, through the AiiDA work chains: the user's way
in (ase.Atoms and files as the bulk crystal, protocol builders, mlip.pipeline on given
structures) gives a message at launch, not a traceback or a failure after the fit."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from mlip_plugin.errors import InputError
from mlip_plugin.properties.suites import structure_to_dict
from mlip_plugin.workflows.aiida.data import TrainingSetData
from mlip_plugin.workflows.aiida.fit import FitWorkChain
from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain
from mlip_plugin.workflows.aiida.provenance import format_trace, trace_model
from mlip_plugin.workflows.aiida.reference import ReferenceWorkChain
from mlip_plugin.workflows.aiida.validate import ValidateWorkChain

EMT_SPEC = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}
SMALL_FIT = {"settings": {"basis": {"correlation_order": 2, "total_degree": 6, "r_cut": 4.5},
                          "max_active": 20}}


def cu3au(a: float = 3.75):
    """L1_2 Cu3Au, 4 atoms."""
    atoms = bulk("Cu", "fcc", a=a, cubic=True)
    atoms.symbols[0] = "Au"
    return atoms


def alloy_structures(n: int = 8):
    """Random Au substitutions in rattled fcc Cu cells (8 atoms) and a strained L1_2 cell."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 1, 1))
        atoms.symbols[rng.random(len(atoms)) < 0.4] = "Au"
        atoms.rattle(0.05, seed=i)
        out.append(atoms)
    strained = cu3au(3.8)
    strained.rattle(0.03, seed=99)
    return [*out, strained]


@pytest.fixture(scope="module")
def alloy_model(aiida_profile):
    """A small Cu-Au model fitted with mlip.reference and mlip.fit (fast protocol)."""
    structures = TrainingSetData.from_atoms(alloy_structures())
    labelled, node = run_get_node(ReferenceWorkChain.get_builder_from_protocol(structures,
                                                                               "fast"))
    assert node.is_finished_ok, node.exit_message
    fitted, node = run_get_node(FitWorkChain.get_builder_from_protocol(
        labelled["training_set"], "fast", overrides=SMALL_FIT))
    assert node.is_finished_ok, node.exit_message
    return fitted["model"]


def test_validate_settings_take_an_ase_atoms_or_a_file_and_record_the_crystal_inline(
        alloy_model, tmp_path):
    """An ase.Atoms in the settings (as MLIPValidation takes it) failed when AiiDA stored
    the Dict (a ValidationError traceback: ase.atom.Atom is not JSON-serializable), and a
    file path was recorded as the path, not as the crystal the README promises."""
    inline = structure_to_dict(cu3au())
    builder = ValidateWorkChain.get_builder_from_protocol(
        alloy_model, "fast", {"settings": {"structure": cu3au(), "properties": ["eos"]}},
        calculator=EMT_SPEC)
    assert builder.settings["structure"] == inline
    outputs, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert outputs["properties"]["suite"] == "bulk"
    path = tmp_path / "cu3au.cif"
    cu3au().write(path)
    _, node = run_get_node(ValidateWorkChain, model=alloy_model, calculator=EMT_SPEC,
                           settings={"structure": str(path), "properties": ["eos"]})
    assert node.is_finished_ok, node.exit_message
    recorded = node.inputs.settings["structure"]
    assert recorded["symbols"] == inline["symbols"]
    np.testing.assert_allclose(recorded["cell"], inline["cell"], atol=1e-12)


def test_a_settings_dict_holding_an_atoms_or_a_path_is_refused_at_launch(alloy_model):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    for value in (cu3au(), "cu3au.cif"):
        with pytest.raises(ValueError, match="settings.structure is a .*inline"):
            run_get_node(ValidateWorkChain, model=alloy_model, calculator=EMT_SPEC,
                         settings=orm.Dict({"structure": value}))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_bulk_suite_refuses_a_defect_group_at_launch_as_pyiron_does(alloy_model):
    """MLIPValidation refuses `vacancy` with suite bulk when it is set; mlip.validate ran
    and failed with exit status 330."""
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match="suite 'bulk' has no group \\['vacancy'\\]"):
        run_get_node(ValidateWorkChain, model=alloy_model, calculator=EMT_SPEC,
                     settings={"structure": structure_to_dict(cu3au()),
                               "properties": ["eos", "vacancy"]})
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_fast_protocol_with_a_structure_runs_the_groups_suite_bulk_has(alloy_model):
    """The fast protocol names [eos, elastic, vacancy]; beside a structure the vacancy
    made mlip.validate (and mlip.pipeline after its fit) fail."""
    inline = structure_to_dict(cu3au())
    builder = ValidateWorkChain.get_builder_from_protocol(
        alloy_model, "fast", {"settings": {"structure": inline}}, calculator=EMT_SPEC)
    assert builder.settings["properties"] == ["eos", "elastic"]
    pipeline = PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", {"validate": {"settings": {"structure": inline}}})
    assert pipeline.validate.settings["properties"] == ["eos", "elastic"]
    explicit = ValidateWorkChain.get_builder_from_protocol(  # the user's choice is kept
        alloy_model, "fast", {"settings": {"structure": inline, "properties": ["eos"]}})
    assert explicit.settings["properties"] == ["eos"]
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message


@pytest.mark.parametrize(("builder", "overrides", "match"), [
    (FitWorkChain, {"max_active": 5}, "\\['max_active'\\].*allowed: \\['settings'\\]"),
    (PipelineWorkChain, {"structures": "x"}, "\\['structures'\\].*structure_settings"),
    (ReferenceWorkChain, {"chunk_size": 2}, "\\['chunk_size'\\].*max_failed_fraction"),
])
def test_protocol_overrides_that_the_builder_would_ignore_are_refused(builder, overrides,
                                                                     match):
    """overrides={'max_active': 5} (not under 'settings') was silently ignored."""
    with pytest.raises(InputError, match=match):
        builder.get_protocol_inputs("fast", overrides)


def test_pipeline_on_structures_of_ones_own_validated_on_their_crystal(aiida_profile):
    """get_builder_from_protocol always set structure_settings, so given structures were
    refused ('exactly one of'), and structures= in overrides was silently ignored: the run
    fitted generated Cu structures instead."""
    structures = alloy_structures(6)
    builder = PipelineWorkChain.get_builder_from_protocol(
        protocol="fast", structures=structures,
        overrides={"fit": SMALL_FIT, "validate": {"settings": {"structure": cu3au()}}})
    assert "structure_settings" not in builder
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results["structures"].numsteps == len(structures)
    assert results["structures"].species == ["Au", "Cu"]
    assert results["properties"]["suite"] == "bulk"
    assert node.inputs.validate.settings["structure"] == structure_to_dict(cu3au())


def test_pipeline_refuses_an_alloy_without_a_suite_at_launch(aiida_profile):
    """No suite fits Cu-Au: the validation failed after the reference data and the fit."""
    structures = TrainingSetData.from_atoms(alloy_structures(2))
    builder = PipelineWorkChain.get_builder_from_protocol(protocol="fast",
                                                          structures=structures)
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match="no obvious.*validate.settings.structure"):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before
    with pytest.raises(InputError, match="structure_settings.*or `structures`"):
        PipelineWorkChain.get_builder_from_protocol(
            protocol="fast", structures=structures,
            overrides={"structure_settings": {"preset": "tiny"}})


def test_trace_of_a_model_names_its_fit_settings_and_its_validations(aiida_profile):
    """trace_model went upstream only: the fit settings and the validation crystal needed
    link queries of one's own."""
    # the energy-volume scan needs an E(V) minimum: give the toy fit cells on both sides
    builder = PipelineWorkChain.get_builder_from_protocol(
        protocol="fast", structures=[*alloy_structures(4), cu3au(3.65), cu3au(3.9)],
        overrides={"fit": SMALL_FIT, "validate": {"settings": {"structure": cu3au(),
                                                               "properties": ["eos"]}}})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    trace = trace_model(results["model"])
    assert trace.fit_settings == node.inputs.fit.settings.get_dict()
    assert trace.reference_parameters == [EMT_SPEC]
    assert len(trace.structures) == builder.structures.numsteps
    (validation,) = trace.validations
    assert validation.inputs.settings["structure"] == structure_to_dict(cu3au())
    assert validation.outputs.result["properties"] == results["properties"]["properties"]
    text = format_trace(results["model"])
    assert "fit settings: {'basis': {'correlation_order': 2" in text
    assert "-> validate_model" in text and "suite bulk on AuCu3, properties ['eos']" in text


def test_reference_takes_a_list_of_atoms_as_mlip_reference_data_does(aiida_profile):
    """`job.structures = [atoms, ...]` works in pyiron; in AiiDA the same list gave
    "Got <class 'aiida.orm.nodes.data.list.List'>, expected TrainingSetData"."""
    structures = alloy_structures(2)
    builder = ReferenceWorkChain.get_builder_from_protocol(structures, "fast")
    assert isinstance(builder.structures, TrainingSetData)
    results, node = run_get_node(ReferenceWorkChain, structures=structures)
    assert node.is_finished_ok, node.exit_message
    assert results["training_set"].numsteps == len(structures)
    with pytest.raises(InputError, match="structures\\[1\\] is a str, not an ase.Atoms"):
        ReferenceWorkChain.get_builder_from_protocol([structures[0], "POSCAR"], "fast")
