"""The EM defaults on Gaussian designs, K = 2..10: the quasi-Newton default against SQUAREM (no regression).

For each ``K`` and seed: ``fit_em(init="auto")`` and the oracle (``fit_em`` from the truth), once with the
default acceleration (``"auto"``: L-BFGS with the gradient M-step) and once with ``acceleration="squarem"``
(the previous default). Reported per ``K``: the largest ratio of the atom error of ``auto`` to the oracle's
(target ``<= 1.02``), how many fits converged, and the median wall time of ``auto`` (after the first fit of
each shape has compiled).

    python benchmarks/bench_defaults.py [--seeds 3] [--K 2 3 4 6 8 10] [--smoke] [--out FILE]
"""

from __future__ import annotations

import warnings

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np

import smm_ppl as smm


def _error(params, truth) -> float:
    return float(np.max(np.abs(smm.align_params(params, truth).atoms - truth.atoms)))


def measure(args) -> dict:
    warnings.simplefilter("ignore")
    rows = []
    for K in args.K:
        X = smm.simulate_features(100 + K, args.p, args.L)
        truth = smm.simulate_params(101 + K, K, args.L, atoms_scale=0.6, min_separation=1.0)
        for s in range(args.seeds):
            n = smm.simulate_counts(1000 * s + 7 + K, X, truth, args.N)
            row = {"K": K, "seed": s}
            for acc in ("auto", "squarem"):
                fit, wall = harness.timed(smm.fit_em, X, n, K, seed=s, acceleration=acc, compute_standard_errors=False)
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
    return {
        "name": "defaults",
        "smoke": args.smoke,
        "args": vars(args),
        "rows": rows,
        "summary": summary,
    }


def report(res) -> tuple[str, list[str]]:
    """The quasi-Newton default against SQUAREM on Gaussian designs (no regression)."""
    if not res.get("summary"):
        return "", []
    rows = []
    for line in res["summary"]:
        a, q = line["auto"], line["squarem"]
        rows.append(
            [
                line["K"],
                f"{a['max_error_ratio']:.4f}",
                f"{a['converged']}/{a['fits']}",
                f"{a['median_wall_s']:.2f}",
                f"{q['max_error_ratio']:.4f}",
                f"{q['converged']}/{q['fits']}",
                f"{q['median_wall_s']:.2f}",
            ]
        )
    args = res["args"]
    table = harness.table(
        "K | default: max error ratio | converged | median s | SQUAREM: max ratio | converged | median s",
        rows,
    )
    intro = (
        f"p = {args['p']:,}, L = {args['L']}, N = {args['N']:,}, {args['seeds']} seeds per K; error ratio = "
        "atom error of `fit_em(init='auto')` over that of EM from the truth (`python benchmarks/bench_defaults.py`)."
    )
    worst = max(line["auto"]["max_error_ratio"] for line in res["summary"])
    return intro + "\n\n" + table, [
        f"Gaussian designs, K up to {max(a['K'] for a in res['summary'])}: error of "
        f"`auto` at most {worst:.4f}x the oracle's with the default acceleration"
    ]


BENCHMARK = harness.Benchmark(
    name="defaults",
    measure=measure,
    report=report,
    options=(
        harness.option("--seeds", type=int, default=3),
        harness.option("--K", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10]),
        harness.option("-p", type=int, default=1000),
        harness.option("-L", type=int, default=12),
        harness.option("-N", type=int, default=200_000),
    ),
    smoke={"seeds": 1, "K": [2], "p": 300, "L": 4, "N": 20_000},
    timeout=1800,
    heading="## EM defaults on Gaussian designs",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
