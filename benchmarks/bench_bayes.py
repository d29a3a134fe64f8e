"""Item 3 (peer part): smm-ppl's warm-started NUTS against biogeme's Bayesian estimation.

The warm-start-vs-default-initialisation comparison of NUTS is
``benchmarks/bench_nuts.py`` (the Bayesian inference module's own benchmark);
``run_all.py`` runs it next to this script.

Here: the same latent-class model and the same data, the same number of
chains, warm-up and draws, in

* smm-ppl: ``smm.sample_nuts(X, n, K, init=<EM result>)`` (NumPyro NUTS);
* biogeme (PyPI, installed into ``benchmarks/_peers/venv-biogeme``):
  ``BIOGEME.bayesian_estimation`` (PyMC model, sampled by NUTS; with its default
  strategy ``"automatic"`` PyMC hands the model to NumPyro's NUTS through
  ``pymc.sampling.jax``), started at the same EM estimate (biogeme adds a 0.01
  jitter per chain). The model is written with biogeme expressions (see
  ``benchmarks/peers/run_biogeme_bayes.py``); priors as in smm-ppl
  (``alpha ~ Dirichlet(1, 1)`` through a Logistic(0, 1) prior on the class logit,
  exact for ``K = 2``; ``theta ~ Normal(0, 3^2)``).

Both posteriors are relabelled to the EM estimate (Hungarian, per draw), then
compared on wall time (the call, compilation included), bulk ESS (min and
median over the scalar parameters), ESS per second, max R-hat, and agreement
of the posterior means (max ``|mean_smm - mean_biogeme| / sd_smm``).

Usage::

    python benchmarks/bench_bayes.py             # p = 100, L = 3, K = 2, N = 5,000; 4 chains x (500 + 500)
    python benchmarks/bench_bayes.py --smoke     # no install: smm NUTS tiny + the summary code
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import smm_ppl as smm  # noqa: E402

import _common  # noqa: E402

sys.path.insert(0, str(_common.PEER_SCRIPTS))
import install  # noqa: E402

NAME = "bayes"


def relabel(weights, atoms, reference_atoms):
    try:
        from smm_ppl.diagnostics import relabel_draws

        w, a, _ = relabel_draws(weights, atoms, reference_atoms)
        return w, a
    except ImportError:  # pragma: no cover - the diagnostics module is the other engineer's
        w = np.asarray(weights).copy()
        a = np.asarray(atoms).copy()
        for idx in np.ndindex(w.shape[:-1]):
            perm = smm.match_components(a[idx], reference_atoms)
            w[idx], a[idx] = w[idx][perm], a[idx][perm]
        return w, a


def summarise(weights: np.ndarray, atoms: np.ndarray, seconds: float, reference: smm.SMMParams) -> dict:
    """ESS, R-hat and posterior moments of relabelled draws ``(chain, draw, K[, L])``."""
    import arviz_base
    import arviz_stats

    w, a = relabel(weights, atoms, reference.atoms)
    K, L = a.shape[-2:]
    # The last weight is implied by the others: leave it out of the ESS/R-hat table.
    scal = {f"w{k}": w[..., k] for k in range(K - 1)}
    scal.update({f"a{k}_{l}": a[..., k, l] for k in range(K) for l in range(L)})
    ds = arviz_base.convert_to_dataset({k: v for k, v in scal.items()})
    ess = arviz_stats.ess(ds, method="bulk")
    ess_tail = arviz_stats.ess(ds, method="tail", prob=0.95)  # the 5 % and 95 % quantiles, as smm.ess
    rhat = arviz_stats.rhat(ds)
    ess_v = np.array([float(ess[k]) for k in scal])
    tail_v = np.array([float(ess_tail[k]) for k in scal])
    rhat_v = np.array([float(rhat[k]) for k in scal])
    return {
        "time_s": seconds,
        "chains": int(w.shape[0]),
        "draws": int(w.shape[1]),
        "ess_bulk_min": float(ess_v.min()),
        "ess_bulk_median": float(np.median(ess_v)),
        "ess_tail_min": float(tail_v.min()),
        "ess_bulk_min_per_s": float(ess_v.min() / seconds),
        "ess_bulk_median_per_s": float(np.median(ess_v) / seconds),
        "rhat_max": float(rhat_v.max()),
        "mean": {k: float(np.mean(v)) for k, v in scal.items()},
        "sd": {k: float(np.std(v)) for k, v in scal.items()},
    }


def agreement(a: dict, b: dict) -> dict:
    keys = list(a["mean"])
    z = [abs(a["mean"][k] - b["mean"][k]) / max(a["sd"][k], 1e-12) for k in keys]
    sd_ratio = [b["sd"][k] / max(a["sd"][k], 1e-12) for k in keys]
    return {
        "max_mean_difference_in_sd": float(max(z)),
        "sd_ratio_min": float(min(sd_ratio)),
        "sd_ratio_max": float(max(sd_ratio)),
    }


def run_smm(X, n, K, em_res, chains, warmup, draws, seed) -> dict:
    t0 = time.perf_counter()
    idata = (
        smm.sample_nuts(
            X, n, K, init=em_res, num_chains=chains, num_warmup=warmup, num_samples=draws, seed=seed, progress_bar=False
        )
        if hasattr(smm, "sample_nuts")
        else __import__("smm_ppl.inference", fromlist=["sample_nuts"]).sample_nuts(
            X, n, K, init=em_res, num_chains=chains, num_warmup=warmup, num_samples=draws, seed=seed, progress_bar=False
        )
    )
    seconds = time.perf_counter() - t0
    post = idata.posterior
    return {
        "weights": np.asarray(post["weights"].values),
        "atoms": np.asarray(post["atoms"].values),
        "seconds": seconds,
    }


def run_biogeme(python: str, X, n, K, em_params: smm.SMMParams, chains, warmup, draws, timeout, workdir) -> dict:
    data = workdir / "bayes_data.npz"
    init = workdir / "bayes_init.json"
    out = workdir / "biogeme_draws.npz"
    out.unlink(missing_ok=True)
    np.savez(data, features=X, counts=n)
    init.write_text(json.dumps(em_params.to_numpy().to_dict()))
    cmd = [
        python,
        str(_common.PEER_SCRIPTS / "run_biogeme_bayes.py"),
        str(data),
        str(out),
        str(K),
        "--draws",
        str(draws),
        "--warmup",
        str(warmup),
        "--chains",
        str(chains),
        "--init-json",
        str(init),
    ]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"no result within {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if r.returncode != 0 or not out.exists():
        lines = (r.stderr or r.stdout or "").strip().splitlines()
        return {"status": "failed", "reason": " | ".join(lines[-4:])[-600:], "wall_s": wall}
    z = np.load(out)
    return {
        "status": "ok",
        "weights": z["weights"],
        "atoms": z["atoms"],
        "seconds": float(z["time_s"]),
        "wall_s": wall,
        "strategy": str(z["strategy"]),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=100)
    ap.add_argument("--L", type=int, default=3)
    ap.add_argument("--K", type=int, default=2)
    ap.add_argument("--N", type=int, default=5_000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="no install; tiny smm NUTS; checks the summary code")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        # p, L, K as in bench_accuracy --smoke: in one process (the smoke test) the EM compilation is shared.
        args.p, args.N, args.chains, args.warmup, args.draws = 200, 2_000, 2, 20, 20
    t_start = time.perf_counter()
    out_path = _common.result_path(NAME, args.smoke, args.out)

    X = smm.simulate_features(args.seed, args.p, args.L)
    base = smm.simulate_params(args.seed + 1, args.K, args.L, atoms_scale=1.0, min_separation=1.5)
    w = np.linspace(1.0, 1.5, args.K)
    truth = smm.SMMParams(w / w.sum(), base.atoms)
    n = smm.simulate_counts(args.seed + 2, X, truth, args.N)
    fit_em = smm.fit_em
    em_res = fit_em(X, n, args.K, init="auto", seed=args.seed)
    reference = em_res.params

    print(
        f"Bayes: p={args.p} L={args.L} K={args.K} N={args.N:,}; {args.chains} chains x "
        f"({args.warmup} warm-up + {args.draws} draws), both started at the EM estimate"
    )
    s = run_smm(X, n, args.K, em_res, args.chains, args.warmup, args.draws, args.seed)
    smm_sum = summarise(s["weights"], s["atoms"], s["seconds"], reference)
    tools = {"smm": {"status": "ok", **smm_sum}}

    if args.smoke:
        # The comparison code on two halves of smm's own draws (no biogeme in smoke mode).
        half = args.draws // 2
        a = summarise(s["weights"][:, :half], s["atoms"][:, :half], s["seconds"], reference)
        b = summarise(s["weights"][:, half:], s["atoms"][:, half:], s["seconds"], reference)
        result = {
            "name": NAME,
            "smoke": True,
            "environment": _common.environment(),
            "tools": tools,
            "self_agreement": agreement(a, b),
            "wall_s": time.perf_counter() - t_start,
        }
        _print(tools)
        _common.save_json(result, NAME, out_path)
        return result

    peer = (
        install.ensure_biogeme()
        if not args.no_install
        else (
            {
                "peer": "biogeme",
                "status": "already installed",
                "python": str(install.PEERS_DIR / "venv-biogeme" / "bin" / "python"),
            }
            if (install.PEERS_DIR / "venv-biogeme" / "bin" / "python").exists()
            else {"peer": "biogeme", "status": "not installable", "reason": "--no-install and the venv is missing"}
        )
    )
    print(f"peer biogeme: {peer['status']} {peer.get('version', '')} {peer.get('reason', '')}")
    if peer["status"] != "not installable":
        with tempfile.TemporaryDirectory(prefix="smm_bayes_") as tmp:
            b = run_biogeme(
                peer["python"], X, n, args.K, reference, args.chains, args.warmup, args.draws, args.timeout, Path(tmp)
            )
        if b["status"] == "ok":
            bs = summarise(b["weights"], b["atoms"], b["seconds"], reference)
            tools["biogeme"] = {"status": "ok", "wall_s": b["wall_s"], "strategy": b["strategy"], **bs}
            tools["agreement"] = agreement(smm_sum, bs)
        else:
            tools["biogeme"] = b
    else:
        tools["biogeme"] = {"status": "not installable", "reason": peer.get("reason")}
    _print(tools)
    result = {
        "name": NAME,
        "smoke": False,
        "environment": _common.environment(),
        "design": {
            "p": args.p,
            "L": args.L,
            "K": args.K,
            "N": args.N,
            "chains": args.chains,
            "warmup": args.warmup,
            "draws": args.draws,
            "truth": truth.to_dict(),
            "em_log_likelihood": em_res.log_likelihood,
        },
        "peer": peer,
        "tools": tools,
        "wall_s": time.perf_counter() - t_start,
    }
    _common.save_json(result, NAME, out_path)
    return result


def _print(tools):
    print(f"  {'tool':<8} {'time s':>8} {'ESS min':>8} {'ESS med':>8} {'ESS/s min':>9} {'R-hat max':>9}")
    for name in ("smm", "biogeme"):
        t = tools.get(name)
        if not t:
            continue
        if t.get("status") != "ok":
            print(f"  {name:<8} {t['status']}: {t.get('reason', '')[:200]}")
            continue
        print(
            f"  {name:<8} {t['time_s']:8.1f} {t['ess_bulk_min']:8.0f} {t['ess_bulk_median']:8.0f} "
            f"{t['ess_bulk_min_per_s']:9.2f} {t['rhat_max']:9.3f}"
        )
    if "agreement" in tools:
        print(
            f"  posterior means agree within {tools['agreement']['max_mean_difference_in_sd']:.2f} posterior sd; "
            f"sd ratio biogeme/smm in [{tools['agreement']['sd_ratio_min']:.2f}, {tools['agreement']['sd_ratio_max']:.2f}]"
        )


if __name__ == "__main__":
    main()
