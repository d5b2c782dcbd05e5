"""Suites, single properties by name, comparison tables, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from mlip_plugin.errors import InputError
from mlip_plugin.properties import (
    DefectSettings,
    ElasticResult,
    ElasticSettings,
    MDSettings,
    SuiteSettings,
    compare,
    format_table,
    run_property,
    run_suite,
)

SI_KEYS = ["a0_diamond", "bulk_modulus", "c11", "c12", "c44", "vacancy_formation",
           "interstitial_tetrahedral", "interstitial_hexagonal", "interstitial_dumbbell",
           "surface_111", "surface_110", "surface_100"]


@pytest.fixture(scope="module")
def si_suite():
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
    )

    sw = Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    return run_suite(sw, "silicon", SuiteSettings(defects=DefectSettings(supercell=2)))


@pytest.fixture(scope="module")
def cu_fast_suite():
    from ase.calculators.emt import EMT

    return run_suite(EMT(), "fcc", SuiteSettings.fast("Cu"))


@pytest.mark.slow
def test_silicon_suite_runs_end_to_end(si_suite):
    names = [row["name"] for row in si_suite.rows]
    assert set(SI_KEYS) <= set(names)
    assert {"c11_clamped_ion", "c12_clamped_ion", "c44_clamped_ion"} <= set(names)
    # SW puts the nearest neighbour at the pair minimum 2^(1/6) sigma
    assert si_suite.value("a0_diamond") == pytest.approx(4 * 2 ** (1 / 6) * 2.0951 / 3 ** 0.5,
                                                         abs=1e-4)
    assert si_suite.value("c44_clamped_ion") > si_suite.value("c44") + 30.0
    assert si_suite.value("phonon_imaginary_modes") == 0.0
    assert si_suite.value("phonon_min_frequency") > -1e-3
    assert si_suite.value("bulk_modulus") == pytest.approx(
        (si_suite.value("c11") + 2 * si_suite.value("c12")) / 3, rel=0.01)
    assert all(np.isfinite(row["value"]) for row in si_suite.rows)
    assert set(si_suite.timings) >= {"elastic", "surface_111", "interstitial_dumbbell"}
    json.loads(json.dumps(si_suite.to_dict()))


@pytest.mark.slow
@pytest.mark.needs_data
def test_silicon_suite_compares_with_the_gap18_file(si_suite, shared_data):
    reference = json.loads((shared_data / "si_gap18_reference" / "properties.json").read_text())
    rows = compare(si_suite, reference)
    assert [r["name"] for r in rows] == SI_KEYS
    for row in rows:
        ref = reference["dft"][row["name"]]
        assert row["reference"] == ref
        assert row["abs_error"] == pytest.approx(abs(row["model"] - ref))
        assert row["error_percent"] == pytest.approx(100 * (row["model"] - ref) / abs(ref))
    assert "c44" in format_table(rows)
    # the published-model columns can be chosen too
    assert len(compare(si_suite, reference, column="published_models")) == 0
    assert len(compare(si_suite, reference["published_models"]["GAP-18"])) == 11


@pytest.mark.slow
def test_fcc_fast_suite_with_emt(cu_fast_suite):
    table = cu_fast_suite.to_dict()
    json.loads(json.dumps(table))
    names = [row["name"] for row in table["rows"]]
    assert names[:5] == ["a0_fcc", "bulk_modulus", "c11", "c12", "c44"]
    assert cu_fast_suite.value("md_stable") == 1.0
    assert cu_fast_suite.value("phonon_imaginary_modes") == 0.0
    verified = {"c11": 172.6, "c12": 115.4, "c44": 89.9, "vacancy_formation": 1.224,
                "surface_111": 1.044}  # ECOSYSTEM.md; fast settings stay within 1 %
    for row in compare(cu_fast_suite, verified):
        assert abs(row["error_percent"]) < 1.0, row
    self_rows = compare(cu_fast_suite, cu_fast_suite)
    assert all(r["abs_error"] == 0.0 for r in self_rows)
    assert {"name", "unit", "model", "reference", "abs_error", "error_percent"} == set(
        self_rows[0])


def test_bcc_suite_subset_shows_the_instability_of_bcc_copper(emt):
    settings = SuiteSettings.fast("Cu", groups=("eos", "elastic"), lattice_constant=2.87)
    result = run_suite(emt, "bcc", settings)
    assert [r["name"] for r in result.rows] == ["a0_bcc", "bulk_modulus", "c11", "c12", "c44"]
    assert result.value("c11") < result.value("c12")  # C' < 0: Bain-unstable


def test_suite_subset_for_a_demo(emt):
    settings = SuiteSettings.fast("Cu", groups=("interstitials", "surfaces"),
                                  interstitial_sites=("dumbbell",), miller_indices=((1, 1, 1),))
    result = run_suite(emt, "fcc", settings)
    assert [r["name"] for r in result.rows] == ["interstitial_dumbbell", "surface_111"]


def test_wrong_interstitial_site_for_the_suite_lattice(emt):
    settings = SuiteSettings.fast("Cu", groups=("interstitials",),
                                  interstitial_sites=("hexagonal",))
    with pytest.raises(InputError, match="hexagonal interstitial needs an elemental diamond"):
        run_suite(emt, "fcc", settings)


def test_run_property_by_name(emt):
    result = run_property("elastic", emt, bulk("Cu", cubic=True), ElasticSettings.fast())
    assert isinstance(result, ElasticResult)
    assert result.c44 == pytest.approx(89.9, abs=0.3)


def test_compare_hand_rows():
    model = [{"name": "c11", "unit": "GPa", "value": 110.0, "uncertainty": None},
             {"name": "zero", "unit": "eV", "value": 0.5, "uncertainty": None},
             {"name": "only_model", "unit": "eV", "value": 1.0, "uncertainty": None}]
    rows = compare(model, {"c11": 100.0, "zero": 0.0, "extra": 3.0})
    assert rows == [
        {"name": "c11", "unit": "GPa", "model": 110.0, "reference": 100.0, "abs_error": 10.0,
         "error_percent": 10.0},
        {"name": "zero", "unit": "eV", "model": 0.5, "reference": 0.0, "abs_error": 0.5,
         "error_percent": None}]


@pytest.mark.parametrize("call, match", [
    (lambda c: run_suite(c, "hcp"), "suite 'hcp' is not known"),
    (lambda c: run_suite(c, "fcc"), "needs an element"),
    (lambda c: run_suite(c, "fcc", SuiteSettings(symbol="Fe")),
     r"no fcc lattice constant for Fe; give .*validate.lattice_constant.*--lattice-constant"),
    (lambda c: SuiteSettings(lattice_constant=-3.6), "lattice_constant=-3.6 is not allowed"),
    (lambda c: SuiteSettings(groups=("eos", "magic")), "unknown groups"),
    (lambda c: SuiteSettings(symbol="Xx"), "not a chemical element"),
    (lambda c: run_property("bandgap", c, bulk("Cu")), "property 'bandgap' is not known"),
    (lambda c: run_property("eos", c, bulk("Cu"), ElasticSettings()), "must be a EOSSettings"),
    (lambda c: compare(3.0, {"a": 1.0}), "model table of type float"),
])
def test_suite_errors(emt, call, match):
    with pytest.raises(InputError, match=match):
        call(emt)


def test_plots_write_files(tmp_path, emt, cu_fast_suite):
    from mlip_plugin.properties import plots

    phonon = cu_fast_suite.results["phonons"]
    md = cu_fast_suite.results["md"]
    rows = compare(cu_fast_suite, {"c11": 170.0, "c44": 95.0})
    paths = [tmp_path / name for name in ("err.png", "bands.png", "msd.png", "rdf.png")]
    plots.plot_property_errors(rows, paths[0])
    fig = plots.plot_phonon_bands(phonon, reference=phonon, path=paths[1])
    plots.plot_msd([md], paths[2])
    plots.plot_rdf(md, paths[3])
    assert all(p.stat().st_size > 1000 for p in paths)
    assert len(fig.axes[0].get_xticks()) == len(phonon.distances) + 1


def test_fast_settings_take_any_override():
    """Overrides replace the fast defaults instead of clashing with them (TypeError)."""
    s = SuiteSettings.fast("Cu", groups=("eos",), clamped_ion=True,
                           md=MDSettings(temperature=500.0))
    assert s.clamped_ion is True and s.md.temperature == 500.0
    assert s.eos == SuiteSettings.fast().eos


@pytest.mark.parametrize("species, lattice, suite", [
    (["Cu"], None, "fcc"), (["Fe"], None, "bcc"), (["Si"], None, "silicon"),
    (["Cu", "Cu"], None, "fcc"), (["Ti"], None, None), (["C"], None, None),
    (["Al", "Ti"], None, None), (["Cu"], "bcc", "bcc"), (["Ge"], "diamond", None),
    ([], None, None),
])
def test_suite_for_species(species, lattice, suite):
    from mlip_plugin.properties.suites import suite_for

    assert suite_for(species, lattice) == suite


def test_tabulated_lattice_constant():
    from mlip_plugin.properties.suites import tabulated_lattice_constant

    assert tabulated_lattice_constant("Cu", "fcc") == pytest.approx(3.61)
    assert tabulated_lattice_constant("Cu", "bcc") is None
