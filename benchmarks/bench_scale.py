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

import os

import harness


def case(part: str, p: int, L: int, K: int, devices: int, dtype: str, iters: int) -> dict:
    """One fit in a fresh process (its devices, its peak memory): its time, estimate and, for ``part="scaling"``,
    the compiled time, the time of an iteration and the memory-bound floor."""
    import resource
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    import jax

    import smm_ppl as smm

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
    kw = dict(
        init=start,
        max_iter=iters,
        tol=0.0 if part == "scaling" else 1e-12,
        dtype=dtype,
        devices=None if devices == 1 else devices,
        compute_standard_errors=part == "precision",
    )
    res, first = harness.timed(smm.fit_em, X, counts, K, **kw)
    out = {
        "first_seconds": first,
        "n_iter": res.n_iter,
        "log_likelihood": res.log_likelihood,
        "atoms": res.params.atoms.tolist(),
        "converged": bool(res.converged),
        "devices": jax.device_count(),
    }
    if part == "precision":
        out["se_atoms"] = res.standard_errors.atoms.tolist()
    if part == "scaling":
        out["compiled_seconds"] = harness.timed(smm.fit_em, X, counts, K, **kw)[1]
        # Seconds per iteration: the difference of a fit twice as long (the set-up cancels).
        longer, seconds = harness.timed(smm.fit_em, X, counts, K, **{**kw, "max_iter": 2 * iters})
        out["iteration_seconds"] = (seconds - out["compiled_seconds"]) / (longer.n_iter - res.n_iter)
        # The memory-bound floor of an iteration on this device: reading the features and their transpose
        # once each (the two passes), timed in the same process.
        import jax.numpy as jnp

        rows, cols = jnp.asarray(X), jnp.asarray(np.ascontiguousarray(X.T))
        both = jax.jit(lambda a, b: jnp.sum(a) + jnp.sum(b))
        both(rows, cols).block_until_ready()
        floor = harness.best_time(lambda: both(rows, cols), 5)
        out["floor_seconds"] = floor
        out["bandwidth_gb_s"] = 2 * X.nbytes / floor / 1e9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {**out, "peak_rss_bytes": peak, "features_bytes": X.nbytes}


def run_case(part: str, p: int, L: int, K: int, devices: int, dtype: str, iters: int, timeout: float) -> dict:
    env = {}
    if devices > 1 and not os.environ.get("SMM_SCALE_GPU"):
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    info = dict(part=part, p=p, L=L, K=K, devices=devices, dtype=dtype, max_iter=iters)
    try:
        out, wall = harness.in_fresh_process(case, part, p, L, K, devices, dtype, iters, env=env, timeout=timeout)
    except harness.ProcessFailed as err:
        print(f"  {info}: FAILED\n{err.stderr}", flush=True)
        return {**info, "status": "failed", "stderr": err.stderr}
    harness.progress(f"{part}, p = {p:,}, {devices} device(s), {dtype}", out, "first_seconds", "peak_rss_bytes")
    return {**info, **out, "status": "ok", "process_seconds": wall}


def measure(args) -> dict:
    import numpy as np

    if args.gpu:
        os.environ["SMM_SCALE_GPU"] = "1"
    L, K, iters, p_scaling, p_precision = args.L, args.K, args.iters, args.p_scaling, args.p_precision
    p_memory = [p for p in args.p_memory if p <= args.max_p]
    result = {"smoke": args.smoke, "L": L, "K": K, "environment": harness.environment()}

    scaling = [run_case("scaling", p_scaling, L, K, d, "float64", iters, 3600) for d in (1, 2, 4)]
    base = scaling[0]
    for r in scaling:
        if r["status"] != "ok":
            continue
        r["compiled_ratio"] = r["compiled_seconds"] / base["compiled_seconds"]
        r["first_ratio"] = r["first_seconds"] / base["first_seconds"]
        r["log_likelihood_gap"] = abs(r["log_likelihood"] - base["log_likelihood"]) / abs(base["log_likelihood"])
        r["atoms_gap"] = float(np.abs(np.asarray(r["atoms"]) - np.asarray(base["atoms"])).max())
        # Compiled time per iteration against reading the features twice: the bandwidth limit.
        r["iteration_over_floor"] = r["iteration_seconds"] / r["floor_seconds"]
    result["scaling"] = scaling

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
    else:
        result["precision"] = pair
    memory = [run_case("memory", p, L, K, 1, "float32", iters, 7200) for p in p_memory]
    for r in memory:
        if r["status"] == "ok":
            r["peak_over_features"] = r["peak_rss_bytes"] / r["features_bytes"]
    result["memory"] = memory
    # The estimates themselves served the comparisons above; the saved figures are the gaps.
    for row in (
        scaling + memory + ([pr["float64"], pr["float32"]] if isinstance(pr := result["precision"], dict) else [])
    ):
        row.pop("atoms", None)
        row.pop("se_atoms", None)
    return result


def report(res):
    """Items over devices, float32 against float64, peak memory against p (``bench_scale.py``)."""
    L, K = res["L"], res["K"]
    rows = [
        [
            str(r["devices"]),
            f"{r['first_seconds']:.2f}",
            f"{r['first_ratio']:.2f}",
            f"{r['compiled_seconds']:.2f}",
            f"{r['compiled_ratio']:.2f}",
            f"{r['log_likelihood_gap']:.1e}",
            f"{r['atoms_gap']:.1e}",
            f"{r['iteration_over_floor']:.1f}" if "iteration_over_floor" in r else "–",
        ]
        for r in res["scaling"]
        if r.get("status") == "ok"
    ]
    first = res["scaling"][0]
    out = [
        f"**Items split over forced host CPU devices** (p = {first['p']:,}, L = {L}, K = {K}, "
        f"{first['max_iter']} EM iterations from the same start, float64). The devices share the machine's "
        f"{res['environment'].get('cpu_count')} cores, so a speed-up comes from XLA running the blocks side by "
        "side on those cores, not from more hardware; the gaps are to the 1-device fit.",
        "",
        harness.table(
            "devices | first fit s | x 1 device | compiled s | x 1 device | log-lik gap | atoms gap | iteration / bandwidth floor",
            rows,
        ),
        "",
    ]
    head = []
    pr = res.get("precision")
    if isinstance(pr, dict):
        out += [
            f"**float32 against float64** on the same float32 data (p = {pr['float64']['p']:,}, L = {L}, K = {K}, "
            f"to convergence): log-likelihood {pr['log_likelihood_gap']:+.3e} ({pr['relative_gap']:+.1e} "
            f"relative); atoms differ by at most {pr['atoms_max_difference']:.1e}, "
            f"{pr['atoms_max_difference_in_se']:.3f} standard errors; iterations {pr['float64']['n_iter']} / "
            f"{pr['float32']['n_iter']}.",
            "",
        ]
        head.append(
            f"float32 EM costs {abs(pr['relative_gap']):.0e} of the log-likelihood and "
            f"{pr['atoms_max_difference_in_se']:.3f} standard errors of the atoms (`python benchmarks/bench_scale.py`)"
        )
    mem = [r for r in res["memory"] if r.get("status") == "ok"]
    rows = [
        [
            f"{r['p']:,}",
            f"{r['features_bytes'] / 2**30:.2f}",
            f"{r['peak_rss_bytes'] / 2**30:.2f}",
            f"{r['peak_rss_bytes'] / r['features_bytes']:.1f}",
            f"{r['first_seconds']:.0f}",
        ]
        for r in mem
    ]
    out += [
        f"**Peak memory of a float32 fit** (L = {L}, K = {K}, {res['memory'][0]['max_iter']} iterations from a "
        "given start, no standard errors; each p in its own process):",
        "",
        harness.table("p | float32 features GiB | peak RSS GiB | x features | fit s", rows),
        "",
    ]
    if res["environment"].get("backend") == "cpu":
        out.append("No GPU was available for this run: every figure is CPU.")
    if mem:
        top = mem[-1]
        head.append(
            f"float32 fit at p = {top['p']:,}, L = {L}, K = {K}: peak {top['peak_rss_bytes'] / 2**30:.1f} GiB "
            "(`python benchmarks/bench_scale.py`)"
        )
    return "\n".join(out), head


BENCHMARK = harness.Benchmark(
    name="scale",
    measure=measure,
    report=report,
    options=(
        harness.option("--gpu", action="store_true", help="run on the default (GPU) backend, no forced host devices"),
        harness.option("--max-p", type=int, default=10_000_000, help="largest p of the memory part"),
        harness.option("--L", type=int, default=64),
        harness.option("--K", type=int, default=8),
        harness.option("--iters", type=int, default=30, help="EM iterations of the scaling and memory fits"),
        harness.option("--p-scaling", type=int, default=200_000),
        harness.option("--p-precision", type=int, default=100_000),
        harness.option("--p-memory", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000, 10_000_000]),
    ),
    smoke={"L": 8, "K": 3, "iters": 10, "p_scaling": 20_000, "p_precision": 20_000, "p_memory": [10_000]},
    timeout=7200,
    succeeded=lambda result: all(r["status"] == "ok" for r in result["scaling"] + result["memory"]),
    smoke_fields=True,
    heading="## Scale: devices, precision, memory (`python benchmarks/bench_scale.py`)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
