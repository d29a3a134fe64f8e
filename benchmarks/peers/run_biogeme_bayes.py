"""Bayesian latent-class logit with biogeme (NUTS through PyMC); run in the biogeme venv.

Usage: python run_biogeme_bayes.py DATA.npz OUT.npz K --draws D --warmup W --chains C
       [--atoms-scale S] [--init-json INIT.json] [--strategy automatic|pymc|...]

DATA.npz holds ``features`` (p, L) and ``counts`` (p,). The same model as
smm-ppl's NumPyro model: atoms ``theta_kl ~ Normal(0, S)`` (a custom prior
factory: biogeme's default prior is centred on the starting value), class
weights through a logit with the first class as reference; for K = 2 the
reference logit gets a Logistic(0, 1) prior, which makes ``alpha_1`` uniform,
i.e. ``alpha ~ Dirichlet(1, 1)`` exactly (for K > 2 the logits get Normal(0, 3)
priors: not the same prior, reported as such). One database row per distinct
chosen item; its count multiplies the row's log-likelihood (biogeme's Bayesian
path sums the ``log_like`` formula in a PyMC Potential and has no separate
weight), so the log density is ``sum_j n_j log pi_j`` + log prior.

Writes OUT.npz: ``weights`` (chain, draw, K), ``atoms`` (chain, draw, K, L),
``time_s`` (wall time of ``bayesian_estimation``), plus the sampler strategy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("K", type=int)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--atoms-scale", type=float, default=3.0)
    ap.add_argument("--init-json", default=None)
    ap.add_argument("--strategy", default="automatic")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import biogeme.biogeme as bio
    import biogeme.version as bv
    import pandas as pd
    import pymc as pm
    from biogeme.database import Database
    from biogeme.expressions import Beta, Variable, exp, log
    from biogeme.models import logit

    z = np.load(args.data)
    X, n = np.asarray(z["features"], float), np.asarray(z["counts"], np.int64)
    p, L = X.shape
    K = args.K
    items = np.flatnonzero(n > 0)
    df = pd.DataFrame({"CHOICE": items + 1, "W": n[items].astype(float)})
    db = Database("smm", df)

    init = None
    if args.init_json:
        with open(args.init_json) as f:
            init = json.load(f)
    init_atoms = np.asarray(init["atoms"]) if init else np.zeros((K, L))
    init_w = np.asarray(init["weights"]) if init else np.full(K, 1.0 / K)
    init_g = np.log(init_w) - np.log(init_w[0])

    s0 = args.atoms_scale

    def normal_prior(name, initial_value, lower_bound, upper_bound):
        return pm.Normal(name, mu=0.0, sigma=s0, initval=initial_value)

    def logistic_prior(name, initial_value, lower_bound, upper_bound):
        return pm.Logistic(name, mu=0.0, s=1.0, initval=initial_value)

    theta = [
        [Beta(f"theta_{k}_{l}", float(init_atoms[k, l]), None, None, 0, prior=normal_prior) for l in range(L)]
        for k in range(K)
    ]
    g = [None] + [
        Beta(f"g_{k}", float(init_g[k]), None, None, 0, prior=logistic_prior if K == 2 else normal_prior)
        for k in range(1, K)
    ]
    choice = Variable("CHOICE")
    w = Variable("W")
    denom = 1.0
    for k in range(1, K):
        denom = denom + exp(g[k])
    prob = 0.0
    for k in range(K):
        V = {j + 1: sum(theta[k][l] * float(X[j, l]) for l in range(L)) for j in range(p)}
        a_k = (1.0 if k == 0 else exp(g[k])) / denom
        prob = prob + a_k * logit(V, None, choice)
    loglike = w * log(prob)

    # A Parameters object, not the default TOML file: biogeme 3.3.2 fails to write
    # its default biogeme.toml with tomlkit >= 0.14 ("Comment cannot contain line breaks").
    from biogeme.parameters import Parameters

    b = bio.BIOGEME(
        db,
        loglike,
        parameters=Parameters(),
        bayesian_draws=args.draws,
        warmup=args.warmup,
        chains=args.chains,
        mcmc_sampling_strategy=args.strategy,
        generate_html=False,
        generate_yaml=False,
        generate_netcdf=False,
        save_iterations=False,
        calculate_waic=False,
        calculate_loo=False,
        calculate_likelihood=False,
        sample_from_prior=False,
        seed=args.seed,
    )
    b.model_name = "smm_biogeme"
    starting = {f"theta_{k}_{l}": float(init_atoms[k, l]) for k in range(K) for l in range(L)}
    starting.update({f"g_{k}": float(init_g[k]) for k in range(1, K)})
    t0 = time.perf_counter()
    res = b.bayesian_estimation(starting_values=starting if init else None)
    elapsed = time.perf_counter() - t0
    post = res.raw.idata.posterior if hasattr(res, "raw") else res.idata.posterior
    atoms = np.stack([np.stack([post[f"theta_{k}_{l}"].values for l in range(L)], -1) for k in range(K)], -2)
    gs = np.stack([np.zeros_like(post["theta_0_0"].values)] + [post[f"g_{k}"].values for k in range(1, K)], -1)
    weights = np.exp(gs - np.log(np.exp(gs).sum(-1, keepdims=True)))
    np.savez(
        args.out,
        weights=weights,
        atoms=atoms,
        time_s=elapsed,
        strategy=args.strategy,
        version=bv.get_version() if hasattr(bv, "get_version") else str(bv),
    )
    print(json.dumps({"time_s": elapsed, "shape": list(atoms.shape), "version": str(getattr(bv, "__version__", ""))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
