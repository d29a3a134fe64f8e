"""Benchmark: cost of one EM iteration against the two passes over the features it needs.

An EM iteration (gradient M-step) has to compute ``Xt @ B.T`` (new logits,
``p x L`` times ``L x K``) and ``Xt.T @ R`` (the M-step gradient, ``L x p``
times ``p x K``).  This script times those two products alone and one EM
iteration of :func:`smm_ppl.em.em_update` inside the jitted driver (:func:`smm_ppl.em.run`), in the same
run, and prints the ratio (target: at most 2).  The per-iteration time is the
difference of two runs with ``tol = 0`` (exactly ``max_iter`` iterations)
divided by the difference of their iteration counts, so the start-up and the
initial E-step cancel.

Usage::

    python benchmarks/bench_em.py            # p = 200,000, L = 32, K = 8
    python benchmarks/bench_em.py --smoke    # tiny size, seconds
    python benchmarks/bench_em.py --p 50000 --L 16 --K 4

Results go to ``benchmarks/results/em.json``.
"""

from __future__ import annotations

from functools import partial

import harness  # isort: skip  (first: it puts the repository on sys.path)
import jax
import numpy as np
from bench_em_scaling import problem
from jax import lax

from smm_ppl import em


def measure(args) -> dict:
    p, L, K = args.p, args.L, args.K
    data, start_weights, start_atoms = problem(p, L, K, args.n_obs)
    xt = data.features

    # -- the two passes alone, in a jitted loop like the EM iterations -------
    # S = Xt @ B.T and G = S.T @ Xt, with a dependency chain so nothing is
    # hoisted.  "natural" is the layout of the issue (R of shape (p, K));
    # "transposed" keeps R as (K, p) (B @ Xt.T, R @ Xt), which XLA:CPU often
    # runs faster; the reference is the faster of the two.
    xt_t = data.features_t

    @partial(jax.jit, static_argnames="m")
    def passes_natural(xt, B, m):
        def body(_, B):
            S = xt @ B.T
            return B + 1e-12 * (S.T @ xt)

        return lax.fori_loop(0, m, body, B)

    @partial(jax.jit, static_argnames="m")
    def passes_transposed(xt, xt_t, B, m):
        def body(_, B):
            S = B @ xt_t
            return B + 1e-12 * (S @ xt)

        return lax.fori_loop(0, m, body, B)

    def em_run(m_step, acceleration, m):
        return em.run(
            data, start_weights, start_atoms, 0.0, m, 1.0, buffer=m, algorithm=em.em_algorithm(m_step, acceleration)
        ).trace

    n_long = args.iters
    n_short = max(1, n_long // 4)
    candidates = {
        "passes_natural": lambda m: passes_natural(xt, start_atoms, m),
        "passes_transposed": lambda m: passes_transposed(xt, xt_t, start_atoms, m),
        "em_gradient": lambda m: em_run("gradient", "none", m),
    }
    for fn in candidates.values():  # compile both lengths
        jax.block_until_ready(fn(n_short))
        jax.block_until_ready(fn(n_long))
    # Interleave the measurements (the machine may be shared): per round, each
    # candidate's per-iteration time is (t(long) - t(short)) / (long - short).
    rounds = {k: [] for k in candidates}
    longs = {k: [] for k in candidates}
    shorts = {k: [] for k in candidates}
    for _ in range(args.repeats):
        for name, fn in candidates.items():
            longs[name].append(harness.best_time(lambda fn=fn: fn(n_long), 1))
            shorts[name].append(harness.best_time(lambda fn=fn: fn(n_short), 1))
            rounds[name].append(max(longs[name][-1] - shorts[name][-1], 1e-12) / (n_long - n_short))
    # Best (least disturbed) long and short runs, differenced.
    per = {k: max(min(longs[k]) - min(shorts[k]), 1e-12) / (n_long - n_short) for k in candidates}
    ratios_natural = np.array(rounds["em_gradient"]) / np.array(rounds["passes_natural"])
    ratios_best = np.array(rounds["em_gradient"]) / np.minimum(rounds["passes_natural"], rounds["passes_transposed"])
    t_passes = min(per["passes_natural"], per["passes_transposed"])
    t_grad = per["em_gradient"]

    def per_iteration(m_step, acceleration, m_long):
        t_long, t_short, m_short = harness.long_and_short(
            partial(em_run, m_step, acceleration), m_long, max(2, args.repeats // 2)
        )
        return max(t_long - t_short, 1e-12) / (m_long - m_short)

    env = harness.environment()
    return {
        "p": p,
        "L": L,
        "K": K,
        "n_obs": args.n_obs,
        **{key: env[key] for key in ("device", "backend", "cpu_count", "machine", "jax")},
        "two_passes_s": t_passes,
        "two_passes_natural_layout_s": per["passes_natural"],
        "two_passes_transposed_layout_s": per["passes_transposed"],
        "em_iteration_gradient_s": t_grad,
        "ratio_iteration_to_two_passes": t_grad / t_passes,
        "ratio_to_natural_layout": per["em_gradient"] / per["passes_natural"],
        "ratio_per_round_median": float(np.median(ratios_best)),
        "ratio_natural_per_round_median": float(np.median(ratios_natural)),
        "em_iteration_newton_s": per_iteration("newton", "none", max(8, args.iters // 4)),
        "squarem_cycle_s": per_iteration("gradient", "squarem", max(8, args.iters // 3)),
        "target_ratio": 2.0,
        "smoke": bool(args.smoke),
    }


def report(result) -> tuple[str, list[str]]:
    """Every field (under section 1): the EM module's own check, the ratio's target 2."""
    return harness.fields_table(result), []


BENCHMARK = harness.Benchmark(
    name="em",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, default=200_000),
        harness.option("--L", type=int, default=32),
        harness.option("--K", type=int, default=8),
        harness.option("--n-obs", type=int, default=1_000_000),
        harness.option("--iters", type=int, default=40, help="iterations of the longer timed run"),
        harness.option("--repeats", type=int, default=5),
    ),
    smoke={"p": 20_000, "L": 8, "K": 3, "n_obs": 100_000, "iters": 40, "repeats": 3},
    timeout=900,
    environment=False,  # its own fields: device, backend, cpu_count, machine, jax
    heading="The EM module's own benchmark (`python benchmarks/bench_em.py`):",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
