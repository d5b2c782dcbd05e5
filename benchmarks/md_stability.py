"""NVT stability of the fitted Si and Mo models: 500 K, 5 fs, 64-atom cells, 100 ps.

Each model (``--model FILE``, repeatable; default: fit OMP with the zuo2020 defaults on the
Zuo et al. training file of each ``--elements``) runs Langevin NVT MD in a 64-atom cell of
its element's ASE reference crystal (diamond Si: 2×2×2 cubic cells; bcc Mo: 4×4×4
primitive cells) and must pass the stability gate of :func:`mlip_plugin.properties.nvt_md`
(no pair closer than half the initial nearest-neighbour distance, no lost atom, the
temperature within [T/3, 3T], finite energies) for the whole run.

Run::

    python benchmarks/md_stability.py --model si_omp_1000.json --model mo_omp_1000.json
    python benchmarks/md_stability.py --elements Si,Mo --quick      # fit, then 10 ps each
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from ase.build import bulk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, base_parser, timed  # noqa: E402
from zuo2020 import fit_zuo  # noqa: E402

from mlip_plugin.calculators import MLIPCalculator  # noqa: E402
from mlip_plugin.models.base import load_model  # noqa: E402
from mlip_plugin.properties import nvt_md  # noqa: E402
from mlip_plugin.properties.md import MDSettings  # noqa: E402

log = logging.getLogger("md_stability")

N_ATOMS = 64


def cell_64(symbol: str):
    """A 64-atom periodic cell of the element's ASE reference crystal."""
    for cubic in (True, False):
        try:
            unit = bulk(symbol, cubic=cubic)
        except (ValueError, RuntimeError):
            continue
        n = round((N_ATOMS / len(unit)) ** (1 / 3))
        if n**3 * len(unit) == N_ATOMS:
            return unit * (n, n, n)
    raise ValueError(f"no 64-atom cell of {symbol}'s reference crystal")


def parse_args(argv=None):
    parser = base_parser("md_stability", __doc__)
    parser.add_argument("--model", action="append", default=[], help="model file (repeat)")
    parser.add_argument("--elements", default="Si,Mo", help="fit these when no --model")
    parser.add_argument("--time-ps", type=float, default=None, help="default 100 (quick 10)")
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--timestep", type=float, default=5.0, help="fs")
    parser.add_argument("--n-active", type=int, default=1000)
    parser.add_argument("--cache", help="Gram-form cache folder (see zuo2020.py)")
    return parser.parse_args(argv)


def md_settings(args) -> MDSettings:
    time_ps = args.time_ps or (10.0 if args.quick else 100.0)
    steps = int(round(time_ps * 1000 / args.timestep))
    interval = max(1, min(10, steps // 50))
    return MDSettings(temperature=args.temperature, timestep=args.timestep, steps=steps,
                      equilibration_steps=steps // 10, sample_interval=interval, n_blocks=5)


def models(args) -> list:
    if args.model:
        return [(load_model(p), p, 0.0) for p in args.model]
    out = []
    data = Path(args.data) / "zuo2020"
    for el in [e.strip() for e in args.elements.split(",") if e.strip()]:
        model, _, seconds = fit_zuo(data / f"{el}_train.extxyz", data / f"{el}_test.extxyz",
                                    total_degree=18.0 if args.quick else 25.0,
                                    n_active=300 if args.quick else args.n_active,
                                    cache=Path(args.cache) if args.cache else None)
        out.append((model, f"fitted {el} omp {model.n_functions}", seconds))
    return out


def main(argv=None) -> Result:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = md_settings(args)
    res = Result("md_stability")
    res.settings = {"temperature_K": settings.temperature, "timestep_fs": settings.timestep,
                    "steps": settings.steps, "time_ps": settings.steps * settings.timestep / 1e3,
                    "thermostat": settings.thermostat, "n_atoms": N_ATOMS,
                    "quick": args.quick}
    print(f"\n== md_stability: NVT {settings.temperature:g} K, {settings.timestep:g} fs, "
          f"{res.settings['time_ps']:g} ps, {N_ATOMS} atoms")
    for model, source, fit_s in models(args):
        symbol = model.species[0]
        atoms = cell_64(symbol)
        with timed() as t:
            md = nvt_md(MLIPCalculator(model), atoms, settings)
        temps = md.temperatures[len(md.temperatures) // 10:]
        row = {"model": str(source), "n_functions": model.n_functions, "stable": md.stable,
               "failure": md.failure, "time_reached_ps": md.time_reached,
               "mean_temperature_K": float(np.mean(temps)) if len(temps) else None,
               "min_pair_distance_A": md.min_pair_distance, "diffusivity_A2_per_ps":
               md.diffusivity, "md_s": t.seconds, "fit_s": fit_s,
               "ms_per_step": 1e3 * t.seconds / max(1, round(md.time_reached * 1e3
                                                             / settings.timestep))}
        res.figures[symbol] = row
        print(f"  {symbol}: {'stable' if md.stable else 'UNSTABLE'} to {md.time_reached:.1f} "
              f"ps, <T> {row['mean_temperature_K']:.0f} K, closest pair "
              f"{md.min_pair_distance:.2f} Å, {t.seconds:.0f} s ({row['ms_per_step']:.1f} "
              f"ms/step){'' if md.stable else ': ' + str(md.failure)}")
        res.target(f"{symbol} NVT {settings.temperature:g} K stable for "
                   f"{res.settings['time_ps']:g} ps", md.time_reached,
                   f">= {res.settings['time_ps']:g} ps", md.stable)
    res.finish(args.json)
    return res


if __name__ == "__main__":
    main()
