"""The ``mlip`` command.  Thin: it parses arguments, calls library functions and prints.

Every error the library raises on purpose (:class:`~mlip_plugin.errors.MLIPError`) ends the
command with exit status 2 and a one-paragraph message, never a traceback.  Logging: our
progress (INFO of ``mlip_plugin``) and everyone's warnings by default; ``-v`` adds our
debug messages, ``-vv`` every library's; ``-q`` shows warnings and errors only.  Python
warnings print as log lines (category and message, without a source line).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from . import __version__
from .errors import InputError, MLIPError

__all__ = ["main", "build_parser"]

log = logging.getLogger("mlip_plugin")

EXAMPLE_DATA = "Cu_EMT_example.extxyz"
#: ``--suite`` choices (the keys of mlip_plugin.properties.suites.SUITES, which imports ASE
#: and more: kept here so that ``mlip --help`` stays fast; a test checks they agree)
SUITE_NAMES = ("silicon", "fcc", "bcc", "bulk")
#: How read_configs' errors name its parameters in ``mlip data info``
DATA_INFO_OPTIONS = {"format": "--format", "energy_key": "--energy-key",
                     "forces_key": "--forces-key", "stress_key": "--stress-key",
                     "virial_key": "--virial-key"}
#: What ``mlip validate`` writes into metrics.json, to recognise its own file
VALIDATE_MARK = "mlip validate"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Fit, validate and inspect machine-learning interatomic potentials.",
    )
    parser.add_argument("--version", action="version", version=f"mlip-plugin {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging: -v adds mlip's debug messages, -vv those of every "
                             "library (default: mlip's progress messages and all warnings)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="inspect reference data")
    data.set_defaults(func=_cmd_help, help_parser=data)
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

    demo = sub.add_parser("demo", help="generate Cu/EMT data, fit sparse ACE, validate, report")
    demo.add_argument("--output", "-o", default="mlip-demo", help="output folder")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run a whole configuration: data, fit, validate, report")
    run.add_argument("config", help="YAML configuration (see mlip_plugin.pipeline.config)")
    run.add_argument("--output", "-o", help="output folder (default: the config's 'output')")
    run.add_argument("--dry-run", action="store_true",
                     help="check the configuration, read the data or structures files, and "
                          "print what would run and reuse")
    run.set_defaults(func=_cmd_run, stages="all")

    fit = sub.add_parser("fit", help="data and fit only (no property validation)")
    fit.add_argument("config", help="YAML configuration")
    fit.add_argument("--output", "-o", help="output folder (default: the config's 'output')")
    fit.add_argument("--dry-run", action="store_true",
                     help="check the configuration and read the data or structures files "
                          "only (data with stresses: also the stress-order check)")
    fit.set_defaults(func=_cmd_run, stages="fit")

    val = sub.add_parser(
        "validate", help="run a property suite on a model file",
        description="Run a property suite on a model file and write metrics.json into "
                    "--output.  A metrics.json there that mlip validate did not write (a "
                    "run's, say) is never overwritten: the command refuses and asks for "
                    "another --output.")
    val.add_argument("model", help="model file (model.json)")
    val.add_argument("--suite", default=None, choices=SUITE_NAMES,
                     help="property suite (default: bulk with --structure, else from the "
                          "model's species: fcc or bcc for an element whose ground state "
                          "is fcc or bcc, silicon for Si); bulk computes eos, elastic, "
                          "phonons and md of the crystal in --structure (a compound or "
                          "alloy)")
    val.add_argument("--preset", default="fast", choices=("fast", "default"),
                     help="settings preset of the suite (default: fast)")
    val.add_argument("--reference", default=None,
                     help="reference: an ASE calculator class path (e.g. "
                          "ase.calculators.emt.EMT) or a JSON table of values (default: "
                          "none, the model's values only)")
    val.add_argument("--symbol", default=None,
                     help="element of the fcc/bcc suite (default: the model's only species; "
                          "needed for a model of several species)")
    val.add_argument("--lattice-constant", type=float, default=None, metavar="A",
                     help="cubic lattice constant (Å) the suite starts from (default: ASE's "
                          "value, which exists only for the element's ground-state lattice)")
    val.add_argument("--structure", default=None, metavar="FILE",
                     help="crystal of the bulk suite: a structure file ase.io.read reads "
                          "(its first frame), periodic in 3 directions, of the model's "
                          "species; relaxed with the model (and with the reference) first")
    val.add_argument("--output", "-o", default=".",
                     help="folder for metrics.json (default: '.', the current folder)")
    val.set_defaults(func=_cmd_validate)

    inf = sub.add_parser("info", help="print a model file's summary and provenance")
    inf.add_argument("model", help="model file (model.json)")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(func=_cmd_info)
    return parser


DEMO_CONFIG = {
    "output": "mlip-demo",
    "structures": {"preset": "demo", "element": "Cu", "lattice": "fcc"},
    "reference": {"calculator": "ase.calculators.emt.EMT", "parameters": {}},
    "fit": {"solver": "omp", "max_active": 200,
            "basis": {"correlation_order": 3, "total_degree": 12, "r_cut": 5.0}},
    "validate": {"suite": "fcc", "preset": "fast", "reference": "calculator",
                 "properties": ["elastic", "vacancy", "surfaces", "phonons", "md"],
                 "along_path": [10, 25, 50, 100, 200]},
}


def _cmd_demo(args) -> int:
    from .pipeline.config import RunConfig
    from .pipeline.run import run_pipeline

    config = RunConfig.from_dict(DEMO_CONFIG)
    result = run_pipeline(config, args.output, progress=not args.quiet)
    _print_run(result)
    return 0


def _cmd_help(args) -> int:
    """A command group called without its action: its help on stderr, status 2."""
    args.help_parser.print_help(sys.stderr)
    return 2


def _cmd_run(args) -> int:
    from .pipeline.config import load_config
    from .pipeline.run import run_pipeline

    config = load_config(args.config, fit_only=args.stages == "fit")
    if args.dry_run:
        import yaml

        from .pipeline.run import check_run

        out, plan = check_run(config, args.output)
        print(yaml.safe_dump(config.to_dict(), sort_keys=False))
        print(f"configuration OK; would write to {out}")
        for line in plan:
            print(f"  {line}")
        return 0
    result = run_pipeline(config, args.output, progress=not args.quiet)
    _print_run(result)
    return 0


def _fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec``; a missing value (None) as "–"."""
    return "–" if value is None else format(value, spec)


def _print_run(result) -> None:
    from .pipeline.report import describe_fit

    m = result.metrics
    fit = m.get("fit", {})
    print(f"model: {result.output / m['model_file']} ({describe_fit(fit)})")
    for name, e in m["errors"].items():
        print(f"  {name:<10} E MAE {_fmt(e.get('energy_mae_meV_per_atom'), '.3f')} meV/atom"
              f"   F MAE {_fmt(e.get('force_mae_eV_per_A'), '.4f')} eV/Å")
    if m.get("properties"):
        print(f"  {'property':<26} {'unit':<8} {'model':>10} {'reference':>10} {'error %':>8}")
        for r in m["properties"]:
            print(f"  {r['name']:<26} {r['unit']:<8} {_fmt(r['model'], '>10.4g')} "
                  f"{_fmt(r['reference'], '>10.4g'):>10} {_fmt(r['error_percent'], '8.2f'):>8}")
    print(f"report: {result.output / 'report.html'}")


def _cmd_validate(args) -> int:
    from .models import load_model
    from .pipeline.report import write_metrics
    from .pipeline.run import check_output
    from .pipeline.validate import validate

    out = check_output(args.output, "-o/--output")  # before any work: results need a place
    _check_own_metrics(out / "metrics.json")
    model = load_model(args.model)
    result = validate(model, {"suite": args.suite, "preset": args.preset,
                              "reference": args.reference or "none",
                              "lattice_constant": args.lattice_constant,
                              "structure": args.structure}, symbol=args.symbol)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder {str(out)!r}: {err}") from err
    write_metrics(out / "metrics.json", {"written_by": VALIDATE_MARK, **result.to_dict()})
    for r in result.rows:
        ref = "" if r["reference"] is None else f"{r['reference']:10.4g}"
        err = "" if r["error_percent"] is None else f"{r['error_percent']:8.2f} %"
        print(f"{r['name']:<26} {r['unit']:<8} {_fmt(r['model'], '10.4g')} {ref} {err}")
    return 0


def _check_own_metrics(path: Path) -> None:
    """A metrics.json at ``path`` that ``mlip validate`` did not write (a run's results,
    say) is an InputError: the command never overwrites it."""
    if not path.exists():
        return
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        doc = None
    if not (isinstance(doc, dict) and doc.get("written_by") == VALIDATE_MARK):
        raise InputError(f"{str(path)!r} exists and was not written by mlip validate (a run's "
                         "metrics.json, say); mlip validate does not overwrite it: give "
                         "another folder with -o/--output")


def _cmd_info(args) -> int:
    from .models import load_model

    model = load_model(args.model)
    prov = model.provenance.to_dict()
    doc = {"family": model.family, "species": list(model.species), "cutoff": model.cutoff,
           "n_functions": getattr(model, "n_functions", None), **_kernel_info(model),
           "provenance": prov}
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    print(f"{args.model}: {model.family} model for {', '.join(model.species)}"
          + (f", cutoff {model.cutoff} Å" if model.cutoff else ""))
    if doc["n_functions"] is not None:
        print(f"basis functions: {doc['n_functions']}")
    if "kernel" in doc:
        k = doc["kernel"]
        print(f"kernel coefficients: {k['n_coefficients']} ({k['n_train']} training frames; "
              f"σ = {k['sigma']:g}" + (f", λ = {k['lam']:g}" if k["lam"] is not None else "")
              + ")")
    for key in ("package_version", "created", "training_data_sha256", "n_train",
                "n_validation", "solver", "seed"):
        print(f"{key}: {prov.get(key)}")
    for name, e in (prov.get("validation_metrics") or {}).items():
        print(f"errors[{name}]: E MAE {e.get('energy_mae_meV_per_atom')} meV/atom, "
              f"F MAE {e.get('force_mae_eV_per_A')} eV/Å")
    return 0


def _kernel_info(model) -> dict:
    """``{"kernel": {n_coefficients, n_train, sigma, lam}}`` of a kernel model, else {}."""
    gdml = getattr(model, "gdml", None)
    if gdml is None:
        return {}
    record = gdml.record
    lam = getattr(record, "lam", None) if record is not None else None
    return {"kernel": {"n_coefficients": int(gdml.alpha.size), "n_train": int(len(gdml.alpha)),
                       "sigma": float(gdml.sigma),
                       "lam": None if lam is None else float(lam)}}


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
            virial_key=args.virial_key, require=(), option_names=DATA_INFO_OPTIONS,
        )
        name = args.file
    summary = summarize(configs)
    if args.json:
        print(json.dumps({"file": name, **summary}, indent=2, ensure_ascii=False))
    else:
        print(format_summary(summary, title=name))
    return 0


def log_levels(verbose: int, quiet: bool) -> tuple[int, int]:
    """(level of every library, level of mlip_plugin) for ``-v`` × ``verbose`` and ``-q``."""
    if quiet:
        return logging.WARNING, logging.WARNING
    if verbose >= 2:
        return logging.DEBUG, logging.DEBUG
    return logging.WARNING, logging.DEBUG if verbose == 1 else logging.INFO


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` of the command: a log line without the source line."""
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, message)


@contextmanager
def _command_logging(verbose: int, quiet: bool) -> Iterator[None]:
    """Log levels (:func:`log_levels`) and warnings as log lines for one command; the
    previous levels and ``warnings.showwarning`` are restored afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("mlip_plugin")
    saved = root.level, ours.level, warnings.showwarning
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    levels = log_levels(verbose, quiet)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])
    warnings.showwarning = _log_warning
    try:
        yield
    finally:
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        warnings.showwarning = saved[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with _command_logging(args.verbose, args.quiet):
            log.debug("mlip-plugin %s, Python %s: mlip %s", __version__,
                      sys.version.split()[0], " ".join(sys.argv[1:] if argv is None else argv))
            return int(args.func(args) or 0)
    except MLIPError as err:
        print(f"mlip: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlip: interrupted; finished work is kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
