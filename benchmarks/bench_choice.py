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

import json
import os
import sys
import tempfile
import time

import harness

DATA = harness.ROOT / "tests" / "data" / "electricity.csv.gz"
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
    fit, again, t_first, t_compiled = harness.twice(smm.fit_latent_class, data, 2, n_starts=starts, seed=0)
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
    with tempfile.TemporaryDirectory() as cache:  # an empty cache: what a new user waits for
        try:
            out, wall = harness.in_fresh_process(fit_smm, str(DATA), starts, env={"SMM_PPL_COMPILATION_CACHE": cache})
        except harness.ProcessFailed as err:
            return {"peer": "smm", "status": "failed", "reason": err.stderr}
    return {**out, "wall_s": wall, "status": "ok"}


def run_peers(starts: int, peers: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "peers.json")
        cmd = [
            sys.executable,
            str(harness.PEER_SCRIPTS / "run_electricity_peers.py"),
            "--peers",
            *peers,
            "--starts",
            str(starts),
            "--data",
            str(DATA),
            "--out",
            out,
        ]
        run = harness.run_script(cmd, out, 7200)
        if run["status"] != "ok":
            return [{"peer": p, "status": "failed", "reason": run["reason"]} for p in peers]
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


def measure(args) -> dict:
    starts = args.starts
    if args.smoke:  # in this process: checks the code path, not the cold-start time
        row, wall = harness.timed(fit_smm, str(DATA), starts)
        smm_row = {**row, "status": "ok", "wall_s": wall}
    else:
        smm_row = run_smm_fresh(starts)
    rows = [smm_row] + ([] if args.smoke else run_peers(starts, args.peers))
    ref = smm_row.get("loglik")
    for r in rows:
        if r.get("status", "ok") != "ok" or r.get("loglik") is None:
            continue
        gap = r["loglik"] - ref if ref is not None else float("nan")
        wall = r.get("wall_s")
        ratio = wall / smm_row["wall_s"] if wall and smm_row.get("wall_s") else float("nan")
        r["gap_vs_smm"] = gap
        r["wall_ratio_vs_smm"] = ratio
    data = "Train's Electricity (361 persons x 12 situations)"
    return {"benchmark": "choice", "data": data, "starts": starts, "rows": rows}


def report(res) -> tuple[str, list[str]]:
    """The panel latent-class logit on Train's Electricity data against lcl-choice and biogeme."""
    if not res.get("rows"):
        return "", []
    smm_row = next((r for r in res["rows"] if r["peer"] == "smm"), None)
    rows, heads = [], []
    for r in res["rows"]:
        if r.get("status") != "ok" or r.get("loglik") is None:
            rows.append([r["peer"], "–", "–", "–", "–", str(r.get("reason", r.get("status")))[:120]])
            continue
        ratio = r.get("wall_ratio_vs_smm")
        note = (
            f"compiled fit {r['fit_compiled_s']:.2f} s"
            if r["peer"] == "smm"
            else f"{r.get('fits', r.get('starts', ''))} fits"
            if r.get("fits")
            else ""
        )
        rows.append(
            [
                f"{r['peer']} {r.get('version', '')}".strip(),
                f"{r['loglik']:.3f}",
                f"{r.get('gap_vs_smm', 0.0):+.4f}",
                f"{r['wall_s']:.1f}",
                f"{ratio:.2f}" if ratio is not None else "–",
                note,
            ]
        )
        if r["peer"] != "smm" and ratio is not None:
            heads.append(f"{r['peer']} {r['wall_s']:.0f} s (gap {r.get('gap_vs_smm', 0.0):+.3f})")
    table = harness.table(["tool", "log-likelihood", "gap vs smm", "wall s", "wall / smm", ""], rows)
    intro = (
        f"{res.get('data', 'Electricity')}: 2 classes drawn once per person, six class-specific coefficients, "
        f"constant membership; {res['starts']} starts per tool. Wall time = a fresh process (interpreter, imports, "
        "and for smm JAX compilation with an empty cache) in the same run (`python benchmarks/bench_choice.py`)."
    )
    head = []
    if smm_row and smm_row.get("status") == "ok":
        head = [
            f"Electricity panel latent-class logit: smm {smm_row['wall_s']:.0f} s wall, "
            f"{smm_row['fit_compiled_s']:.2f} s compiled; "
            + "; ".join(heads)
            + (" (see the section's note on these times)" if res.get("notes") else "")
        ]
    notes = "".join(f"\n\nNote: {n}" for n in res.get("notes", []))
    return intro + "\n\n" + table + notes, head


BENCHMARK = harness.Benchmark(
    name="choice",
    measure=measure,
    report=report,
    options=(
        harness.option("--starts", type=int, default=10),
        harness.option("--peers", nargs="*", default=["lcl", "biogeme"]),
    ),
    smoke={"starts": 2},  # smm only, in this process: the code path, not the cold-start time
    timeout=7200,
    heading="## Choice data: a panel latent-class logit against its peers",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
