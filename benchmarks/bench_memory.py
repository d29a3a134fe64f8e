"""Peak memory of the whole estimation path at p = 10^6 items, L = 64 features (issue 8).

Each stage runs in a fresh subprocess so that its peak resident set size
(``ru_maxrss``) is its own: data only (features and counts), data plus every
warm start, and data plus ``fit_em(init="auto", max_iter=100)`` with standard errors (memory does
not grow with the number of iterations, so the cap only bounds the run time). The
baseline is the size of the feature matrix itself, measured in the same run.

    python benchmarks/bench_memory.py [--smoke] [--out FILE]
"""

from __future__ import annotations

import harness


def stage(p: int, L: int, K: int, part: str) -> dict:
    """One stage, in a fresh process: its seconds and the process's peak resident set size."""
    import resource
    import time
    import warnings

    warnings.simplefilter("ignore")  # the capped fit warns that it did not converge
    import smm_ppl as smm

    X = smm.simulate_features(0, p, L)
    truth = smm.simulate_params(1, K, L, atoms_scale=0.4, min_separation=0.8)
    counts = smm.simulate_counts(2, X, truth, 1_000_000)
    t0 = time.perf_counter()
    out = {}
    if part == "warmstarts":
        smm.estimate_subspace(X, counts, K)
        smm.tensor_init(X, counts, K, seed=0)
        smm.mom_init(X, counts, min(K, 3), seed=0)
        smm.subspace_random_inits(X, counts, K, 16, seed=0)
    elif part == "fit_em":
        # Memory does not grow with the iteration count; cap it so the stage takes minutes, not an hour.
        res = smm.fit_em(X, counts, K, init="auto", seed=0, max_iter=100)
        out = {
            "n_iter": res.n_iter,
            "converged": bool(res.converged),
            "init": res.init,
            "error": smm.parameter_error(res.params, truth),
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {**out, "seconds": time.perf_counter() - t0, "peak_rss_bytes": peak, "features_bytes": X.nbytes}


def measure(args) -> dict:
    p, L, K = args.p, args.L, args.K
    print(f"peak memory at p = {p:,}, L = {L}, K = {K}, N = 1,000,000 (each stage in its own process)")
    stages = []
    for name in ("data", "warmstarts", "fit_em"):
        try:
            out, wall = harness.in_fresh_process(stage, p, L, K, name)
            stages.append({**out, "stage": name, "status": "ok", "wall_seconds": wall})
        except harness.ProcessFailed as err:
            stages.append({"stage": name, "status": "failed", "stderr": err.stderr})
    return {"p": p, "L": L, "K": K, "n_obs": 1_000_000, "smoke": args.smoke, "stages": stages}


def report(res):
    """Peak resident memory of each stage, each run in its own process."""
    rows = []
    for st in res["stages"]:
        if st.get("status") != "ok":
            rows.append([st["stage"], "failed", "–", "–", "–"])
            continue
        note = (
            f"{st['n_iter']} iterations, start {st['init']}, converged {st['converged']}"
            if st["stage"] == "fit_em"
            else ""
        )
        rows.append(
            [
                st["stage"],
                f"{st['peak_rss_bytes'] / 2**30:.2f}",
                f"{st['peak_rss_bytes'] / st['features_bytes']:.1f}",
                f"{st['seconds']:.1f}",
                note,
            ]
        )
    table = harness.table("stage | peak RSS (GiB) | x features | stage s | note", rows)
    intro = (
        f"`p = {res['p']:,}`, `L = {res['L']}`, `K = {res['K']}`, `N = {res['n_obs']:,}`; the feature matrix is "
        f"{res['stages'][0].get('features_bytes', 0) / 2**20:.0f} MiB. `data` = simulate features and counts; "
        "`warmstarts` = that plus the subspace, tensor, MoM (K = 3) and 16 subspace random starts; "
        '`fit_em` = that plus `fit_em(init="auto", max_iter=100)` with standard errors (memory does not grow '
        "with the iteration count)."
    )
    fit = [st for st in res["stages"] if st["stage"] == "fit_em" and st.get("status") == "ok"]
    head = (
        [
            f"peak memory of fit_em(init='auto') at p = {res['p']:,}, L = {res['L']}, K = {res['K']}: "
            f"{fit[0]['peak_rss_bytes'] / 2**30:.1f} GiB (`python benchmarks/bench_memory.py`)"
        ]
        if fit
        else []
    )
    return intro + "\n\n" + table, head


BENCHMARK = harness.Benchmark(
    name="memory",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, default=1_000_000),
        harness.option("--L", type=int, default=64),
        harness.option("--K", type=int, default=8),
    ),
    smoke={"p": 20_000, "L": 8, "K": 4},
    timeout=1800,
    succeeded=lambda result: all(s["status"] == "ok" for s in result["stages"]),
    heading="## Memory at p = 10^6 items, L = 64 (`python benchmarks/bench_memory.py`)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
