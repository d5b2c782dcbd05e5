"""The command line and the package layout."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mlip_plugin
from mlip_plugin.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    roots = {"mlip_plugin": ROOT / "mlip_plugin", "mlip_plugin.calculators":
             ROOT / "calculators", "mlip_plugin.workflows": ROOT / "workflows"}
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_import_mapped_packages():
    import mlip_plugin.calculators
    import mlip_plugin.workflows

    assert Path(mlip_plugin.calculators.__file__).parent.name == "calculators"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert mlip_plugin.__version__ in capsys.readouterr().out


def test_data_info_example(capsys):
    assert main(["data", "info", "--example", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_configs"] == 12 and doc["species"] == {"Cu": 384}
    assert doc["labels"] == {"energy": 12, "forces": 12, "stress": 12}


def test_data_info_shared(shared_data, capsys):
    assert main(["data", "info", str(shared_data / "zuo2020/Mo_test.extxyz")]) == 0
    out = capsys.readouterr().out
    assert "configurations: 23" in out and "Mo" in out and "eV/Å" in out


def test_bad_input_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlip_plugin.cli", "data", "info",
                           str(tmp_path / "missing.xyz")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_wheel_contains_mapped_packages(tmp_path):
    """A non-editable install gets calculators/, workflows/ and the bundled data."""
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("mlip_plugin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("mlip_plugin/calculators/__init__.py", "mlip_plugin/workflows/__init__.py",
                     "mlip_plugin/workflows/aiida/__init__.py",
                     "mlip_plugin/data/examples/Cu_EMT_example.extxyz"):
        assert required in names


def test_source_tree_maps_calculators_and_workflows():
    """From the project root (which shadows an installed copy), mlip_plugin.workflows and
    mlip_plugin.calculators resolve to the top-level folders even without an install."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
            "import mlip_plugin.workflows as w; print(w.__file__)")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == ROOT / "workflows" / "__init__.py"


def test_source_tree_wins_over_an_editable_install_of_another_copy(tmp_path):
    """An editable install of another checkout puts its own finder on ``sys.meta_path``
    (mapping mlip_plugin.workflows to that checkout); importing from this project root must
    still give this tree's calculators/ and workflows/, not the other copy's."""
    decoy = tmp_path / "other_checkout"
    for name in ("workflows", "calculators"):
        (decoy / name).mkdir(parents=True)
        (decoy / name / "__init__.py").write_text("")
    code = (
        "import sys, importlib.util\n"
        f"decoy = {str(decoy)!r}\n"
        "class EditableFinder:\n"
        "    @classmethod\n"
        "    def find_spec(cls, fullname, path=None, target=None):\n"
        "        name = fullname.rpartition('.')[2]\n"
        "        if fullname in ('mlip_plugin.workflows', 'mlip_plugin.calculators'):\n"
        "            return importlib.util.spec_from_file_location(fullname,\n"
        "                f'{decoy}/{name}/__init__.py',\n"
        "                submodule_search_locations=[f'{decoy}/{name}'])\n"
        "        return None\n"
        "sys.meta_path.insert(0, EditableFinder)\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import mlip_plugin\n"
        "for name in ('workflows', 'calculators'):\n"
        "    print(importlib.util.find_spec(f'mlip_plugin.{name}').origin)\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert [Path(line) for line in proc.stdout.split()] == [
        ROOT / "workflows" / "__init__.py", ROOT / "calculators" / "__init__.py"]


def test_data_without_action_prints_its_help_and_exits_2(capsys):
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert "usage: mlip data" in err and "info" in err


@pytest.fixture
def tiny_models(tmp_path):
    """Untrained one- and two-species ACE model files (validate fails before using them)."""
    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.models.linear_ace import LinearACEModel

    paths = {}
    for name, species in (("cu", ["Cu"]), ("tial", ["Al", "Ti"])):
        basis = ACEBasis(species, 2, 4, 4.5)
        model = LinearACEModel.from_support(basis, [0], [0.0], dict.fromkeys(species, 0.0))
        paths[name] = model.save(tmp_path / f"{name}.json")
    return paths


def test_validate_symbol_option(tiny_models, tmp_path, capsys):
    """A two-species model needs --symbol for the fcc suite, and the message says so."""
    out = str(tmp_path / "v")
    assert main(["validate", str(tiny_models["tial"]), "-o", out]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--symbol" in err and "compound or alloy, suite 'bulk'" in err
    assert "--suite bulk --structure FILE" in err
    assert main(["validate", str(tiny_models["tial"]), "--symbol", "Cu", "-o", out]) == 2
    assert "computes Cu, which is not a species of the model" in capsys.readouterr().err
    args = build_parser().parse_args(["validate", "m.json", "--symbol", "Al"])
    assert args.symbol == "Al"


def test_validate_corrupt_reference_table_exits_2(tiny_models, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["validate", str(tiny_models["cu"]), "--reference", str(bad), "-o",
                 str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "bad.json' is not readable JSON" in err and "Traceback" not in err
