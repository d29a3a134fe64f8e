"""Warm-start benchmark: each warm start's time at p = 20,000, L = 10, K = 5.

Usage::

    python benchmarks/bench_warmstart.py            # p = 20,000, L = 10, K = 5
    python benchmarks/bench_warmstart.py --smoke    # tiny size, seconds
    python benchmarks/bench_warmstart.py --out FILE # write the JSON elsewhere

Every warm start is called once to compile, then timed (best of ``--repeats``
calls).  Times are also given as ratios to two baselines measured in the same
run on the same data: one pass ``X.T @ w`` over the features (NumPy) and one
evaluation of the jitted log-likelihood at the truth.  The accuracy of each
start (max atom error after Hungarian matching, in whitened units, and the
log-likelihood gap to the truth) is recorded alongside.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import smm_ppl as smm  # noqa: E402
from smm_ppl.data.likelihood import log_likelihood_jax  # noqa: E402
from smm_ppl.data.whitening import fit_whitening  # noqa: E402

import _common  # noqa: E402


def design(seed: int, p: int, L: int, K: int, n_obs: int, radius: float = 1.3):
    """Non-identity covariance, non-zero mean, orthogonal whitened atoms of norm ``radius``."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((L, L)) / np.sqrt(L)
    cov = A @ A.T + 0.5 * np.eye(L)
    mean = rng.standard_normal(L)
    X = smm.simulate_features(seed, p, L, cov=cov, mean=mean)
    beta = radius * np.linalg.qr(rng.standard_normal((L, K)))[0].T
    weights = rng.dirichlet(np.full(K, 10.0))
    wh = fit_whitening(X)
    truth = smm.SMMParams(weights, beta @ wh.inv_root)
    counts = smm.simulate_counts(seed + 1, X, truth, n_obs)
    return X, counts, truth, wh


def best_of(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(jax.tree_util.tree_leaves(out))
        best = min(best, time.perf_counter() - t0)
    return float(best)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny size (p = 2,000, L = 6, K = 3)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/warmstart.json)")
    args = ap.parse_args(argv)

    p, L, K, N = (2_000, 6, 3, 100_000) if args.smoke else (20_000, 10, 5, 1_000_000)
    repeats = 2 if args.smoke else args.repeats
    X, n, truth, wh = design(0, p, L, K, N)
    w = n / n.sum()

    xj, nj = jnp.asarray(X), jnp.asarray(n)
    wj, aj = jnp.asarray(truth.weights), jnp.asarray(truth.atoms)
    ll_jit = jax.jit(log_likelihood_jax)
    ll_jit(xj, nj, wj, aj).block_until_ready()
    t_pass = best_of(lambda: X.T @ w, max(repeats, 20))
    t_ll = best_of(lambda: ll_jit(xj, nj, wj, aj), max(repeats, 20))
    ll_truth = float(ll_jit(xj, nj, wj, aj))

    starts = {
        "estimate_subspace": lambda: smm.estimate_subspace(X, n, K),
        "mom_init": lambda: smm.mom_init(X, n, K, seed=0),
        "tensor_init": lambda: smm.tensor_init(X, n, K, seed=0),
        "subspace_random_inits(20)": lambda: smm.subspace_random_inits(X, n, K, 20, seed=0),
    }
    rows = {}
    print(f"warm starts at p = {p}, L = {L}, K = {K}, N = {N} ({'smoke' if args.smoke else 'full'})")
    print(f"  baselines: one pass X.T @ w {t_pass * 1e3:.3f} ms; one log-likelihood {t_ll * 1e3:.3f} ms")
    for name, fn in starts.items():
        t0 = time.perf_counter()
        out = fn()  # compile
        t_first = time.perf_counter() - t0
        t = best_of(fn, repeats)
        row = {"seconds": t, "first_call_seconds": t_first, "ratio_to_pass": t / t_pass, "ratio_to_loglik": t / t_ll}
        if isinstance(out, smm.SMMParams) and np.ndim(out.weights) == 1:
            beta_hat = out.atoms @ wh.root
            err = smm.parameter_error(
                smm.SMMParams(out.weights, beta_hat), smm.SMMParams(truth.weights, truth.atoms @ wh.root)
            )
            row["atom_error_whitened"] = err["atoms"]
            row["weight_error"] = err["weights"]
            row["loglik_gap_per_obs"] = (ll_truth - smm.log_likelihood(X, n, out)) / N
        rows[name] = row
        extra = (
            f"; atom error {row['atom_error_whitened']:.3f}, weight error {row['weight_error']:.3f}"
            if "atom_error_whitened" in row
            else ""
        )
        print(
            f"  {name:28s} {t * 1e3:8.1f} ms  (first call {t_first:.2f} s)  "
            f"= {row['ratio_to_pass']:.0f} x one pass, {row['ratio_to_loglik']:.0f} x one log-likelihood{extra}"
        )

    result = {
        "benchmark": "warmstart",
        "smoke": bool(args.smoke),
        "design": {"n_items": p, "n_features": L, "n_components": K, "n_obs": N, "atom_norm_whitened": 1.3},
        "baseline_seconds": {"one_pass_XTw": t_pass, "one_loglik": t_ll},
        "warm_starts": rows,
        "environment": _common.environment(),
    }
    out = _common.result_path("warmstart", args.smoke, args.out)
    _common.save_json(result, "warmstart", out)
    return result


if __name__ == "__main__":
    main()
