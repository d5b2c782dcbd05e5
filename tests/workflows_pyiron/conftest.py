"""Fixtures of the pyiron job tests: a temporary project, never the home folder.

tests/conftest.py points pyiron's database and paths into a temporary folder before
pyiron_base is first imported; the ``pyiron_state`` fixture checks that this worked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def _import_pyiron_quietly():
    """Import pyiron_base with the working directory in the test sandbox: pyiron opens its
    log file ``pyiron.log`` in the working directory at import time."""
    sandbox = Path(os.environ.get("PYIRONSQLFILE", ".")).resolve().parent
    cwd = os.getcwd()
    os.chdir(sandbox if sandbox.is_dir() else cwd)
    try:
        pytest.importorskip("pyiron_base")
    finally:
        os.chdir(cwd)


_import_pyiron_quietly()

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # reference specs name the test calculators by import path
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def pyiron_state():
    """pyiron's state, after checking that its database is not in the home folder."""
    from pyiron_base import state

    sql_file = state.settings.configuration["sql_file"]
    home = Path.home().resolve()
    if sql_file is None or home in Path(sql_file).resolve().parents:
        pytest.fail(f"pyiron would use the database {sql_file!r}; set PYIRONSQLFILE to a "
                    "temporary folder before importing pyiron_base (tests/conftest.py does)")
    return state


@pytest.fixture(scope="module")
def project(pyiron_state, tmp_path_factory):
    """A pyiron Project in a fresh temporary folder, with the mlip-plugin jobs registered."""
    from pyiron_base import Project

    import mlip_plugin.workflows.pyiron  # noqa: F401 - registers the job classes

    pr = Project(str(tmp_path_factory.mktemp("pyiron") / "project"))
    yield pr
    pr.remove(enable=True, enforce=True)


@pytest.fixture(scope="session")
def subprocess_env(pyiron_state) -> dict:
    """Environment of a fresh Python process that sees the same pyiron database and the
    test calculators."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
