"""Item 2: end-to-end fit against peer tools, same data, same log-likelihood target.

Peers (installed by this script into their own environments, never as project
dependencies; see ``benchmarks/peers/install.py``):

* **lcl-choice** (PyPI; JAX latent-class conditional logit, EM with Newton
  M-steps). No frequency weights for latent-class models, so the data are
  expanded to one choice situation and one panel per observation, one row per
  (observation, item): ``N * p`` rows.
* **flexmix** (R, Debian packages) with ``FLXMRcondlogit``, counts as weights:
  one choice situation per distinct chosen item, weight ``n_j``, the class
  shared within a situation (``chosen ~ 0 + x0 + ... | sid``); ``stepFlexmix``
  with its default ``nrep = 3`` random starts.

smm-ppl fits with ``fit_em(init="auto")`` (its defaults). Every peer's fitted
parameters are evaluated with smm's own ``log_likelihood`` on the same counts
(``sum_j n_j log pi_j``), next to the value the peer reports, and their error
against the truth is computed after Hungarian matching.

Designs: ``p = 50, L = 3, K = 2`` with ``N = 5,000`` and ``20,000``; then ``p``
doubles (``N = 5,000``) until a peer fails or one fit exceeds ``--scale-limit``
seconds (the fit time the tool itself measures, without its import and
data preparation): the largest ``p`` it handled.

Usage::

    python benchmarks/bench_peers.py                 # installs peers if needed, runs everything
    python benchmarks/bench_peers.py --no-scaling    # shared design only
    python benchmarks/bench_peers.py --smoke         # no installs: checks the layouts and conversions only
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np

import smm_ppl as smm

sys.path.insert(0, str(harness.PEER_SCRIPTS))
import formats  # noqa: E402
import install  # noqa: E402

L_DEFAULT, K_DEFAULT = 3, 2


def truth_params(L: int = L_DEFAULT, K: int = K_DEFAULT) -> smm.SMMParams:
    """The shared design's parameters: well separated atoms, unequal weights."""
    base = smm.simulate_params(11, K, L, atoms_scale=1.0, min_separation=1.5)
    w = np.linspace(1.0, 1.5, K)
    return smm.SMMParams(w / w.sum(), base.atoms)


def make_data(p: int, N: int, seed: int, L: int = L_DEFAULT, K: int = K_DEFAULT):
    X = smm.simulate_features(seed, p, L)
    truth = truth_params(L, K)
    n = smm.simulate_counts(seed + 1000, X, truth, N)
    return X, n, truth


def evaluate(X, n, truth, weights, atoms) -> dict:
    """smm's log-likelihood and the error against the truth of a peer's estimate."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    est = smm.SMMParams(w / w.sum(), np.asarray(atoms, dtype=np.float64))
    if est.atoms.shape != truth.atoms.shape:
        return {
            "log_likelihood": float("nan"),
            "error_atoms": float("nan"),
            "error_weights": float("nan"),
            "note": f"estimate has shape {est.atoms.shape}, truth {truth.atoms.shape}",
        }
    err = smm.parameter_error(est, truth)
    return {
        "log_likelihood": smm.log_likelihood(X, n, est),
        "error_atoms": err["atoms"],
        "error_weights": err["weights"],
    }


# --------------------------------------------------------------------------- #
# Fitters: each returns a dict with status, time_s (fit), wall_s and the estimate
# --------------------------------------------------------------------------- #


def fit_smm(X, n, K, seed=0) -> dict:
    _, res, cold, warm = harness.twice(smm.fit_em, X, n, K, init="auto", seed=seed)
    return {
        "status": "ok",
        "time_s": warm,
        "time_cold_s": cold,
        "wall_s": cold,
        "log_likelihood_reported": res.log_likelihood,
        "n_iter": res.n_iter,
        "converged": res.converged,
        "init": res.init,
        "weights": np.asarray(res.params.weights).tolist(),
        "atoms": np.asarray(res.params.atoms).tolist(),
    }


def _subprocess_peer(cmd, out_json: Path, timeout: float) -> dict:
    res = harness.run_script(cmd, out_json, timeout)
    if res["status"] != "ok":
        return res
    out = json.loads(out_json.read_text())
    return {**out, **res, "time_s": out["time_fit_s"]}


def fit_lcl(python: str, X, n, K, workdir: Path, timeout: float, seed: int = 0) -> dict:
    rows = int(n.sum()) * X.shape[0]
    data = workdir / "lcl_data.npz"
    out = workdir / "lcl_out.json"
    out.unlink(missing_ok=True)
    np.savez(data, features=X, counts=n)
    res = _subprocess_peer(
        [python, str(harness.PEER_SCRIPTS / "run_lcl.py"), str(data), str(out), str(K), "--seed", str(seed)],
        out,
        timeout,
    )
    res["n_rows"] = rows
    return res


def fit_flexmix(X, n, K, workdir: Path, timeout: float, nrep: int = 3, seed: int = 0) -> dict:
    t0 = time.perf_counter()
    long = formats.expand_per_item(X, n)
    csv = workdir / "flexmix_long.csv"
    formats.write_csv(long, csv)
    prep = time.perf_counter() - t0
    out = workdir / "flexmix_out.json"
    out.unlink(missing_ok=True)
    res = _subprocess_peer(
        ["Rscript", str(harness.PEER_SCRIPTS / "run_flexmix.R"), str(csv), str(out), str(K), str(nrep), str(seed)],
        out,
        timeout,
    )
    res["n_rows"] = int(len(long["sid"]))
    res["time_prepare_s"] = prep
    return res


# --------------------------------------------------------------------------- #
# Smoke: the layouts and the conversions, no installs
# --------------------------------------------------------------------------- #


def smoke() -> dict:
    """Both long layouts give smm's log-likelihood; the peers' parameter layouts convert back."""
    X, n, truth = make_data(20, 300, seed=5)
    ll = smm.log_likelihood(X, n, truth)
    per_obs = formats.expand_per_observation(X, n)
    per_item = formats.expand_per_item(X, n)
    ll_obs = formats.long_log_likelihood(per_obs, truth.weights, truth.atoms, "obs")
    ll_item = formats.long_log_likelihood(per_item, truth.weights, truth.atoms, "sid", "w")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "long.csv"
        formats.write_csv(per_item, csv)
        header = csv.read_text().splitlines()[0].split(",")
        back = np.genfromtxt(csv, delimiter=",", skip_header=1)
    roundtrip = float(
        np.max(np.abs(back[:, 3 : 3 + X.shape[1]] - np.column_stack([per_item[f"x{l}"] for l in range(X.shape[1])])))
    )
    # lcl reports betas as (L, K) and flexmix parameters(m) as an (L, K) matrix: atoms = its transpose.
    peer_matrix = np.asarray(truth.atoms).T
    conv = evaluate(X, n, truth, truth.weights[::-1], peer_matrix.T[::-1])  # a relabelled copy of the truth
    checks = {
        "log_likelihood_smm": ll,
        "log_likelihood_per_observation_layout": ll_obs,
        "log_likelihood_per_item_layout": ll_item,
        "rows_per_observation_layout": int(len(per_obs["obs"])),
        "rows_per_item_layout": int(len(per_item["sid"])),
        "expected_rows_per_observation": int(n.sum()) * X.shape[0],
        "expected_rows_per_item": int((n > 0).sum()) * X.shape[0],
        "csv_header": header,
        "csv_roundtrip_max_abs_error": roundtrip,
        "relabelled_truth_log_likelihood": conv["log_likelihood"],
        "relabelled_truth_error_atoms": conv["error_atoms"],
    }
    ok = (
        abs(ll_obs - ll) <= 1e-9 * abs(ll)
        and abs(ll_item - ll) <= 1e-9 * abs(ll)
        and checks["rows_per_observation_layout"] == checks["expected_rows_per_observation"]
        and checks["rows_per_item_layout"] == checks["expected_rows_per_item"]
        and roundtrip == 0.0
        and abs(conv["log_likelihood"] - ll) <= 1e-9 * abs(ll)
        and conv["error_atoms"] < 1e-12
    )
    checks["ok"] = bool(ok)
    return checks


# --------------------------------------------------------------------------- #


def _row(tool, p, N, res, ev, smm_ll) -> dict:
    row = {"tool": tool, "p": p, "N": N, **{k: v for k, v in res.items() if k not in ("weights", "atoms")}}
    if res.get("status") == "ok":
        row.update(ev)
        row["log_likelihood_gap_to_smm"] = ev["log_likelihood"] - smm_ll
    return row


def measure(args) -> dict:
    t_start = time.perf_counter()
    if args.smoke:
        return {"name": "peers", "smoke": True, "checks": smoke(), "wall_s": time.perf_counter() - t_start}
    if args.redo_smm_sweep:
        return _redo_smm_sweep(args, t_start)

    # ---- peers: install or report
    peers = {}
    if "lcl" in args.peers:
        peers["lcl"] = install.ensure_lcl() if not args.no_install else _installed_only("lcl")
    if "flexmix" in args.peers:
        peers["flexmix"] = install.ensure_flexmix() if not args.no_install else _installed_only("flexmix")
    for name, info in peers.items():
        print(f"peer {name}: {info['status']} {info.get('version', '')} {info.get('reason', '')}")
    available = {k for k, v in peers.items() if v["status"] != "not installable"}

    workdir = Path(tempfile.mkdtemp(prefix="smm_peers_"))
    rows = []
    K, L = K_DEFAULT, L_DEFAULT

    def run_tool(tool, X, n, timeout):
        if tool == "smm":
            return fit_smm(X, n, K)
        if tool == "lcl":
            return fit_lcl(peers["lcl"]["python"], X, n, K, workdir, timeout)
        return fit_flexmix(X, n, K, workdir, timeout)

    # ---- shared design
    shared = {}
    for N in args.N:
        X, n, truth = make_data(args.p, N, seed=0)
        ref = fit_smm(X, n, K)
        smm_ll = evaluate(X, n, truth, ref["weights"], ref["atoms"])["log_likelihood"]
        truth_ll = smm.log_likelihood(X, n, truth)
        for tool in ["smm", *[t for t in args.peers if t in available]]:
            res = ref if tool == "smm" else run_tool(tool, X, n, args.timeout)
            ev = evaluate(X, n, truth, res["weights"], res["atoms"]) if res.get("status") == "ok" else {}
            row = _row(tool, args.p, N, res, ev, smm_ll)
            row["log_likelihood_truth"] = truth_ll
            rows.append(row)
            shared[(tool, N)] = row
            _print_row(row)
        for tool in args.peers:
            if tool not in available:
                rows.append(
                    {
                        "tool": tool,
                        "p": args.p,
                        "N": N,
                        "status": "not installable",
                        "reason": peers[tool].get("reason"),
                    }
                )

    # ---- largest p each tool handles
    sweep = []
    if not args.no_scaling:
        alive = {"smm", *[t for t in args.peers if t in available]}
        t_sweep = time.perf_counter()
        p = args.p
        while alive:
            X, n, truth = make_data(p, args.scale_N, seed=1)
            smm_ll = None
            for tool in sorted(alive, key=lambda t: t != "smm"):
                if tool == "smm" and p > args.smm_max_p:
                    alive.discard(tool)
                    continue
                if tool == "flexmix" and int((n > 0).sum()) * p > 40_000_000:
                    sweep.append(
                        {
                            "tool": tool,
                            "p": p,
                            "N": args.scale_N,
                            "status": "not attempted",
                            "reason": "long layout over 40 million rows",
                        }
                    )
                    alive.discard(tool)
                    continue
                if tool != "smm" and time.perf_counter() - t_sweep > args.scale_budget:  # smm: seconds per fit
                    sweep.append(
                        {
                            "tool": tool,
                            "p": p,
                            "N": args.scale_N,
                            "status": "budget",
                            "reason": f"sweep budget of {args.scale_budget:.0f} s spent",
                        }
                    )
                    alive.discard(tool)
                    continue
                res = run_tool(tool, X, n, args.scale_limit + 120.0)
                ev = evaluate(X, n, truth, res["weights"], res["atoms"]) if res.get("status") == "ok" else {}
                if tool == "smm" and res.get("status") == "ok":
                    smm_ll = ev["log_likelihood"]
                row = _row(tool, p, args.scale_N, res, ev, smm_ll if smm_ll is not None else np.nan)
                sweep.append(row)
                _print_row(row)
                if res.get("status") != "ok" or res.get("time_s", 0) > args.scale_limit:
                    alive.discard(tool)
            if p >= args.smm_max_p:
                alive.discard("smm")
            p = min(2 * p, args.smm_max_p) if p < args.smm_max_p else 2 * p

    largest = {}
    for tool in ["smm", *args.peers]:
        ok = [
            r["p"]
            for r in sweep
            if r["tool"] == tool and r.get("status") == "ok" and r.get("time_s", 0) <= args.scale_limit
        ]
        largest[tool] = max(ok) if ok else None
    result = {
        "name": "peers",
        "smoke": False,
        "design": {"p": args.p, "L": L, "K": K, "N": args.N, "truth": truth_params().to_dict()},
        "peers": peers,
        "shared": rows,
        "sweep": sweep,
        "sweep_settings": {
            "N": args.scale_N,
            "limit_s": args.scale_limit,
            "budget_s": args.scale_budget,
            "smm_max_p": args.smm_max_p,
        },
        "largest_p": largest,
        "wall_s": time.perf_counter() - t_start,
    }
    return result


def _sweep_p(start: int, cap: int):
    p = start
    while p < cap:
        yield p
        p *= 2
    yield cap


def _redo_smm_sweep(args, t_start: float) -> dict:
    result = json.loads(args.out.read_text())
    sweep = [r for r in result.get("sweep", []) if r["tool"] != "smm"]
    for p in _sweep_p(args.p, args.smm_max_p):
        X, n, truth = make_data(p, args.scale_N, seed=1)
        res = fit_smm(X, n, K_DEFAULT)
        ev = evaluate(X, n, truth, res["weights"], res["atoms"])
        row = _row("smm", p, args.scale_N, res, ev, ev["log_likelihood"])
        sweep.append(row)
        _print_row(row)
        if res["time_s"] > args.scale_limit:
            break
    # peers' rows at the same p get their gap to smm again
    smm_ll = {r["p"]: r["log_likelihood"] for r in sweep if r["tool"] == "smm" and r.get("status") == "ok"}
    for r in sweep:
        if r["tool"] != "smm" and r.get("status") == "ok" and r["p"] in smm_ll:
            r["log_likelihood_gap_to_smm"] = r["log_likelihood"] - smm_ll[r["p"]]
    order = {"smm": 0, "flexmix": 1, "lcl": 2}
    sweep.sort(key=lambda r: (r["p"], order.get(r["tool"], 9)))
    result["sweep"] = sweep
    ok = [r["p"] for r in sweep if r["tool"] == "smm" and r.get("status") == "ok" and r["time_s"] <= args.scale_limit]
    result["largest_p"]["smm"] = max(ok) if ok else None
    result["sweep_settings"]["smm_max_p"] = args.smm_max_p
    result["wall_s_smm_sweep_redo"] = time.perf_counter() - t_start
    return result


def _installed_only(tool):
    if tool == "flexmix":
        r = install.r_check()
        if r is not None and r.returncode == 0:
            return {"peer": "flexmix", "status": "already installed", "version": r.stdout.split()[0]}
        return {"peer": "flexmix", "status": "not installable", "reason": "--no-install and flexmix is missing"}
    py = install.PEERS_DIR / "venv-lcl" / "bin" / "python"
    if py.exists():
        return {"peer": "lcl-choice", "status": "already installed", "python": str(py)}
    return {"peer": "lcl-choice", "status": "not installable", "reason": "--no-install and the venv is missing"}


def _print_row(r):
    keys = ("time_s", "wall_s", "log_likelihood_gap_to_smm", "error_atoms") if r.get("status") == "ok" else ("reason",)
    harness.progress(f"{r['tool']}, p = {r['p']:,}, N = {r['N']:,}: {r.get('status')}", r, *keys)


def report(d) -> tuple[str, list[str]]:
    txt = []
    inst = [
        [name, v.get("status"), v.get("version", "–"), (v.get("reason") or "").replace("|", "/")[:200]]
        for name, v in d["peers"].items()
    ]
    txt += [
        "Peer installation (by the script, into `benchmarks/_peers/`, never into the project):",
        "",
        harness.table("peer | status | version | reason", inst),
        "",
    ]
    des = d["design"]
    txt += [
        f"**Shared design** `p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`. "
        "Every tool's estimate is evaluated with `smm.log_likelihood` on the same counts "
        "(`sum_j n_j log pi_j`); gap = that minus smm's. Fit time is measured by each tool around its "
        "fit call (smm: second call, compiled; its first call including JIT compilation in brackets); "
        "wall = the whole subprocess (import, data layout, fit).",
        "",
    ]
    rows = []
    for r in d["shared"]:
        if r.get("status") != "ok":
            rows.append([r["tool"], f"{r['N']:,}", "–", "–", "–", "–", "–", "–", r.get("status")])
            continue
        t = harness.fmt(r["time_s"], "{:.2f}")
        if r["tool"] == "smm":
            t += f" ({harness.fmt(r.get('time_cold_s'), '{:.1f}')})"
        rows.append(
            [
                r["tool"],
                f"{r['N']:,}",
                f"{r.get('n_rows', '–'):,}" if isinstance(r.get("n_rows"), int) else "–",
                t,
                harness.fmt(r.get("wall_s"), "{:.1f}"),
                harness.fmt(r["log_likelihood"], "{:.3f}"),
                harness.fmt(r.get("log_likelihood_gap_to_smm"), "{:+.4f}"),
                harness.fmt(r["error_atoms"], "{:.4f}"),
                "ok",
            ]
        )
    txt += [
        harness.table("tool | N | rows fed | fit s | wall s | log-lik (smm eval) | gap | atom error | status", rows),
        "",
    ]
    if d.get("sweep"):
        s = d["sweep_settings"]
        txt += [
            f"**Largest p** (N = {s['N']:,}; p doubles until a fit takes over {s['limit_s']:.0f} s or fails; "
            f"smm capped at p = {s['smm_max_p']:,}):",
            "",
        ]
        rows = []
        for r in d["sweep"]:
            if r.get("status") == "ok":
                over = r["time_s"] > s["limit_s"]
                rows.append(
                    [
                        r["tool"],
                        f"{r['p']:,}",
                        harness.fmt(r["time_s"], "{:.2f}"),
                        harness.fmt(r.get("wall_s"), "{:.1f}"),
                        harness.fmt(r.get("log_likelihood_gap_to_smm"), "{:+.3f}"),
                        harness.fmt(r.get("error_atoms"), "{:.3f}"),
                        f"ok, over the {s['limit_s']:.0f} s limit" if over else "ok",
                    ]
                )
            else:
                rows.append(
                    [
                        r["tool"],
                        f"{r['p']:,}",
                        "–",
                        harness.fmt(r.get("wall_s"), "{:.1f}"),
                        "–",
                        "–",
                        f"{r.get('status')}: {(r.get('reason') or '')[:80]}".replace("|", "/"),
                    ]
                )
        txt += [harness.table("tool | p | fit s | wall s | gap | atom error | status", rows), ""]
        txt += [
            "Largest p within the limit: "
            + ", ".join(f"{k}: {v:,}" if v else f"{k}: none" for k, v in d["largest_p"].items())
        ]
    head = []
    by = {(r["tool"], r["N"]): r for r in d["shared"]}
    for N in d["design"]["N"]:
        sm = by.get(("smm", N))
        parts = []
        for tool in ("lcl", "flexmix"):
            r = by.get((tool, N))
            if r and r.get("status") == "ok" and sm:
                parts.append(f"{tool} {r['time_s']:.1f} s (gap {r['log_likelihood_gap_to_smm']:+.3f})")
            elif r:
                parts.append(f"{tool} {r.get('status')}")
        if sm:
            cold = f" (first call, with JIT compilation, {sm['time_cold_s']:.1f} s)" if sm["time_cold_s"] > 1 else ""
            head.append(
                f"p = {d['design']['p']}, N = {N:,}: smm {sm['time_s']:.2f} s{cold} vs "
                + ", ".join(parts)
                + " (`python benchmarks/bench_peers.py`)"
            )
    if d.get("sweep") and d.get("largest_p"):
        head.append(
            "Largest p handled within the limit: "
            + ", ".join(f"{k} {v:,}" if v else f"{k} none" for k, v in d["largest_p"].items())
        )
    return "\n".join(txt), head


BENCHMARK = harness.Benchmark(
    name="peers",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, default=50),
        harness.option("--N", type=int, nargs="+", default=[5_000, 20_000]),
        harness.option("--peers", nargs="+", default=["lcl", "flexmix"], choices=["lcl", "flexmix"]),
        harness.option("--timeout", type=float, default=900.0, help="per peer fit on the shared design (s)"),
        harness.option("--no-scaling", action="store_true"),
        harness.option("--scale-N", type=int, default=5_000),
        harness.option(
            "--scale-limit", type=float, default=120.0, help="a fit slower than this ends a peer's sweep (s)"
        ),
        harness.option("--scale-budget", type=float, default=600.0, help="total seconds for the p sweep"),
        harness.option("--smm-max-p", type=int, default=1_000_000),
        harness.option("--no-install", action="store_true", help="use peers only if already installed"),
        harness.option(
            "--redo-smm-sweep",
            action="store_true",
            help="only rerun smm's part of the p sweep and update the saved results in place",
        ),
    ),
    timeout=3600,
    required=True,
    smoke_fields=True,
    heading="## 2. End-to-end fit against peer tools",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
