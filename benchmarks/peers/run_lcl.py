"""Fit a latent-class logit with lcl-choice (run inside the peers venv, not the project venv).

Usage: python run_lcl.py DATA.npz OUT.json K [--starts S] [--seed SEED]

DATA.npz holds ``features`` (p, L) and ``counts`` (p,). lcl-choice has no
frequency weights for latent-class models, so the counts are expanded to one
choice situation per observation, one row per (observation, item): N * p rows.
Each observation is its own panel, so its class is drawn independently, which
is exactly the softmax mixture model. Writes time, log-likelihood, weights and
atoms (atoms[k] = class k's coefficients on the features) to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from formats import expand_per_observation  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("K", type=int)
    ap.add_argument("--starts", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t_import = time.perf_counter()
    import lcl
    import polars as pl

    t_import = time.perf_counter() - t_import
    z = np.load(args.data)
    X, n = np.asarray(z["features"], float), np.asarray(z["counts"], np.int64)
    L = X.shape[1]
    t0 = time.perf_counter()
    df = pl.DataFrame(expand_per_observation(X, n))
    t_expand = time.perf_counter() - t0
    names = [f"x{l}" for l in range(L)]
    spec = lcl.LCLSpec(
        ids=lcl.ChoiceIds(alt="alt", case="obs", panel="obs", choice="chosen"),
        utility=names,
        classes=args.K,
    )
    opts = lcl.Options(
        fit=lcl.FitOptions(seed=args.seed, starts=args.starts),
        inference=lcl.InferenceOptions(skip=True),
    )
    t0 = time.perf_counter()
    res = lcl.fit(df, spec, options=opts)
    t_fit = time.perf_counter() - t0
    betas = np.asarray(res.em_res.betas, float)  # (L, K)
    shares = np.asarray(res.em_res.shares, float)
    out = {
        "peer": "lcl-choice",
        "version": __import__("importlib.metadata").metadata.version("lcl-choice"),
        "n_rows": int(df.height),
        "time_fit_s": t_fit,
        "time_expand_s": t_expand,
        "time_import_s": t_import,
        "log_likelihood_reported": float(res.em_res.unconditional_loglik),
        "n_iter": int(res.total_recursions),
        "converged": bool(res.converged),
        "weights": shares.tolist(),
        "atoms": betas.T.tolist(),
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(json.dumps({k: v for k, v in out.items() if k not in ("weights", "atoms")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
