"""Time to a first result: what a user waits for, compilation included (issue "Compile once").

Each scenario runs in fresh Python processes, in one run of this script, on
the issue's data (p = 1,000 items, L = 3, K = 2, N = 20,000):

* ``import smm_ppl``;
* the first ``fit_em`` in a fresh process, with an empty persistent
  compilation cache (cold) and again in a second process on the filled cache
  (warm);
* in the cold process, then: the same shapes on new data, another number of
  items in the same shape bucket (p = 1,200), another ``K`` (3);
* the first ``sample_nuts`` (2 chains x 600 draws) and a second one on new
  data of the same shape bucket, beside the time of a third, fully compiled
  call on that data (the sampling time);
* the peers on the same data: SciPy BFGS with 5 random starts (the mixture
  log-likelihood and its analytic gradient in NumPy) and flexmix
  (``FLXMRcondlogit``, R, when installed), wall time of a fresh process.

The figures are ratios against SciPy BFGS measured in the same run.
Usage: ``python benchmarks/bench_latency.py [--smoke] [--no-flexmix] [--out PATH]``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import harness

P, P_OTHER, L, K, N = 1000, 1200, 3, 2, 20_000


def first_results(mode: str, smoke: bool) -> dict:
    """In a fresh process: the import, the first fit and, in ``mode="sequence"``, what follows it."""
    t0 = time.perf_counter()
    import smm_ppl as smm

    out = {"import_s": time.perf_counter() - t0}

    def data(p, k, seed):
        x = smm.simulate_features(seed, p, L)
        truth = smm.simulate_params(seed + 1, k, L, min_separation=1.0)
        return x, smm.simulate_counts(seed + 2, x, truth, N)

    def timed(label, fn, *args, **kwargs):
        out[label] = harness.timed(fn, *args, **kwargs)[1]

    x, n = data(P, K, 0)
    timed("first_fit_s", smm.fit_em, x, n, K)
    if mode == "sequence":
        x2, n2 = data(P, K, 10)
        timed("same_shapes_s", smm.fit_em, x2, n2, K)
        x3, n3 = data(P_OTHER, K, 20)
        timed("other_size_s", smm.fit_em, x3, n3, K)
        x4, n4 = data(P, K + 1, 30)
        timed("other_k_s", smm.fit_em, x4, n4, K + 1)
        draws = 100 if smoke else 600
        kw = dict(num_chains=2, num_warmup=draws, num_samples=draws, progress_bar=False)
        timed("first_nuts_s", smm.sample_nuts, x, n, K, **kw)
        x5, n5 = data(P_OTHER, K, 40)
        em5 = smm.fit_em(x5, n5, K)
        timed("second_nuts_s", smm.sample_nuts, x5, n5, K, init=em5, **kw)
        timed("nuts_sampling_s", smm.sample_nuts, x5, n5, K, init=em5, **kw)
    out["programs"] = smm.compiled_programs()
    return out


def bfgs(data_file: str) -> dict:
    """In a fresh process: SciPy BFGS from 5 random starts on the mixture log-likelihood, its analytic gradient
    in NumPy."""
    t0 = time.perf_counter()
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    imp = time.perf_counter() - t0
    d = np.load(data_file)
    x, n, K = d["x"], d["n"], int(d["K"])
    L = x.shape[1]

    def nll(z):
        eta = np.concatenate([z[: K - 1], [0.0]])
        atoms = z[K - 1 :].reshape(K, L)
        logits = x @ atoms.T
        log_sigma = logits - logsumexp(logits, axis=0)
        log_w = eta - logsumexp(eta)
        joint = log_sigma + log_w
        log_pi = logsumexp(joint, axis=1)
        gamma = np.exp(joint - log_pi[:, None])
        sigma = np.exp(log_sigma)
        ng = n[:, None] * gamma
        g_atoms = ng.T @ x - ng.sum(0)[:, None] * (sigma.T @ x)
        g_eta = ng.sum(0) - n.sum() * np.exp(log_w)
        return -n @ log_pi, -np.concatenate([g_eta[: K - 1], g_atoms.ravel()])

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    best = None
    for _ in range(5):
        z0 = np.concatenate([np.zeros(K - 1), rng.normal(size=K * L)])
        r = minimize(nll, z0, jac=True, method="BFGS", options={"gtol": 1e-6, "maxiter": 5000})
        best = r if best is None or r.fun < best.fun else best
    return {"import_s": imp, "fit_s": time.perf_counter() - t0, "log_likelihood": -best.fun}


def _fresh(fn, *args, env) -> dict:
    out, wall = harness.in_fresh_process(fn, *args, env=env, timeout=900)
    return {**out, "process_wall_s": wall}


def _flexmix(x, n, workdir: Path) -> dict | None:
    """flexmix, 1 rep, in R (as in bench_peers): the fit and the process's wall time."""
    if shutil.which("Rscript") is None:
        return None
    from bench_peers import fit_flexmix  # here, not at the top: the fresh processes import this module

    res = fit_flexmix(x, n, K, workdir, timeout=1800, nrep=1, seed=0)
    if res["status"] != "ok":
        return {"error": res["reason"]}
    return {"process_wall_s": res["wall_s"], "fit_s": res["time_s"], "log_likelihood": res["log_likelihood_reported"]}


def measure(args) -> dict:
    import numpy as np

    import smm_ppl as smm

    x = smm.simulate_features(0, P, L)
    truth = smm.simulate_params(1, K, L, min_separation=1.0)
    n = smm.simulate_counts(2, x, truth, N)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np_file = tmp / "data.npz"
        np.savez(np_file, x=x, n=n, K=K)
        env = {"SMM_PPL_COMPILATION_CACHE": str(tmp / "jax-cache")}
        print("cold process (empty compilation cache): the whole sequence ...", flush=True)
        cold = _fresh(first_results, "sequence", args.smoke, env=env)
        print("warm process (filled cache): first fit ...", flush=True)
        warm = _fresh(first_results, "first", args.smoke, env=env)
        print("SciPy BFGS, 5 starts ...", flush=True)
        base = _fresh(bfgs, str(np_file), env=env)
        flex = None if (args.smoke or args.no_flexmix) else _flexmix(x, n, tmp)

    ratios = {
        "first_fit_cold_vs_bfgs": cold["first_fit_s"] / base["fit_s"],
        "first_fit_warm_vs_bfgs": warm["first_fit_s"] / base["fit_s"],
        "other_size_vs_bfgs": cold["other_size_s"] / base["fit_s"],
        "same_shapes_vs_bfgs": cold["same_shapes_s"] / base["fit_s"],
        "second_nuts_wall_vs_sampling": cold["second_nuts_s"] / cold["nuts_sampling_s"],
    }
    acceptance = {
        "first_fit_cold_vs_bfgs": 4.0,
        "first_fit_warm_vs_bfgs": 1.5,
        "other_size_vs_bfgs": 0.5,
        "second_nuts_wall_vs_sampling": 1.2,
    }
    print(f"programs compiled in the cold process: {cold['programs']}")
    return {
        "data": {"p": P, "p_other": P_OTHER, "L": L, "K": K, "N": N},
        "cold": cold,
        "warm": warm,
        "bfgs": base,
        "flexmix": flex,
        "ratios": ratios,
        "acceptance": acceptance,
        "smoke": args.smoke,
    }


def report(res) -> tuple[str, list[str]]:
    """The steps a user waits for (fresh processes, compilation included) and the ratios against BFGS."""
    cold, warm, bfgs, flex = res["cold"], res["warm"], res["bfgs"], res.get("flexmix") or {}
    d = res["data"]
    rows = [
        ["`import smm_ppl`", harness.fmt(cold["import_s"], "{:.2f}"), harness.fmt(warm["import_s"], "{:.2f}")],
        ["first `fit_em`", harness.fmt(cold["first_fit_s"], "{:.2f}"), harness.fmt(warm["first_fit_s"], "{:.2f}")],
        ["same shapes, new data", harness.fmt(cold["same_shapes_s"], "{:.2f}"), ""],
        [f"p = {d['p_other']:,} (same bucket)", harness.fmt(cold["other_size_s"], "{:.2f}"), ""],
        [f"K = {d['K'] + 1}", harness.fmt(cold["other_k_s"], "{:.2f}"), ""],
        ["first `sample_nuts` (2 x 600 draws)", harness.fmt(cold["first_nuts_s"], "{:.2f}"), ""],
        ["`sample_nuts`, new data of the same bucket", harness.fmt(cold["second_nuts_s"], "{:.2f}"), ""],
        ["  its sampling time (a compiled call)", harness.fmt(cold["nuts_sampling_s"], "{:.2f}"), ""],
        ["SciPy BFGS, 5 starts (fit; process wall)", f"{bfgs['fit_s']:.2f}; {bfgs['process_wall_s']:.2f}", ""],
    ]
    if "fit_s" in flex:
        rows.append(["flexmix, 1 rep (fit; process wall)", f"{flex['fit_s']:.2f}; {flex['process_wall_s']:.2f}", ""])
    table = harness.table("step (fresh process, in order) | empty cache (s) | filled cache (s)", rows)
    acc = res.get("acceptance", {})
    ratios = ", ".join(
        f"{k.replace('_', ' ')} {v:.2f}" + (f" (target <= {acc[k]})" if k in acc else "")
        for k, v in res["ratios"].items()
    )
    head = (
        f"first fit_em in a fresh process: {cold['first_fit_s']:.1f} s with an empty cache, "
        f"{warm['first_fit_s']:.1f} s with a filled one; SciPy BFGS {bfgs['fit_s']:.2f} s "
        "(`python benchmarks/bench_latency.py`)"
    )
    return (
        f"p = {d['p']:,}, L = {d['L']}, K = {d['K']}, N = {d['N']:,} (`python benchmarks/bench_latency.py`).\n\n"
        + table
        + f"\n\nRatios in the same run: {ratios}."
    ), [head]


BENCHMARK = harness.Benchmark(
    name="latency",
    measure=measure,
    report=report,
    options=(harness.option("--no-flexmix", action="store_true"),),
    timeout=1800,
    heading="## Time to a first result (compilation included)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
