"""Peak memory of the whole estimation path at p = 10^6 items, L = 64 features (issue 8).

Each stage runs in a fresh subprocess so that its peak resident set size
(``ru_maxrss``) is its own: data only (features and counts), data plus every
warm start, and data plus ``fit_em(init="auto", max_iter=100)`` with standard errors (memory does
not grow with the number of iterations, so the cap only bounds the run time). The
baseline is the size of the feature matrix itself, measured in the same run.

    python benchmarks/bench_memory.py [--smoke] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import environment, result_path, save_json

STAGE = r"""
import json, resource, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")  # the capped fit warns that it did not converge
import smm_ppl as smm
p, L, K, stage = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
X = smm.simulate_features(0, p, L)
truth = smm.simulate_params(1, K, L, atoms_scale=0.4, min_separation=0.8)
counts = smm.simulate_counts(2, X, truth, 1_000_000)
t0 = time.perf_counter()
out = {}
if stage == "warmstarts":
    smm.estimate_subspace(X, counts, K)
    smm.tensor_init(X, counts, K, seed=0)
    smm.mom_init(X, counts, min(K, 3), seed=0)
    smm.subspace_random_inits(X, counts, K, 16, seed=0)
elif stage == "fit_em":
    # Memory does not grow with the iteration count; cap it so the stage takes minutes, not an hour.
    res = smm.fit_em(X, counts, K, init="auto", seed=0, max_iter=100)
    out = {"n_iter": res.n_iter, "converged": bool(res.converged), "init": res.init,
           "error": smm.parameter_error(res.params, truth)}
out.update(seconds=time.perf_counter() - t0, peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           features_bytes=X.nbytes)
print(json.dumps(out))
"""


def run_stage(p: int, L: int, K: int, stage: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", STAGE, str(p), str(L), str(K), stage], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        return {"stage": stage, "status": "failed", "stderr": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(stage=stage, status="ok", wall_seconds=time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny size (p = 20,000, L = 8)")
    ap.add_argument("--out", help="output JSON path")
    args = ap.parse_args(argv)
    p, L, K = (20_000, 8, 4) if args.smoke else (1_000_000, 64, 8)
    print(f"peak memory at p = {p:,}, L = {L}, K = {K}, N = 1,000,000 (each stage in its own process)")
    stages = []
    for stage in ("data", "warmstarts", "fit_em"):
        r = run_stage(p, L, K, stage)
        stages.append(r)
        if r["status"] != "ok":
            print(f"  {stage:10s} FAILED\n{r['stderr']}")
            continue
        ratio = r["peak_rss_bytes"] / r["features_bytes"]
        extra = (
            f"  ({r['n_iter']} iterations, start {r['init']}, converged {r['converged']})" if stage == "fit_em" else ""
        )
        print(
            f"  {stage:10s} peak RSS {r['peak_rss_bytes'] / 2**30:6.2f} GiB = {ratio:5.1f} x the features "
            f"({r['features_bytes'] / 2**20:.0f} MiB); stage {r['seconds']:.1f} s{extra}"
        )
    result = {
        "p": p,
        "L": L,
        "K": K,
        "n_obs": 1_000_000,
        "smoke": args.smoke,
        "stages": stages,
        "environment": environment(),
    }
    save_json(result, "memory", result_path("memory", args.smoke, args.out))
    return 0 if all(s["status"] == "ok" for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
