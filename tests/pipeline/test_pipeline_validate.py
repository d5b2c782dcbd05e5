"""The validation step: comparison rows (diagnostic rows keep their absolute error only) and
the reference calculator's properties, computed once and cached in the output folder."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mlip_plugin import InputError
from mlip_plugin.errors import ReferenceCalculationError
from mlip_plugin.pipeline.validate import (
    DIAGNOSTIC_ROWS,
    _mean_abs_percent,
    _reference_table,
    compare_rows,
)
from mlip_plugin.properties import suites


def test_diagnostic_rows_have_no_percent_error():
    model = {"c11": 110.0, "phonon_min_frequency": -1.4e-7, "md_diffusivity": 4.1e-5}
    reference = {"c11": 100.0, "phonon_min_frequency": -5.6e-6, "md_diffusivity": 2.4e-5}
    rows = {r["name"]: r for r in compare_rows(model, reference)}
    assert rows["c11"]["error_percent"] == pytest.approx(10.0)
    for name in ("phonon_min_frequency", "md_diffusivity"):
        assert name in DIAGNOSTIC_ROWS
        assert rows[name]["error_percent"] is None
        assert rows[name]["abs_error"] == pytest.approx(abs(model[name] - reference[name]))
    # the mean % error is that of the measured properties only
    assert _mean_abs_percent(rows.values()) == pytest.approx(10.0)


def test_pass_fail_rows_have_no_percent_error():
    """The bulk suite's mechanically_stable (and its clamped-ion twin) had "error % 0.00"."""
    rows = [{"name": n, "unit": "bool", "value": 1.0, "uncertainty": None}
            for n in ("mechanically_stable", "mechanically_stable_clamped")]
    rows.append({"name": "c11", "unit": "GPa", "value": 110.0, "uncertainty": None})
    reference = {"mechanically_stable": 1.0, "mechanically_stable_clamped": 1.0, "c11": 100.0}
    out = {r["name"]: r for r in compare_rows(rows, reference)}
    assert out["mechanically_stable"]["error_percent"] is None
    assert out["mechanically_stable_clamped"]["error_percent"] is None
    assert out["mechanically_stable"]["abs_error"] == 0.0
    assert out["c11"]["error_percent"] == pytest.approx(10.0)


def test_energy_per_atom_has_no_percent_error():
    """The bulk suite's energy per atom is measured from the reference's own zero: the same
    1 meV/atom error was 6 % of EMT's -0.0155 eV/atom and 0.02 % of a DFT code's -4 eV."""
    for ref in (-0.0155, -4.0):
        rows = {r["name"]: r for r in compare_rows(
            {"energy_per_atom": ref + 1e-3, "bulk_modulus": 150.0},
            {"energy_per_atom": ref, "bulk_modulus": 140.0})}
        assert rows["energy_per_atom"]["error_percent"] is None
        assert rows["energy_per_atom"]["abs_error"] == pytest.approx(1e-3)
        assert _mean_abs_percent(rows.values()) == pytest.approx(100 * 10 / 140)


@pytest.mark.parametrize("content,match", [
    ("{", "is not readable JSON"),
    ("", "is not readable JSON"),
    ('"c11"', "holds a JSON str"),
])
def test_corrupt_reference_table_is_an_input_error(tmp_path, content, match):
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        _reference_table(str(path), "fcc", None)
    with pytest.raises(InputError, match="does not exist"):
        _reference_table(str(tmp_path / "none.json"), "fcc", None)


# --- the reference calculator's properties: computed once, cached in the output folder ---

SPEC = {"calculator": "pipeline_test_calculators.CountingEMT"}
VALIDATE = {"suite": "fcc", "preset": "fast", "properties": ["eos", "vacancy", "phonons"],
            "along_path": [5, 20], "along_path_properties": ["vacancy"]}
FAST_FIT = {"solver": "omp", "max_active": 40,
            "basis": {"correlation_order": 2, "total_degree": 8, "r_cut": 4.5}}


def _calls_of(function, *args):
    """The reference calculations (CountingEMT) that ``function(*args)`` makes, and its
    result."""
    from pipeline_test_calculators import CountingEMT

    CountingEMT.calls = 0
    out = function(*args)
    return CountingEMT.calls, out


@pytest.fixture(scope="module")
def counted_run(tmp_path_factory):
    """(config, RunResult) of a finished run whose reference calculator counts its
    calculations."""
    import yaml

    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import run_pipeline

    tmp = tmp_path_factory.mktemp("counted")
    doc = {"output": str(tmp / "out"), "reference": SPEC, "fit": FAST_FIT,
           "structures": {"preset": "tiny", "element": "Cu", "md_snapshots": 0},
           "validate": VALIDATE}
    (tmp / "run.yaml").write_text(yaml.safe_dump(doc))
    config = load_config(tmp / "run.yaml")
    return config, run_pipeline(config)


def test_reference_units_give_the_suite_table():
    """Run unit by unit (each interstitial site on its own), the reference's table is
    run_suite's, for the same calculations; a later suite reuses the units done."""
    from pipeline_test_calculators import CountingEMT

    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import ReferenceSuites

    sset = suites.SuiteSettings.fast(symbol="Cu", groups=("vacancy", "interstitials"))
    n_suite, direct = _calls_of(suites.run_suite, CountingEMT(), "fcc", sset)
    runs = ReferenceSuites()
    n_units, by_unit = _calls_of(runs.run, CalculatorSpec.coerce(SPEC), "fcc", sset)
    assert by_unit.rows == direct.rows and len(by_unit.rows) == 4
    assert n_units == n_suite and runs.n_computed == 4
    subset = replace(sset, groups=("interstitials",), interstitial_sites=("dumbbell",))
    n_again, again = _calls_of(runs.run, CalculatorSpec.coerce(SPEC), "fcc", subset)
    assert n_again == 0 and again.rows == [r for r in direct.rows
                                           if r["name"] == "interstitial_dumbbell"]


def test_along_path_reuses_the_reference_properties(counted_run):
    """The comparison along the path takes the reference's rows from the full suite: the
    validation makes exactly the calculations of one reference suite."""
    from pipeline_test_calculators import CountingEMT

    from mlip_plugin.pipeline.validate import suite_settings, validate_run

    config, run = counted_run
    n_suite, _ = _calls_of(suites.run_suite, CountingEMT(), "fcc",
                           suite_settings(config.validate, "Cu"))
    n_validate, result = _calls_of(validate_run, run.fit, config)
    assert n_suite > 0 and n_validate == n_suite
    reference = {r["name"]: r["value"] for r in result.reference_result.rows}
    assert len(result.property_curve) == 2
    for point in result.property_curve:
        assert [r["name"] for r in point["properties"]] == ["vacancy_formation"]
        assert point["properties"][0]["reference"] == reference["vacancy_formation"]


def test_rerun_of_a_run_makes_no_reference_property_calculation(counted_run):
    """A second run into the same folder reads every reference property from
    OUT/reference_properties and gives the same comparison table and plots."""
    from mlip_plugin.pipeline.run import run_pipeline

    config, first = counted_run
    cached = sorted((first.output / "reference_properties").glob("*.json"))
    assert len(cached) == 3  # eos, vacancy, phonons
    n_calls, again = _calls_of(run_pipeline, config)
    assert n_calls == 0
    assert again.metrics["properties"] == first.metrics["properties"]
    assert again.metrics["property_curve"] == first.metrics["property_curve"]
    bands = again.validation.reference_result.results["phonons"]
    original = first.validation.reference_result.results["phonons"]
    for new, old in zip(bands.frequencies, original.frequencies, strict=True):
        np.testing.assert_array_equal(new, old)
    assert (first.output / "phonons.png").is_file()


@pytest.mark.parametrize("damage", [
    lambda text: text[:200],  # truncated
    lambda text: "",
    lambda text: json.dumps({**json.loads(text), "key": "0" * 32}),  # another unit's
    lambda text: json.dumps({**json.loads(text), "rows": [{"name": "eos"}]}),
    lambda text: json.dumps({**json.loads(text), "phonon_bands": {
        **json.loads(text)["phonon_bands"], "frequencies": [[1.0]]}}),
], ids=["truncated", "empty", "other-key", "incomplete-rows", "bands-mismatch"])
def test_unusable_reference_property_file_is_recomputed(counted_run, tmp_path, caplog,
                                                        damage):
    from pipeline_test_calculators import CountingEMT

    from mlip_plugin.pipeline.validate import validate_run

    config, run = counted_run
    cache = tmp_path / "reference_properties"
    first = validate_run(run.fit, config, cache_dir=cache)
    files = sorted(cache.glob("*.json"))
    damaged = next(p for p in files if "phonon_bands" in p.read_text())
    damaged.write_text(damage(damaged.read_text()))
    kept = {p: p.read_text() for p in files if p != damaged}
    with caplog.at_level("WARNING"):
        n_calls, again = _calls_of(validate_run, run.fit, config, cache)
    assert damaged.name in caplog.text
    n_phonons, _ = _calls_of(suites.run_suite, CountingEMT(), "fcc", suites.SuiteSettings.fast(
        symbol="Cu", groups=("phonons",)))
    assert n_calls == n_phonons  # that property only, the others came from the cache
    assert again.rows == first.rows
    assert "phonon_bands" in json.loads(damaged.read_text())
    assert {p: p.read_text() for p in kept} == kept


def test_validate_with_a_cache_folder_plots_the_cached_reference_bands(counted_run,
                                                                      tmp_path):
    """``validate(..., cache_dir=...)`` (Python API): the second call computes nothing for
    the reference and still plots its phonon bands."""
    from mlip_plugin.pipeline.validate import PhononBands, validate

    _, run = counted_run
    settings = {"suite": "fcc", "preset": "fast", "properties": ["phonons"]}
    n_first, first = _calls_of(lambda: validate(run.fit.model, settings, reference=SPEC,
                                                cache_dir=tmp_path / "cache"))
    n_again, again = _calls_of(lambda: validate(run.fit.model, settings, reference=SPEC,
                                                cache_dir=tmp_path / "cache"))
    assert n_first > 0 and n_again == 0 and again.rows == first.rows
    bands = again.reference_result.results["phonons"]
    assert isinstance(bands, PhononBands)
    for new, old in zip(bands.distances, first.reference_result.results["phonons"].distances,
                        strict=True):
        np.testing.assert_array_equal(new, old)
    assert set(again.plots(tmp_path)) == {"phonons"} and (tmp_path / "phonons.png").is_file()


def test_reference_properties_finished_before_a_failure_are_kept(counted_run, tmp_path):
    """A reference calculation failing (or the run killed) in the middle of the suite: the
    properties finished before are on disk, and the rerun computes only the rest."""
    from pipeline_test_calculators import FailAtCallEMT

    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    spec = {"calculator": "pipeline_test_calculators.FailAtCallEMT"}
    settings = {"suite": "fcc", "preset": "fast", "properties": ["eos", "vacancy", "phonons"]}
    fast = suites.SuiteSettings.fast
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    suites.run_suite(FailAtCallEMT(), "fcc", fast(symbol="Cu", groups=("eos", "vacancy")))
    n_before = FailAtCallEMT.calls
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, n_before + 1  # the first phonon one
    with pytest.raises(ReferenceCalculationError,
                       match="reference calculator pipeline_test_calculators.FailAtCallEMT "
                             "failed on the property group 'phonons' of suite 'fcc': "
                             "RuntimeError: simulated SCF failure.*are kept in") as info:
        validate(run.fit.model, settings, reference=spec, cache_dir=tmp_path)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert len(list(tmp_path.glob("*.json"))) == 2
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    suites.run_suite(FailAtCallEMT(), "fcc", fast(symbol="Cu", groups=("phonons",)))
    n_phonons = FailAtCallEMT.calls
    FailAtCallEMT.calls = 0
    result = validate(run.fit.model, settings, reference=spec, cache_dir=tmp_path)
    assert FailAtCallEMT.calls == n_phonons
    assert [r["name"] for r in result.rows][:3] == ["a0_fcc", "bulk_modulus",
                                                    "vacancy_formation"]
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_reference_documents_given_are_not_computed_again(counted_run, caplog):
    """The units one by one as an engine stores them (AiiDA's reference_property: the
    documents of ReferenceSuites.unit_document, through JSON), given to validate: no
    reference calculation and the same table; one that does not fit its unit is computed
    again, with a warning naming it."""
    from pipeline_test_calculators import CountingEMT

    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import (
        ReferenceSuites,
        reference_units,
        resolve_settings,
        validate,
    )

    _, run = counted_run
    model = run.fit.model
    settings = {"preset": "fast", "properties": ["eos", "vacancy", "phonons"]}
    resolved = resolve_settings(model, settings)
    assert (resolved.suite, resolved.symbol) == ("fcc", "Cu")  # from the model's species
    units = reference_units(resolved)
    assert [u.groups for u in units] == [("eos",), ("vacancy",), ("phonons",)]
    runs, spec = ReferenceSuites(), CalculatorSpec.coerce(SPEC)
    n_units, docs = _calls_of(lambda: json.loads(json.dumps(
        [runs.unit_document(spec, resolved.suite, u) for u in units])))
    n_direct, direct = _calls_of(lambda: validate(model, settings, reference=SPEC))
    assert n_units == n_direct > 0
    n_given, given = _calls_of(lambda: validate(model, settings, reference=SPEC,
                                                reference_documents=docs))
    assert n_given == 0 and given.rows == direct.rows
    docs[2]["phonon_bands"]["frequencies"] = [[1.0]]  # not the bands of its unit
    with caplog.at_level("WARNING"):
        n_again, again = _calls_of(lambda: validate(model, settings, reference=SPEC,
                                                    reference_documents=docs))
    assert docs[2]["key"] in caplog.text and "group 'phonons'" in caplog.text
    n_phonons, _ = _calls_of(suites.run_suite, CountingEMT(), "fcc", units[2])
    assert n_again == n_phonons > 0 and again.rows == direct.rows


def test_a_reference_table_that_names_nothing_computed(counted_run, tmp_path, caplog):
    """A table whose names match none of the suite's (a typo: 'A0') printed nothing at all;
    now a warning names both sets and the model's values are reported.  A row with a null
    value is a row without a reference."""
    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    settings = {"suite": "fcc", "preset": "fast", "properties": ["eos"]}
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"A0": 3.6, "B": 140.0}))
    with caplog.at_level("WARNING", logger="mlip_plugin.pipeline.validate"):
        result = validate(run.fit.model, settings, reference=str(typo))
    assert "has none of the properties computed (a0_fcc, bulk_modulus); its names are " \
           "['A0', 'B']" in caplog.text
    assert [(r["name"], r["reference"]) for r in result.rows] == [("a0_fcc", None),
                                                                 ("bulk_modulus", None)]
    assert result.rows[0]["model"] == pytest.approx(3.59, abs=0.05)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"name": "a0_fcc", "value": None},
                                {"name": "bulk_modulus", "value": 140.0}]))
    result = validate(run.fit.model, settings, reference=str(rows))
    assert [(r["name"], r["reference"]) for r in result.rows] == [("bulk_modulus", 140.0)]


def test_a_named_error_of_the_reference_is_not_wrapped(counted_run):
    """The library's own errors (here: parameters the calculator rejects) pass through as
    they are; only the calculator's own exceptions become ReferenceCalculationError."""
    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    spec = {"calculator": "pipeline_test_calculators.StrictEMT", "parameters": {"nope": 1}}
    with pytest.raises(InputError, match="StrictEMT' rejected its parameters") as info:
        validate(run.fit.model, {"suite": "fcc", "properties": ["eos"]}, reference=spec)
    assert not isinstance(info.value, ReferenceCalculationError)


def test_unit_labels_name_the_site_and_surface():
    from mlip_plugin.pipeline.validate import _unit_label, _units

    fast = suites.SuiteSettings.fast(symbol="Cu", groups=("vacancy", "surfaces"))
    assert [_unit_label(u) for u in _units("fcc", fast)][:2] == [
        "group 'vacancy'", "group 'surfaces' (surface (1, 1, 1))"]


def test_unknown_property_groups_name_the_setting(counted_run):
    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    with pytest.raises(InputError, match=r"validate.properties=\['eso'\] has unknown groups"):
        validate(run.fit.model, {"suite": "fcc", "properties": ["eso"]}, reference=SPEC)


# --- suite 'bulk': the structure is part of the reference cache key ---

def _hcp_cu(a: float = 2.55) -> dict:
    from ase.build import bulk

    return suites.structure_to_dict(bulk("Cu", "hcp", a=a))


def test_bulk_unit_key_changes_with_the_structure():
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import _unit_key

    spec = CalculatorSpec.coerce(SPEC)

    def key(structure):
        unit = suites.SuiteSettings.fast(groups=("eos",),
                                         structure=suites.structure_from_dict(structure))
        return _unit_key(spec, "bulk", unit)

    moved = _hcp_cu()
    moved["positions"][1][2] += 1e-6
    assert key(_hcp_cu()) == key(_hcp_cu())
    assert len({key(_hcp_cu()), key(_hcp_cu(2.6)), key(moved)}) == 3


def test_bulk_validation_against_the_reference_and_its_cache(counted_run, tmp_path):
    """A Cu model on hcp Cu against EMT: the bulk rows, compared; a rerun computes nothing
    for the reference; another structure (even one relaxing to the same crystal) is
    computed anew, never served from the cache."""
    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    settings = {"structure": _hcp_cu(), "properties": ["eos", "elastic"]}
    n_first, first = _calls_of(lambda: validate(run.fit.model, settings, reference=SPEC,
                                                cache_dir=tmp_path))
    names = [r["name"] for r in first.rows]
    assert first.suite == "bulk" and names[:3] == ["volume_per_atom", "bulk_modulus",
                                                   "energy_per_atom"]
    assert {"c33", "c13", "c66", "shear_modulus_voigt"} <= set(names)
    assert all(r["reference"] is not None for r in first.rows)
    assert len(list(tmp_path.glob("*.json"))) == 2
    n_again, again = _calls_of(lambda: validate(run.fit.model, settings, reference=SPEC,
                                                cache_dir=tmp_path))
    assert n_first > 0 and n_again == 0 and again.rows == first.rows
    other = {**settings, "structure": _hcp_cu(2.6)}
    n_other, _ = _calls_of(lambda: validate(run.fit.model, other, reference=SPEC,
                                            cache_dir=tmp_path))
    assert n_other > 0 and len(list(tmp_path.glob("*.json"))) == 4


def test_bulk_structure_of_species_the_model_lacks_is_refused(counted_run):
    from ase import Atoms

    from mlip_plugin.pipeline.validate import validate

    _, run = counted_run
    cu3au = Atoms("AuCu3", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                             [0, 0.5, 0.5]], cell=[3.75] * 3, pbc=True)
    with pytest.raises(InputError, match=r"suite 'bulk' computes the structure given "
                                         r"\(AuCu3\), and its species \['Au'\] are not "
                                         r"species of the model \(\['Cu'\]\)"):
        validate(run.fit.model, {"structure": cu3au}, reference=SPEC)


def test_cubic_unit_keys_are_those_of_before_the_bulk_suite():
    """The bulk suite's own settings (structure, relax_steps, phonon_length) are left out of
    a cubic suite's unit key: the keys below were computed by the code before the bulk suite
    existed, so a run folder's cached reference properties (perhaps of DFT) stay valid."""
    from mlip_plugin.pipeline.reference import CalculatorSpec
    from mlip_plugin.pipeline.validate import _unit_key, _units

    spec = CalculatorSpec.coerce({"calculator": "ase.calculators.emt.EMT", "parameters": {}})
    fcc = list(_units("fcc", suites.SuiteSettings.fast(symbol="Cu")))
    assert [_unit_key(spec, "fcc", u) for u in fcc[:3]] == [
        "caf80b0646a99e0185c351860d6d1174", "6fadcfe0fa90a7f0aed294df7f08135e",
        "12ab63781765a048682abcca326f48d8"]
    silicon = list(_units("silicon", suites.SuiteSettings(symbol="Si")))
    assert [_unit_key(spec, "silicon", u) for u in silicon[:2]] == [
        "cd0bc05d5f1199bd126b08fe414263bf", "7a8dad1292df4c3e5159d0d9da1ba1f6"]
