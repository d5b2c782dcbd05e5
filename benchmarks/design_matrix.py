"""Design-matrix assembly speed: mlip_plugin.ace against python-ace (pacemaker's C++ ACE).

Both assemble energy and force rows of the Zuo et al. (2020) Si training set (214
configurations) for bases of about 1000 and about 5000 functions, in the same run, with the
same cutoff and the same number of cores.  Ours also assembles the 6 virial rows per
configuration, which python-ace's ``LinearACEDataset`` does not.  python-ace at ~5000
functions takes tens of minutes, so it is timed on every ``--pyace-stride``-th configuration
and scaled by the number of atoms (documented in the output).

Also reports the basis sizes of the issue's table and the numerical rank of larger bases
on random environments.

    python benchmarks/design_matrix.py [--json OUT] [--quick]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Result, base_parser, max_rss_bytes, timed  # noqa: E402

R_CUT = 5.5


def _load(data_dir, stride):
    from mlip_plugin.data import read_configs

    configs = read_configs(os.path.join(data_dir, "zuo2020", "Si_train.extxyz"),
                           energy_key="energy", forces_key="forces", stress_key="stress")
    return configs[::stride]


def run_ours(configs, degree, threads):
    """Assemble our design matrix; returns (basis size, seconds, rows, peak bytes)."""
    import numba

    from mlip_plugin.ace import ACEBasis, design_matrix

    numba.set_num_threads(threads)
    basis = ACEBasis(["Si"], correlation_order=3, total_degree=degree, r_cut=R_CUT)
    design_matrix(basis, configs[:1], {"Si": 0.0})  # compile / load the kernels
    with timed(trace_memory=True) as t:
        dm = design_matrix(basis, configs, {"Si": 0.0})
    return basis.size, t.seconds, dm.n_rows, t.peak_bytes


#: python-ace function specifications (nradmax_by_orders, lmax_by_orders) per case; the
#: number of functions is then cut to our basis size.  The caps change python-ace's speed at
#: a given size several-fold; these were the fastest of the families tried (atoms/s on one
#: configuration, 1 worker, busy machine): at ~1150 functions [15,8,6]/[0,4,3] 17,
#: [12,8,6]/[0,5,3] 13, [20,12,8]/[0,6,4] 3.7; at 5317 functions [25,16,12]/[0,4,4] 0.95,
#: [25,24,20]/[0,3,2] 0.75, [25,20,16]/[0,4,3] 0.57.
PYACE_SPECS = {"1000": ([15, 8, 6], [0, 4, 3]), "5000": ([25, 16, 12], [0, 4, 4])}


def _pyace_config(n_functions, spec):
    nradmax, lmax = spec
    return {
        "deltaSplineBins": 0.001, "elements": ["Si"],
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1],
                               "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": R_CUT,
                          "dcut": 0.01, "NameOfCutoffFunction": "cos"}},
        "functions": {"number_of_functions_per_element": n_functions,
                      "ALL": {"nradmax_by_orders": nradmax, "lmax_by_orders": lmax}},
    }


def run_pyace(configs, n_functions, spec, workers):
    """python-ace LinearACEDataset design matrix; returns (n functions, seconds, rows)."""
    import pandas as pd
    from pyace import create_multispecies_basis_config
    from pyace.linearacefit import LinearACEDataset

    bconf = create_multispecies_basis_config(_pyace_config(n_functions, spec))
    df = pd.DataFrame({"ase_atoms": [c.atoms for c in configs],
                       "energy": [c.energy for c in configs],
                       "forces": [c.forces for c in configs]})
    ds = LinearACEDataset(bconf, df)
    start = time.perf_counter()
    A = ds.get_design_matrix(max_workers=workers)
    return ds.nfunc, time.perf_counter() - start, A.shape[0]


def sizes_and_rank(quick: bool, skip_rank: bool = False):
    """Basis sizes of the issue's table and rank of the evaluated basis on random
    environments (many-body columns; pair columns separately)."""
    from ase import Atoms

    from mlip_plugin.ace import ACEBasis, evaluate_basis

    sizes = {}
    for order, degree in [(3, 15), (3, 20), (3, 25), (4, 16), (5, 12)]:
        b = ACEBasis(["Si"], order, degree, R_CUT)
        sizes[f"N{order}_D{degree}"] = {"size": b.size, **b.summary()}
    rng = np.random.default_rng(0)
    ranks = {}
    todo = [] if skip_rank else [(3, 15)] if quick else [(3, 15), (3, 20), (4, 14)]
    for order, degree in todo:
        b = ACEBasis(["Si"], order, degree, R_CUT)
        n_env = int(1.5 * b.size) + 100
        envs = []
        for _ in range(n_env):
            n = int(rng.integers(4, 16))
            pos = [np.zeros(3)]
            while len(pos) <= n:
                v = rng.uniform(-R_CUT, R_CUT, 3)
                if 1.4 < np.linalg.norm(v) < R_CUT and min(
                        np.linalg.norm(np.array(pos) - v, axis=1)) > 1.0:
                    pos.append(v)
            envs.append(Atoms(f"Si{n + 1}", positions=np.array(pos)))
        vals = evaluate_basis(b, envs, forces=False)
        X = vals.site[np.flatnonzero(np.r_[1, np.diff(vals.atom_cfg)])]
        X = X / np.maximum(np.linalg.norm(X, axis=0), 1e-300)
        mb = np.array([f.kind == "manybody" for f in b.spec])
        row = {"size": b.size, "environments": n_env}
        for name, cols in (("manybody", mb), ("pair", ~mb), ("all", np.ones_like(mb))):
            s = np.linalg.svd(X[:, cols], compute_uv=False)
            row[f"rank_{name}"] = int(np.sum(s > 1e-12 * s[0]))
            row[f"n_{name}"] = int(cols.sum())
        ranks[f"N{order}_D{degree}"] = row
    return sizes, ranks


def main(argv=None):
    parser = base_parser("design_matrix", __doc__)
    parser.add_argument("--threads", type=int, default=2, help="cores for both codes")
    parser.add_argument("--pyace-stride", type=int, default=20,
                        help="python-ace at ~5000 functions runs on every N-th configuration")
    parser.add_argument("--no-pyace", action="store_true", help="skip python-ace")
    parser.add_argument("--cases", default="1000,5000",
                        help="basis sizes to run, from 1000 and 5000 (default both)")
    parser.add_argument("--no-rank", action="store_true", help="skip the rank report")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    res = Result("design_matrix", settings={"r_cut": R_CUT, "threads": args.threads,
                                            "quick": args.quick,
                                            "pyace_stride_5000": args.pyace_stride})
    stride = 10 if args.quick else 1
    configs = _load(args.data, stride)
    n_atoms = sum(c.n_atoms for c in configs)
    print(f"Zuo Si train: {len(configs)} configurations, {n_atoms} atoms (stride {stride})")
    wanted = set(args.cases.split(","))
    cases = [c for c in [("1000", 18, 1), ("5000", 25, args.pyace_stride)]
             if c[0] in wanted and not (args.quick and c[0] == "5000")]
    with threadpool_limits(args.threads, user_api="blas"):
        for label, degree, pstride in cases:
            size, sec, rows, peak = run_ours(configs, degree, args.threads)
            fig = {"ours_functions": size, "ours_seconds": sec, "ours_rows": rows,
                   "ours_rows_x_cols_per_s": rows * size / sec, "ours_atoms_per_s": n_atoms / sec,
                   "ours_peak_traced_bytes": peak}
            print(f"[{label}] ours: {size} functions, {rows} rows, {sec:.1f} s, "
                  f"{rows * size / sec:.3g} rows*cols/s, {n_atoms / sec:.0f} atoms/s, "
                  f"peak traced {peak / 2**20:.0f} MiB, max RSS {max_rss_bytes() / 2**20:.0f} MiB")
            if not args.no_pyace:
                sub = configs[::pstride]
                sub_atoms = sum(c.n_atoms for c in sub)
                nf, psec, prow = run_pyace(sub, size, PYACE_SPECS[label], args.threads)
                scaled = psec * n_atoms / sub_atoms
                fig.update({"pyace_functions": nf, "pyace_spec": PYACE_SPECS[label],
                            "pyace_seconds_measured": psec,
                            "pyace_configs": len(sub), "pyace_atoms": sub_atoms,
                            "pyace_seconds_full_data": scaled,
                            "pyace_rows_x_cols_per_s": prow * nf / psec,
                            "pyace_atoms_per_s": sub_atoms / psec,
                            "time_ratio_ours_over_pyace": sec / scaled})
                print(f"[{label}] python-ace: {nf} functions, {len(sub)} configurations "
                      f"({sub_atoms} atoms) in {psec:.1f} s -> {scaled:.1f} s for all "
                      f"{n_atoms} atoms; {sub_atoms / psec:.0f} atoms/s; ratio ours/pyace "
                      f"{sec / scaled:.3f}")
                goal = 0.5 if label == "1000" else 0.1
                res.target(f"time ours/pyace at ~{label} functions", sec / scaled,
                           f"<= {goal}", sec / scaled <= goal)
            res.figures[label] = fig
        sizes, ranks = sizes_and_rank(args.quick, args.no_rank)
    res.figures["basis_sizes"] = sizes
    res.figures["rank"] = ranks
    print("\nbasis sizes (Si):")
    for k, v in sizes.items():
        print(f"  {k:<8} {v}")
    print("rank on random environments (relative singular-value threshold 1e-12):")
    for k, v in ranks.items():
        print(f"  {k:<8} {v}")
    res.target("many-body size N=3 D=25 vs paper 5292",
               sizes["N3_D25"]["size"] - sizes["N3_D25"]["pair"], "== 5292",
               sizes["N3_D25"]["size"] - sizes["N3_D25"]["pair"] == 5292)
    res.finish(args.json)


if __name__ == "__main__":
    main()
