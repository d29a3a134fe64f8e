"""Biogeme's two-class latent-class logit on Swissmetro (its example b07discrete_mixture), cross-sectional and panel.

Run in the biogeme venv (``benchmarks/_peers/venv-biogeme``, see ``install.ensure_biogeme``):

    benchmarks/_peers/venv-biogeme/bin/python benchmarks/peers/run_biogeme_lc.py \
        [--data tests/data/swissmetro.csv.gz] [--out benchmarks/results/biogeme_swissmetro.json] [--starts 10]

Data: ``tests/data/swissmetro.csv.gz`` (already filtered to PURPOSE in {1, 3} and
CHOICE != 0: 6,768 choices of 752 respondents; see ``make_swissmetro.py``).

Model (biogeme's ``plot_b07discrete_mixture.py`` with its ``swissmetro_data`` preparation):
alternatives train (1), Swissmetro (2), car (3); time = *_TT / 100; cost = TRAIN_CO * (GA == 0) / 100,
SM_CO * (GA == 0) / 100, CAR_CO / 100; availabilities TRAIN_AV * (SP != 0), SM_AV, CAR_AV * (SP != 0);
ASC_SM = 0 (fixed); ASC_CAR, ASC_TRAIN, B_COST shared by both classes; B_TIME = 0 in class 1 and
estimated in class 2; PROB_CLASS1 is a parameter bounded to [0, 1] (start 0.5), class 2 has 1 - PROB_CLASS1.

* ``cross_sectional``: each choice has its own class, log L = sum_n log(sum_k pi_k P_k(y_n)) (the
  biogeme example exactly; default starting values: 0 for the betas, 0.5 for PROB_CLASS1).
* ``panel``: one class per respondent (``database.panel('ID')``, ``PanelLikelihoodTrajectory``):
  log L = sum_i log(sum_k pi_k prod_t P_k(y_it)). No random parameters, so no Monte Carlo draws.

For each, the fit from biogeme's default start, and ``--starts`` further fits from random starts
(betas uniform in [-3, 3], PROB_CLASS1 uniform in [0.05, 0.95], numpy seed 0) to look for other
local optima (given to biogeme as a complete dict in its own free-parameter order: biogeme 3.3.2
scrambles starting values given in any other order, see ``fit``). biogeme 3.3.2 builds the BHHH matrix (needed for the robust SEs, always computed
by ``estimate``) with a Python loop of ``jnp.outer`` over the rows: about 4 minutes for the 6,768
cross-sectional rows on a 2-core machine. The default-start fits run biogeme's code unchanged
(their wall time includes that); for the random starts the loop is replaced by the equivalent
``G.T @ G`` unless ``--no-patch-bhhh``. Reports the log-likelihood, estimates, classical (Rao-Cramer: inverse of minus the
Hessian) and robust (sandwich H^-1 BHHH H^-1) standard errors, iterations, biogeme version, wall times.
For the panel model biogeme's BHHH sums per-respondent scores, so its robust SEs are clustered by person.
Prints the JSON and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
T_START = time.perf_counter()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "swissmetro.csv.gz"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "biogeme_swissmetro.json"))
    ap.add_argument("--starts", type=int, default=10, help="random starts besides the default one")
    ap.add_argument("--skip-panel", action="store_true")
    ap.add_argument(
        "--no-patch-bhhh",
        action="store_true",
        help="keep biogeme's own (slow, row-by-row) BHHH computation for the random starts too",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, os.environ.get("BIOGEME_LOG", "WARNING")), format="%(asctime)s %(name)s %(message)s"
    )
    data_path = os.path.abspath(args.data)
    out_path = os.path.abspath(args.out)

    t0 = time.perf_counter()
    import biogeme.biogeme as bio
    import numpy as np
    import pandas as pd
    from biogeme import models
    from biogeme.database import Database
    from biogeme.expressions import Beta, PanelLikelihoodTrajectory, Variable, log
    from biogeme.parameters import Parameters
    from biogeme.results_processing import EstimateVarianceCovariance
    from biogeme.version import get_version

    t_import = time.perf_counter() - t0

    raw = pd.read_csv(data_path)
    assert len(raw) == 6768, len(raw)
    df = pd.DataFrame(
        {
            "ID": raw.ID,
            "CHOICE": raw.CHOICE,
            "TRAIN_AV_SP": raw.TRAIN_AV * (raw.SP != 0),
            "SM_AV": raw.SM_AV,
            "CAR_AV_SP": raw.CAR_AV * (raw.SP != 0),
            "TRAIN_TT_SCALED": raw.TRAIN_TT / 100.0,
            "SM_TT_SCALED": raw.SM_TT / 100.0,
            "CAR_TT_SCALED": raw.CAR_TT / 100.0,
            "TRAIN_COST_SCALED": raw.TRAIN_CO * (raw.GA == 0) / 100.0,
            "SM_COST_SCALED": raw.SM_CO * (raw.GA == 0) / 100.0,
            "CAR_CO_SCALED": raw.CAR_CO / 100.0,
        }
    )
    # biogeme writes output files (and reads biogeme.toml) in the working directory: use a scratch one.
    workdir = tempfile.mkdtemp(prefix="biogeme_lc_")
    os.chdir(workdir)

    def parameters() -> Parameters:
        p = Parameters()
        p.set_value(name="generate_html", value=False, section="Output")
        p.set_value(name="generate_yaml", value=False, section="Output")
        p.set_value(name="save_iterations", value=False, section="Estimation")
        return p

    names = ["ASC_CAR", "ASC_TRAIN", "B_COST", "B_TIME", "PROB_CLASS1"]

    def build(panel: bool):
        db = Database("swissmetro", df.copy())
        if panel:
            db.panel("ID")
        V = {c: Variable(c) for c in df.columns}
        ASC_CAR = Beta("ASC_CAR", 0, None, None, 0)
        ASC_TRAIN = Beta("ASC_TRAIN", 0, None, None, 0)
        ASC_SM = Beta("ASC_SM", 0, None, None, 1)
        B_TIME = Beta("B_TIME", 0, None, None, 0)
        B_COST = Beta("B_COST", 0, None, None, 0)
        PROB_CLASS1 = Beta("PROB_CLASS1", 0.5, 0, 1, 0)
        PROB_CLASS2 = 1 - PROB_CLASS1
        V1 = {
            1: ASC_TRAIN + B_COST * V["TRAIN_COST_SCALED"],
            2: ASC_SM + B_COST * V["SM_COST_SCALED"],
            3: ASC_CAR + B_COST * V["CAR_CO_SCALED"],
        }
        V2 = {
            1: ASC_TRAIN + B_TIME * V["TRAIN_TT_SCALED"] + B_COST * V["TRAIN_COST_SCALED"],
            2: ASC_SM + B_TIME * V["SM_TT_SCALED"] + B_COST * V["SM_COST_SCALED"],
            3: ASC_CAR + B_TIME * V["CAR_TT_SCALED"] + B_COST * V["CAR_CO_SCALED"],
        }
        av = {1: V["TRAIN_AV_SP"], 2: V["SM_AV"], 3: V["CAR_AV_SP"]}
        p1 = models.logit(V1, av, V["CHOICE"])
        p2 = models.logit(V2, av, V["CHOICE"])
        if panel:
            p1, p2 = PanelLikelihoodTrajectory(p1), PanelLikelihoodTrajectory(p2)
        logprob = log(PROB_CLASS1 * p1 + PROB_CLASS2 * p2)
        return db, logprob

    from biogeme.jax_calculator import single_formula

    fast_bhhh_cls = None
    for obj in vars(single_formula).values():
        if isinstance(obj, type) and "_evaluate_bhhh_only" in vars(obj):
            fast_bhhh_cls = obj
    original_bhhh = fast_bhhh_cls._evaluate_bhhh_only

    def fast_bhhh(self, free_betas_values, use_jit: bool):
        """biogeme's _evaluate_bhhh_only with its Python loop over rows (jnp.outer per row) replaced by G'G."""
        import jax
        import jax.numpy as jnp
        from biogeme.function_output import FunctionOutput
        from biogeme.jax_calculator.single_formula import build_vectorized_function

        _, individual_values = self.sum_function(
            free_betas_values, self.data_jax, self.draws_jax, self.random_variables_jax
        )

        def one_gradient(p, d, r, rv):
            loglik_fn = self.model_elements.loglikelihood.recursive_construct_jax_function(
                numerically_safe=self.numerically_safe
            )
            vectorized_function = build_vectorized_function(loglik_fn, use_jit=use_jit)
            return jnp.mean(vectorized_function(p, d[None, :], r[None, :, :], rv))

        fn = jax.vmap(jax.grad(one_gradient, argnums=0), in_axes=(None, 0, 0, 0))
        fn = jax.jit(fn) if self.use_jit else fn
        rv = jnp.tile(self.random_variables_jax[None, :], (self.data_jax.shape[0], 1))
        G = fn(jnp.asarray(free_betas_values), self.data_jax, self.draws_jax, rv)
        return FunctionOutput(
            function=float(jnp.sum(individual_values)),
            gradient=np.asarray(jnp.sum(G, axis=0), dtype=float),
            hessian=None,
            bhhh=np.asarray(G.T @ G, dtype=float),
        )

    def fit(panel: bool, start: dict | None, tag: str, patch_bhhh: bool = False) -> dict:
        db, logprob = build(panel)
        fast_bhhh_cls._evaluate_bhhh_only = fast_bhhh if patch_bhhh else original_bhhh
        t = time.perf_counter()
        the_biogeme = bio.BIOGEME(db, logprob, parameters=parameters())
        the_biogeme.model_name = f"b07discrete_mixture_{'panel' if panel else 'cs'}_{tag}"
        if start is not None:
            # biogeme 3.3.2 maps the optimiser's vector onto the starting-value dict in the dict's own
            # key order (jax_calculator/function_call.py: the_betas.update(dict(zip(the_betas.keys(), x))))
            # while the vector is in its free-beta order: a dict in any other order scrambles the
            # parameters. Give it the complete dict in its own order. With a panel database the
            # registry lists the betas inside PanelLikelihoodTrajectory only once the BIOGEME object
            # uses the flattened database (estimate() switches to it itself): switch first.
            the_biogeme.use_flatten_database = db.is_panel()
            order = the_biogeme.expressions_registry.free_betas_names
            assert sorted(order) == sorted(start), (order, sorted(start))
            start = {n: float(start[n]) for n in order}
        res = the_biogeme.estimate(starting_values=None if start is None else dict(start))
        wall = time.perf_counter() - t
        raw_res = res.raw_estimation_results
        out = {
            "start": start if start is not None else "biogeme default (betas 0, PROB_CLASS1 0.5)",
            "log_likelihood": float(res.final_log_likelihood),
            "initial_log_likelihood": None
            if raw_res.initial_log_likelihood is None
            else float(raw_res.initial_log_likelihood),
            "null_log_likelihood": None if raw_res.null_log_likelihood is None else float(raw_res.null_log_likelihood),
            "converged": bool(res.algorithm_has_converged),
            "optimization_messages": {k: str(v) for k, v in raw_res.optimization_messages.items()},
            "gradient_norm": float(res.gradient_norm),
            "sample_size": int(raw_res.sample_size),
            "number_of_observations": int(raw_res.number_of_observations),
            "wall_s": wall,
            "estimates": {},
        }
        for n in names:
            out["estimates"][n] = {
                "value": float(res.get_parameter_value(n)),
                "se_classical": float(res.get_parameter_std_err(n, EstimateVarianceCovariance.RAO_CRAMER)),
                "se_robust": float(res.get_parameter_std_err(n, EstimateVarianceCovariance.ROBUST)),
                "se_bhhh": float(res.get_parameter_std_err(n, EstimateVarianceCovariance.BHHH)),
            }
        out["bound_active_PROB_CLASS1"] = bool(res.is_bound_active("PROB_CLASS1"))
        return out

    rng = np.random.default_rng(0)
    random_starts = []
    for _ in range(args.starts):
        s = {n: float(rng.uniform(-3, 3)) for n in names[:-1]}
        s["PROB_CLASS1"] = float(rng.uniform(0.05, 0.95))
        random_starts.append(s)

    result = {
        "peer": "biogeme",
        "version": get_version(),
        "model": "biogeme example b07discrete_mixture (2-class latent-class logit, Swissmetro)",
        "data": os.path.relpath(data_path, ROOT),
        "n_obs": int(len(df)),
        "n_persons": int(df.ID.nunique()),
        "time_import_s": t_import,
        "published": {
            "source": "biogeme documentation, example b07discrete_mixture",
            "log_likelihood": -5208.498,
            "estimates": {
                "ASC_CAR": [0.125, 0.0505],
                "ASC_TRAIN": [-0.398, 0.0608],
                "B_COST": [-1.26, 0.0612],
                "B_TIME": [-2.80, 0.176],
                "PROB_CLASS1": [0.251, 0.0219],
            },
        },
    }
    for panel in [False] if args.skip_panel else [False, True]:
        key = "panel" if panel else "cross_sectional"
        default = fit(panel, None, "default")
        others = []
        for j, s in enumerate(random_starts):
            try:
                r = fit(panel, s, f"rand{j}", patch_bhhh=not args.no_patch_bhhh)
                others.append(
                    {k: r[k] for k in ("start", "log_likelihood", "converged", "wall_s")}
                    | {"estimates": {n: r["estimates"][n]["value"] for n in names}}
                )
            except Exception as err:  # a start can fail numerically; record it
                others.append({"start": s, "error": f"{type(err).__name__}: {err}"})
        lls = [o["log_likelihood"] for o in others if "log_likelihood" in o]
        result[key] = {
            "default_start": default,
            "random_starts": others,
            "best_log_likelihood_over_starts": max([default["log_likelihood"], *lls]),
            "distinct_optima_ll": sorted({round(x, 3) for x in [default["log_likelihood"], *lls]}, reverse=True),
        }
        print(
            f"{key}: LL {default['log_likelihood']:.4f}; over starts {result[key]['distinct_optima_ll']}",
            file=sys.stderr,
        )
    result["total_wall_s"] = time.perf_counter() - T_START
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
