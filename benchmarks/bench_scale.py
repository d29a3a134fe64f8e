"""Scale (issue 15): items split over devices, float32 against float64, peak memory against p.

Three parts, each case in a fresh process (a forced host device count must be
set before JAX starts, and the peak resident set size must be the case's own):

* **strong scaling** — the same EM fit (p items, L = 64, K = 8, a fixed
  number of iterations from the same start) with the items split over 1, 2
  and 4 forced host CPU devices: wall time with compilation, and the compiled
  time of a second identical fit, as ratios to 1 device in the same run;
* **precision** — the same fit in float64 and in float32 to convergence: the
  log-likelihood gap and the largest atom difference (in standard errors);
* **memory** — the peak resident set size of a float32 fit against p, as a
  multiple of the float32 feature matrix.

On CPU, forced host devices share the machine's cores: a speed-up in the
scaling part comes from XLA running the blocks side by side, not from more
hardware.  ``--gpu``
runs every case on the default (GPU) backend instead of forced host devices.
Every scaling case also reports the time of one iteration (the difference of
two fits, 30 and 60 iterations) as a multiple of the memory-bound floor
measured in the same process (reading the features and
their transpose once each): on a GPU, the ratio to the card's bandwidth limit.
No GPU was available when this script was written.

    python benchmarks/bench_scale.py [--smoke] [--gpu] [--max-p P] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import environment, result_path, save_json

CASE = r"""
import json, resource, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import jax
import smm_ppl as smm
part, (p, L, K, devices), dtype, iters = sys.argv[1], map(int, sys.argv[2:6]), sys.argv[6], int(sys.argv[7])
rng = np.random.default_rng(0)
# The same data for both precisions: float32 draws (a float64 fit reads them exactly).
X = rng.standard_normal((p, L), dtype=np.float32)
X = X if dtype == "float32" else X.astype(np.float64)
truth = smm.simulate_params(1, K, L, atoms_scale=0.4, min_separation=0.8)
# The counts from the mixture probabilities, one class at a time (no float64 copy of X).
pi = np.zeros(p)
for k in range(K):
    logits = (X @ truth.atoms[k].astype(X.dtype)).astype(np.float64)
    tilt = np.exp(logits - logits.max())
    pi += truth.weights[k] * tilt / tilt.sum()
counts = rng.multinomial(1_000_000, pi / pi.sum())
start = smm.SMMParams(np.full(K, 1.0 / K), truth.atoms + 0.3 * rng.standard_normal(truth.atoms.shape))
kw = dict(init=start, max_iter=iters, tol=0.0 if part == "scaling" else 1e-12, dtype=dtype,
          devices=None if devices == 1 else devices, compute_standard_errors=part == "precision")
t0 = time.perf_counter(); res = smm.fit_em(X, counts, K, **kw); first = time.perf_counter() - t0
out = {"first_seconds": first, "n_iter": res.n_iter, "log_likelihood": res.log_likelihood,
       "atoms": res.params.atoms.tolist(), "converged": bool(res.converged), "devices": jax.device_count()}
if part == "precision":
    out["se_atoms"] = res.standard_errors.atoms.tolist()
if part == "scaling":
    t0 = time.perf_counter(); smm.fit_em(X, counts, K, **kw); out["compiled_seconds"] = time.perf_counter() - t0
    # Seconds per iteration: the difference of a fit twice as long (the set-up cancels).
    t0 = time.perf_counter(); longer = smm.fit_em(X, counts, K, **{**kw, "max_iter": 2 * iters})
    out["iteration_seconds"] = (time.perf_counter() - t0 - out["compiled_seconds"]) / (longer.n_iter - res.n_iter)
    # The memory-bound floor of an iteration on this device: reading the features and their transpose
    # once each (the two passes), timed in the same process.
    import jax.numpy as jnp
    rows, cols = jnp.asarray(X), jnp.asarray(np.ascontiguousarray(X.T))
    both = jax.jit(lambda a, b: jnp.sum(a) + jnp.sum(b))
    both(rows, cols).block_until_ready()
    floor = min(
        (lambda t: (both(rows, cols).block_until_ready(), time.perf_counter() - t)[1])(time.perf_counter())
        for _ in range(5)
    )
    out["floor_seconds"] = floor
    out["bandwidth_gb_s"] = 2 * X.nbytes / floor / 1e9
out.update(peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, features_bytes=X.nbytes)
print(json.dumps(out))
"""


def run_case(part: str, p: int, L: int, K: int, devices: int, dtype: str, iters: int, timeout: float) -> dict:
    env = dict(os.environ)
    if devices > 1 and not env.get("SMM_SCALE_GPU"):
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    t0 = time.perf_counter()
    args = [part, p, L, K, devices, dtype, iters]
    proc = subprocess.run(
        [sys.executable, "-c", CASE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
    case = dict(part=part, p=p, L=L, K=K, devices=devices, dtype=dtype, max_iter=iters)
    if proc.returncode != 0:
        return {**case, "status": "failed", "stderr": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**case, **out, "status": "ok", "process_seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--gpu", action="store_true", help="run on the default (GPU) backend, no forced host devices")
    ap.add_argument("--max-p", type=int, default=10_000_000, help="largest p of the memory part")
    ap.add_argument("--out", help="output JSON path")
    args = ap.parse_args(argv)
    if args.gpu:
        os.environ["SMM_SCALE_GPU"] = "1"
    L, K = (8, 3) if args.smoke else (64, 8)
    p_scaling = 20_000 if args.smoke else 200_000
    p_precision = 20_000 if args.smoke else 100_000
    p_memory = [10_000, 100_000] if args.smoke else [100_000, 1_000_000, 3_000_000, 10_000_000]
    p_memory = [p for p in p_memory if p <= args.max_p]
    iters = 10 if args.smoke else 30
    result = {"smoke": args.smoke, "L": L, "K": K, "environment": environment()}

    print(f"strong scaling: p = {p_scaling:,}, L = {L}, K = {K}, {iters} EM iterations, float64")
    scaling = [run_case("scaling", p_scaling, L, K, d, "float64", iters, 3600) for d in (1, 2, 4)]
    base = scaling[0]
    for r in scaling:
        if r["status"] != "ok":
            print(f"  {r['devices']} device(s): FAILED\n{r['stderr']}")
            continue
        r["compiled_ratio"] = r["compiled_seconds"] / base["compiled_seconds"]
        r["first_ratio"] = r["first_seconds"] / base["first_seconds"]
        r["log_likelihood_gap"] = abs(r["log_likelihood"] - base["log_likelihood"]) / abs(base["log_likelihood"])
        r["atoms_gap"] = float(np.abs(np.asarray(r["atoms"]) - np.asarray(base["atoms"])).max())
        # Compiled time per iteration against reading the features twice: the bandwidth limit.
        r["iteration_over_floor"] = r["iteration_seconds"] / r["floor_seconds"]
        print(
            f"  {r['devices']} device(s): first fit {r['first_seconds']:6.2f} s (with compilation, "
            f"{r['first_ratio']:.2f}x), compiled {r['compiled_seconds']:6.2f} s ({r['compiled_ratio']:.2f}x); "
            f"agreement: log-likelihood {r['log_likelihood_gap']:.1e} relative, atoms {r['atoms_gap']:.1e}; "
            f"an iteration = {r['iteration_over_floor']:.1f}x the memory-bound floor "
            f"(two reads of the features at {r['bandwidth_gb_s']:.0f} GB/s)"
        )
    result["scaling"] = scaling

    print(f"precision: p = {p_precision:,}, L = {L}, K = {K}, to convergence")
    pair = [run_case("precision", p_precision, L, K, 1, dt, 2000, 3600) for dt in ("float64", "float32")]
    if all(r["status"] == "ok" for r in pair):
        hi, lo = pair
        gap = lo["log_likelihood"] - hi["log_likelihood"]
        diff = np.abs(np.asarray(lo["atoms"]) - np.asarray(hi["atoms"]))
        in_se = float((diff / np.asarray(hi["se_atoms"])).max())
        result["precision"] = {
            "float64": hi,
            "float32": lo,
            "log_likelihood_gap": gap,
            "relative_gap": gap / abs(hi["log_likelihood"]),
            "atoms_max_difference": float(diff.max()),
            "atoms_max_difference_in_se": in_se,
        }
        print(
            f"  float32 - float64 log-likelihood {gap:+.3e} ({gap / abs(hi['log_likelihood']):+.1e} relative); "
            f"atoms differ by at most {diff.max():.1e} = {in_se:.3f} standard errors; iterations "
            f"{hi['n_iter']} / {lo['n_iter']}; fit {hi['first_seconds']:.1f} s / {lo['first_seconds']:.1f} s"
        )
    else:
        result["precision"] = pair
        print("  FAILED\n" + "\n".join(r.get("stderr", "") for r in pair))

    print(f"memory: float32 fits, L = {L}, K = {K}, {iters} iterations, no standard errors")
    memory = []
    for p in p_memory:
        r = run_case("memory", p, L, K, 1, "float32", iters, 7200)
        memory.append(r)
        if r["status"] != "ok":
            print(f"  p = {p:>10,}: FAILED\n{r['stderr'][-600:]}")
            continue
        r["peak_over_features"] = r["peak_rss_bytes"] / r["features_bytes"]
        print(
            f"  p = {p:>10,}: peak RSS {r['peak_rss_bytes'] / 2**30:6.2f} GiB = {r['peak_over_features']:5.1f} x the "
            f"float32 features ({r['features_bytes'] / 2**30:.2f} GiB); fit {r['first_seconds']:.1f} s"
        )
    result["memory"] = memory
    # The estimates themselves served the comparisons above; the saved figures are the gaps.
    for case in (
        scaling + memory + ([pr["float64"], pr["float32"]] if isinstance(pr := result["precision"], dict) else [])
    ):
        case.pop("atoms", None)
        case.pop("se_atoms", None)
    save_json(result, "scale", result_path("scale", args.smoke, args.out))
    ok = all(r["status"] == "ok" for r in scaling + memory)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
