"""A panel latent-class logit against its peers: Train's Electricity data, smm vs lcl-choice and biogeme.

Model (the same in every tool): 361 respondents, 4,308 choice situations, 4
alternatives; two classes drawn once per respondent (panel); all six
coefficients (pf, cl, loc, wk, tod, seas) class-specific, no constants;
constant-only class membership.  Each tool runs 10 starts of its own kind.

Every fit runs in a fresh process, so its wall time includes the interpreter,
the imports and (for smm) JAX compilation with an empty compilation cache;
smm's compiled time (a second fit in the same process) is reported beside it.
Peers come from ``benchmarks/peers/run_electricity_peers.py`` in their own
virtual environments (``benchmarks/peers/install.py``), in the same run.

    python benchmarks/bench_choice.py [--starts 10] [--smoke]

Writes ``benchmarks/results/choice.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import _common

DATA = _common.ROOT / "tests" / "data" / "electricity.csv.gz"
VARS = ["pf", "cl", "loc", "wk", "tod", "seas"]


def fit_smm(data_path: str, starts: int) -> dict:
    """In this (fresh) process: the first fit (wall, compilation included), then the same fit compiled."""
    t0 = time.perf_counter()
    import numpy as np
    import pandas as pd

    import smm_ppl as smm

    t_import = time.perf_counter() - t0
    frame = pd.read_csv(data_path)
    data = smm.choice_data(frame, situation="chid", alternative="alt", choice="choice", features=VARS, person="id")
    t1 = time.perf_counter()
    fit = smm.fit_latent_class(data, 2, n_starts=starts, seed=0)
    t_first = time.perf_counter() - t1
    t2 = time.perf_counter()
    again = smm.fit_latent_class(data, 2, n_starts=starts, seed=0)
    t_compiled = time.perf_counter() - t2
    assert abs(again.log_likelihood - fit.log_likelihood) < 1e-9
    order = np.argsort(fit.weights)  # classes ordered by share, smallest first, as the peers' report
    return {
        "peer": "smm",
        "version": smm.__version__,
        "loglik": fit.log_likelihood,
        "converged": fit.converged,
        "starts": starts,
        "distinct_optima": int(np.unique(np.round(fit.starts["log_likelihood"].to_numpy(), 4)).size),
        "coefficients": {f"class {i + 1}": dict(zip(VARS, map(float, fit.atoms[k]))) for i, k in enumerate(order)},
        "shares": [float(fit.weights[k]) for k in order],
        "std_err": {name: float(v) for name, v in fit.params["std_err"].items()},
        "import_s": t_import,
        "fit_first_s": t_first,
        "fit_compiled_s": t_compiled,
        "wall_in_process_s": time.perf_counter() - t0,
    }


def run_smm_fresh(starts: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SMM_PPL_COMPILATION_CACHE=cache)  # an empty cache: what a new user waits for
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", "--starts", str(starts)],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"peer": "smm", "status": "failed", "reason": proc.stderr[-2000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    out["status"] = "ok"
    return out


def run_peers(starts: int, peers: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "peers.json")
        cmd = [
            sys.executable,
            str(_common.PEER_SCRIPTS / "run_electricity_peers.py"),
            "--peers",
            *peers,
            "--starts",
            str(starts),
            "--data",
            str(DATA),
            "--out",
            out,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
        if proc.returncode != 0 or not os.path.exists(out):
            return [{"peer": p, "status": "failed", "reason": (proc.stderr or proc.stdout)[-2000:]} for p in peers]
        with open(out) as fh:
            payload = json.load(fh)
    rows = []
    for peer, res in payload.get("peers", {}).items():
        if "error" in res:
            rows.append({"peer": peer, "status": "failed", "reason": res["error"]})
            continue
        row = dict(res, peer=peer, status="ok", loglik=res["log_likelihood"], wall_s=res["time_subprocess_s"])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--peers", nargs="*", default=["lcl", "biogeme"])
    ap.add_argument("--smoke", action="store_true", help="2 starts, smm only, in this process")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(fit_smm(str(DATA), args.starts)))
        return 0
    starts = 2 if args.smoke else args.starts
    if args.smoke:  # in this process: checks the code path, not the cold-start time
        t0 = time.perf_counter()
        smm_row = dict(fit_smm(str(DATA), starts), status="ok")
        smm_row["wall_s"] = time.perf_counter() - t0
    else:
        smm_row = run_smm_fresh(starts)
    rows = [smm_row] + ([] if args.smoke else run_peers(starts, args.peers))
    ref = smm_row.get("loglik")
    print(f"Electricity, 2-class panel latent-class logit, {starts} starts per tool")
    print(f"{'tool':10s} {'log-likelihood':>15s} {'gap vs smm':>11s} {'wall s':>8s} {'wall / smm':>10s}")
    for r in rows:
        if r.get("status", "ok") != "ok" or r.get("loglik") is None:
            print(f"{r['peer']:10s} {r.get('status')}: {str(r.get('reason', ''))[:200]}")
            continue
        gap = r["loglik"] - ref if ref is not None else float("nan")
        wall = r.get("wall_s")
        ratio = wall / smm_row["wall_s"] if wall and smm_row.get("wall_s") else float("nan")
        r["gap_vs_smm"] = gap
        r["wall_ratio_vs_smm"] = ratio
        print(f"{r['peer']:10s} {r['loglik']:15.3f} {gap:+11.4f} {wall:8.1f} {ratio:10.2f}")
    if smm_row.get("status") == "ok":
        print(
            f"smm: first fit {smm_row['fit_first_s']:.1f} s (compilation included), "
            f"compiled {smm_row['fit_compiled_s']:.2f} s, import {smm_row['import_s']:.1f} s"
        )
    result = {"benchmark": "choice", "data": "Train's Electricity (361 persons x 12 situations)", "starts": starts}
    result.update({"rows": rows, "environment": _common.environment()})
    out = args.out or (_common.SMOKE_RESULTS if args.smoke else _common.RESULTS) / "choice.json"
    os.makedirs(os.path.dirname(str(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(result, fh, indent=2, default=float)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
