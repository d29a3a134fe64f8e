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

import harness  # isort: skip  (first: it puts the repository on sys.path)
import jax
import jax.numpy as jnp
import numpy as np

import smm_ppl as smm
from smm_ppl.core.whitening import fit_whitening
from smm_ppl.data.likelihood import log_likelihood_jax


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


def measure(args) -> dict:
    p, L, K, N, repeats = args.p, args.L, args.K, args.N, args.repeats
    X, n, truth, wh = design(0, p, L, K, N)
    w = n / n.sum()

    xj, nj = jnp.asarray(X), jnp.asarray(n)
    wj, aj = jnp.asarray(truth.weights), jnp.asarray(truth.atoms)
    ll_jit = jax.jit(log_likelihood_jax)
    ll_jit(xj, nj, wj, aj).block_until_ready()
    t_pass = harness.best_time(lambda: X.T @ w, max(repeats, 20))
    t_ll = harness.best_time(lambda: ll_jit(xj, nj, wj, aj), max(repeats, 20))
    ll_truth = float(ll_jit(xj, nj, wj, aj))

    starts = {
        "estimate_subspace": lambda: smm.estimate_subspace(X, n, K),
        "mom_init": lambda: smm.mom_init(X, n, K, seed=0),
        "tensor_init": lambda: smm.tensor_init(X, n, K, seed=0),
        "subspace_random_inits(20)": lambda: smm.subspace_random_inits(X, n, K, 20, seed=0),
    }
    rows = {}
    for name, fn in starts.items():
        out, t_first = harness.timed(fn)  # compilation included
        t = harness.best_time(fn, repeats)
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

    return {
        "benchmark": "warmstart",
        "smoke": bool(args.smoke),
        "design": {"n_items": p, "n_features": L, "n_components": K, "n_obs": N, "atom_norm_whitened": 1.3},
        "baseline_seconds": {"one_pass_XTw": t_pass, "one_loglik": t_ll},
        "warm_starts": rows,
    }


def report(result) -> tuple[str, list[str]]:
    """Every field: each start's time, as ratios to the two baselines, and its accuracy."""
    return harness.fields_table(result), []


BENCHMARK = harness.Benchmark(
    name="warmstart",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, default=20_000),
        harness.option("--L", type=int, default=10),
        harness.option("--K", type=int, default=5),
        harness.option("--N", type=int, default=1_000_000),
        harness.option("--repeats", type=int, default=5),
    ),
    smoke={"p": 2_000, "L": 6, "K": 3, "N": 100_000, "repeats": 2},
    timeout=1200,
    heading="## Warm starts (the warm-start module's benchmark, `python benchmarks/bench_warmstart.py`)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
