"""Benchmark: cost of one EM iteration against the two passes over the features it needs.

An EM iteration (gradient M-step) has to compute ``Xt @ B.T`` (new logits,
``p x L`` times ``L x K``) and ``Xt.T @ R`` (the M-step gradient, ``L x p``
times ``p x K``).  This script times those two products alone and one EM
iteration of :func:`smm_ppl.em.em_update` inside the jitted driver, in the same
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

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import smm_ppl as smm  # noqa: E402
from smm_ppl import em  # noqa: E402


def _best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls (blocking on the result)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=200_000)
    ap.add_argument("--L", type=int, default=32)
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--n-obs", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=40, help="iterations of the longer timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny size (p=2000, L=4, K=3)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "em.json"))
    args = ap.parse_args(argv)
    if args.smoke:
        args.p, args.L, args.K, args.n_obs, args.iters, args.repeats = 2000, 4, 3, 20_000, 10, 2

    p, L, K = args.p, args.L, args.K
    X = smm.simulate_features(0, p, L)
    truth = smm.simulate_params(1, K, L, atoms_scale=1.5 / np.sqrt(L))
    n = smm.simulate_counts(2, X, truth, args.n_obs)
    wh = em._whitening(X)
    xt = jnp.asarray(wh.xt)
    w = jnp.asarray(n / n.sum())
    # Start somewhere other than the truth so that the iterations do real work.
    start_atoms = jnp.asarray(wh.to_whitened(0.5 * truth.atoms))
    start_weights = jnp.full(K, 1.0 / K)

    # -- the two passes alone ------------------------------------------------
    B = jax.random.normal(jax.random.PRNGKey(3), (K, L))
    R = jax.random.normal(jax.random.PRNGKey(4), (p, K))

    @jax.jit
    def two_passes(xt, B, R):
        return xt @ B.T, R.T @ xt

    jax.block_until_ready(two_passes(xt, B, R))
    t_passes = _best_time(lambda: two_passes(xt, B, R), args.repeats * 4)

    # -- EM iterations inside the jitted driver ---------------------------------
    def per_iteration(m_step: str, acceleration: str, n_long: int) -> float:
        n_short = max(1, n_long // 4)
        kw = dict(m_step=m_step, acceleration=acceleration)

        def run(m):
            return em._run_single(xt, w, start_weights, start_atoms, 0.0, m, 1.0, buffer=m, **kw).trace

        jax.block_until_ready(run(n_short))  # compile both sizes
        jax.block_until_ready(run(n_long))
        t_long = _best_time(lambda: run(n_long), args.repeats)
        t_short = _best_time(lambda: run(n_short), args.repeats)
        return max(t_long - t_short, 1e-12) / (n_long - n_short)

    t_grad = per_iteration("gradient", "none", args.iters)
    ratio = t_grad / t_passes
    t_newton = per_iteration("newton", "none", max(8, args.iters // 2))
    t_squarem = per_iteration("gradient", "squarem", max(8, args.iters // 3))

    result = {
        "p": p,
        "L": L,
        "K": K,
        "n_obs": args.n_obs,
        "device": str(jax.devices()[0]),
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "jax": jax.__version__,
        "two_passes_s": t_passes,
        "em_iteration_gradient_s": t_grad,
        "ratio_iteration_to_two_passes": ratio,
        "em_iteration_newton_s": t_newton,
        "squarem_cycle_s": t_squarem,
        "target_ratio": 2.0,
        "smoke": bool(args.smoke),
    }
    print(f"EM benchmark  p={p:,}  L={L}  K={K}  N={args.n_obs:,}  on {result['device']}")
    print(f"  two passes (Xt @ B.T and Xt.T @ R):   {t_passes * 1e3:9.3f} ms")
    print(f"  one EM iteration (gradient M-step):   {t_grad * 1e3:9.3f} ms")
    print(f"  ratio iteration / two passes:         {ratio:9.2f}   (target <= 2)")
    print(f"  one EM iteration (Newton M-step):     {t_newton * 1e3:9.3f} ms")
    print(f"  one SQUAREM cycle (3 gradient maps):  {t_squarem * 1e3:9.3f} ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"  saved to {out}")
    return result


if __name__ == "__main__":
    main()
