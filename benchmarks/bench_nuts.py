"""Warm-started NUTS against NUTS from NumPyro's default initialisation (issue 5).

For each seed: simulate a softmax mixture, fit EM (the warm start), then run
NUTS twice on the same data with the same number of chains, warm-up and draws:

* ``warm``:    ``smm.sample_nuts(..., init=<EM result>)`` (every chain at the EM
  estimate plus a small jitter);
* ``default``: ``smm.sample_nuts(..., init=None)`` (NumPyro's ``init_to_uniform``,
  each chain elsewhere).

Both posteriors are relabelled to the EM estimate (Hungarian per draw), so that
label switching *between* chains is not counted against the default start;
the raw (un-relabelled) R-hat is reported too.  Recorded per run: max R-hat
(relabelled and raw), whether all chains agree (max R-hat < 1.01), wall time
of the sampler (``wall_s``, compilation included) and net of the per-call
compilation overhead (``sampling_s``: wall time minus that of a 5 + 5 iteration
run), minimum bulk ESS, ESS per second of each, and the number of divergences.

    python benchmarks/bench_nuts.py            # full run, writes benchmarks/results/nuts.json
    python benchmarks/bench_nuts.py --smoke    # seconds: tiny sizes, scratch output
    python benchmarks/bench_nuts.py --seeds 2 --out path.json
"""

from __future__ import annotations

import warnings

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np

import smm_ppl as smm
from smm_ppl import diagnostics as D


def _problem(seed: int, p: int, L: int, K: int, N: int):
    truth = smm.simulate_params(seed, K, L, atoms_scale=1.0, min_separation=1.0)
    X = smm.simulate_features(seed + 1000, p, L)
    n = smm.simulate_counts(seed + 2000, X, truth, N)
    return X, n, truth


def _run(X, n, K, init, reference, seed, cfg) -> dict:
    idata, wall = harness.timed(
        smm.sample_nuts,
        X,
        n,
        K,
        init=init,
        reference=reference,
        num_chains=cfg["chains"],
        num_warmup=cfg["warmup"],
        num_samples=cfg["draws"],
        seed=seed,
        progress_bar=False,
    )
    r = D.rhat(idata)["max"]
    r_raw = D.rhat(idata, raw=True)["max"]
    ess = D.ess(idata)["min"]
    return {
        "max_rhat": r,
        "max_rhat_raw": r_raw,
        "all_chains_agree": bool(r < 1.01),
        "wall_s": wall,
        "min_ess_bulk": ess,
        "ess_per_s": ess / wall,
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "error_vs_truth": None,
        "_idata": idata,
    }


def measure(args) -> dict:
    if args.smoke:
        cfg = dict(p=100, L=2, K=2, N=5000, chains=2, warmup=60, draws=60, seeds=1)
    else:
        cfg = dict(p=300, L=2, K=3, N=20000, chains=4, warmup=400, draws=400, seeds=5)
    if args.seeds:
        cfg["seeds"] = args.seeds
    K = cfg["K"]
    warnings.simplefilter("ignore")  # EM reports skipped warm starts

    runs = []
    for s in range(cfg["seeds"]):
        X, n, truth = _problem(s, cfg["p"], cfg["L"], K, cfg["N"])
        em, em_s = harness.timed(smm.fit_em, X, n, K, seed=s)
        row = {"seed": s, "em_s": em_s, "em_error_atoms": smm.parameter_error(em.params, truth)["atoms"]}
        for name, init in (("warm", em), ("default", None)):
            # Every sample_nuts call compiles its NumPyro program (the data are baked in as
            # constants), a cost that does not depend on the number of draws: measure it with
            # a 5 + 5 iteration run and subtract it to get the sampling time proper.
            overhead = _run(X, n, K, init, em.params, s, dict(cfg, warmup=5, draws=5))["wall_s"]
            res = _run(X, n, K, init, em.params, s, cfg)
            idata = res.pop("_idata")
            res["overhead_s"] = overhead
            res["sampling_s"] = max(res["wall_s"] - overhead, 1e-3)
            res["ess_per_sampling_s"] = res["min_ess_bulk"] / res["sampling_s"]
            post = D.posterior_mean_params(idata)
            res["error_vs_truth"] = smm.parameter_error(post, truth)["atoms"]
            row[name] = res
        runs.append(row)
        w, d = row["warm"], row["default"]
        print(
            f"seed {s}: warm R-hat {w['max_rhat']:.3f} ({w['wall_s']:.1f} s, net {w['sampling_s']:.1f} s, ESS/s {w['ess_per_s']:.1f}) | "
            f"default R-hat {d['max_rhat']:.3f} raw {d['max_rhat_raw']:.3f} ({d['wall_s']:.1f} s, net {d['sampling_s']:.1f} s, "
            f"ESS/s {d['ess_per_s']:.1f})",
            flush=True,
        )

    def agg(variant):
        rows = [r[variant] for r in runs]
        return {
            "fraction_all_chains_agree": float(np.mean([r["all_chains_agree"] for r in rows])),
            "fraction_raw_rhat_below_1.01": float(np.mean([r["max_rhat_raw"] < 1.01 for r in rows])),
            "median_max_rhat": float(np.median([r["max_rhat"] for r in rows])),
            "median_wall_s": float(np.median([r["wall_s"] for r in rows])),
            "median_ess_per_s": float(np.median([r["ess_per_s"] for r in rows])),
            "median_sampling_s": float(np.median([r["sampling_s"] for r in rows])),
            "median_ess_per_sampling_s": float(np.median([r["ess_per_sampling_s"] for r in rows])),
            "median_min_ess": float(np.median([r["min_ess_bulk"] for r in rows])),
            "total_divergences": int(np.sum([r["divergences"] for r in rows])),
            "median_error_vs_truth": float(np.median([r["error_vs_truth"] for r in rows])),
        }

    summary = {"warm": agg("warm"), "default": agg("default")}
    summary["ratios"] = {
        "wall_time_default_over_warm": summary["default"]["median_wall_s"] / summary["warm"]["median_wall_s"],
        "ess_per_s_warm_over_default": summary["warm"]["median_ess_per_s"]
        / max(summary["default"]["median_ess_per_s"], 1e-12),
        "sampling_time_default_over_warm": summary["default"]["median_sampling_s"]
        / summary["warm"]["median_sampling_s"],
        "ess_per_sampling_s_warm_over_default": summary["warm"]["median_ess_per_sampling_s"]
        / max(summary["default"]["median_ess_per_sampling_s"], 1e-12),
        "median_em_s": float(np.median([r["em_s"] for r in runs])),
    }
    return {
        "benchmark": "bench_nuts",
        "smoke": bool(args.smoke),
        "design": cfg,
        "summary": summary,
        "runs": runs,
        "notes": (
            "Both variants relabelled to the EM estimate; wall_s includes the per-call compilation, "
            "sampling_s subtracts it (wall time of a 5+5 iteration run); "
            "the warm variant's total cost adds median_em_s for the EM fit."
        ),
    }


def report(d) -> tuple[str, list[str]]:
    if "summary" not in d:
        return harness.fields_table(d), []
    try:
        c, sm = d["design"], d["summary"]
        keys = [
            ("fraction_all_chains_agree", "all chains agree (R-hat < 1.01)", "{:.2f}"),
            ("fraction_raw_rhat_below_1.01", "raw R-hat < 1.01 (no relabelling)", "{:.2f}"),
            ("median_max_rhat", "median max R-hat", "{:.3f}"),
            ("median_min_ess", "median min bulk ESS", "{:.0f}"),
            ("median_wall_s", "median wall s (compilation included)", "{:.1f}"),
            ("median_ess_per_s", "median min ESS / s", "{:.2f}"),
            ("median_sampling_s", "median sampling s (compilation subtracted)", "{:.1f}"),
            ("median_ess_per_sampling_s", "median min ESS / sampling s", "{:.2f}"),
            ("total_divergences", "divergences (all runs)", "{:d}"),
            ("median_error_vs_truth", "median posterior-mean atom error", "{:.4f}"),
        ]
        rows = [
            [label, harness.fmt(sm["warm"].get(k), fmt), harness.fmt(sm["default"].get(k), fmt)]
            for k, label, fmt in keys
        ]
        txt = [
            f"`p = {c['p']}`, `L = {c['L']}`, `K = {c['K']}`, `N = {c['N']:,}`, {c['chains']} chains × "
            f"({c['warmup']} + {c['draws']}), {c['seeds']} data sets; both relabelled to the EM estimate.",
            "",
            harness.table(["", "warm start (EM)", "default init"], rows),
            "",
        ]
        r = sm["ratios"]
        txt += [
            f"Ratios (same run): min ESS per second warm / default {r['ess_per_s_warm_over_default']:.2f} "
            f"(per sampling second {r['ess_per_sampling_s_warm_over_default']:.2f}); wall time default / warm "
            f"{r['wall_time_default_over_warm']:.2f}; the EM fit itself took {r['median_em_s']:.2f} s (median)."
        ]
        head = [
            f"NUTS warm-started at EM vs default init: chains agree in {sm['warm']['fraction_all_chains_agree']:.0%} vs "
            f"{sm['default']['fraction_all_chains_agree']:.0%} of data sets; min ESS/s ratio warm/default "
            f"{r['ess_per_s_warm_over_default']:.2f} (`python benchmarks/bench_nuts.py`)"
        ]
        return "\n".join(txt), head
    except (KeyError, TypeError):
        return harness.fields_table(d), []


BENCHMARK = harness.Benchmark(
    name="nuts",
    measure=measure,
    report=report,
    options=(harness.option("--seeds", type=int, default=None, help="number of simulated data sets"),),
    timeout=1800,
    required=True,
    smoke_fields=True,
    heading="## 3. Bayesian\n\n### Warm-started NUTS against NUTS from the default initialisation\n\n"
    "From `python benchmarks/bench_nuts.py` (the inference module's benchmark):",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
