"""mlip.fit, mlip.validate and mlip.pipeline: runs, provenance queries, caching."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching
from ase.build import bulk
from ase.calculators.emt import EMT
from workflows_aiida_helpers import (
    MOCK_ENTRY_POINT,
    NAMESPACED_ENTRY_POINT,
    TINY,
    MockReferenceWorkChain,
    NamespacedReferenceWorkChain,
)

from mlip_plugin.data import Configuration
from mlip_plugin.errors import InputError
from mlip_plugin.pipeline.structures import StructureSpec, generate_structures
from mlip_plugin.workflows.aiida.calculations import generate_structures as generate_calc
from mlip_plugin.workflows.aiida.data import ModelData, TrainingSetData
from mlip_plugin.workflows.aiida.fit import FitWorkChain
from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain
from mlip_plugin.workflows.aiida.provenance import ancestors, format_trace, trace_model
from mlip_plugin.workflows.aiida.reference import ReferenceWorkChain
from mlip_plugin.workflows.aiida.validate import ValidateWorkChain

EMT_SPEC = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}
pytestmark = pytest.mark.slow  # the module's first pipeline run takes ~15 s

STRUCTURES = {k: v for k, v in TINY.items() if k not in ("element", "lattice")}


def pipeline_builder(**kwargs):
    """The fast protocol on the TINY structures, validating EOS and elastic constants only."""
    return PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", overrides={"structure_settings": STRUCTURES, "validate": {
            "settings": {"properties": ["eos", "elastic"]}}}, **kwargs)


@pytest.fixture(scope="module")
def first_run(aiida_profile):
    """The fast Cu/EMT pipeline, run once with caching enabled."""
    with enable_caching():
        results, node = run_get_node(pipeline_builder())
    assert node.is_finished_ok, node.exit_message
    return results, node


def test_pipeline_produces_model_and_property_table(first_run):
    results, node = first_run
    assert {"structures", "training_set", "failed_structures", "model", "metrics",
            "properties"} <= set(results)
    assert results["failed_structures"].get_list() == []
    rows = {r["name"]: r for r in results["properties"].get_dict()["properties"]}
    assert {"model", "reference", "abs_error", "error_percent"} <= set(rows["c11"])
    # a fast fit to 12 structures already gets EMT's a0 to 0.01 % and B, C_ij to ~5 %
    assert abs(rows["a0_fcc"]["error_percent"]) < 0.5
    for name in ("bulk_modulus", "c11", "c12", "c44"):
        assert abs(rows[name]["error_percent"]) < 15, rows[name]
    model = results["model"]
    assert model.family == "linear_ace" and model.base.attributes.get("species") == ["Cu"]
    # the model reproduces its EMT training energies to well under 10 meV/atom
    configs = results["training_set"].get_configurations()
    calc = model.get_calculator()
    errors = []
    for c in configs:
        atoms = c.atoms.copy()
        atoms.calc = calc
        errors.append(abs(atoms.get_potential_energy() - c.energy) / c.n_atoms)
    assert np.mean(errors) < 0.01
    sub = {n.process_label for n in node.called}
    assert sub == {"structure_stage", "generate_structures", "ReferenceWorkChain",
                   "FitWorkChain", "ValidateWorkChain"}  # the stage: the lattice constant


def test_model_traces_back_to_every_structure_and_the_calculator(first_run):
    results, _ = first_run
    model = results["model"]
    trace = trace_model(model)
    expected = generate_structures(StructureSpec.from_preset(**TINY), EMT())
    assert [a.info["structure_id"] for a in trace.structures] == [
        a.info["structure_id"] for a in expected]
    for got, want in zip(trace.structures, expected, strict=True):
        np.testing.assert_allclose(got.positions, want.positions, atol=1e-12)
        np.testing.assert_allclose(got.cell.array, want.cell.array, atol=1e-12)
    assert trace.reference_parameters == [EMT_SPEC]
    assert [c.process_label for c in trace.reference_calculations] == ["collect_reference"]
    assert trace.fit_calculation.process_label == "fit_model"
    # the same walk as a plain query: the calculator spec and the structure protocol
    dicts = [d.get_dict() for d in ancestors(model, orm.Dict)]
    assert EMT_SPEC in dicts
    assert {**STRUCTURES, "element": "Cu", "lattice": "fcc"} in dicts
    text = format_trace(model)
    assert "12 reference structures" in text and "ase.calculators.emt.EMT" in text


def test_second_identical_run_reuses_the_fit(first_run):
    results, _ = first_run
    first_fit = results["model"].creator
    with enable_caching():
        again, node = run_get_node(pipeline_builder())
    assert node.is_finished_ok
    fit = again["model"].creator
    assert fit.base.caching.get_cache_source() == first_fit.uuid
    executed = orm.QueryBuilder().append(orm.CalcFunctionNode, filters={
        "attributes.process_label": "fit_model"}).all(flat=True)
    same = [n for n in executed if n.base.caching.get_hash() == first_fit.base.caching.get_hash()]
    assert sum(not n.base.caching.is_created_from_cache for n in same) == 1
    assert again["model"].get_content() == results["model"].get_content()


def test_pipeline_with_reference_workflow_and_a_failing_structure(entry_points):
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    builder = pipeline_builder(
        reference_workflow=MOCK_ENTRY_POINT,
        reference_inputs={"parameters": orm.Dict(), "fail_if_n_atoms": orm.Int(31)})
    builder.run_validation = False
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    [failed] = results["failed_structures"].get_list()
    assert failed["structure_id"] == "vacancy-0"
    assert "properties" not in results
    trace = trace_model(results["model"])
    assert len(trace.structures) == 12  # the failed structure was a reference structure too
    assert len(trace.reference_calculations) == 11  # the ones whose labels were used
    assert all(isinstance(n, orm.WorkflowNode) for n in trace.reference_calculations)
    [failed_wf] = trace.failed_reference_calculations
    assert failed_wf.pk == failed["process_pk"] and failed_wf.exit_status == 400
    assert "11 reference calculation(s) ['MockReferenceWorkChain'] (+1 failed)" in \
        format_trace(results["model"])
    assert trace.reference_parameters[0] == {"parameters": {}, "fail_if_n_atoms": 31}
    assert results["training_set"].numsteps == 11


def test_pipeline_with_a_namespaced_reference_workflow(entry_points):
    """The launch check filled the workflow's defaults (its metadata namespace) into the
    given inputs in place, and the pipeline's launch of mlip.reference then failed."""
    entry_points.add(NamespacedReferenceWorkChain,
                     f"aiida.workflows:{NAMESPACED_ENTRY_POINT}")
    builder = pipeline_builder(reference_workflow=NAMESPACED_ENTRY_POINT,
                               reference_inputs={"base": {"parameters": orm.Dict()}})
    builder.run_validation = False
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results["training_set"].numsteps == 12
    assert "metadata" not in node.inputs["reference"]["reference_inputs"]["base"]


def test_fit_workchain_with_validation_and_test_sets(first_run):
    results, _ = first_run
    training = results["training_set"]
    configs = training.get_configurations()
    validation = TrainingSetData.from_configurations(configs[::3])
    builder = FitWorkChain.get_builder_from_protocol(training, "fast")
    builder.validation = validation
    builder.test_set = training
    out, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert isinstance(out["model"], ModelData)
    assert out["metrics"]["errors"]["validation"]["n_configs"] == validation.numsteps
    assert out["model"].provenance["n_validation"] == validation.numsteps
    assert out["test_errors"]["n_configs"] == training.numsteps
    assert out["test_errors"]["force_rmse_eV_per_A"] < 0.5
    assert [t.pk for t in trace_model(out["model"]).training_sets] == [training.pk,
                                                                       validation.pk]


def test_validate_workchain_needs_a_reference(first_run):
    results, _ = first_run
    with pytest.raises(ValueError, match="needs the input `calculator`"):
        run_get_node(ValidateWorkChain, model=results["model"],
                     settings=orm.Dict({"suite": "fcc"}))


def test_validate_workchain_refuses_along_path_at_launch(first_run):
    """along_path needs the fit's path, which a ModelData does not hold: refused, not
    silently ignored (the property curve comes from `mlip run`)."""
    results, _ = first_run
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match="along_path=\\[3, 5\\].*mlip run"):
        run_get_node(ValidateWorkChain, model=results["model"], calculator=EMT_SPEC,
                     settings=orm.Dict({"suite": "fcc", "along_path": [3, 5]}))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran
    builder = pipeline_builder()  # the pipeline refuses it at launch too, not after its fit
    builder.validate.settings = {**builder.validate.settings.get_dict(), "along_path": [3]}
    with pytest.raises(ValueError, match="along_path=\\[3\\].*mlip run"):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_validate_workchain_refuses_a_structure_file_path(first_run, tmp_path):
    """A bulk structure given as a file path in an orm.Dict would be read inside the
    calcfunction: the graph would record a path, not the crystal.  Refused at launch, naming
    the inline form (a plain dict converts the file when the node is made)."""
    import ase.io

    results, _ = first_run
    path = tmp_path / "cu.cif"
    ase.io.write(path, bulk("Cu", "fcc", a=3.6))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match="settings.structure is a str: an orm.Dict must hold"):
        run_get_node(ValidateWorkChain, model=results["model"], calculator=EMT_SPEC,
                     settings=orm.Dict({"structure": str(path)}))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran


@pytest.mark.parametrize(("inputs", "match"), [
    ({"settings": {"solvr": "omp"}}, "unknown keys \\['solvr'\\]"),
    ({"settings": {"solver": "magic"}}, "fit.solver='magic' is not one of"),
])
def test_fit_rejects_bad_settings(first_run, inputs, match):
    with pytest.raises(ValueError, match=match):
        run_get_node(FitWorkChain, training_set=first_run[0]["training_set"], **inputs)


def test_pipeline_input_validation(tiny_structures, entry_points):
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    builder = pipeline_builder()
    builder.structures = tiny_structures
    with pytest.raises(ValueError, match="exactly one of `structures` and"):
        run_get_node(builder)
    builder = pipeline_builder(reference_workflow=MOCK_ENTRY_POINT,
                               reference_inputs={"parameters": orm.Dict()})
    with pytest.raises(ValueError, match="give `validate.calculator`"):
        run_get_node(builder)


def test_failing_steps_return_their_exit_codes(first_run, tiny_structures):
    results, _ = first_run
    codes = PipelineWorkChain.exit_codes
    unlabelled = TrainingSetData.from_atoms([c.atoms for c in
                                             results["training_set"].get_configurations()])
    _, node = run_get_node(FitWorkChain, training_set=unlabelled)
    assert node.exit_status == FitWorkChain.exit_codes.ERROR_FIT_FAILED.status
    assert "energies" in node.exit_message
    assert_prefix_once(node.exit_message, "The fit failed: ")
    al = bulk("Al", "fcc", a=4.05, cubic=True)
    al.calc = EMT()
    test_set = TrainingSetData.from_configurations([Configuration(
        atoms=al, energy=al.get_potential_energy(), forces=al.get_forces())])
    builder = FitWorkChain.get_builder_from_protocol(results["training_set"], "fast")
    builder.test_set = test_set
    _, node = run_get_node(builder)
    assert node.exit_status == FitWorkChain.exit_codes.ERROR_EVALUATION_FAILED.status
    assert "species ['Al']" in node.exit_message
    assert_prefix_once(node.exit_message, "Evaluating the model on the test set failed: ")
    _, node = run_get_node(ValidateWorkChain, model=results["model"],
                           calculator={"calculator": "ase.calculators.emt.NoSuchEMT"},
                           settings={"properties": ["eos"]})
    assert node.exit_status == ValidateWorkChain.exit_codes.ERROR_VALIDATION_FAILED.status
    assert "NoSuchEMT" in node.exit_message
    assert_prefix_once(node.exit_message, "The property validation failed: ")
    builder = pipeline_builder()
    builder.reference.calculator = {"calculator": "ase.calculators.emt.NoSuchEMT"}
    _, node = run_get_node(builder)
    assert node.exit_status == codes.ERROR_STRUCTURE_GENERATION_FAILED.status
    assert "NoSuchEMT" in node.exit_message
    assert_prefix_once(node.exit_message, "Generating the training structures failed: ")
    builder = pipeline_builder()
    del builder.structure_settings
    builder.structures = tiny_structures
    builder.reference.calculator = {"calculator": "ase.calculators.emt.NoSuchEMT"}
    _, node = run_get_node(builder)
    assert node.exit_status == codes.ERROR_SUB_PROCESS_FAILED.status
    assert "ReferenceWorkChain" in node.exit_message and "NoSuchEMT" in node.exit_message
    assert node.exit_message.count("The reference calculation step failed: ") == 1
    assert "model" not in node.outputs


def assert_prefix_once(message: str, prefix: str) -> None:
    assert message.startswith(prefix) and message.count(prefix) == 1, message


@pytest.mark.parametrize(("settings", "match"), [
    ({"preset": "huge"}, "preset='huge'"),
    ({"md_temperatures": "hot"}, "could not convert|md_temperatures"),
    ({"supercell": "two"}, "TypeError|supercell"),
    ({"n_rattled": -1}, "n_rattled=-1"),
])
def test_pipeline_rejects_bad_structure_settings_at_launch(settings, match):
    builder = pipeline_builder()
    builder.structure_settings = {**STRUCTURES, **settings}
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=f"structure_settings=.* are not valid: .*({match})"):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # nothing ran


@pytest.mark.parametrize("settings", [
    {"md_temperatures": "hot"}, {"supercell": "two"}, {"slabs": [[1, 1]]}])
def test_generate_structures_returns_its_exit_code_for_values_of_the_wrong_type(
        aiida_profile, settings):
    _, node = run_get_node(generate_calc, settings={**STRUCTURES, **settings},
                           calculator=EMT_SPEC)
    code = PipelineWorkChain.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED
    assert node.exit_status == code.status
    assert_prefix_once(node.exit_message, "Generating the training structures failed: ")


@pytest.mark.parametrize("error", [TypeError, ValueError])
def test_generate_structures_turns_type_and_value_errors_into_its_exit_code(
        aiida_profile, monkeypatch, error):
    """An error the structure code raises for a value of the wrong type, late."""
    import mlip_plugin.pipeline.structures

    def generate(spec, calculator=None, **kwargs):
        raise error("unsupported value")

    monkeypatch.setattr(mlip_plugin.pipeline.structures, "generate_structures", generate)
    _, node = run_get_node(generate_calc, settings=STRUCTURES)
    assert node.exit_status == PipelineWorkChain.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED.status
    assert node.exit_message == ("Generating the training structures failed: "
                                 f"{error.__name__}: unsupported value")


def test_pipeline_rejects_an_unusable_reference_workflow_at_launch():
    builder = pipeline_builder(reference_workflow="core.arithmetic.multiply_add")
    builder.validate.calculator = EMT_SPEC
    with pytest.raises(ValueError, match="has no input `structure`"):
        run_get_node(builder)


def test_structures_of_an_older_generator_are_not_reused_from_the_cache(aiida_profile,
                                                                         monkeypatch):
    """generate_structures nodes of an older structure generator (same inputs, so the same
    hash, but other structures) are invalid cache sources: the rerun generates again."""
    import mlip_plugin.pipeline.structures as structures_module
    from mlip_plugin.workflows.aiida.calculations import PROTOCOL_ATTRIBUTE, run_calculation

    settings = orm.Dict({**STRUCTURES, "seed": 20261207})  # this test's own inputs
    current = structures_module.PROTOCOL_VERSION
    monkeypatch.setattr(structures_module, "PROTOCOL_VERSION", 1)
    _, old = run_get_node(generate_calc, settings=settings)
    assert old.outputs.result.base.attributes.get(PROTOCOL_ATTRIBUTE) == 1
    monkeypatch.undo()
    with enable_caching():
        result, node = run_calculation(generate_calc, settings=settings)
    assert not node.base.caching.is_created_from_cache
    assert not old.base.caching.is_valid_cache
    assert result.base.attributes.get(PROTOCOL_ATTRIBUTE) == current
    with enable_caching():  # a source of the current version is reused as before
        _, again = run_calculation(generate_calc, settings=settings)
    assert again.base.caching.is_created_from_cache


@pytest.mark.parametrize(("element", "reused"), [("Cu", True), ("Ni", False)])
def test_version_2_structures_are_stale_only_where_version_3_changed_them(
        aiida_profile, monkeypatch, element, reused):
    """Version 3 put starting magnetic moments on Fe, Co and Ni: their version-2 structures
    are stale; a Cu spec's version-2 structures are what version 3 makes, and are reused."""
    import mlip_plugin.pipeline.structures as structures_module
    from mlip_plugin.workflows.aiida.calculations import run_calculation

    settings = orm.Dict({**STRUCTURES, "element": element, "seed": 20261208})
    monkeypatch.setattr(structures_module, "PROTOCOL_VERSION", 2)
    run_get_node(generate_calc, settings=settings)
    monkeypatch.undo()
    with enable_caching():
        _, node = run_calculation(generate_calc, settings=settings)
    assert node.base.caching.is_created_from_cache is reused


def test_pipeline_builder_chooses_the_suite_of_its_lattice():
    """validate.yaml pinned `suite: fcc`, so bcc and diamond pipelines failed (exit 340)."""
    for protocol in ("fast", "balanced", "stringent"):
        assert "suite" not in ValidateWorkChain.get_protocol_inputs(protocol)["settings"]
    suites = {(element, lattice): PipelineWorkChain.get_builder_from_protocol(
        element, lattice, "fast").validate.settings.get("suite")
        for element, lattice in [("Cu", "fcc"), ("Mo", "bcc"), ("Si", "diamond"),
                                 ("Po", "sc")]}
    assert suites == {("Cu", "fcc"): "fcc", ("Mo", "bcc"): "bcc",
                      ("Si", "diamond"): "silicon", ("Po", "sc"): None}
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Mo", "bcc", "fast", overrides={"validate": {"settings": {"suite": "fcc"}}})
    assert builder.validate.settings["suite"] == "fcc"  # an explicit suite is kept


LJ_MO = {"calculator": "ase.calculators.lj.LennardJones",
         "parameters": {"sigma": 2.5, "epsilon": 0.4, "rc": 6.0}}


def test_bcc_pipeline_and_a_plain_validate_builder_run(aiida_profile):
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Mo", "bcc", "fast", overrides={
            "structure_settings": {**STRUCTURES, "a": 3.15},
            "reference": {"calculator": LJ_MO}, "fit": {"settings": {"max_active": 10}},
            "validate": {"settings": {"properties": ["eos"]}}})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results["properties"]["suite"] == "bcc"
    # a ValidateWorkChain without a suite takes it from the model's species
    _, plain = run_get_node(ValidateWorkChain, model=results["model"], calculator=LJ_MO,
                            settings={"properties": ["eos"]})
    assert plain.is_finished_ok, plain.exit_message
    assert plain.outputs.properties["suite"] == "bcc"
    _, protocol = run_get_node(ValidateWorkChain.get_builder_from_protocol(
        results["model"], "fast", {"settings": {"properties": ["eos"]}}, calculator=LJ_MO))
    assert protocol.is_finished_ok, protocol.exit_message
    assert protocol.outputs.properties["suite"] == "bcc"


def _label_and_fit(structures, parameters):
    builder = ReferenceWorkChain.get_builder_from_protocol(
        structures, "fast", reference_workflow=MOCK_ENTRY_POINT,
        reference_inputs={"parameters": orm.Dict(parameters)})
    labelled, reference = run_get_node(builder)
    assert reference.is_finished_ok, reference.exit_message
    fitted, fit = run_get_node(FitWorkChain.get_builder_from_protocol(
        labelled["training_set"], "fast", overrides={"settings": {"max_active": 6}}))
    assert fit.is_finished_ok, fit.exit_message
    launched = sorted(n.pk for n in reference.called
                      if n.process_class is MockReferenceWorkChain)
    return fitted["model"], launched


def test_trace_lists_only_the_reference_workflows_whose_labels_made_the_model(
        tiny_atoms, entry_points):
    """Two reference runs on the same structures: the first model was credited with the
    second run's workflows too (every split of the same TrainingSetData was followed)."""
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    structures = TrainingSetData.from_atoms(tiny_atoms[:4]).store()
    model, launched = _label_and_fit(structures, {})
    _label_and_fit(structures, {"asap_cutoff": False})
    trace = trace_model(model)
    assert [n.pk for n in trace.reference_calculations] == launched
    assert trace.reference_parameters == [{"parameters": {}}] * 4
    assert "4 reference calculation(s)" in format_trace(model)
    with enable_caching():  # a cached rerun: its own 4 workflows, not 8
        _label_and_fit(structures, {"asap_cutoff": True})
        again, launched = _label_and_fit(structures, {"asap_cutoff": True})
    assert again.creator.base.caching.is_created_from_cache
    assert [n.pk for n in trace_model(again).reference_calculations] == launched


def test_reference_workflow_warns_that_structures_are_made_without_it(entry_points):
    """NVT snapshots need an in-process calculator: with a reference_workflow they are
    skipped, and the lattice constant is ASE's; a WARNING in the report says so."""
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", overrides={"structure_settings": {**STRUCTURES, "md_snapshots": 2},
                                        "fit": {"settings": {"max_active": 6}}},
        reference_workflow=MOCK_ENTRY_POINT, reference_inputs={"parameters": orm.Dict()})
    builder.run_validation = False
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results["structures"].numsteps == 12  # no snapshots
    warnings = [log.message for log in orm.Log.collection.get_logs_for(node)
                if log.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "NVT snapshots (md_snapshots=2" in warnings[0]
    assert "ASE's tabulated" in warnings[0]
    assert "with a `reference_workflow`" in PipelineWorkChain.get_available_protocols()[
        "balanced"]


def test_no_warning_with_an_ase_reference_calculator(first_run):
    _, node = first_run
    assert not [log for log in orm.Log.collection.get_logs_for(node)
                if log.levelname == "WARNING"]


def test_validate_workchain_runs_the_bulk_suite_on_an_inline_structure(first_run):
    """Suite 'bulk' on a structure given inline in the settings (hcp Cu, EMT reference):
    the structure is recorded in the settings node, the rows are the bulk suite's."""
    from mlip_plugin.properties.suites import structure_to_dict

    results, _ = first_run
    structure = structure_to_dict(bulk("Cu", "hcp", a=2.55))
    outputs, node = run_get_node(ValidateWorkChain, model=results["model"],
                                 calculator=EMT_SPEC,
                                 settings=orm.Dict({"structure": structure,
                                                    "properties": ["eos", "elastic"]}))
    assert node.is_finished_ok, node.exit_message
    table = outputs["properties"].get_dict()
    assert table["suite"] == "bulk"
    rows = {r["name"]: r for r in table["properties"]}
    assert {"volume_per_atom", "c33", "c13", "shear_modulus_voigt"} <= set(rows)
    assert all(r["reference"] is not None for r in rows.values())
    assert abs(rows["volume_per_atom"]["error_percent"]) < 5  # a Cu model near EMT's Cu
    recorded = node.inputs.settings["structure"]  # provenance of the crystal
    assert recorded["symbols"] == ["Cu", "Cu"] and recorded["pbc"] == [True] * 3
    # the database keeps 14 significant digits of a float
    np.testing.assert_allclose(recorded["positions"], structure["positions"], atol=1e-12)
    np.testing.assert_allclose(recorded["cell"], structure["cell"], atol=1e-12)
    # the pipeline's protocol does not add its lattice's suite beside a structure
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", overrides={"validate": {"settings": {"structure": structure}}})
    assert "suite" not in builder.validate.settings.get_dict()


def _reference_properties(node):
    return [n for n in node.called if n.process_label == "reference_property"]


def test_validate_keeps_the_reference_properties_finished_before_a_failure(
        first_run, monkeypatch):
    """The reference calculator fails on the vacancy cell (31 atoms): the equation of state
    it finished before is stored, and with caching enabled the rerun reuses it, computes
    the vacancy and the elastic constants, and validates; validate_model computes no
    reference property that it is given."""
    from workflows_aiida_helpers import TransientEMT

    from mlip_plugin.workflows.aiida.calculations import validate_model

    results, _ = first_run
    spec = {"calculator": "workflows_aiida_helpers.TransientEMT", "parameters": {}}
    settings = {"suite": "fcc", "properties": ["eos", "vacancy", "elastic"]}
    monkeypatch.setattr(TransientEMT, "failing", True)
    with enable_caching():
        _, failed = run_get_node(ValidateWorkChain, model=results["model"], calculator=spec,
                                 settings=settings)
        assert failed.exit_status == ValidateWorkChain.exit_codes.ERROR_VALIDATION_FAILED.status
        assert "31 atoms" in failed.exit_message and "group 'vacancy'" in failed.exit_message
        assert "the 1 reference properties finished before are stored" in failed.exit_message
        assert_prefix_once(failed.exit_message, "The property validation failed: ")
        eos, vacancy = _reference_properties(failed)
        assert eos.is_finished_ok and not vacancy.is_finished_ok
        assert eos.outputs.result["rows"][0]["name"] == "a0_fcc"
        monkeypatch.setattr(TransientEMT, "failing", False)  # the failure has gone away
        outputs, node = run_get_node(ValidateWorkChain, model=results["model"],
                                     calculator=spec, settings=settings)
    assert node.is_finished_ok, node.exit_message
    units = _reference_properties(node)
    assert [u.inputs.unit.value for u in units] == [0, 1, 2]
    assert units[0].base.caching.get_cache_source() == eos.uuid
    assert not units[1].base.caching.is_created_from_cache  # the failure is not reused
    rows = {r["name"]: r for r in outputs["properties"].get_dict()["properties"]}
    assert {"a0_fcc", "vacancy_formation", "c11"} <= set(rows)
    assert all(r["reference"] is not None for r in rows.values())
    # the reference rows are those of the stored units, and none is computed again: with
    # the calculator failing once more, validate_model still succeeds on those units
    monkeypatch.setattr(TransientEMT, "failing", True)
    given = {f"reference_{i:03d}": u.outputs.result for i, u in enumerate(units)}
    again, calc = validate_model.run_get_node(model=results["model"],
                                              settings=orm.Dict(settings),
                                              calculator=orm.Dict(spec), **given)
    assert calc.is_finished_ok, calc.exit_message
    assert again.get_dict()["reference_table"] == outputs["properties"]["reference_table"]


def test_a_model_stored_from_a_file_is_traced_without_a_fit_calculation(first_run):
    """A model fitted outside AiiDA (mlip, pyiron, Python) and stored has no creator: the
    trace said AttributeError; now it has no fit calculation, and validations on it."""
    results, _ = first_run
    stored = ModelData.from_model(results["model"].get_model()).store()
    trace = trace_model(stored)
    assert trace.fit_calculation is None and trace.structures == [] and trace.validations == []
    text = format_trace(stored)
    assert "<- no calculation: stored from a file (fitted outside AiiDA)" in text
    assert "reference calculation" not in text


def test_builder_overrides_are_used_or_refused_never_dropped(entry_points):
    """overrides['structure_settings'] element/lattice were replaced by the positional
    defaults Cu/fcc; a calculator override beside reference_workflow was dropped."""
    entry_points.add(MockReferenceWorkChain, f"aiida.workflows:{MOCK_ENTRY_POINT}")
    builder = PipelineWorkChain.get_builder_from_protocol(
        protocol="fast", overrides={"structure_settings": {"element": "Mo", "lattice": "bcc"}})
    settings = builder.structure_settings.get_dict()
    assert (settings["element"], settings["lattice"]) == ("Mo", "bcc")
    assert builder.validate.settings["suite"] == "bcc"
    with pytest.raises(InputError, match="element='Cu' and overrides\\['structure_settings'\\]"
                                         "\\['element'\\]='Mo' disagree"):
        PipelineWorkChain.get_builder_from_protocol(
            "Cu", protocol="fast", overrides={"structure_settings": {"element": "Mo"}})
    gpaw = {"calculator": "gpaw.GPAW", "parameters": {}}
    with pytest.raises(InputError, match="name a calculator .* and reference_workflow="):
        PipelineWorkChain.get_builder_from_protocol(
            "Cu", "fcc", "fast", overrides={"reference": {"calculator": gpaw}},
            reference_workflow=MOCK_ENTRY_POINT)
    with pytest.raises(InputError, match="overrides name a calculator"):
        ReferenceWorkChain.get_builder_from_protocol(
            [bulk("Cu")], "fast", {"calculator": gpaw}, reference_workflow=MOCK_ENTRY_POINT)


def test_an_unlabelled_test_set_is_an_evaluation_failure(first_run):
    """It finished with every test error None."""
    results, _ = first_run
    unlabelled = TrainingSetData.from_atoms(
        [c.atoms for c in results["training_set"].get_configurations()[:3]])
    builder = FitWorkChain.get_builder_from_protocol(results["training_set"], "fast")
    builder.test_set = unlabelled
    _, node = run_get_node(builder)
    assert node.exit_status == FitWorkChain.exit_codes.ERROR_EVALUATION_FAILED.status
    assert "the test set (3 structures) has no energy or force labels" in node.exit_message


def test_a_rerun_reuses_the_structure_stages_finished_before_a_failure(aiida_profile,
                                                                       monkeypatch):
    """The reference fails in the vacancy cell's NVT run (31 atoms): the lattice constant
    and the first NVT run are stored, one structure_stage each, and with caching enabled
    the rerun takes them from the cache and computes only the failed stage (it recomputed
    every stage before, in one generate_structures)."""
    from workflows_aiida_helpers import TransientEMT

    spec = {"calculator": "workflows_aiida_helpers.TransientEMT", "parameters": {}}
    settings = {**STRUCTURES, "md_snapshots": 1, "md_steps_between": 2, "n_rattled": 1}
    builder = PipelineWorkChain.get_builder_from_protocol(
        "Cu", "fcc", "fast", overrides={"structure_settings": settings,
                                        "run_validation": False})
    builder.reference.calculator = spec
    monkeypatch.setattr(TransientEMT, "failing", True)
    with enable_caching():
        _, failed = run_get_node(builder)
        code = PipelineWorkChain.exit_codes.ERROR_STRUCTURE_GENERATION_FAILED
        assert failed.exit_status == code.status
        assert "stage 'md_vacancy-600K'" in failed.exit_message
        assert "the stages finished before are stored (lattice_constant <" in \
            failed.exit_message
        stages = [n for n in failed.called if n.process_label == "structure_stage"]
        assert [n.inputs.stage.value for n in stages] == ["lattice_constant", "md-600K",
                                                          "md_vacancy-600K"]
        assert [n.is_finished_ok for n in stages] == [True, True, False]
        monkeypatch.setattr(TransientEMT, "failing", False)  # the failure has gone away
        results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    again = [n for n in node.called if n.process_label == "structure_stage"]
    assert [n.base.caching.get_cache_source() for n in again[:2]] == [
        n.uuid for n in stages[:2]]
    assert not again[2].base.caching.is_created_from_cache
    types = {c.config_type for c in results["structures"].get_configurations()}
    assert {"md", "md_vacancy"} <= types
