"""The EM defaults on Gaussian designs, K = 2..10: the quasi-Newton default against SQUAREM (no regression).

For each ``K`` and seed: ``fit_em(init="auto")`` and the oracle (``fit_em`` from the truth), once with the
default acceleration (``"auto"``: L-BFGS with the gradient M-step) and once with ``acceleration="squarem"``
(the previous default). Reported per ``K``: the largest ratio of the atom error of ``auto`` to the oracle's
(target ``<= 1.02``), how many fits converged, and the median wall time of ``auto`` (after the first fit of
each shape has compiled).

    python benchmarks/bench_defaults.py [--seeds 3] [--K 2 3 4 6 8 10] [--smoke] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import smm_ppl as smm

from _common import environment, result_path, save_json


def _error(params, truth) -> float:
    return float(np.max(np.abs(smm.align_params(params, truth).atoms - truth.atoms)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--K", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10])
    ap.add_argument("-p", type=int, default=1000)
    ap.add_argument("-L", type=int, default=12)
    ap.add_argument("-N", type=int, default=200_000)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.seeds, args.K, args.p, args.L, args.N = 1, [2], 300, 4, 20_000
    warnings.simplefilter("ignore")
    rows = []
    for K in args.K:
        X = smm.simulate_features(100 + K, args.p, args.L)
        truth = smm.simulate_params(101 + K, K, args.L, atoms_scale=0.6, min_separation=1.0)
        for s in range(args.seeds):
            n = smm.simulate_counts(1000 * s + 7 + K, X, truth, args.N)
            row = {"K": K, "seed": s}
            for acc in ("auto", "squarem"):
                t0 = time.perf_counter()
                fit = smm.fit_em(X, n, K, seed=s, acceleration=acc, compute_standard_errors=False)
                wall = time.perf_counter() - t0
                oracle = smm.fit_em(X, n, K, init=truth, acceleration=acc, compute_standard_errors=False)
                row[acc] = {
                    "error_ratio": _error(fit.params, truth) / _error(oracle.params, truth),
                    "ll_gap": fit.log_likelihood - oracle.log_likelihood,
                    "converged": fit.converged,
                    "n_iter": fit.n_iter,
                    "wall_s": wall,
                    "init": fit.init,
                }
            rows.append(row)
    summary = []
    print(
        f"{'K':>3} | {'auto: max ratio':>15} {'conv':>5} {'median s':>8} | {'squarem: max ratio':>18} {'conv':>5} {'median s':>8}"
    )
    for K in args.K:
        rs = [r for r in rows if r["K"] == K]
        line = {"K": K}
        for acc in ("auto", "squarem"):
            line[acc] = {
                "max_error_ratio": max(r[acc]["error_ratio"] for r in rs),
                "converged": sum(r[acc]["converged"] for r in rs),
                "fits": len(rs),
                "median_wall_s": float(np.median([r[acc]["wall_s"] for r in rs])),
            }
        summary.append(line)
        a, q = line["auto"], line["squarem"]
        print(
            f"{K:>3} | {a['max_error_ratio']:>15.4f} {a['converged']:>2}/{a['fits']} {a['median_wall_s']:>8.2f} | "
            f"{q['max_error_ratio']:>18.4f} {q['converged']:>2}/{q['fits']} {q['median_wall_s']:>8.2f}"
        )
    result = {
        "name": "defaults",
        "smoke": args.smoke,
        "environment": environment(),
        "args": vars(args),
        "rows": rows,
        "summary": summary,
    }
    save_json(result, "defaults", result_path("defaults", args.smoke, args.out))
    return result


if __name__ == "__main__":
    main()
