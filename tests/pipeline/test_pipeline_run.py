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
