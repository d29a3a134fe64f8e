"""Recompute biogeme's Swissmetro latent-class log-likelihoods and standard errors independently (JAX autodiff).

Usage (any Python with jax, numpy, pandas, e.g. the biogeme venv):

    benchmarks/_peers/venv-biogeme/bin/python benchmarks/peers/check_biogeme_lc.py \
        [--data tests/data/swissmetro.csv.gz] [--results benchmarks/results/biogeme_swissmetro.json]

Reads the estimates of ``run_biogeme_lc.py`` (default start, cross-sectional and panel), evaluates the
same log-likelihood written directly in JAX (not through biogeme), and computes at those estimates:
the gradient, classical SEs (inverse of minus the Hessian), BHHH SEs, robust sandwich SEs with one
score per likelihood term (per choice for the cross-sectional model, per respondent for the panel
model: what biogeme reports), and for the cross-sectional model also the sandwich clustered by
respondent (scores summed over each respondent's 9 choices), which biogeme does not report.
Adds them to the results JSON under ``independent_check`` and prints them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["ASC_CAR", "ASC_TRAIN", "B_COST", "B_TIME", "PROB_CLASS1"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "swissmetro.csv.gz"))
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "biogeme_swissmetro.json"))
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np
    import pandas as pd

    jax.config.update("jax_enable_x64", True)
    raw = pd.read_csv(args.data)
    av = jnp.asarray(np.stack([raw.TRAIN_AV * (raw.SP != 0), raw.SM_AV, raw.CAR_AV * (raw.SP != 0)], 1), float)
    tt = jnp.asarray(np.stack([raw.TRAIN_TT, raw.SM_TT, raw.CAR_TT], 1) / 100.0)
    co = jnp.asarray(np.stack([raw.TRAIN_CO * (raw.GA == 0), raw.SM_CO * (raw.GA == 0), raw.CAR_CO], 1) / 100.0)
    y = jnp.asarray(raw.CHOICE.to_numpy() - 1)
    ids = jnp.asarray(pd.factorize(raw.ID)[0])
    n_persons = int(ids.max()) + 1

    def class_logp(th):
        """log P(choice) per row in class 1 (no time) and class 2 (time); th = NAMES."""
        asc = jnp.array([th[1], 0.0, th[0]])  # train, Swissmetro (fixed 0), car

        def lp(b_time):
            v = jnp.where(av > 0, asc + th[2] * co + b_time * tt, -1e10)
            return jnp.take_along_axis(jax.nn.log_softmax(v, axis=1), y[:, None], axis=1)[:, 0]

        return lp(0.0), lp(th[3])

    def terms_cross_sectional(th):
        a, b = class_logp(th)
        return jnp.logaddexp(jnp.log(th[4]) + a, jnp.log1p(-th[4]) + b)

    def terms_panel(th):
        a, b = class_logp(th)
        A = jax.ops.segment_sum(a, ids, n_persons)
        B = jax.ops.segment_sum(b, ids, n_persons)
        return jnp.logaddexp(jnp.log(th[4]) + A, jnp.log1p(-th[4]) + B)

    with open(args.results) as f:
        results = json.load(f)
    check = {"method": "log-likelihood re-implemented in JAX; derivatives by autodiff at biogeme's estimates"}
    for key, terms in [("cross_sectional", terms_cross_sectional), ("panel", terms_panel)]:
        if key not in results:
            continue
        d = results[key]["default_start"]
        th = jnp.array([d["estimates"][n]["value"] for n in NAMES])
        total = lambda t, terms=terms: jnp.sum(terms(t))  # noqa: E731
        H = np.asarray(jax.hessian(total)(th))
        G = np.asarray(jax.jacobian(terms)(th))
        cov = np.linalg.inv(-H)
        bhhh = G.T @ G
        robust = cov @ bhhh @ cov
        entry = {
            "log_likelihood": float(total(th)),
            "biogeme_log_likelihood": d["log_likelihood"],
            "gradient": [float(g) for g in np.asarray(jax.grad(total)(th))],
            "estimates": {},
        }
        if key == "cross_sectional":
            Gp = np.asarray(jax.ops.segment_sum(jnp.asarray(G), ids, n_persons))
            clustered = cov @ (Gp.T @ Gp) @ cov
        for i, n in enumerate(NAMES):
            e = {
                "se_classical": float(np.sqrt(cov[i, i])),
                "se_robust": float(np.sqrt(robust[i, i])),
                "se_bhhh": float(np.sqrt(np.linalg.inv(bhhh)[i, i])),
            }
            if key == "cross_sectional":
                e["se_robust_clustered_by_ID"] = float(np.sqrt(clustered[i, i]))
            entry["estimates"][n] = e
        check[key] = entry
        print(key, json.dumps(entry, indent=1))
    results["independent_check"] = check
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
