"""The command line as a new user meets it: options named as the CLI names them, checks
before work, defaults shown, logging levels, warnings as log lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from mlip_plugin.cli import SUITE_NAMES, VALIDATE_MARK, build_parser, log_levels, main
from mlip_plugin.errors import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cu_model(tmp_path):
    """An untrained one-species (Cu) ACE model file."""
    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.models.linear_ace import LinearACEModel

    basis = ACEBasis(["Cu"], 2, 4, 4.5)
    model = LinearACEModel.from_support(basis, [0], [0.0], {"Cu": 0.0})
    return model.save(tmp_path / "cu.json")


@pytest.fixture
def fake_validate(monkeypatch):
    """Replace the validation by a quick fake; records the settings it was called with."""
    from types import SimpleNamespace

    calls = []

    def validate(model, settings, symbol=None):
        calls.append(dict(settings, symbol=symbol))
        rows = [{"name": "c11", "unit": "GPa", "model": 170.0, "reference": None,
                 "abs_error": None, "error_percent": None}]
        return SimpleNamespace(rows=rows, to_dict=lambda: {"suite": "fcc", "properties": rows})

    import mlip_plugin.pipeline  # noqa: F401  (the package's validate hides the module)

    monkeypatch.setattr(sys.modules["mlip_plugin.pipeline.validate"], "validate", validate)
    return calls


def test_validate_output_that_is_a_file_fails_before_any_work(cu_model, tmp_path, capsys,
                                                               fake_validate):
    (tmp_path / "afile").write_text("keep me")
    assert main(["validate", str(cu_model), "-o", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a folder; give another -o/--output" in err
    assert fake_validate == [] and (tmp_path / "afile").read_text() == "keep me"


def test_validate_never_overwrites_a_run_metrics_json(cu_model, tmp_path, capsys,
                                                      fake_validate):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"model_file": "model.json", "errors": {}}')
    assert main(["validate", str(cu_model), "-o", str(run)]) == 2
    assert "was not written by mlip validate" in capsys.readouterr().err
    assert fake_validate == [] and "model_file" in (run / "metrics.json").read_text()
    out = tmp_path / "v"
    for _ in range(2):  # its own file it replaces
        assert main(["validate", str(cu_model), "-o", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["written_by"] == VALIDATE_MARK and doc["suite"] == "fcc"


def test_validate_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: none, the model's values only" in text
    assert "default: '.', the current folder" in text
    assert "--lattice-constant" in text and "else from the model's species" in text


def test_validate_lattice_constant_option(cu_model, tmp_path, capsys, fake_validate):
    assert main(["validate", str(cu_model), "--suite", "bcc", "--lattice-constant", "2.87",
                 "-o", str(tmp_path / "v")]) == 0
    assert fake_validate[0]["lattice_constant"] == 2.87
    assert fake_validate[0]["suite"] == "bcc" and fake_validate[0]["reference"] == "none"


def test_validate_non_ground_state_names_the_cli_option(cu_model, tmp_path, capsys):
    """A bcc suite for Cu needs a lattice constant: the message names --lattice-constant
    (no work is done before the check)."""
    assert main(["validate", str(cu_model), "--suite", "bcc", "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "ASE tabulates no lattice constant" in err and "--lattice-constant" in err
    assert not (tmp_path / "v").exists()


def test_validate_with_a_failing_reference_calculator_names_it(cu_model, tmp_path, capsys,
                                                               monkeypatch):
    (tmp_path / "cli_failing_calculators.py").write_text(
        "from ase.calculators.emt import EMT\n\n\n"
        "class AlwaysFail(EMT):\n"
        "    def calculate(self, *args, **kwargs):\n"
        "        raise RuntimeError('SCF did not converge')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["validate", str(cu_model), "--suite", "fcc", "--reference",
                 "cli_failing_calculators.AlwaysFail", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlip: error: the reference calculator "
                          "cli_failing_calculators.AlwaysFail failed on the property group")
    assert "RuntimeError: SCF did not converge" in err and "Traceback" not in err


def test_suite_names_match_the_suites():
    from mlip_plugin.properties.suites import SUITES

    assert SUITE_NAMES == tuple(SUITES)


def test_data_info_names_cli_options(tmp_path, capsys):
    (tmp_path / "README.md").write_text("# notes\n")
    assert main(["data", "info", str(tmp_path / "README.md")]) == 2
    err = capsys.readouterr().err
    assert "give it with --format, one of" in err and "format=" not in err
    xyz = tmp_path / "one.xyz"
    xyz.write_text('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 energy=-1.0 '
                   'pbc="T T T"\nCu 0 0 0\n')
    assert main(["data", "info", str(xyz), "--energy-key", "nope"]) == 2
    assert "--energy-key='nope' is not in" in capsys.readouterr().err


def test_data_info_of_a_folder(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path) + "/"]) == 2
    err = capsys.readouterr().err
    assert "it is a folder; give a data file" in err and "no such file" not in err


@pytest.mark.parametrize("verbose, quiet, levels", [
    (0, False, (logging.WARNING, logging.INFO)),
    (1, False, (logging.WARNING, logging.DEBUG)),
    (2, False, (logging.DEBUG, logging.DEBUG)),
    (2, True, (logging.WARNING, logging.WARNING)),
])
def test_log_levels(verbose, quiet, levels):
    assert log_levels(verbose, quiet) == levels


def test_verbose_adds_debug_messages():
    """Default: our progress, no debug; -v: our debug messages too."""
    def stderr(*flags):
        proc = subprocess.run([sys.executable, "-m", "mlip_plugin.cli", *flags, "data", "info",
                               "--example"], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    assert "DEBUG" not in stderr()
    assert "DEBUG mlip_plugin.data.io: reading" in stderr("-v")
    assert "-vv" in " ".join(build_parser().format_help().split())


def test_command_levels_are_restored(monkeypatch):
    root, ours = logging.getLogger(), logging.getLogger("mlip_plugin")
    before = root.level, ours.level
    seen = []
    monkeypatch.setattr("mlip_plugin.cli._cmd_info",
                        lambda args: seen.append((root.level, ours.level)) or 0)
    assert main(["-v", "info", "m.json"]) == 0
    assert seen == [(logging.WARNING, logging.DEBUG)]
    assert (root.level, ours.level) == before


def test_warnings_print_as_log_lines(monkeypatch, caplog, recwarn):
    """A warning during a command is a log line (category and message), not Python's
    warning display with its source line."""
    def command(args):
        warnings.warn("something converged slowly", ConvergenceWarning, stacklevel=1)
        return 0

    monkeypatch.setattr("mlip_plugin.cli._cmd_info", command)
    with caplog.at_level("WARNING"):
        assert main(["info", "m.json"]) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "py.warnings"] == [
        "ConvergenceWarning: something converged slowly"]
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]


def test_fit_protocol_descriptions_state_their_settings():
    """The balanced protocol said it was the demo's basis while using another one."""
    doc = yaml.safe_load((ROOT / "workflows/aiida/protocols/fit.yaml").read_text())
    settings = doc["default_inputs"]["settings"]
    text = " ".join(doc["protocols"]["balanced"]["description"].split())
    assert "default basis of `mlip demo`" not in text
    assert f"total degree {settings['basis']['total_degree']}" in text
    assert f"{settings['max_active']} functions" in text
    assert f"p = {settings['prior']['p']:g}" in text


def _write_cu3au(path: Path) -> Path:
    import ase.io
    from ase import Atoms

    ase.io.write(path, Atoms("AuCu3", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0],
                                                        [0.5, 0, 0.5], [0, 0.5, 0.5]],
                             cell=[3.75] * 3, pbc=True))
    return path


def test_validate_bulk_structure_option(cu_model, tmp_path, capsys, fake_validate):
    structure = _write_cu3au(tmp_path / "cu3au.extxyz")
    assert main(["validate", str(cu_model), "--suite", "bulk", "--structure", str(structure),
                 "-o", str(tmp_path / "v")]) == 0
    assert fake_validate[0]["suite"] == "bulk"
    assert fake_validate[0]["structure"] == str(structure)
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--structure FILE" in text and "(its first frame)" in text
    assert "default: bulk with --structure" in text


def test_validate_bulk_refusals_name_the_problem(cu_model, tmp_path, capsys):
    """A structure of species the model lacks, a missing file, a bulk suite without a
    structure: exit 2 with the reason, before any work."""
    structure = _write_cu3au(tmp_path / "cu3au.extxyz")
    out = str(tmp_path / "v")
    cases = [(["--structure", str(structure)], "its species ['Au'] are not species of the "
                                               "model (['Cu'])"),
             (["--structure", str(tmp_path / "none.cif")], "cannot read"),
             (["--suite", "bulk"], "validate.suite='bulk' computes a crystal you give"),
             (["--suite", "fcc", "--structure", str(structure)],
              "validate.suite='fcc' builds its own crystal")]
    for options, message in cases:
        assert main(["validate", str(cu_model), *options, "-o", out]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()
