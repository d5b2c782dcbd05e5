"""Run the mlip pipeline for Cu with EMT as AiiDA processes; print provenance and properties.

Needs only ``pip install "mlip-plugin[aiida]"``: the script makes a temporary sqlite profile
(no PostgreSQL, no RabbitMQ) that disappears when it ends.  Run::

    python examples/aiida_pipeline.py                 # the `fast` protocol
    python examples/aiida_pipeline.py --rerun         # run twice: the second reuses the cache

``mlip.pipeline`` generates the training structures, labels them with EMT in one
calcfunction, fits a sparse ACE model and runs the property suite against EMT; every number
below is the output of a recorded calculation, traced back with a provenance query.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile


def _load_temporary_profile():
    """A throw-away AiiDA configuration and in-memory sqlite profile."""
    if "AIIDA_PATH" not in os.environ:  # a configuration folder of our own, removed at exit
        os.environ["AIIDA_PATH"] = tempfile.mkdtemp(prefix="mlip-aiida-")
        atexit.register(shutil.rmtree, os.environ["AIIDA_PATH"], ignore_errors=True)
    from aiida import load_profile
    from aiida.storage.sqlite_temp import SqliteTempBackend

    # Sub-processes are awaited by polling when there is no broker: poll quickly.
    profile = SqliteTempBackend.create_profile(
        "mlip-example", options={"runner.poll.interval": 0.2, "warnings.development_version":
                                 False})
    return load_profile(profile, allow_switch=True)


def _num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return f"{'-' if x is None else x!s:>10}"
    return f"{x:10.4g}"


def _property_table(properties: dict) -> str:
    rows = properties.get("properties", [])
    lines = [f"{'property':<28} {'unit':<10} {'model':>10} {'reference':>10} {'error %':>8}"]
    for r in rows:
        err = r.get("error_percent")
        err = "-" if err is None else f"{err:.2f}"
        lines.append(f"{r['name']:<28} {r.get('unit') or '':<10} {_num(r.get('model'))} "
                     f"{_num(r.get('reference'))} {err:>8}")
    return "\n".join(lines)


def run_pipeline(protocol: str):
    from aiida.engine import run_get_node

    from mlip_plugin.workflows.aiida.pipeline import PipelineWorkChain

    builder = PipelineWorkChain.get_builder_from_protocol("Cu", "fcc", protocol)
    return run_get_node(builder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="fast", choices=("fast", "balanced", "stringent"))
    parser.add_argument("--rerun", action="store_true",
                        help="run the same pipeline again with caching enabled")
    args = parser.parse_args(argv)
    _load_temporary_profile()
    from aiida.manage.caching import enable_caching

    from mlip_plugin.workflows.aiida.provenance import format_trace

    with enable_caching():
        results, node = run_pipeline(args.protocol)
        if not node.is_finished_ok:
            print(f"pipeline <{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
            return 1
        print(f"pipeline <{node.pk}> finished; failed reference structures: "
              f"{len(results['failed_structures'].get_list())}\n")
        print("Provenance of the model:")
        print(format_trace(results["model"]))
        if "properties" in results:
            print("\nProperties (model vs EMT):")
            print(_property_table(results["properties"].get_dict()))
        if args.rerun:
            again, _ = run_pipeline(args.protocol)
            fit, first = again["model"].creator, results["model"].creator
            how = (f"taken from the cache of <{first.pk}>"
                   if fit.base.caching.get_cache_source() == first.uuid else "recomputed")
            print(f"\nsecond run: fit calculation <{fit.pk}> was {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
