"""MD speed of a linear ACE model: atom-steps per second against python-ace (C++), same run.

One "step" is what an MD step needs: energy, forces and stress of a rattled diamond Si cell
(512 and 4096 atoms).  Our models have 300, 1000 and 5000 selected functions of the basis
(correlation order 3, total degree 25, r_cut 5.5 Å; 5317 functions):

* 300 and 1000: points of ONE OMP path fitted on the Zuo et al. Si training set
  (``max_active`` 1000, ``path_fit.model_at(n)``);
* 5000: the 1000-function support plus the lowest-index other functions of the basis up to
  5000, with the fitted coefficients on the 1000 and random values of size 1e-6 on the
  rest (coefficient values do not change the evaluation cost; an OMP fit to 5000 is too
  slow for this benchmark).

The fitted models are cached in ``--models DIR`` (fitting takes minutes).  python-ace gets a
basis of the same number of functions (the specification of benchmarks/design_matrix.py),
random coefficients, and runs both its B-basis evaluator and its recursive C-tilde
evaluator (``PyACECalculator(ctilde, recursive_evaluator=True, recursive=True)``), the
fastest it offers for a linear basis.  Both sides are pinned to ``--threads`` threads.

``--nve`` also runs the NVE check: 64 Si atoms from 600 K, 5000 velocity-Verlet steps of
1 fs, with a small fit (basis (3, 12)), and reports the energy drift per atom.

    python benchmarks/calculator.py [--models DIR] [--json OUT] [--quick] [--nve]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Result, base_parser  # noqa: E402

R_CUT = 5.5
SIZES = (300, 1000, 5000)


def _configs(data_dir, stride=1):
    from mlip_plugin.data import read_configs

    return read_configs(Path(data_dir) / "zuo2020" / "Si_train.extxyz", energy_key="energy",
                        forces_key="forces", stress_key="stress")[::stride]


def _fit_models(data_dir, folder: Path) -> None:
    from mlip_plugin.pipeline.fit import fit

    res = fit(_configs(data_dir), {"solver": "omp", "max_active": 1000, "basis": {
        "correlation_order": 3, "total_degree": 25, "r_cut": R_CUT}})
    for n in (300, 1000):
        res.path_fit.model_at(n).save(folder / f"si_ace_{n}.json")


def _extended(model, n_functions: int):
    """The model's support plus the lowest-index other functions of its full basis up to
    ``n_functions``; fitted coefficients kept, 1e-6-sized random ones on the added."""
    from mlip_plugin.ace import ACEBasis
    from mlip_plugin.models.linear_ace import LinearACEModel

    doc = model.basis.to_dict()
    support = np.asarray(model.basis.selected)
    doc.update(selected=None, fingerprint=None)
    full = ACEBasis.from_dict(doc)
    rest = np.setdiff1d(np.arange(full.size), support)[:n_functions - len(support)]
    values = np.r_[model.coef, 1e-6 * np.random.default_rng(0).normal(size=len(rest))]
    return LinearACEModel.from_support(full, np.r_[support, rest], values, model.e0)


def our_models(data_dir, folder: Path) -> dict:
    from mlip_plugin.models import load_model

    folder.mkdir(parents=True, exist_ok=True)
    if not all((folder / f"si_ace_{n}.json").exists() for n in (300, 1000)):
        print(f"fitting the models into {folder} (minutes) …", flush=True)
        _fit_models(data_dir, folder)
    models = {n: load_model(folder / f"si_ace_{n}.json") for n in (300, 1000)}
    models[5000] = _extended(models[1000], 5000)
    return models


def pyace_calculators(n_functions: int) -> dict:
    from design_matrix import PYACE_SPECS, _pyace_config
    from pyace import PyACECalculator, create_multispecies_basis_config
    from pyace.basis import ACEBBasisSet

    spec = PYACE_SPECS["5000" if n_functions > 2000 else "1000"]
    bconf = create_multispecies_basis_config(_pyace_config(n_functions, spec))
    n_coef = len(bconf.get_all_coeffs())
    bconf.set_all_coeffs(1e-3 * np.random.default_rng(1).normal(size=n_coef))
    bbasis = ACEBBasisSet(bconf)
    ctilde = bbasis.to_ACECTildeBasisSet()
    return {"pyace B-basis": PyACECalculator(bbasis),
            "pyace recursive C-tilde": PyACECalculator(ctilde, recursive_evaluator=True,
                                                       recursive=True)}


def cell(n_atoms: int, seed: int = 0):
    from ase.build import bulk

    rep = round((n_atoms / 8) ** (1 / 3))
    atoms = bulk("Si", "diamond", 5.43, cubic=True).repeat(rep)
    atoms.rattle(0.05, seed=seed)
    return atoms


def atom_steps(step, atoms, min_seconds: float) -> float:
    """Atom-steps per second of ``step(atoms)`` (positions nudged every call)."""
    step(atoms)  # warm-up (compilation, caches)
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < min_seconds:
        atoms.positions[0, 0] += 1e-4
        step(atoms)
        calls += 1
    return len(atoms) * calls / (time.perf_counter() - start)


def _ours_step(model):
    return lambda atoms: model.predict(atoms, stress=True)


def _pyace_step(calc):
    def step(atoms):
        calc.calculate(atoms, properties=["energy", "forces", "stress"])
        return calc.results
    return step


def nve_drift(data_dir, n_steps: int) -> dict:
    """Energy drift of 64 Si atoms, 600 K start, ``n_steps`` velocity-Verlet steps of 1 fs."""
    from ase import units
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    from mlip_plugin.pipeline.fit import fit

    res = fit(_configs(data_dir, stride=2), {"solver": "omp", "max_active": 120, "basis": {
        "correlation_order": 3, "total_degree": 12, "r_cut": R_CUT}})
    atoms = cell(64)
    atoms.calc = _ase_calculator(res.model)
    thermalize_momenta(atoms, temperature_K=600, rng=np.random.default_rng(3))
    Stationary(atoms)
    total = []
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.attach(lambda: total.append(atoms.get_total_energy()), interval=10)
    start = time.perf_counter()
    dyn.run(n_steps)
    seconds = time.perf_counter() - start
    total = np.array(total) / len(atoms)
    slope = np.polyfit(np.arange(len(total)) * 10, total, 1)[0]
    return {"steps": n_steps, "seconds": seconds, "n_functions": res.model.n_functions,
            "max_deviation_meV_per_atom": 1e3 * np.max(np.abs(total - total[0])),
            "linear_drift_meV_per_atom_per_ps": 1e3 * slope * 1000}


def _ase_calculator(model):
    """The smallest ASE calculator around ``model.predict`` (energy, forces, stress)."""
    from ase.calculators.calculator import Calculator, all_changes

    class ModelCalculator(Calculator):
        implemented_properties = ["energy", "forces", "stress"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            pred = model.predict(self.atoms)
            self.results = {"energy": pred.energy, "forces": pred.forces,
                            "stress": pred.stress}

    return ModelCalculator()


def main(argv=None):
    parser = base_parser("calculator", __doc__)
    parser.add_argument("--models", default="calculator_models",
                        help="folder of the cached fitted models, fitted there if absent "
                             "(default: calculator_models in the current folder)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--atoms", default="512,4096", help="cell sizes (comma-separated)")
    parser.add_argument("--nve", action="store_true", help="also run the 5000-step NVE check")
    parser.add_argument("--nve-steps", type=int, default=5000)
    args = parser.parse_args(argv)
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    sizes = [512] if args.quick else [int(x) for x in args.atoms.split(",")]
    res = Result("calculator", settings={"threads": args.threads, "atoms": sizes,
                                         "functions": list(SIZES), "r_cut": R_CUT})
    models = our_models(args.data, Path(args.models))
    print(f"{'functions':>9} {'atoms':>6} {'evaluator':<26} {'atom-steps/s':>13}")
    for nf in SIZES:
        peers = pyace_calculators(nf)
        for n_atoms in sizes:
            rates = {"ours (adjoint)": atom_steps(_ours_step(models[nf]), cell(n_atoms),
                                                  args.seconds)}
            for name, calc in peers.items():
                rates[name] = atom_steps(_pyace_step(calc), cell(n_atoms), args.seconds)
            for name, rate in rates.items():
                print(f"{nf:>9} {n_atoms:>6} {name:<26} {rate:>13.0f}", flush=True)
                res.figures[f"{name} {nf} functions {n_atoms} atoms atom_steps_per_s"] = rate
            best = max(v for k, v in rates.items() if k.startswith("pyace"))
            res.figures[f"ours/pyace-best {nf} functions {n_atoms} atoms"] = \
                rates["ours (adjoint)"] / best
            if nf == 1000:
                r = rates["ours (adjoint)"] / best
                res.target(f"1000 fn, {n_atoms} atoms: ours / fastest pyace", r, ">= 0.5",
                           r >= 0.5)
    for n_atoms in sizes:
        key = "ours (adjoint) {} functions {} atoms atom_steps_per_s"
        r = res.figures[key.format(300, n_atoms)] / res.figures[key.format(5000, n_atoms)]
        res.target(f"{n_atoms} atoms: speed 300 fn / 5000 fn", r, ">= 2", r >= 2)
    if args.nve:
        nve = nve_drift(args.data, args.nve_steps)
        print(f"NVE: {nve}")
        res.figures["nve"] = nve
        res.target("NVE max |ΔE| per atom (meV)", nve["max_deviation_meV_per_atom"], "< 1",
                   nve["max_deviation_meV_per_atom"] < 1)
    res.finish(args.json)


if __name__ == "__main__":
    main()
