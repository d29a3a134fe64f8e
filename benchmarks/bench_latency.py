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

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

P, P_OTHER, L, K, N = 1000, 1200, 3, 2, 20_000

_CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import smm_ppl as smm
import numpy as np
out = {"import_s": time.perf_counter() - t0}
P, P_OTHER, L, K, N, mode, smoke = {args}

def data(p, k, seed):
    x = smm.simulate_features(seed, p, L)
    truth = smm.simulate_params(seed + 1, k, L, min_separation=1.0)
    return x, smm.simulate_counts(seed + 2, x, truth, N)

def timed(label, fn):
    t = time.perf_counter(); r = fn(); out[label] = time.perf_counter() - t
    return r

x, n = data(P, K, 0)
timed("first_fit_s", lambda: smm.fit_em(x, n, K))
if mode == "sequence":
    x2, n2 = data(P, K, 10)
    timed("same_shapes_s", lambda: smm.fit_em(x2, n2, K))
    x3, n3 = data(P_OTHER, K, 20)
    timed("other_size_s", lambda: smm.fit_em(x3, n3, K))
    x4, n4 = data(P, K + 1, 30)
    timed("other_k_s", lambda: smm.fit_em(x4, n4, K + 1))
    draws = 100 if smoke else 600
    kw = dict(num_chains=2, num_warmup=draws, num_samples=draws, progress_bar=False)
    timed("first_nuts_s", lambda: smm.sample_nuts(x, n, K, **kw))
    x5, n5 = data(P_OTHER, K, 40)
    em5 = smm.fit_em(x5, n5, K)
    timed("second_nuts_s", lambda: smm.sample_nuts(x5, n5, K, init=em5, **kw))
    timed("nuts_sampling_s", lambda: smm.sample_nuts(x5, n5, K, init=em5, **kw))
out["programs"] = smm.compiled_programs()
print("RESULT " + json.dumps(out))
"""

_BFGS = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
imp = time.perf_counter() - t0
d = np.load(sys.argv[1]); x, n, K = d["x"], d["n"], int(d["K"])
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
for s in range(5):
    z0 = np.concatenate([np.zeros(K - 1), rng.normal(size=K * L)])
    r = minimize(nll, z0, jac=True, method="BFGS", options={"gtol": 1e-6, "maxiter": 5000})
    best = r if best is None or r.fun < best.fun else best
print("RESULT " + json.dumps({"import_s": imp, "fit_s": time.perf_counter() - t0, "log_likelihood": -best.fun}))
"""


def _child(code: str, env: dict, args: list[str] | None = None, timeout: float = 900) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", code, *(args or [])], capture_output=True, text=True, env=env, timeout=timeout
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"child failed ({r.returncode}):\n{r.stderr[-3000:]}")
    out = json.loads(lines[-1][7:])
    out["process_wall_s"] = wall
    return out


def _flexmix(x, n, workdir: Path) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    sys.path.insert(0, str(_common.PEER_SCRIPTS))
    import formats

    long = formats.expand_per_item(x, n)
    csv = workdir / "flexmix_long.csv"
    formats.write_csv(long, csv)
    out = workdir / "flexmix.json"
    t0 = time.perf_counter()
    r = subprocess.run(
        ["Rscript", str(_common.PEER_SCRIPTS / "run_flexmix.R"), str(csv), str(out), str(K), "1", "0"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0 or not out.exists():
        return {"error": r.stderr[-500:]}
    res = json.loads(out.read_text())
    return {"process_wall_s": wall, "fit_s": res["time_fit_s"], "log_likelihood": res["log_likelihood_reported"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="fewer NUTS draws, no flexmix")
    ap.add_argument("--no-flexmix", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    import smm_ppl as smm

    x = smm.simulate_features(0, P, L)
    truth = smm.simulate_params(1, K, L, min_separation=1.0)
    n = smm.simulate_counts(2, x, truth, N)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np_file = tmp / "data.npz"
        import numpy as np

        np.savez(np_file, x=x, n=n, K=K)
        cache = tmp / "jax-cache"
        env = {**os.environ, "SMM_PPL_COMPILATION_CACHE": str(cache), "PYTHONPATH": str(_common.ROOT)}
        params = repr((P, P_OTHER, L, K, N, "{mode}", args.smoke))
        child = _CHILD.replace("{args}", params)
        print("cold process (empty compilation cache): the whole sequence ...", flush=True)
        cold = _child(child.replace("{mode}", "sequence"), env)
        print("warm process (filled cache): first fit ...", flush=True)
        warm = _child(child.replace("{mode}", "first"), env)
        print("SciPy BFGS, 5 starts ...", flush=True)
        bfgs = _child(_BFGS, env, [str(np_file)])
        flex = None if (args.smoke or args.no_flexmix) else _flexmix(x, n, tmp)

    base = bfgs["fit_s"]
    ratios = {
        "first_fit_cold_vs_bfgs": cold["first_fit_s"] / base,
        "first_fit_warm_vs_bfgs": warm["first_fit_s"] / base,
        "other_size_vs_bfgs": cold["other_size_s"] / base,
        "same_shapes_vs_bfgs": cold["same_shapes_s"] / base,
        "second_nuts_wall_vs_sampling": cold["second_nuts_s"] / cold["nuts_sampling_s"],
    }
    acceptance = {
        "first_fit_cold_vs_bfgs": 4.0,
        "first_fit_warm_vs_bfgs": 1.5,
        "other_size_vs_bfgs": 0.5,
        "second_nuts_wall_vs_sampling": 1.2,
    }
    rows = [
        ("import smm_ppl", cold["import_s"], warm["import_s"]),
        ("first fit_em", cold["first_fit_s"], warm["first_fit_s"]),
        ("same shapes, new data", cold["same_shapes_s"], None),
        (f"p = {P_OTHER} (same bucket)", cold["other_size_s"], None),
        (f"K = {K + 1}", cold["other_k_s"], None),
        ("first sample_nuts", cold["first_nuts_s"], None),
        ("sample_nuts, new data, same bucket", cold["second_nuts_s"], None),
        ("  its sampling time (compiled)", cold["nuts_sampling_s"], None),
        ("SciPy BFGS, 5 starts (fit)", bfgs["fit_s"], None),
        ("SciPy BFGS process wall", bfgs["process_wall_s"], None),
    ]
    if flex and "fit_s" in flex:
        rows += [("flexmix (fit)", flex["fit_s"], None), ("flexmix process wall", flex["process_wall_s"], None)]
    print(f"\n{'step':40s} {'cold (s)':>9s} {'warm (s)':>9s}")
    for name, c, w in rows:
        print(f"{name:40s} {c:9.2f} " + (f"{w:9.2f}" if w is not None else f"{'':9s}"))
    print("\nratios (acceptance):")
    for k, v in ratios.items():
        limit = acceptance.get(k)
        flag = "" if limit is None else f"  (<= {limit}: {'pass' if v <= limit else 'FAIL'})"
        print(f"  {k:34s} {v:6.2f}{flag}")
    print(f"  programs compiled in the cold process: {cold['programs']}")
    result = {
        "environment": _common.environment(),
        "data": {"p": P, "p_other": P_OTHER, "L": L, "K": K, "N": N},
        "cold": cold,
        "warm": warm,
        "bfgs": bfgs,
        "flexmix": flex,
        "ratios": ratios,
        "acceptance": acceptance,
        "smoke": args.smoke,
    }
    _common.save_json(result, "latency", _common.result_path("latency", args.smoke, args.out))
    return result


if __name__ == "__main__":
    main()
