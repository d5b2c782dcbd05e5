"""The ``mlip`` command.  Thin: it parses arguments, calls library functions and prints.

Every error the library raises on purpose (:class:`~mlip_plugin.errors.MLIPError`) ends the
command with exit status 2 and a one-paragraph message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib import resources

from . import __version__
from .errors import MLIPError

__all__ = ["main", "build_parser"]

log = logging.getLogger("mlip_plugin")

EXAMPLE_DATA = "Cu_EMT_example.extxyz"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Fit, validate and inspect machine-learning interatomic potentials.",
    )
    parser.add_argument("--version", action="version", version=f"mlip-plugin {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="inspect reference data")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    info = data_sub.add_parser("info", help="counts, species, labels and units of a data file")
    src = info.add_mutually_exclusive_group(required=True)
    src.add_argument("file", nargs="?", help="extxyz, ASE .db, sGDML .npz or mlearn .json")
    src.add_argument("--example", action="store_true",
                     help="summarise the bundled Cu/EMT example data set")
    for label in ("energy", "forces", "stress", "virial"):
        info.add_argument(f"--{label}-key", help=f"name of the {label} label in the file")
    info.add_argument("--format", help="file format (default: from the suffix)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=_cmd_data_info)
    return parser


def _cmd_data_info(args) -> int:
    from .data import read_configs
    from .data.summary import format_summary, summarize

    if args.example:
        ref = resources.files("mlip_plugin.data").joinpath("examples", EXAMPLE_DATA)
        with resources.as_file(ref) as path:
            configs = read_configs(path)
        name = f"bundled example {EXAMPLE_DATA}"
    else:
        configs = read_configs(
            args.file, format=args.format, energy_key=args.energy_key,
            forces_key=args.forces_key, stress_key=args.stress_key,
            virial_key=args.virial_key, require=(),
        )
        name = args.file
    summary = summarize(configs)
    if args.json:
        print(json.dumps({"file": name, **summary}, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary, title=name))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else
                                                logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except MLIPError as err:
        print(f"mlip: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlip: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
