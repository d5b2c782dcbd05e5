"""The YAML schema of mlip run: defaults, relative paths and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin import InputError
from mlip_plugin.pipeline.config import RunConfig, load_config


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config(tmp_path):
    cfg = load_config(write(tmp_path, "structures: {element: Cu}\n"))
    assert cfg.structures.preset == "tiny" and cfg.structures.element == "Cu"
    assert cfg.reference.calculator == "ase.calculators.emt.EMT"
    assert cfg.fit.solver == "omp" and cfg.validate.suite == "fcc"


def test_data_paths_relative_to_config(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = load_config(write(tmp_path / "sub", "data: {train: train.xyz}\nvalidate: null\n"))
    assert cfg.data.train == str(tmp_path / "sub" / "train.xyz")
    assert cfg.validate is None


@pytest.mark.parametrize("text,match", [
    ("structures: {element: Cu}\nfitt: {}\n", r"unknown key 'fitt' in section 'top level'.*"
                                               r"did you mean 'fit'"),
    ("structures: {element: Cu}\nfit: {max_activ: 3}\n", r"unknown key 'max_activ'.*"
                                                          r"'max_active'"),
    ("structures: {element: Cu, supercel: 3}\n", r"unknown key 'supercel' in section "
                                                 r"'structures'"),
    ("structures: {element: Cu}\nfit: {solver: magic}\n", r"fit.solver='magic' is not one of"),
    ("structures: {element: Cu}\nfit: {weights: {energi: 1}}\n",
     r"unknown key 'energi' in section 'fit.weights'"),
    ("fit: {}\n", "needs a 'structures' section"),
    ("data: {test: x.xyz}\n", "needs 'train'"),
    ("structures: {element: Cu}\ndata: {train: x}\n", "either 'structures' or 'data'"),
    ("structures: [1, 2]\n", "section 'structures' must be a mapping"),
    (": : :\n", "not valid YAML"),
])
def test_bad_configs(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_config(write(tmp_path, text))


def test_config_that_is_no_text_is_named(tmp_path):
    """Bytes that are not UTF-8 gave a UnicodeDecodeError traceback."""
    path = tmp_path / "run.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match="run.yaml' is not a text file .not UTF-8"):
        load_config(path)


def test_a_cutoff_beyond_any_local_potential_is_refused_at_load(tmp_path):
    """r_cut 1e6 (a unit slip) passed --dry-run, then the fit's neighbour list grew without
    end; ACEBasis refuses it too."""
    from mlip_plugin.ace import ACEBasis

    text = "structures: {element: Cu}\nfit: {basis: {correlation_order: 2, total_degree: 6, "
    with pytest.raises(InputError, match=r"fit.basis.r_cut=1000000.0 Å is not allowed.*at "
                                         r"most 20 Å.*Give it in Å"):
        load_config(write(tmp_path, text + "r_cut: 1.0e6}}\n"))
    assert load_config(write(tmp_path, text + "r_cut: 20}}\n")).fit.basis["r_cut"] == 20.0
    with pytest.raises(InputError, match="r_cut=20.5 Å is not allowed"):
        ACEBasis(["Cu"], 2, 6, 20.5)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_round_trip_dict(tmp_path):
    cfg = load_config(write(tmp_path, "structures: {element: Cu, slabs: [[1, 1, 1]]}\n"))
    again = RunConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "data"})
    assert again.structures == cfg.structures
    assert np.array_equal(again.structures.slabs, ((1, 1, 1),))


FIT = "structures: {element: Cu}\nfit: "


@pytest.mark.parametrize("text,match", [
    (FIT + "{max_active: 2.5}\n", r"fit.max_active=2.5 \(float\) is not allowed: give an "
                                  r"integer >= 1"),
    (FIT + "{validation_fraction: abc}\n", r"fit.validation_fraction='abc' \(str\).*a finite "
                                           r"number >= 0 and < 1"),
    (FIT + "{validation_fraction: 1.5}\n", r"fit.validation_fraction=1.5"),
    (FIT + "{weights: {energy: ten}}\n", r"fit.weights.energy='ten' \(str\)"),
    (FIT + "{weights: {energy: -1}}\n", r"fit.weights.energy=-1 .*>= 0"),
    (FIT + "{by_config_type: {bulk: {energ: 1}}}\n",
     r"unknown key 'energ' in section 'fit.by_config_type.bulk'.*'energy'"),
    (FIT + "{by_config_type: {bulk: 3}}\n", r"fit.by_config_type.bulk=3 \(int\).*a mapping"),
    (FIT + "{e0: {Cu: abc}}\n", r"fit.e0.Cu='abc' \(str\)"),
    (FIT + "{e0: {Xx: 1}}\n", r"fit.e0 has the key 'Xx', which is not a chemical symbol"),
    (FIT + "{e0: automatic}\n", r"fit.e0='automatic' is not one of \('auto'"),
    (FIT + "{prior: {q: 3}}\n", r"unknown key 'q' in section 'fit.prior'"),
    (FIT + "{prior: {kind: foo}}\n", r"fit.prior.kind='foo' is not one of"),
    (FIT + "{prior: {p: 0}}\n", r"fit.prior.p=0 .*> 0"),
    (FIT + "{seed: abc}\n", r"fit.seed='abc' \(str\).*an integer >= 0"),
    (FIT + "{tsvd: 'no'}\n", r"fit.tsvd='no' \(str\).*true or false"),
    (FIT + "{select_on_prior: 1}\n", r"fit.select_on_prior=1 \(int\)"),
    (FIT + "{basis: {corr_order: 3}}\n", r"unknown key 'corr_order' in section 'fit.basis'"),
    (FIT + "{basis: {correlation_order: x, total_degree: 6, r_cut: 5}}\n",
     r"fit.basis.correlation_order='x'"),
    (FIT + "{basis: {correlation_order: 2, total_degree: 6}}\n", r"fit.basis has no \['r_cut'\]"),
    (FIT + "{model: kernel, kernel: {sigmaa: 3}}\n", r"unknown keys \['sigmaa'\] in "
                                                    r"fit.kernel \(did you mean 'sigma'"),
    (FIT + "{model: kernel, kernel: {lam: abc}}\n", r"fit.kernel.*lam"),
    (FIT + "{model: kernel, kernel: {sigmas: 3}}\n", r"fit.kernel.sigmas=3"),
    ("structures: {element: Cu}\nreference: {calculator: ase.calculators.emt.EMT, "
     "parameters: [1]}\n", r"reference.parameters=\[1\] \(list\) is not a mapping"),
    ("structures: {element: Cu, slabs: 5}\n", r"structures.slabs=5 \(int\).*Miller indices"),
    ("structures: {element: Cu, slabs: [[0, 0, 0]]}\n", r"structures.slabs=\[0, 0, 0\]"),
    ("structures: {element: Cu, supercell: two}\n", r"structures.supercell='two' \(str\)"),
    ("structures: {element: Cu, md_temperatures: 300}\n", r"structures.md_temperatures=300"),
    ("structures: {element: Cu, md_with_vacancy: 'yes'}\n", r"structures.md_with_vacancy="),
    ("data: {train: 5}\n", r"data.train=5 \(int\).*a file path"),
    ("data: {train: x.xyz, units: {energy: kcal}}\n", r"data.units.energy='kcal'.*kcal/mol"),
    ("data: {train: x.xyz, units: {enrgy: eV}}\n", r"unknown key 'enrgy' in section "
                                                  r"'data.units'"),
    ("structures: {element: Cu}\nvalidate: {suite: fccc}\n",
     r"validate.suite='fccc' is not one of \('silicon', 'fcc', 'bcc', 'bulk'\)"),
    ("structures: {element: Cu}\nvalidate: {preset: slow}\n",
     r"validate.preset='slow' is not one of \('fast', 'default'\)"),
    ("structures: {element: Cu}\nvalidate: {reference: EMT}\n",
     r"validate.reference='EMT' is not allowed"),
    ("structures: {element: Cu}\nvalidate: {properties: [elastik]}\n",
     r"validate.properties=\['elastik'\] has unknown groups"),
    ("structures: {element: Cu}\nvalidate: {along_path: [0]}\n", r"validate.along_path=0"),
    ("structures: {element: Cu}\noutput: 5\n", r"output=5 \(int\)"),
])
def test_wrong_types_are_named_input_errors(tmp_path, text, match):
    """Every setting is type-checked when the configuration is read: an InputError that
    names section.key and the value, never a TypeError later in the run."""
    with pytest.raises(InputError, match=match):
        load_config(write(tmp_path, text))


def test_yaml_numbers_read_as_strings_are_converted(tmp_path):
    """YAML 1.1 reads 1e3 (no dot) as a string; such a string counts as the number."""
    cfg = load_config(write(tmp_path, (
        "structures: {element: Cu, supercell: '2', md_temperatures: [3e2]}\n"
        "fit: {max_active: 1e3, validation_fraction: 1e-1, seed: '7', weights: {energy: '30'},"
        " e0: {Cu: -1e-1}, by_config_type: {bulk: {forces: 2}}, prior: {p: 3},"
        " basis: {correlation_order: 2, total_degree: 6, r_cut: 5e0}}\n")))
    f = cfg.fit
    assert (f.max_active, f.validation_fraction, f.seed) == (1000, 0.1, 7)
    assert f.weights == {"energy": 30.0} and f.e0 == {"Cu": -0.1}
    assert f.by_config_type == {"bulk": {"forces": 2.0}}
    assert f.prior == {"kind": "algebraic", "p": 3.0}
    assert f.basis["r_cut"] == 5.0 and isinstance(f.basis["correlation_order"], int)
    assert cfg.structures.supercell == 2 and cfg.structures.md_temperatures == (300.0,)


def test_settings_checks_are_idempotent():
    """dataclasses.replace (as the workflows use) re-runs the checks on checked values."""
    from dataclasses import replace

    from mlip_plugin.pipeline.config import FitSettings, ValidateSettings

    s = FitSettings(max_active="1e3", weights={"energy": 10})
    assert replace(s, solver="asp") == FitSettings(max_active=1000, solver="asp",
                                                   weights={"energy": 10.0})
    assert replace(ValidateSettings(), preset="default").preset == "default"


def test_validate_reference_table_relative_to_config(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "table.json").write_text('{"c11": 176.0}')
    cfg = load_config(write(tmp_path / "sub", "structures: {element: Cu}\n"
                                              "validate: {reference: table.json}\n"))
    assert cfg.validate.reference == str(tmp_path / "sub" / "table.json")
    cfg.check_inputs()
    again = load_config(write(tmp_path, "structures: {element: Cu}\n"
                                        "validate: {reference: calculator}\n"))
    assert again.validate.reference == "calculator"


@pytest.mark.parametrize("text,content,match", [
    ("data: {train: missing.xyz}\n", None, r"data.train: cannot read .*missing.xyz.*no such"),
    ("data: {train: t.xyz, test: gone.xyz}\n", None, r"data.test: cannot read .*gone.xyz"),
    ("structures: {element: Cu}\nvalidate: {reference: nothere.json}\n", None,
     r"reference table .*nothere.json' does not exist"),
    ("structures: {element: Cu}\nvalidate: {reference: t.json}\n", "{",
     r"reference table .*t.json' is not readable JSON"),
    ("structures: {element: Cu}\nvalidate: {reference: t.json}\n", "3",
     r"reference table .*t.json' holds a JSON int"),
    ("structures: {element: Cu}\nvalidate: {reference: t.json}\n",
     '[{"name": "c11", "value": "abc"}]',
     r"reference table .*t.json': the row 'c11' has the value 'abc', not a number"),
    ("structures: {element: Cu}\nvalidate: {reference: t.json}\n",
     '[{"name": "c11", "value": true}]', r"the row 'c11' has the value True, not a number"),
])
def test_check_inputs_finds_missing_and_corrupt_files(tmp_path, text, content, match):
    (tmp_path / "t.xyz").write_text("")
    if content is not None:
        (tmp_path / "t.json").write_text(content)
    cfg = load_config(write(tmp_path, text))  # reading the settings does not open files
    with pytest.raises(InputError, match=match):
        cfg.check_inputs()


def test_prior_kind_alone_keeps_the_default_exponent():
    from mlip_plugin.pipeline.config import FitSettings

    default = FitSettings().prior
    assert FitSettings(prior={"kind": "algebraic"}).prior == default
    assert FitSettings(prior={"p": 3}).prior == {**default, "p": 3.0}
    assert FitSettings(prior={"kind": "exponential"}).prior == {"kind": "exponential"}


# -- the validation's defaults: reference and suite (a data-only run once validated the fcc
# -- suite against EMT whatever the data, and failed only after the fit)

def test_data_run_without_reference_reports_model_values(tmp_path, caplog, cu_example):
    with caplog.at_level("INFO", logger="mlip_plugin"):
        cfg = load_config(write(tmp_path, f"data: {{train: {cu_example}}}\n"))
    assert cfg.reference is None and cfg.validate.reference == "none"
    assert "validate.reference: none" in caplog.text
    assert cfg.to_dict()["reference"] is None
    with pytest.raises(InputError, match=r"validate.reference='calculator' .* names none.*"
                                         r"add a section 'reference: "):
        load_config(write(tmp_path, "data: {train: t.xyz}\nvalidate: {reference: calculator}\n"))
    given = load_config(write(tmp_path, "data: {train: t.xyz}\n"
                                        "reference: {calculator: ase.calculators.emt.EMT}\n"))
    assert given.validate.reference == "calculator"
    assert given.reference.calculator == "ase.calculators.emt.EMT"


def test_data_run_chooses_the_suite_from_the_training_species(tmp_path, caplog, cu_example,
                                                             write_ti_data):
    from mlip_plugin.pipeline.run import read_data

    cfg = load_config(write(tmp_path, f"data: {{train: {cu_example}}}\n"))
    assert cfg.validate.suite is None  # known once the data are read
    with caplog.at_level("INFO", logger="mlip_plugin"):
        read_data(cfg)
    assert cfg.validate.suite == "fcc" and "validate.suite: fcc (chosen" in caplog.text
    ti_file = write_ti_data(tmp_path / "ti.xyz")
    ti = load_config(write(tmp_path, f"data: {{train: {ti_file}}}\n"))
    with pytest.raises(InputError, match=r"validate.suite is not given.*\['Ti'\].*"
                                         r"validate: null"):
        read_data(ti)
    named = load_config(write(tmp_path, f"data: {{train: {tmp_path / 'ti.xyz'}}}\nvalidate: "
                                        "{suite: bcc}\n"))
    with pytest.raises(InputError, match=r"computes Ti in the bcc lattice.*"
                                         r"validate.lattice_constant"):
        read_data(named)
    ok = load_config(write(tmp_path, f"data: {{train: {tmp_path / 'ti.xyz'}}}\nvalidate: "
                                     "{suite: bcc, lattice_constant: 3.3}\n"))
    read_data(ok)
    assert ok.validate.suite == "bcc"


@pytest.mark.parametrize("structures, suite", [
    ("{element: Cu}", "fcc"), ("{element: Si, lattice: diamond}", "silicon"),
    ("{element: Fe, lattice: bcc}", "bcc"),
])
def test_structures_run_chooses_the_suite_from_its_lattice(tmp_path, structures, suite):
    assert load_config(write(tmp_path, f"structures: {structures}\n")).validate.suite == suite


@pytest.mark.parametrize("text, match", [
    ("structures: {element: Cu, lattice: bcc}\n",
     r"validate.suite='bcc' computes Cu in the bcc lattice.*validate.lattice_constant"),
    ("structures: {element: Po, lattice: sc}\n", r"validate.suite is not given.*\(sc\)"),
    ("structures: {element: Cu}\nvalidate: {suite: silicon}\n",
     r"validate.suite='silicon' computes Si, which is not among the training species"),
    ("structures: {element: Cu}\nvalidate: {symbol: Ni}\n", r"computes Ni, which is not"),
    ("structures: {element: Cu}\nvalidate: {lattice_constant: -1}\n",
     r"validate.lattice_constant=-1 \(int\)"),
    ("structures: {element: Cu}\nvalidate: {symbol: Xx}\n", r"validate.symbol='Xx'"),
])
def test_suite_checks_at_load(tmp_path, text, match):
    with pytest.raises(InputError, match=match) as err:
        load_config(write(tmp_path, text))
    if "validate.suite" in match:
        assert "validate: null" in str(err.value)


def test_validate_lattice_constant_reaches_the_suite_settings(tmp_path):
    from mlip_plugin.pipeline.validate import suite_settings

    cfg = load_config(write(tmp_path, "structures: {element: Cu, lattice: bcc}\n"
                                      "validate: {lattice_constant: '2.87'}\n"))
    assert cfg.validate.suite == "bcc" and cfg.validate.lattice_constant == 2.87
    for preset in ("fast", "default"):
        cfg.validate.preset = preset
        assert suite_settings(cfg.validate, "Cu").lattice_constant == 2.87


def test_demo_configuration_keeps_its_settings():
    from mlip_plugin.cli import DEMO_CONFIG

    cfg = RunConfig.from_dict(DEMO_CONFIG)
    v = cfg.validate
    assert (v.suite, v.preset, v.reference) == ("fcc", "fast", "calculator")
    assert v.properties == ["elastic", "vacancy", "surfaces", "phonons", "md"]
    assert (v.symbol, v.lattice_constant) == (None, None)
    assert cfg.reference.calculator == "ase.calculators.emt.EMT"


def test_data_format_setting(tmp_path, cu_example):
    import shutil

    shutil.copy(cu_example, tmp_path / "cu.txt")
    cfg = load_config(write(tmp_path, "data: {train: cu.txt, format: extxyz}\n"))
    assert cfg.data.read_kwargs()["format"] == "extxyz"
    from mlip_plugin.pipeline.run import read_data

    train, test = read_data(cfg)
    assert len(train) == 12 and test == []
