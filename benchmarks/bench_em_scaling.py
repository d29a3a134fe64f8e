"""Item 1: where the time of an EM iteration goes, for p = 10^4, 10^5, 10^6 (L = 32, K = 8).

One EM iteration (the paper's gradient M-step, no acceleration) needs two
passes over the features: ``Xt @ B.T`` (new logits, ``p x L`` by ``L x K``)
and ``Xt.T @ R`` (the M-step gradient).  For each ``p`` this script times, in
the same run and on the same arrays:

* ``two_passes``: the two products alone, jitted together, with the features
  stored ``(p, L)`` and stored transposed ``(L, p)`` (the EM core's layout):
  the faster of the two is the baseline;
* ``matmul_logits`` and ``matmul_gradient``: each product alone;
* ``estep``: the layout's E-step statistics at given ``(K, p)`` logits alone
  (:meth:`smm_ppl.layouts.ItemCounts.statistics`: normalisers, mixture
  probabilities, the log-likelihood);
* ``em_iteration``: one iteration of the jitted EM driver that ``fit_em`` runs
  (:func:`smm_ppl.em.run`), as the difference of a long and a short run
  with ``tol = 0`` divided by the difference of their iteration counts, so
  compilation, the initial E-step and the transfer of the result cancel;
* ``em_iteration_newton``: the same with the Newton M-step (the Hessians add a
  ``p x L x L`` contraction per class) at the smallest ``p`` only, for scale.

The headline is ``ratio = em_iteration / two_passes``; the breakdown
``(two_passes + estep) / em_iteration`` says how much of the iteration those
two parts explain (the rest: weight update, residuals, the safeguard's test,
the loop carry).

Usage::

    python benchmarks/bench_em_scaling.py            # p in 1e4, 1e5, 1e6
    python benchmarks/bench_em_scaling.py --smoke    # p = 4000, L = 8, K = 3; seconds
    python benchmarks/bench_em_scaling.py --p 10000 100000 --L 16 --K 4
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import jax
import jax.numpy as jnp
import numpy as np

import smm_ppl as smm
from smm_ppl import em
from smm_ppl.data.prepared import prepare


def _em_runner(layout, weights0, atoms0, m_step, buffer):
    """``run(m)``: ``m`` plain EM iterations (no acceleration, ``tol = 0``) of the jitted driver
    :func:`smm_ppl.em.run` on the whitened layout, as ``fit_em`` runs them."""
    algorithm = em.em_algorithm(m_step, "none")

    def run(m):
        return em.run(layout, weights0, atoms0, 0.0, m, 1.0, buffer=buffer, algorithm=algorithm).trace

    return run


def problem(p: int, L: int, K: int, n_obs: int):
    """``(layout, start_weights, start_atoms)``: simulated counts in the whitened EM layout without padding (the
    kernel against two passes over exactly ``p`` rows), and a start away from the truth (the iterations work)."""
    X = smm.simulate_features(0, p, L)
    truth = smm.simulate_params(1, K, L, atoms_scale=1.5 / np.sqrt(L))
    prepared = prepare(X, smm.simulate_counts(2, X, truth, n_obs))
    layout = prepared.white.padded(prepared.white.n_rows)
    return layout, jnp.full(K, 1.0 / K), jnp.asarray(prepared.whitening.to_whitened(0.5 * truth.atoms))


def measure_p(p: int, L: int, K: int, n_obs: int, iters: int, repeats: int, newton: bool, work: float = 2e7) -> dict:
    layout, start_weights, start_atoms = problem(p, L, K, n_obs)
    xt_np = np.asarray(layout.features)
    xt = layout.features
    dtype = str(xt.dtype)

    B = jax.random.normal(jax.random.PRNGKey(3), (K, L), dtype=xt.dtype)
    R = jax.random.normal(jax.random.PRNGKey(4), (p, K), dtype=xt.dtype)
    logits = B @ layout.features_t

    two_passes = jax.jit(lambda xt, B, R: (xt @ B.T, R.T @ xt))  # features (p, L), row-major
    # The same products with the features stored transposed, (L, p), and (K, p) intermediates:
    # the layout the EM module's core uses. The baseline is the faster of the two layouts.
    xtT = jnp.asarray(np.ascontiguousarray(xt_np.T))
    RT = jnp.asarray(np.ascontiguousarray(np.asarray(R).T))
    two_passes_T = jax.jit(lambda xtT, B, RT: (B @ xtT, RT @ xtT.T))
    mm_logits = jax.jit(lambda xt, B: xt @ B.T)
    mm_grad = jax.jit(lambda xt, R: R.T @ xt)
    estep = jax.jit(lambda layout, weights, logits: layout.statistics(weights, logits).ll)
    for f, a in (
        (two_passes, (xt, B, R)),
        (two_passes_T, (xtT, B, RT)),
        (mm_logits, (xt, B)),
        (mm_grad, (xt, R)),
        (estep, (layout, start_weights, logits)),
    ):
        jax.block_until_ready(f(*a))  # compile

    # Interleave the repeats so that a burst of load from elsewhere hits every measurement alike.
    t = {
        "two_passes_natural": np.inf,
        "two_passes_transposed": np.inf,
        "matmul_logits": np.inf,
        "matmul_gradient": np.inf,
        "estep": np.inf,
    }
    for _ in range(repeats):
        t["two_passes_natural"] = min(t["two_passes_natural"], harness.best_time(lambda: two_passes(xt, B, R), 3))
        t["two_passes_transposed"] = min(
            t["two_passes_transposed"], harness.best_time(lambda: two_passes_T(xtT, B, RT), 3)
        )
        t["matmul_logits"] = min(t["matmul_logits"], harness.best_time(lambda: mm_logits(xt, B), 3))
        t["matmul_gradient"] = min(t["matmul_gradient"], harness.best_time(lambda: mm_grad(xt, R), 3))
        t["estep"] = min(t["estep"], harness.best_time(lambda: estep(layout, start_weights, logits), 3))

    def per_iteration(m_step: str, n_long: int) -> tuple[float, float, str]:
        run, how = _em_runner(layout, start_weights, start_atoms, m_step, n_long), "smm_ppl.em.run"
        t_long, t_short, n_short = harness.long_and_short(run, n_long, repeats)
        diff = t_long - t_short
        if diff <= 0:  # fixed costs' noise swamped the iterations: report the upper bound, flagged
            return t_long / n_long, t_long / n_long, how + " (upper bound: long-short difference <= 0)"
        return diff / (n_long - n_short), t_long / n_long, how

    t["two_passes"] = min(t["two_passes_natural"], t["two_passes_transposed"])
    # Enough iterations that they dominate the run's fixed costs (about 2e7 / p: 2,000 at p = 1e4).
    iters = max(iters, int(math.ceil(work / p)))
    t["em_iteration"], t["em_iteration_upper"], how = per_iteration("gradient", iters)
    if newton:
        t["em_iteration_newton"], _, _ = per_iteration("newton", max(8, iters // 8))
    out = {
        "p": p,
        "L": L,
        "K": K,
        "n_obs": n_obs,
        "dtype": dtype,
        "iters_long": iters,
        "em_timed_via": how,
        **{f"{k}_s": v for k, v in t.items()},
        "ratio_iteration_to_two_passes": t["em_iteration"] / t["two_passes"],
        "share_two_passes": t["two_passes"] / t["em_iteration"],
        "share_estep": t["estep"] / t["em_iteration"],
        "share_rest": max(0.0, 1.0 - (t["two_passes"] + t["estep"]) / t["em_iteration"]),
        "estep_to_two_passes": t["estep"] / t["two_passes"],
    }
    if newton:
        out["ratio_newton_to_two_passes"] = t["em_iteration_newton"] / t["two_passes"]
    return out


def plot(rows: list[dict], folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = [r["p"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in [
        ("em_iteration_s", "one EM iteration (gradient M-step)"),
        ("two_passes_s", "two passes: Xt @ B.T + Xt.T @ R"),
        ("estep_s", "E-step: the layout's statistics (normalisers, pi, log-likelihood)"),
    ]:
        ax.loglog(ps, [r[key] * 1e3 for r in rows], "o-", label=label)
    ax.set_xlabel("number of items p")
    ax.set_ylabel("time (ms)")
    L, K = rows[0]["L"], rows[0]["K"]
    ax.set_title(f"EM iteration cost, L = {L}, K = {K} (float64, CPU)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return harness.save_figure(fig, folder, "em_scaling.png", dpi=110)


def measure(args) -> dict:
    t0 = time.perf_counter()
    rows = []
    print(f"EM scaling  L={args.L}  K={args.K}  on {jax.devices()[0]}")
    for i, p in enumerate(args.p):
        newton = i == 0 and not args.no_newton
        rows.append(measure_p(p, args.L, args.K, args.n_obs, args.iters, args.repeats, newton, work=args.work))
        print(f"  p = {p:,}: one EM iteration {rows[-1]['em_iteration_s'] * 1e3:.3f} ms", flush=True)
    result = {"name": "em_scaling", "smoke": bool(args.smoke), "rows": rows, "wall_s": time.perf_counter() - t0}
    if not args.smoke:
        result["plot"] = plot(rows, args.out.parent)
    return result


def report(d) -> tuple[str, list[str]]:
    rows = [
        [
            f"{r['p']:,}",
            harness.fmt(r["two_passes_s"] * 1e3, "{:.2f}"),
            harness.fmt(r["estep_s"] * 1e3, "{:.2f}"),
            harness.fmt(r["em_iteration_s"] * 1e3, "{:.2f}"),
            harness.fmt(r["ratio_iteration_to_two_passes"], "{:.2f}"),
            harness.fmt(100 * r["share_two_passes"], "{:.0f}%"),
            harness.fmt(100 * r["share_estep"], "{:.0f}%"),
            harness.fmt(100 * r["share_rest"], "{:.0f}%"),
        ]
        for r in d["rows"]
    ]
    r0 = d["rows"][0]
    txt = [
        f"`L = {r0['L']}`, `K = {r0['K']}`, {r0['dtype']}, {d['environment']['device']} "
        f"({d['environment']['cpu_count']} cores). One iteration = gradient M-step, no acceleration, "
        f"timed through {r0.get('em_timed_via', 'the EM driver')} as the difference of a long and a short run "
        "(`tol = 0`, so fixed costs cancel). The two passes are "
        "`Xt @ B.T` and `Xt.T @ R` jitted together (the faster of the `(p, L)` and `(L, p)` storage of the "
        "features); the E-step is the layout's statistics (normalisers, mixture probabilities, "
        "log-likelihood) at given `(K, p)` logits. Each part is timed as its own jitted call, so the shares need not add "
        "up to 100 %: inside the EM loop XLA fuses the elementwise work into the passes (rest = what the "
        "two parts leave unexplained, floored at 0).",
        "",
        harness.table(
            "p | two passes (ms) | E-step (ms) | EM iteration (ms) | ratio iteration / passes | passes share | E-step share | rest",
            rows,
        ),
    ]
    if "ratio_newton_to_two_passes" in r0:
        txt += [
            "",
            f"Newton M-step at p = {r0['p']:,}: {r0['em_iteration_newton_s'] * 1e3:.2f} ms per iteration, "
            f"{r0['ratio_newton_to_two_passes']:.1f}× the two passes.",
        ]
    if d.get("plot"):
        txt += ["", f"![EM scaling](results/{d['plot']})"]
    big = d["rows"][-1]
    head = [
        f"EM iteration at p = {big['p']:,} (L = {big['L']}, K = {big['K']}): "
        f"{big['em_iteration_s'] * 1e3:.1f} ms = {big['ratio_iteration_to_two_passes']:.2f}× the two "
        f"feature passes (`python benchmarks/bench_em_scaling.py`)"
    ]
    return "\n".join(txt), head


BENCHMARK = harness.Benchmark(
    name="em_scaling",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]),
        harness.option("--L", type=int, default=32),
        harness.option("--K", type=int, default=8),
        harness.option("--n-obs", type=int, default=1_000_000),
        harness.option(
            "--iters", type=int, default=60, help="minimum iterations of the longer timed EM run (at least 2e7 / p)"
        ),
        harness.option("--repeats", type=int, default=3),
        harness.option("--work", type=float, default=2e7, help="the long run has at least work / p iterations"),
        harness.option("--no-newton", action="store_true", help="skip the Newton M-step timing"),
    ),
    smoke={"p": [4000], "L": 8, "K": 3, "n_obs": 20_000, "iters": 8, "repeats": 1, "work": 1e6, "no_newton": True},
    timeout=1200,
    required=True,
    smoke_fields=True,
    heading="## 1. Where an EM iteration's time goes",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
