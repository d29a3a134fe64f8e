"""Peer fits of a 2-class panel latent-class logit on Train's Electricity data (lcl-choice, biogeme).

Model: 361 respondents, 4,308 choice situations, 4 alternatives; utility of alternative j in
class k: ``b_k' x_j`` with x = (pf, cl, loc, wk, tod, seas), all 6 coefficients class-specific,
no alternative-specific constants; one class per respondent (panel); constant-only class
membership (class shares pi_1, pi_2). Log-likelihood
``sum_i log(sum_k pi_k prod_t P_k(y_it | x_it))``.

Usage (from the project's Python; each peer runs in its own venv, see ``install.py``):

    python benchmarks/peers/run_electricity_peers.py [--peers lcl biogeme] [--starts 10]
        [--data tests/data/electricity.csv.gz] [--out benchmarks/results/electricity_peers.json]

The driver starts ``<venv>/bin/python run_electricity_peers.py --worker PEER ...`` for each peer,
one after the other, and collects their JSON. Each worker reports the log-likelihood, the
estimates by class with standard errors, class shares, the number of starts, the wall time
from the worker's first line (so including imports and JAX compilation) to the end of the
fit, and the driver adds the wall time of the whole subprocess (interpreter start included).

* lcl-choice: ``lcl.fit`` with ``LCLSpec(utility=[6 variables], classes=2)`` (no membership
  variables: intercept-only membership), ``FitOptions(starts=S, seed=0)``: its own
  multi-start EM ("panel_partition" starts) followed by Newton polishing; default
  inference (covariance clustered by respondent, the only per-person sandwich it offers).
* biogeme: ``database.panel('id')``, ``PanelLikelihoodTrajectory`` of each class's logit,
  class-2 share ``1 / (1 + exp(-G))`` with one free parameter G (start 0). biogeme has no
  multi-start for estimation, so the worker runs S independent ``estimate`` calls from random
  starts (numpy seed 0: coefficients ~ Normal(0, 1), G = 0; note an all-zero start is a saddle
  where both classes stay identical) and keeps the best; all S fits are in its wall time. SEs:
  biogeme's Rao-Cramer (inverse Hessian) and robust (sandwich with per-respondent BHHH).
"""

from __future__ import annotations

import time

T_WORKER_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VARS = ["pf", "cl", "loc", "wk", "tod", "seas"]
VENVS = {"lcl": "venv-lcl", "biogeme": "venv-biogeme"}


def worker_lcl(data: str, starts: int, seed: int) -> dict:
    t0 = time.perf_counter()
    import importlib.metadata as md

    import lcl
    import numpy as np
    import polars as pl

    t_import = time.perf_counter() - t0
    df = pl.read_csv(data)
    spec = lcl.LCLSpec(
        ids=lcl.ChoiceIds(alt="alt", case="chid", panel="id", choice="choice"),
        utility=VARS,
        classes=2,
    )
    opts = lcl.Options(fit=lcl.FitOptions(seed=seed, starts=starts))
    t1 = time.perf_counter()
    res = lcl.fit(df, spec, options=opts)
    t_fit = time.perf_counter() - t1
    coefs = res.class_coefficients()
    est = {f"class_{k}": {} for k in range(2)}
    for row in coefs.iter_rows(named=True):
        est[f"class_{row['class']}"][row["variable"]] = {"value": row["coefficient"], "se_clustered": row["std_error"]}
    shares = res.class_shares()
    memb = res.membership_coefficients()
    return {
        "peer": "lcl-choice",
        "version": md.version("lcl-choice"),
        "log_likelihood": float(res.em_res.unconditional_loglik),
        "converged": bool(res.converged),
        "em_recursions": int(res.total_recursions),
        "starts": starts,
        "seed": seed,
        "estimates": est,
        "class_shares": [float(s) for s in np.asarray(res.em_res.shares)],
        "class_shares_se": [float(x) for x in shares["std_error"].to_list()],
        "membership_intercept_class_1": {
            "value": float(memb["coefficient"][0]),
            "se_clustered": float(memb["std_error"][0]),
        },
        "se_type": "lcl default InferenceOptions: sandwich clustered by respondent, G/(G-1) correction",
        "time_import_s": t_import,
        "time_fit_s": t_fit,
        "time_worker_s": time.perf_counter() - T_WORKER_START,
    }


def worker_biogeme(data: str, starts: int, seed: int) -> dict:
    import logging
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    import biogeme.biogeme as bio
    import numpy as np
    import pandas as pd
    from biogeme import models
    from biogeme.database import Database
    from biogeme.expressions import Beta, PanelLikelihoodTrajectory, Variable, exp, log
    from biogeme.parameters import Parameters
    from biogeme.results_processing import EstimateVarianceCovariance
    from biogeme.version import get_version

    t_import = time.perf_counter() - t0
    long = pd.read_csv(data)
    wide = long.pivot(index="chid", columns="alt", values=VARS)
    wide.columns = [f"{v}_{a}" for v, a in wide.columns]
    first = long.groupby("chid").first()
    wide["id"] = first["id"]
    wide["CHOICE"] = long[long.choice == 1].set_index("chid")["alt"]
    wide = wide.reset_index().sort_values(["id", "chid"]).reset_index(drop=True)
    wide = wide.astype(float)
    os.chdir(tempfile.mkdtemp(prefix="biogeme_elec_"))  # biogeme may write files in the cwd

    rng = np.random.default_rng(seed)
    fits = []
    t1 = time.perf_counter()
    for s in range(starts):
        start = {f"b_{v}_class{k}": float(rng.normal()) for k in range(2) for v in VARS}
        start["G_class1"] = 0.0
        db = Database("electricity", wide.copy())
        db.panel("id")
        b = {(v, k): Beta(f"b_{v}_class{k}", 0, None, None, 0) for k in range(2) for v in VARS}
        G = Beta("G_class1", 0, None, None, 0)
        pi1 = 1 / (1 + exp(G))
        pi2 = 1 - pi1
        probs = []
        for k in range(2):
            V = {a: sum(b[(v, k)] * Variable(f"{v}_{a}") for v in VARS) for a in range(1, 5)}
            probs.append(PanelLikelihoodTrajectory(models.logit(V, None, Variable("CHOICE"))))
        logprob = log(pi1 * probs[0] + pi2 * probs[1])
        p = Parameters()
        p.set_value(name="generate_html", value=False, section="Output")
        p.set_value(name="generate_yaml", value=False, section="Output")
        p.set_value(name="save_iterations", value=False, section="Estimation")
        the_biogeme = bio.BIOGEME(db, logprob, parameters=p)
        the_biogeme.model_name = f"electricity_lc2_start{s}"
        ts = time.perf_counter()
        try:
            # complete dict in biogeme's own free-beta order: biogeme 3.3.2 assigns the optimiser's vector
            # to the dict's keys in the dict's order (see run_biogeme_lc.py), any other order scrambles it
            # and with a panel database the registry lists the betas inside PanelLikelihoodTrajectory
            # only once the object uses the flattened database (estimate() switches itself): switch first
            the_biogeme.use_flatten_database = True
            order = the_biogeme.expressions_registry.free_betas_names
            assert sorted(order) == sorted(start), (order, sorted(start))
            ordered = {n: start[n] for n in order}
            res = the_biogeme.estimate(starting_values=ordered)
        except Exception as err:
            fits.append({"start": s, "error": f"{type(err).__name__}: {err}", "wall_s": time.perf_counter() - ts})
            continue
        names = res.beta_names
        fit = {
            "start": s,
            "log_likelihood": float(res.final_log_likelihood),
            "converged": bool(res.algorithm_has_converged),
            "iterations": str(res.raw_estimation_results.optimization_messages.get("Number of iterations")),
            "optimization_time": str(res.raw_estimation_results.optimization_messages.get("Optimization time")),
            "wall_s": time.perf_counter() - ts,
            "values": {n: float(res.get_parameter_value(n)) for n in names},
        }
        try:
            fit["se_classical"] = {
                n: float(res.get_parameter_std_err(n, EstimateVarianceCovariance.RAO_CRAMER)) for n in names
            }
            fit["se_robust"] = {
                n: float(res.get_parameter_std_err(n, EstimateVarianceCovariance.ROBUST)) for n in names
            }
        except Exception as err:
            fit["se_error"] = f"{type(err).__name__}: {err}"
        fits.append(fit)
    t_fit = time.perf_counter() - t1
    ok = [f for f in fits if "log_likelihood" in f]
    if not ok:
        return {"peer": "biogeme", "version": get_version(), "error": "no start succeeded", "fits": fits}
    best = max(ok, key=lambda f: f["log_likelihood"])
    best_ll = best["log_likelihood"]
    est = {f"class_{k}": {} for k in range(2)}
    for k in range(2):
        for v in VARS:
            n = f"b_{v}_class{k}"
            est[f"class_{k}"][v] = {
                "value": best["values"][n],
                "se_classical": best.get("se_classical", {}).get(n),
                "se_robust": best.get("se_robust", {}).get(n),
            }
    g = best["values"]["G_class1"]
    pi2 = 1.0 / (1.0 + np.exp(-g))
    return {
        "peer": "biogeme",
        "version": get_version(),
        "log_likelihood": best_ll,
        "converged": best["converged"],
        "starts": starts,
        "seed": seed,
        "starts_within_0.01_of_best": sum(abs(f["log_likelihood"] - best_ll) < 0.01 for f in ok),
        "start_log_likelihoods": [f.get("log_likelihood") for f in fits],
        "start_errors": [f["error"] for f in fits if "error" in f],
        "estimates": est,
        "class_shares": [float(1 - pi2), float(pi2)],
        "membership_G_class1": {
            "value": g,
            "se_classical": best.get("se_classical", {}).get("G_class1"),
            "se_robust": best.get("se_robust", {}).get("G_class1"),
        },
        "se_type": "Rao-Cramer (inverse Hessian) and robust sandwich (BHHH over respondents)",
        "best_start": best["start"],
        "best_start_iterations": best["iterations"],
        "time_import_s": t_import,
        "time_fit_s": t_fit,
        "time_per_start_s": [f["wall_s"] for f in fits],
        "optimization_time_per_start": [f.get("optimization_time") for f in fits],
        "iterations_per_start": [f.get("iterations") for f in fits],
        "time_worker_s": time.perf_counter() - T_WORKER_START,
    }


def driver(args) -> int:
    out = {
        "model": "2-class panel latent-class logit, Electricity (Train): 6 class-specific coefficients "
        "(pf, cl, loc, wk, tod, seas), no ASCs, constant-only class membership",
        "data": os.path.relpath(os.path.abspath(args.data), ROOT),
        "machine": f"{os.cpu_count()} CPUs (shared), timings are wall-clock",
        "peers": {},
    }
    if os.path.exists(args.out):
        with open(args.out) as f:
            old = json.load(f)
        out["peers"] = old.get("peers", {})
    for peer in args.peers:
        py = ROOT / "benchmarks" / "_peers" / VENVS[peer] / "bin" / "python"
        if not py.exists():
            out["peers"][peer] = {"error": f"{py} missing; run install.ensure_{peer}()"}
            continue
        cmd = [str(py), os.path.abspath(__file__), "--worker", peer, "--data", os.path.abspath(args.data),
               "--starts", str(args.starts), "--seed", str(args.seed)]  # fmt: skip
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            out["peers"][peer] = {"error": f"exit {r.returncode}: {r.stderr[-3000:]}", "time_subprocess_s": wall}
        else:
            res = json.loads(r.stdout.strip().splitlines()[-1])
            res["time_subprocess_s"] = wall
            out["peers"][peer] = res
        print(f"{peer}: {json.dumps(out['peers'][peer])[:400]}", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", nargs="+", default=["lcl", "biogeme"], choices=list(VENVS))
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "electricity.csv.gz"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "electricity_peers.json"))
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=7200)
    ap.add_argument("--worker", choices=list(VENVS), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is None:
        return driver(args)
    fn = worker_lcl if args.worker == "lcl" else worker_biogeme
    print(json.dumps(fn(args.data, args.starts, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
