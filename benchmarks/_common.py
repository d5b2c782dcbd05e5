"""Helpers every benchmark script shares: data location, CLI options, timing, JSON output.

Every script runs as ``python benchmarks/NAME.py [--json OUT] [--quick]`` and writes
``{"benchmark", "settings", "figures", "targets"}`` (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``$MLIP_DATA`` if set, else ``../shared/data`` beside the project."""
    env = os.environ.get("MLIP_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def first_paragraph(doc: str) -> str:
    """The first paragraph of a docstring on one line (a sentence there may wrap)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def base_parser(name: str, doc: str) -> argparse.ArgumentParser:
    """The options every benchmark shares; ``doc`` is the script's module docstring, whose
    whole first paragraph (not just its first line) is the ``--help`` description."""
    parser = argparse.ArgumentParser(prog=f"benchmarks/{name}.py",
                                     description=first_paragraph(doc))
    parser.add_argument("--json", metavar="OUT", help="write the result JSON here")
    parser.add_argument("--quick", action="store_true", help="a small, fast version")
    parser.add_argument("--data", default=str(default_data_dir()),
                        help="folder of the reference data (default: $MLIP_DATA or "
                             "../shared/data)")
    return parser


@dataclass
class Timing:
    seconds: float = 0.0
    peak_bytes: int = 0


@contextmanager
def timed(trace_memory: bool = False):
    """Wall time (and, with ``trace_memory``, the tracemalloc peak) of a block."""
    t = Timing()
    if trace_memory:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start
        if trace_memory:
            t.peak_bytes = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Result:
    benchmark: str
    settings: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)

    def target(self, name: str, value: float, goal: str, met: bool) -> None:
        self.targets.append({"name": name, "value": value, "goal": goal, "met": bool(met)})

    def missing(self, name: str, goal: str, why: str) -> None:
        """A target whose figure this run did not produce: listed as not met (value None,
        ``why`` says what is missing), never dropped, so that a table without it cannot
        read as all targets met."""
        self.targets.append({"name": name, "value": None, "goal": goal, "met": False,
                             "missing": why})

    def finish(self, json_path: str | None) -> None:
        """Print the targets as a table and write the JSON file."""
        print(f"\n== {self.benchmark}: targets")
        for t in self.targets:
            mark = "met" if t["met"] else "MISSED"
            if t["value"] is None:
                print(f"  {t['name']:<48} {'n/a':>12}  goal {t['goal']:<14} {mark}: "
                      f"{t.get('missing', 'no value')}")
                continue
            print(f"  {t['name']:<48} {t['value']:>12.4g}  goal {t['goal']:<14} {mark}")
        if json_path:
            doc = {"benchmark": self.benchmark, "settings": self.settings,
                   "figures": self.figures, "targets": self.targets}
            Path(json_path).write_text(json.dumps(doc, indent=2, default=float))
            print(f"wrote {json_path}", file=sys.stderr)
