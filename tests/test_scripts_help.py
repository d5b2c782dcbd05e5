"""``--help`` of the example and benchmark scripts: the whole summary, and nothing run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("examples/*.py"), *ROOT.glob("benchmarks/[!_]*.py")])


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_help_shows_the_whole_first_paragraph(script):
    """The description was the docstring's first line, cut mid-sentence where the first
    sentence wraps ("...validate it against the")."""
    summary = ast.get_docstring(ast.parse(script.read_text())).split("\n\n")[0]
    example = ROOT / "mlip_plugin" / "data" / "examples" / "Cu_EMT_example.extxyz"
    before = example.stat().st_mtime_ns
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
    assert _words(summary) in _words(proc.stdout)
    assert example.stat().st_mtime_ns == before  # --help regenerates nothing
