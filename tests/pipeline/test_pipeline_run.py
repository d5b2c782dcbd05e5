"""`mlip run` end to end: outputs, resuming after a kill, and clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlip_plugin.cli import main

HERE = Path(__file__).resolve().parent

FAST_FIT = {"solver": "omp", "max_active": 40,
            "basis": {"correlation_order": 2, "total_degree": 8, "r_cut": 4.5}}


def _config(tmp_path, reference=None, validate=None, **structures):
    doc = {"output": str(tmp_path / "out"),
           "structures": {"preset": "tiny", "element": "Cu", **structures},
           "fit": FAST_FIT, "validate": validate}
    if reference:
        doc["reference"] = reference
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


def test_fit_command_writes_model_metrics_report(tmp_path, capsys):
    cfg = _config(tmp_path, md_snapshots=0)
    assert main(["fit", str(cfg)]) == 0
    out = tmp_path / "out"
    for name in ("model.json", "metrics.json", "report.md", "report.html", "config.yaml",
                 "structures.json", "learning_curve.png", "parity.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for part in ("train", "validation"):
        assert set(metrics["errors"][part]) >= {"energy_mae_meV_per_atom",
                                                "energy_rmse_meV_per_atom",
                                                "force_mae_eV_per_A", "force_rmse_eV_per_A",
                                                "virial_mae_meV_per_atom"}
    assert "model:" in capsys.readouterr().out
    assert main(["info", str(out / "model.json")]) == 0
    assert "training_data_sha256" in capsys.readouterr().out


def test_dry_run(tmp_path, capsys):
    assert main(["run", str(_config(tmp_path)), "--dry-run"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    assert not (tmp_path / "out" / "model.json").exists()


@pytest.mark.slow
def test_kill_during_collection_then_resume(tmp_path):
    log = tmp_path / "calls.log"
    reference = {"calculator": "pipeline_test_calculators.SlowLoggingEMT",
                 "parameters": {"log": str(log), "delay": 0.3}}
    cfg = _config(tmp_path, reference=reference, md_snapshots=0)
    cmd = [sys.executable, "-m", "mlip_plugin.cli", "-q", "run", str(cfg)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        cached = list((tmp_path / "out" / "reference_cache").glob("*.json")) if (
            tmp_path / "out" / "reference_cache").is_dir() else []
        if len(cached) >= 4:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out" / "model.json").exists()  # killed before the fit
    cache = tmp_path / "out" / "reference_cache"
    finished = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    n_logged = len(log.read_text().splitlines())
    assert len(finished) >= 4
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    n_structures = json.loads((tmp_path / "out" / "metrics.json").read_text())["data"][
        "n_structures"]
    recomputed = log.read_text().splitlines()[n_logged:]
    # exactly the structures without a finished cache entry were computed again
    assert len(recomputed) == n_structures - len(finished)
    assert {p: (cache / p).stat().st_mtime_ns for p in finished} == finished
    assert (tmp_path / "out" / "model.json").is_file()


@pytest.mark.parametrize("text,match", [
    ("structures: {element: Cu}\nfitt: {}\n", "unknown key 'fitt'"),
    ("data: {train: missing.xyz}\nvalidate: null\n", "no such file"),
    ("structures: {element: Cu}\nreference: {calculator: ase.calculators.nope.Nope}\n",
     "unknown calculator class 'ase.calculators.nope.Nope'"),
])
def test_bad_configurations_exit_2(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "mlip_plugin.cli", "run", str(path),
                           "--output", str(tmp_path / "o")], capture_output=True, text=True,
                          env=_env())
    assert proc.returncode == 2
    assert match in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("validate,structures,match", [
    ({"suite": "fccc"}, {}, "validate.suite='fccc'"),
    ({"preset": "slow"}, {}, "validate.preset='slow'"),
    ({"reference": "nothere.json"}, {}, "nothere.json' does not exist"),
    ({"properties": ["elastik"]}, {}, "unknown groups ['elastik']"),
    (None, {"supercell": "two"}, "structures.supercell='two'"),
    ({"reference": "ase.calculators.nope.Nope"}, {},
     "unknown calculator class 'ase.calculators.nope.Nope'"),
])
def test_dry_run_catches_what_the_run_would_fail_on(tmp_path, capsys, validate, structures,
                                                    match):
    cfg = _config(tmp_path, validate=validate, **structures)
    assert main(["run", str(cfg), "--dry-run"]) == 2
    err = capsys.readouterr()
    assert match in err.err and "configuration OK" not in err.out


@pytest.mark.parametrize("text,match", [
    ("data: {train: missing.xyz}\n", "data.train: cannot read"),
    ("data: {train: x.xyz, units: {energy: kcal}}\n", "data.units.energy='kcal'"),
    ("data: {train: x.xyz}\nfit: {e0: automatic}\n", "fit.e0='automatic'"),
    ("data: {train: x.xyz}\nfit: {by_config_type: {bulk: 3}}\n", "fit.by_config_type.bulk=3"),
    ("data: {train: x.xyz}\nfit: {prior: {q: 3}}\n", "unknown key 'q' in section 'fit.prior'"),
])
def test_dry_run_checks_data_files_and_fit_settings(tmp_path, capsys, text, match):
    (tmp_path / "x.xyz").write_text("")
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["fit", str(path), "--dry-run"]) == 2
    assert match in capsys.readouterr().err


def test_metrics_written_after_the_fit_when_validation_fails(tmp_path, monkeypatch):
    """The fit's results are on disk before the validation starts."""
    from mlip_plugin.errors import InputError
    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import run_pipeline

    def fail(*args, **kwargs):
        raise InputError("validation failed on purpose")

    # the package exports the function validate, which hides the module of that name
    monkeypatch.setattr(sys.modules["mlip_plugin.pipeline.validate"], "validate_run", fail)
    config = load_config(_config(tmp_path, validate={"suite": "fcc"}, md_snapshots=0))
    with pytest.raises(InputError, match="on purpose"):
        run_pipeline(config)
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "model.json").is_file() and metrics["model_file"] == "model.json"
    assert set(metrics["errors"]) >= {"train", "validation"} and metrics["properties"] == []


def test_print_run_with_missing_metrics(capsys):
    """Data without forces and properties without a reference print as '–'."""
    from types import SimpleNamespace

    from mlip_plugin.cli import _print_run

    errors = {"energy_mae_meV_per_atom": 1.5, "force_mae_eV_per_A": None}
    metrics = {"model_file": "model.json", "fit": {"n_selected": 3, "n_basis": 9,
                                                   "solver": "omp"},
               "errors": {"train": errors, "validation": {**errors,
                                                          "energy_mae_meV_per_atom": None}},
               "properties": [{"name": "c11", "unit": "GPa", "model": 170.0, "reference": None,
                               "abs_error": None, "error_percent": None}]}
    _print_run(SimpleNamespace(output=Path("out"), metrics=metrics))
    out = capsys.readouterr().out
    assert "E MAE 1.500 meV/atom   F MAE – eV/Å" in out and "E MAE – meV/atom" in out
    assert "c11" in out and "170" in out


def test_unusable_structures_file_and_cache_entry_resume(tmp_path, caplog):
    """An empty structures.json and a truncated cache entry (as a crash of an older
    version could leave) are recomputed with a warning; every other entry is reused."""
    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import prepare_data

    config = load_config(_config(tmp_path, md_snapshots=0))
    out = tmp_path / "out"
    out.mkdir()
    first, _, _ = prepare_data(config, out)
    (out / "structures.json").write_text("")
    entry = sorted((out / "reference_cache").glob("*.json"))[0]
    entry.write_text(entry.read_text()[:30])
    with caplog.at_level("WARNING"):
        again, _, summary = prepare_data(config, out)
    assert "structures.json" in caplog.text and entry.name in caplog.text
    assert summary["n_computed"] == 1 and summary["n_cached"] == len(first) - 1
    assert [c.energy for c in again] == [c.energy for c in first]
    assert json.loads((out / "structures.json").read_text())["structures"]


def test_calculator_failure_while_generating_exits_2_and_rerun_resumes(tmp_path, capsys):
    from pipeline_test_calculators import FailAtCallEMT

    reference = {"calculator": "pipeline_test_calculators.FailAtCallEMT"}
    cfg = _config(tmp_path, reference=reference)
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 20  # in the first NVT run
    assert main(["-q", "fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "stage 'md-600K'" in err and "simulated SCF failure" in err
    stages = list((tmp_path / "out" / "structure_stages").glob("*/*.json"))
    assert [p.name for p in stages] == ["lattice_constant.json"]
    FailAtCallEMT.calls, FailAtCallEMT.fail_at = 0, 0
    assert main(["-q", "fit", str(cfg)]) == 0
    assert (tmp_path / "out" / "model.json").is_file()


def test_dry_run_imports_the_reference_calculator(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("structures: {element: Cu}\n"
                    "reference: {calculator: ase.calculators.nope.Nope}\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "unknown calculator class 'ase.calculators.nope.Nope'" in capsys.readouterr().err


def test_output_that_is_a_file_is_a_named_error(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    (tmp_path / "afile").write_text("keep me")
    path.write_text(f"structures: {{element: Cu}}\noutput: {tmp_path / 'afile'}\n")
    for extra in ([], ["--dry-run"]):
        assert main(["run", str(path), *extra]) == 2
        assert "exists and is not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "keep me"


def test_second_run_into_a_locked_folder_is_refused(tmp_path):
    import fcntl

    from mlip_plugin.errors import InputError
    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import LOCK_FILE, run_pipeline

    cfg = load_config(_config(tmp_path, validate=None))
    out = tmp_path / "locked"
    out.mkdir()
    with open(out / LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another mlip run is writing into"):
            run_pipeline(cfg, out)
    assert not (out / "config.yaml").exists()


def test_results_of_another_configuration_move_aside(tmp_path):
    from mlip_plugin.pipeline.config import RunConfig
    from mlip_plugin.pipeline.run import _start_output

    out = tmp_path / "o"
    out.mkdir()
    first = RunConfig.from_dict({"structures": {"element": "Cu"}})
    _start_output(out, first)
    (out / "model.json").write_text("old model")
    (out / "parity.png").write_text("old plot")
    text = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text("# my notes\n" + text)
    _start_output(out, first)  # same configuration: the user's file stays as it is
    assert (out / "config.yaml").read_text().startswith("# my notes")
    assert (out / "model.json").read_text() == "old model"
    # the same run written by hand (partial, comments, another output) in the folder
    (out / "config.yaml").write_text("# mine\nstructures: {element: Cu}\noutput: elsewhere\n")
    _start_output(out, first)
    assert (out / "config.yaml").read_text().startswith("# mine")
    assert (out / "model.json").read_text() == "old model"
    _start_output(out, RunConfig.from_dict({"structures": {"element": "Ni"}}))
    assert (out / "previous" / "1" / "model.json").read_text() == "old model"
    assert (out / "previous" / "1" / "parity.png").is_file()
    assert not (out / "model.json").exists() and not (out / "parity.png").exists()
    assert "Ni" in (out / "config.yaml").read_text()


def test_file_system_without_locks_runs_unlocked(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    from mlip_plugin.pipeline.run import _locked

    def no_flock(*args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    ran = []
    with caplog.at_level("WARNING"), _locked(tmp_path):
        ran.append(True)
    assert ran and "running without the lock" in caplog.text


def test_validate_reference_may_be_a_calculator_spec(tmp_path):
    from mlip_plugin.errors import InputError
    from mlip_plugin.pipeline.config import RunConfig

    spec = {"calculator": "ase.calculators.emt.EMT", "parameters": {}}
    cfg = RunConfig.from_dict({"structures": {"element": "Cu"}, "validate": {
        "reference": spec}}, tmp_path)
    assert cfg.validate.reference == spec
    cfg.check_inputs()
    with pytest.raises(InputError, match="validate.reference"):
        RunConfig.from_dict({"structures": {"element": "Cu"}, "validate": {
            "reference": {"calculator": 5}}}, tmp_path)
    bad = RunConfig.from_dict({"structures": {"element": "Cu"}, "validate": {
        "reference": {"calculator": "EMT"}}}, tmp_path)
    with pytest.raises(InputError, match="not a full class path"):
        bad.check_inputs()  # what --dry-run runs


def test_unreadable_data_leaves_the_previous_results_in_place(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.yaml").write_text("structures: {element: Cu}\n")
    (out / "model.json").write_text("old model")
    (tmp_path / "bad.xyz").write_text("not an xyz file\n")
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{train: bad.xyz}}\nvalidate: null\noutput: {out}\n")
    assert main(["run", str(path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert (out / "model.json").read_text() == "old model"
    assert not (out / "previous").exists()


def test_kernel_integer_settings_accept_whole_floats(tmp_path):
    from mlip_plugin.pipeline.config import RunConfig

    cfg = RunConfig.from_dict({"data": {"train": "t.npz"}, "fit": {"model": "kernel", "kernel": {
        "maxiter": 100.0, "calib_frames": "50", "k": 100.0, "seed": 1.0}}}, tmp_path)
    kernel = cfg.fit.kernel
    assert (kernel["maxiter"], kernel["calib_frames"], kernel["k"], kernel["seed"]) == (
        100, 50, 100, 1)
    assert all(type(kernel[k]) is int for k in ("maxiter", "calib_frames", "k", "seed"))


NO_ENERGY = ('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
             'Cu 0 0 0\nCu 1.8 1.8 0\n')


@pytest.mark.parametrize("data, files, match", [
    ("{train: notes.md}", {"notes.md": "# notes\n"}, "give it with data.format, one of"),
    ("{train: t.xyz}", {"t.xyz": "this is not\nan xyz file\n"}, "cannot read"),
    ("{train: t.xyz}", {"t.xyz": NO_ENERGY}, "missing required label 'energy'; name its key "
                                             "with data.energy_key"),
    ("{train: CU, forces_key: nope}", {}, "data.forces_key='nope' is not in"),
    ("{train: CU, test: t.xyz}", {"t.xyz": NO_ENERGY}, "t.xyz, configuration 0: missing"),
    ("{train: CU, format: npz}", {}, "cannot read"),
])
def test_dry_run_reads_the_data_files(tmp_path, capsys, cu_example, data, files, match):
    """--dry-run reads the data with the reader and settings of the run: every error the
    run meets reading them comes at the dry run."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {data.replace('CU', str(cu_example))}\nvalidate: null\n")
    for command in ("run", "fit"):
        assert main([command, str(path), "--dry-run"]) == 2
        out = capsys.readouterr()
        assert match in out.err and "configuration OK" not in out.out


def test_dry_run_names_a_folder_as_a_folder(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "run.yaml"
    path.write_text("data: {train: sub}\nvalidate: null\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "it is a folder; give a data file" in capsys.readouterr().err


def test_dry_run_of_a_data_run_shows_the_chosen_validation(tmp_path, capsys, cu_example,
                                                           write_ti_data):
    path = tmp_path / "run.yaml"
    path.write_text(f"data: {{train: {cu_example}}}\n")
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    validate = yaml.safe_load(out.split("configuration OK")[0])["validate"]
    assert (validate["suite"], validate["reference"]) == ("fcc", "none")
    path.write_text(f"data: {{train: {write_ti_data(tmp_path / 'ti.xyz')}}}\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "validate.suite is not given" in err and "validate: null" in err
    assert main(["fit", str(path), "--dry-run"]) == 0  # mlip fit does not validate


def test_structures_of_an_older_generator_version_are_not_reused(tmp_path, caplog, monkeypatch):
    """structures.json written by a generator that made other structures from the same spec
    (before PROTOCOL_VERSION 2 the volume strains included 0) is made again, not reused."""
    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import prepare_data

    config = load_config(_config(tmp_path, md_snapshots=0))
    out = tmp_path / "out"
    out.mkdir()
    import mlip_plugin.pipeline.structures as structures_module

    monkeypatch.setattr(structures_module, "structures_version", lambda spec: 1)
    prepare_data(config, out)
    old = json.loads((out / "structures.json").read_text())
    old["structures"] = old["structures"][:1]  # what the old version made: something else
    (out / "structures.json").write_text(json.dumps(old))
    with caplog.at_level("INFO"):
        prepare_data(config, out)  # same version: reused as it is
    assert "reusing the structures" in caplog.text
    assert len(json.loads((out / "structures.json").read_text())["structures"]) == 1
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level("INFO"):
        again, _, _ = prepare_data(config, out)
    assert "reusing the structures" not in caplog.text
    assert len(again) > 1 and len(json.loads((out / "structures.json").read_text())
                                   ["structures"]) == len(again)


def test_a_file_where_the_run_needs_a_folder_is_a_named_error_and_rerun_resumes(
        tmp_path, capsys, caplog):
    """A file system error while a run writes its folder (here a file named like the
    reference cache folder) exits 2 with a message naming the file, no traceback; the
    structures finished before are kept and reused once it is moved aside."""
    cfg = _config(tmp_path, md_snapshots=0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "reference_cache").write_text("in the way")
    assert main(["-q", "fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "reference_cache" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert (out / "structures.json").is_file()
    (out / "reference_cache").unlink()
    with caplog.at_level("INFO"):
        assert main(["fit", str(cfg)]) == 0
    assert "reusing the structures" in caplog.text
    assert (out / "model.json").is_file()


def test_a_full_disk_is_a_named_error_that_keeps_finished_work(tmp_path, monkeypatch):
    import errno

    from mlip_plugin import _files
    from mlip_plugin.errors import InputError
    from mlip_plugin.pipeline.config import load_config
    from mlip_plugin.pipeline.run import run_pipeline

    config = load_config(_config(tmp_path, md_snapshots=0))
    out = tmp_path / "out"
    real_fsync, written = os.fsync, []

    def fsync(fd):  # the disk fills up after five files
        if len(written) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(_files.os, "fsync", fsync)
    with pytest.raises(InputError, match="No space left on device.*rerun the same command"):
        run_pipeline(config, out)
    kept = list((out / "reference_cache").glob("*.json"))
    # config.yaml, the lattice constant, structures.json, then two labels fitted on disk
    assert len(kept) == 2 and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(_files.os, "fsync", real_fsync)
    result = run_pipeline(config, out)
    assert result.metrics["data"]["n_cached"] == 2


def test_results_are_never_overwritten_after_an_interrupted_move(tmp_path, monkeypatch):
    """A run killed while it moves another configuration's results aside, then run again:
    the results it had not moved yet are moved too, never overwritten; so are results in
    the folder without a config.yaml (whose configuration is unknown)."""
    from mlip_plugin.pipeline.config import RunConfig
    from mlip_plugin.pipeline.run import RESULT_FILES, _start_output

    out = tmp_path / "o"
    out.mkdir()
    first = RunConfig.from_dict({"structures": {"element": "Cu"}})
    second = RunConfig.from_dict({"structures": {"element": "Ni"}})
    _start_output(out, first)
    for name in RESULT_FILES[1:]:
        (out / name).write_text(f"old {name}")
    real_replace, moves = os.replace, []

    def replace(src, dst):  # killed after the first file moved
        if len(moves) == 1:
            raise KeyboardInterrupt
        moves.append(src)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        _start_output(out, second)
    monkeypatch.setattr(os, "replace", real_replace)
    _start_output(out, second)
    kept = {p.name: p.read_text() for p in (out / "previous").rglob("*") if p.is_file()}
    assert {name: kept.get(name) for name in RESULT_FILES[1:]} == {
        name: f"old {name}" for name in RESULT_FILES[1:]}
    assert "Cu" in kept["config.yaml"]
    assert [p.name for p in out.iterdir() if p.is_file()] == ["config.yaml"]
    # a user's report.md in a folder without config.yaml is moved aside, not overwritten
    other = tmp_path / "mine"
    other.mkdir()
    (other / "report.md").write_text("my notes")
    _start_output(other, second)
    assert (other / "previous" / "1" / "report.md").read_text() == "my notes"


def test_dry_run_refuses_a_folder_another_run_is_writing(tmp_path, capsys):
    """--dry-run says what the run would meet: a folder locked by a run in progress."""
    import fcntl

    from mlip_plugin.pipeline.run import LOCK_FILE

    cfg = _config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert main(["run", str(cfg), "--dry-run"]) == 2
        assert "another mlip run is writing into" in capsys.readouterr().err
    # a lock file left by a finished (or killed) run holds no lock
    assert main(["run", str(cfg), "--dry-run"]) == 0
    assert "configuration OK" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


def test_edited_data_files_move_the_results_aside(tmp_path, cu_example):
    """The same configuration rerun on data files edited since: the results of the old
    data move to previous/1, not overwritten; unchanged data reuse the folder as it is."""
    import ase.io

    frames = ase.io.read(cu_example, index=":")
    data = tmp_path / "train.extxyz"
    ase.io.write(data, frames[:12])
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"train": str(data)}, "fit": FAST_FIT,
                                   "validate": None, "output": str(tmp_path / "out")}))
    out = tmp_path / "out"
    assert main(["-q", "fit", str(cfg)]) == 0
    assert main(["-q", "fit", str(cfg)]) == 0  # same data: nothing moves
    assert not (out / "previous").exists()
    first = (out / "model.json").read_text()
    ase.io.write(data, frames[:10])
    assert main(["-q", "fit", str(cfg)]) == 0
    assert (out / "previous" / "1" / "model.json").read_text() == first
    assert (out / "model.json").read_text() != first


def test_a_reference_that_fails_on_every_structure_is_named(tmp_path, capsys):
    """Every reference calculation failed: the message names the calculator, its error
    and the failure record, not only the empty training set the fit would meet."""
    reference = {"calculator": "pipeline_test_calculators.AlwaysFailEMT"}
    cfg = _config(tmp_path, reference=reference, md_snapshots=0, a=3.6)
    assert main(["-q", "fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "AlwaysFailEMT failed on all" in err and "simulated SCF failure" in err
    assert "reference_failures.json" in err and "Traceback" not in err
    failures = json.loads((tmp_path / "out" / "reference_failures.json").read_text())
    assert failures


def test_a_calculator_file_error_is_not_called_an_output_folder_error(tmp_path, capsys,
                                                                     monkeypatch):
    """A calculator's missing potential file (an OSError naming a file outside the output
    folder) is named as the calculator's error, not as a failed write in the output folder
    with advice to free disk space."""
    from mlip_plugin.pipeline import run as run_module
    from mlip_plugin.pipeline.config import load_config

    reference = {"calculator": "pipeline_test_calculators.PotentialFileEMT",
                 "parameters": {"potential": str(tmp_path / "Cu.eam.alloy")}}
    cfg = _config(tmp_path, reference=reference, md_snapshots=0)
    assert main(["-q", "fit", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "PotentialFileEMT" in err and "Cu.eam.alloy" in err and "could not be built" in err
    assert "output folder" not in err and "Traceback" not in err
    # any file system error naming a file elsewhere keeps its own type and message
    elsewhere = FileNotFoundError(2, "No such file or directory", str(tmp_path / "lib.so"))

    def fit(*args, **kwargs):
        raise elsewhere

    monkeypatch.setattr(run_module, "fit", fit)
    (tmp_path / "Cu.eam.alloy").write_text("")
    with pytest.raises(FileNotFoundError) as info:
        run_module.run_pipeline(load_config(cfg))
    assert info.value is elsewhere


def test_dry_run_says_what_a_rerun_reuses_and_moves_aside(tmp_path, capsys):
    cfg = _config(tmp_path, md_snapshots=0)
    assert main(["fit", str(cfg), "--dry-run"]) == 0
    assert "does not exist yet: everything is computed" in capsys.readouterr().out
    assert main(["fit", str(cfg)]) == 0
    out = tmp_path / "out"
    n = len(json.loads((out / "structures.json").read_text())["structures"])
    capsys.readouterr()
    assert main(["fit", str(cfg), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"structures: {n} reused from structures.json" in text
    assert f"reference labels: {n} of {n} cached, 0 to compute" in text
    assert "holds the results of this configuration" in text
    # two labels lost, and another fit: labels to compute, results moved aside
    for path in sorted((out / "reference_cache").glob("*.json"))[:2]:
        path.unlink()
    doc = yaml.safe_load(cfg.read_text())
    doc["fit"]["max_active"] = 30
    cfg.write_text(yaml.safe_dump(doc))
    assert main(["fit", str(cfg), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"reference labels: {n - 2} of {n} cached, 2 to compute" in text
    assert f"(another configuration) would move to {out / 'previous' / '1'}" in text
    assert not (out / "previous").exists()  # a dry run moves nothing


def test_protocol_moments_reach_the_reference_and_structures_json(tmp_path):
    """A Ni protocol (structures.magmoms: auto, 0.6 μB per atom) gives the reference its
    starting moments in the run and from structures.json on a rerun (a spin-polarised
    reference, GPAW or VASP, would otherwise label non-magnetic Ni)."""
    log = tmp_path / "calls.jsonl"
    cfg = _config(tmp_path, element="Ni", md_snapshots=0, reference={
        "calculator": "pipeline_test_calculators.StartingMomentsEMT",
        "parameters": {"log": str(log)}})
    assert main(["-q", "fit", str(cfg)]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and {m for c in calls for m in c["magmoms"]} == {0.6}
    stored = json.loads((tmp_path / "out" / "structures.json").read_text())["structures"]
    assert all(s["initial_magmoms"] == [0.6] * len(s["numbers"]) for s in stored)
    n_calls = len(calls)
    assert main(["-q", "fit", str(cfg)]) == 0  # reused: structures and labels
    assert len(log.read_text().splitlines()) == n_calls


def test_structures_version_moves_only_for_the_specs_it_changed():
    """PROTOCOL_VERSION 3 added starting magnetic moments: a spec that puts moments on its
    atoms (Fe, 'auto') is identified at version 3 with its magmoms; any other (Cu, or Fe
    with magmoms 'none') exactly as at version 2, before the setting existed, so that its
    run folders keep their structures and the reference's NVT stages are not rerun."""
    from dataclasses import asdict

    from mlip_plugin.pipeline.structures import (
        PROTOCOL_VERSION,
        StructureSpec,
        spec_identity,
        structures_version,
    )

    cu = StructureSpec.from_preset("tiny", element="Cu")
    old_doc = {k: v for k, v in asdict(cu).items() if k != "magmoms"}  # version 2's to_dict
    assert spec_identity(cu) == {"structures": old_doc, "protocol_version": 2}
    fe = StructureSpec.from_preset("tiny", element="Fe", lattice="bcc")
    assert structures_version(fe) == PROTOCOL_VERSION == 3
    assert spec_identity(fe)["structures"]["magmoms"] == "auto"
    plain_fe = StructureSpec.from_preset("tiny", element="Fe", lattice="bcc", magmoms="none")
    assert spec_identity(plain_fe)["protocol_version"] == 2
    assert "magmoms" not in spec_identity(plain_fe)["structures"]
