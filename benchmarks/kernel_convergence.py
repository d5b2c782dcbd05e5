"""PCG convergence of the GDML kernel solver (Blücher, Müller & Chmiela 2023: Fig. 5, Tables I/II).

    python benchmarks/kernel_convergence.py [--train FILE --test FILE] [--n-train 300]
        [--n-train-solvers 700] [--quick] [--json OUT]

Default: rMD17 ethanol, then uracil (split 01); (a), (b), (d) on ``--n-train`` training
frames, (c) on ``--n-train-solvers`` frames tested on ``--n-test`` test frames; σ = 20,
λ = 1e-10, CG tolerance 1e-4, one BLAS thread for every solver.  For each molecule it reports

(a) CG iterations to the tolerance against the preconditioner rank k for the uniform,
    ridge-leverage and incomplete-Cholesky Nyström preconditioners (Fig. 5); the sampled ones
    with ``--seeds`` seeds (mean ± std);
(b) ``(m, k_min)`` of the rule of thumb fitted by ``calibrate_rule_of_thumb`` (short runs on
    ``--calib-frames`` frames and on twice as many, which measure how the iterations grow with
    n; k_min is that of the law at the full n), the same fit on the full-size
    incomplete-Cholesky counts of (a), and the paper's Table I values;
(c) analytic (dense Cholesky) against PCG (incomplete Cholesky, calibrated rule-of-thumb k):
    training time and test force/energy MAE (Table II style).  The analytic solve is skipped,
    with the reason printed, when ``8 n²`` bytes exceed ``--max-analytic-gb`` or the free memory;
(d) time to solution (preconditioner + CG) of the incomplete-Cholesky PCG over a geometric
    scan of k (``--scan`` ranks), refined next to the fastest k in steps of ``--step`` (1.3);
    target, evaluated for both: the calibrated rule-of-thumb k within 2× of the fastest k,
    for the paper's formula with the calibrated (m, k_min) (``RuleFit.k``) and for the
    cost-aware k that minimises the cost model measured in the same calibration runs
    (``RuleFit.k_cost``); the model's predicted seconds are printed next to the measured.

``--quick`` uses 100 training frames (150 for (c)) and 200 test frames, 2 seeds and a
shorter k scan (1–3 minutes for both molecules); the defaults take 7–11 minutes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, base_parser, max_rss_bytes, timed  # noqa: E402
from kernel import cell, data_jobs, load, summary  # noqa: E402

from mlip_plugin.data.units import KCAL_PER_MOL  # noqa: E402
from mlip_plugin.errors import ConvergenceWarning  # noqa: E402
from mlip_plugin.kernels import (  # noqa: E402
    GDMLOperator,
    TrainSettings,
    WoodburyPreconditioner,
    build_factor,
    calibrate_rule_of_thumb,
    pcg,
    rule_of_thumb_k,
    train_gdml,
)

#: The paper's Table I (m, k_min).
PAPER_TABLE_I = {"ethanol": (0.87, 10.0), "uracil": (1.07, 32.0)}
KINDS = ("cholesky", "leverage", "uniform")


def parse_args():
    p = base_parser("kernel_convergence", __doc__)
    p.add_argument("--train", help="sGDML-style .npz training file (default: rMD17 files)")
    p.add_argument("--test", help="sGDML-style .npz test file (required with --train)")
    p.add_argument("--n-train", type=int, default=300,
                   help="(a), (b), (d): training frames per molecule")
    p.add_argument("--n-train-solvers", type=int, default=700,
                   help="(c): training frames per molecule for analytic vs PCG")
    p.add_argument("--n-test", type=int, default=1000, help="test frames per molecule")
    p.add_argument("--sigma", type=float, default=20.0)
    p.add_argument("--lam", type=float, default=1e-10)
    p.add_argument("--tol", type=float, default=1e-4, help="CG relative-residual tolerance")
    p.add_argument("--ks", type=int, nargs="+", default=[100, 200, 400, 800],
                   help="(a): preconditioner ranks")
    p.add_argument("--seeds", type=int, default=3, help="(a): seeds of the sampled ones")
    p.add_argument("--scan", type=int, default=7, help="(d): number of k in the geometric scan")
    p.add_argument("--step", type=float, default=1.3,
                   help="(d): ratio of the ranks added next to the fastest k")
    p.add_argument("--refine-runs", type=int, default=6,
                   help="(d): at most this many ranks added next to the fastest k")
    p.add_argument("--calib-frames", type=int, default=50,
                   help="(b): frames of the calibration subset")
    p.add_argument("--maxiter", type=int, default=6000)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads of every solver")
    p.add_argument("--max-analytic-gb", type=float, default=6.0)
    return p.parse_args()


def solve_once(op, y, kind: str, k: int, args, seed: int = 0) -> dict:
    """Build one preconditioner and run PCG; iterations and seconds of both stages."""
    start = time.perf_counter()
    P = WoodburyPreconditioner(build_factor(op, kind, k, np.random.default_rng(seed)),
                               args.lam)
    t_pre = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():  # non-convergence is reported in the tables
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = pcg(lambda v: op.matvec(v) + args.lam * v, y, P, tol=args.tol,
                  maxiter=args.maxiter)
    t_cg = time.perf_counter() - start
    return {"iterations": res.n_iter if res.converged else None, "t_pre": t_pre,
            "t_cg": t_cg, "seconds": t_pre + t_cg}


def iterations_vs_k(op, y, args, ic_runs: dict) -> dict:
    """(a): the Fig. 5 table; the incomplete-Cholesky runs are kept in ``ic_runs``."""
    print(f"\n  (a) CG iterations to tol={args.tol} (sampled: mean±std over {args.seeds} "
          f"seeds; * = some runs hit maxiter={args.maxiter})\n  {'k':>6} " +
          " ".join(f"{c:>12}" for c in KINDS), flush=True)
    table = {}
    for k in [k for k in args.ks if k <= op.n]:
        row = {}
        for kind in KINDS:
            seeds = [0] if kind == "cholesky" else range(args.seeds)
            runs = [solve_once(op, y, kind, k, args, seed) for seed in seeds]
            if kind == "cholesky":
                ic_runs[k] = runs[0]
            row[kind] = summary([r["iterations"] for r in runs])
        table[k] = row
        print(f"  {k:>6} " + " ".join(f"{cell(row[c]):>12}" for c in KINDS), flush=True)
    return table


def fit_full(ic_runs: dict, n: int) -> tuple[float, float] | None:
    """``(m, k_min)`` of ``t = n (k_min / k)^m`` fitted to full-size IC iteration counts."""
    ks = [k for k, r in ic_runs.items() if r["iterations"]]
    if len(ks) < 2:
        return None
    slope, icept = np.polyfit(np.log(ks), np.log([ic_runs[k]["iterations"] for k in ks]), 1)
    m = -slope
    return (float(m), float(np.exp((icept - np.log(n)) / m))) if m > 0 else None


def rule_table(name, R, F, op, ic_runs, args, result: Result):
    """(b): the calibrated rule of thumb next to the paper's Table I; returns the fit and the
    (m, k_min) fitted to the full-size counts of (a) (or None)."""
    with timed() as t:
        fit = calibrate_rule_of_thumb(R, F, args.sigma, args.lam, tol=args.tol,
                                      n_frames=min(args.calib_frames, len(R)))
    full = fit_full(ic_runs, op.n)
    m_p, kmin_p = next((v for mol, v in PAPER_TABLE_I.items() if mol in name.lower()),
                       (float("nan"), float("nan")))
    k_cal = fit.k(op.n)
    print(f"\n  (b) rule of thumb k = (k_min^m m n² / 2)^(1/(2+m)) at n = {op.n}\n"
          f"  {'source':<40} {'m':>6} {'k_min':>8} {'k':>6}")
    label = f"calibrate_rule_of_thumb ({' + '.join(map(str, sorted(set(fit.sizes))))} rows)"
    print(f"  {label:<40} {fit.m:>6.2f} {fit.k_min_at(op.n):>8.1f} {k_cal:>6}   "
          f"({t.seconds:.1f} s; iterations ∝ n^{fit.n_exponent:.2f}; ks {fit.ks.tolist()}, "
          f"iterations {fit.iterations.tolist()})")
    if full:
        print(f"  {'fit to the (a) incomplete-Cholesky counts':<40} {full[0]:>6.2f} "
              f"{full[1]:>8.1f} {rule_of_thumb_k(op.n, *full):>6}")
    if np.isfinite(m_p):
        print(f"  {'paper, Table I':<40} {m_p:>6.2f} {kmin_p:>8.1f} "
              f"{rule_of_thumb_k(op.n, m_p, kmin_p):>6}")
    c = fit.cost
    print(f"  {'cost-aware (calibrated m, k_min; timings)':<40} {fit.m:>6.2f} "
          f"{fit.k_min_at(op.n):>8.1f} "
          f"{fit.k_cost(op.n):>6}\n  cost model (same runs): build {c.t_build:.3g} s/(k²n) + "
          f"{c.t_rows:.3g} s/(kn); application {c.t_pc:.3g} s/(kn) + {c.t_vec:.3g} s/n; "
          f"product {c.t_mv1:.3g} s/n + {c.t_mv2:.3g} s/n² = {c.t_mv(op.n) * 1e3:.2f} ms at "
          f"n = {op.n}")
    result.figures[name]["rule"] = {
        "calibrated": {"m": fit.m, "k_min": fit.k_min, "k_min_at_n": fit.k_min_at(op.n),
                       "n_exponent": fit.n_exponent, "k": k_cal, "n_sub": fit.n_sub,
                       "ks": fit.ks.tolist(), "iterations": fit.iterations.tolist(),
                       "sizes": fit.sizes.tolist(),
                       "seconds": t.seconds},
        "cost_aware_k": fit.k_cost(op.n), "cost_model": dataclasses.asdict(fit.cost),
        "full_fit": None if full is None else {"m": full[0], "k_min": full[1]},
        "paper": {"m": m_p, "k_min": kmin_p}}
    return fit, full


def free_bytes() -> int:
    """Memory available to a new allocation (``MemAvailable``; else free pages)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def train_and_test(data, test, settings: TrainSettings) -> dict:
    R, z, E, F = data
    with timed() as t:
        model = train_gdml(R, z, E, F, settings)
    Ep, Fp = model.predict(test[0])
    rec = model.record
    return {"seconds": t.seconds, "force_mae": float(np.abs(Fp - test[3]).mean() / KCAL_PER_MOL),
            "energy_mae": float(np.abs(Ep - test[2]).mean() / KCAL_PER_MOL), "k": rec.k,
            "iterations": rec.n_iter, "time_preconditioner": rec.time_preconditioner,
            "time_solve": rec.time_solve}


def analytic_vs_pcg(name, data, test, fit, args, result: Result) -> None:
    """(c): Table II style comparison of the two solvers on the test frames; PCG with the
    incomplete Cholesky of the calibrated rule-of-thumb rank."""
    n = data[0].size
    k = fit.k(n)
    print(f"\n  (c) {len(data[0])} training frames (n = {n}), PCG rank k = {k} (calibrated rule)")
    # the plain kernel, as in (a), (b), (d): the paper's study (symmetries: kernel.py)
    base = dict(sigma=args.sigma, lam=args.lam, tol=args.tol, maxiter=args.maxiter,
                perms=None)
    rows = {"pcg": train_and_test(data, test, TrainSettings(**base, solver="pcg", k=k))}
    need, free = 8.0 * n * n, free_bytes()
    if need > args.max_analytic_gb * 1e9 or need > 0.7 * free:
        reason = (f"needs {need / 1e9:.1f} GB for K; limit --max-analytic-gb "
                  f"{args.max_analytic_gb} GB, {free / 1e9:.1f} GB free")
        print(f"\n  (c) analytic solve skipped: {reason}")
        rows["analytic_skipped"] = reason
        result.missing(f"{name}: |F MAE PCG / analytic - 1|", "<= 0.01",
                       f"analytic solve skipped: {reason}")
    else:
        rows["analytic"] = train_and_test(data, test, TrainSettings(**base, solver="analytic"))
    print(f"\n  (c) solvers on {len(test[0])} test frames (MAE in kcal/mol, kcal/mol/Å)\n"
          f"  {'solver':<22} {'train s':>8} {'F MAE':>8} {'E MAE':>8} {'k':>6} {'iters':>6}")
    for key in ("analytic", "pcg"):
        if key in rows:
            r = rows[key]
            label = "analytic (Cholesky)" if key == "analytic" else "PCG (inc. Cholesky)"
            print(f"  {label:<22} {r['seconds']:>8.1f} {r['force_mae']:>8.4f} "
                  f"{r['energy_mae']:>8.4f} {r['k'] or '':>6} {r['iterations'] or '':>6}")
    if "analytic" in rows:
        an, pc = rows["analytic"], rows["pcg"]
        rel = abs(pc["force_mae"] / an["force_mae"] - 1)
        result.target(f"{name}: |F MAE PCG / analytic - 1|", rel, "<= 0.01", rel <= 0.01)
        result.figures[name]["time_ratio_pcg_over_analytic"] = pc["seconds"] / an["seconds"]
        print(f"  time PCG / analytic: {pc['seconds'] / an['seconds']:.3f}")
    result.figures[name]["solvers"] = rows


def refine(scan: dict, run, step: float, lo: int, hi: int, max_runs: int) -> None:
    """Add ranks ``best · step^±1`` next to the fastest k until both its neighbours in the
    scan lie within ``1.05 · step`` of it (or at ``lo``/``hi``), at most ``max_runs`` runs."""
    for _ in range(max_runs):
        ok = sorted(k for k, r in scan.items() if r["iterations"] is not None)
        if not ok:
            return
        best = min(ok, key=lambda k: scan[k]["seconds"])
        ks = sorted(scan)
        i = ks.index(best)
        new = []
        if i + 1 < len(ks) and ks[i + 1] / best > 1.05 * step:
            new.append(min(hi, round(best * step)))
        if i > 0 and best / ks[i - 1] > 1.05 * step:
            new.append(max(lo, round(best / step)))
        new = [k for k in new if k not in scan]
        if not new:
            return
        run(new[0])


def time_scan(name, op, y, fit, full, args, result: Result) -> None:
    """(d): time to solution of incomplete-Cholesky PCG over k: a geometric scan, refined in
    steps of ``--step`` next to the fastest k; the fastest k against the paper's rule of thumb
    with the calibrated (m, k_min) and against the cost-aware k (minimum of the measured cost
    model).  Next to the measured figures: the cost model's iterations (calibrated law), build
    seconds and ms per iteration; and, as a diagnostic of where the model errs, the cost-aware
    k with the iteration law ``full`` fitted to the full-size counts of (a)."""
    n, cost = op.n, fit.cost
    picks = {"paper rule, calibrated (m, k_min)": fit.k(n), "cost-aware (measured cost)":
             fit.k_cost(n)}
    lo_pick, hi_pick = min(picks.values()), max(picks.values())
    lo, hi = max(8, lo_pick // 8), min(n, max(4 * hi_pick, max(args.ks)))
    grid = sorted({int(k) for k in np.geomspace(lo, hi, args.scan)} | set(picks.values()))
    print(f"\n  (d) time to solution, incomplete-Cholesky PCG (tol={args.tol}); model = cost "
          "model and iteration law of the calibration\n"
          f"  {'k':>6} {'iters':>6} {'model':>6} {'precond s':>10} {'model':>6} "
          f"{'ms/iter':>8} {'model':>6} {'total s':>8} {'model':>6}")
    scan: dict = {}

    def run(k: int) -> None:
        scan[k] = r = solve_once(op, y, "cholesky", k, args)
        r["model_seconds"] = float(cost.seconds(k, n, fit.m, fit.k_min_at(n)))
        r["model_iterations"] = float(fit.iterations_at(k, n))
        r["model_build"] = n * (cost.t_build * k**2 + cost.t_rows * k)
        r["model_ms_per_iteration"] = 1e3 * (cost.t_mv(n) + n * (cost.t_pc * k + cost.t_vec))
        ms = 1e3 * r["t_cg"] / r["iterations"] if r["iterations"] else float("nan")
        print(f"  {k:>6} {str(r['iterations']):>6} {r['model_iterations']:>6.0f} "
              f"{r['t_pre']:>10.2f} {r['model_build']:>6.2f} {ms:>8.2f} "
              f"{r['model_ms_per_iteration']:>6.2f} {r['seconds']:>8.2f} "
              f"{r['model_seconds']:>6.2f}", flush=True)

    for k in grid:
        run(k)
    refine(scan, run, args.step, lo, hi, args.refine_runs)
    ok = {k: r for k, r in scan.items() if r["iterations"] is not None}
    best = min(ok, key=lambda k: ok[k]["seconds"])
    ks = sorted(scan)
    i = ks.index(best)
    spacing = [ks[j] / ks[j - 1] for j in (i, i + 1) if 0 < j < len(ks)]
    print(f"  fastest k = {best} ({ok[best]['seconds']:.2f} s; neighbours in the scan at "
          f"{', '.join(f'{x:.2f}' for x in spacing)}x)")
    figures = {"ks": ks, "runs": scan, "fastest_k": best, "picks": {}}
    for label, k in picks.items():
        ratio, slow = k / best, scan[k]["seconds"] / ok[best]["seconds"]
        print(f"  {label:<36} k = {k:>6}: k / k_fastest = {ratio:.2f}, time / fastest time "
              f"= {slow:.2f}")
        figures["picks"][label] = {"k": k, "k_over_fastest": ratio, "time_over_fastest": slow}
        result.target(f"{name}: {label} k / k_fastest", ratio, "in [0.5, 2]",
                      0.5 <= ratio <= 2.0)
    if full:
        k_full = cost.k(n, *full)
        print(f"  diagnostic, not a target: cost-aware k with the (a) full-size law m = "
              f"{full[0]:.2f}, k_min = {full[1]:.1f}: k = {k_full} "
              f"({k_full / best:.2f} x the fastest)")
        figures["cost_aware_k_full_law"] = k_full
    result.figures[name]["time_scan"] = figures


def run_molecule(name, train_file, test_file, args, result: Result) -> None:
    data = load(train_file, max(args.n_train, args.n_train_solvers))
    test = load(test_file, args.n_test)
    R, F = data[0][:args.n_train], data[3][:args.n_train]
    op = GDMLOperator(R, args.sigma)
    y = F.reshape(-1)
    print(f"\n== {name}: {len(R)} training frames (n = {op.n}), {len(test[0])} test frames, "
          f"sigma={args.sigma}, lam={args.lam}, tol={args.tol}, {args.threads} BLAS thread(s)",
          flush=True)
    result.figures[name] = {"n_train": len(R), "n": op.n}
    ic_runs: dict = {}
    with timed() as t:
        result.figures[name]["iterations"] = iterations_vs_k(op, y, args, ic_runs)
        fit, full = rule_table(name, R, F, op, ic_runs, args, result)
        time_scan(name, op, y, fit, full, args, result)
        ns = args.n_train_solvers
        solver_data = (data[0][:ns], data[1], data[2][:ns], data[3][:ns])
        analytic_vs_pcg(name, solver_data, test, fit, args, result)
    result.figures[name]["seconds"] = t.seconds
    print(f"\n  {name}: {t.seconds:.0f} s in all", flush=True)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    jobs = data_jobs(args)
    if args.quick:
        args.n_train, args.n_test = min(args.n_train, 100), min(args.n_test, 200)
        args.n_train_solvers = min(args.n_train_solvers, 150)
        args.seeds, args.scan, args.ks = min(args.seeds, 2), min(args.scan, 6), [50, 100, 200]
    result = Result("kernel_convergence", settings=dict(vars(args)))
    with timed() as t, threadpool_limits(args.threads, user_api="blas"):
        for name, train_file, test_file in jobs:
            run_molecule(name, train_file, test_file, args, result)
    result.figures["seconds"] = t.seconds
    result.figures["max_rss_bytes"] = max_rss_bytes()
    print(f"\ntotal {t.seconds:.0f} s")
    result.finish(args.json)


if __name__ == "__main__":
    main()
