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

import json
import sys
import tempfile
import time
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np

import smm_ppl as smm
from smm_ppl.diagnostics import relabel_draws

sys.path.insert(0, str(harness.PEER_SCRIPTS))
import install  # noqa: E402


def summarise(weights: np.ndarray, atoms: np.ndarray, seconds: float, reference: smm.SMMParams) -> dict:
    """ESS, R-hat and posterior moments of relabelled draws ``(chain, draw, K[, L])``."""
    import arviz_base
    import arviz_stats

    w, a, _ = relabel_draws(weights, atoms, reference.atoms)
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
    kw = dict(init=em_res, num_chains=chains, num_warmup=warmup, num_samples=draws, seed=seed, progress_bar=False)
    idata, seconds = harness.timed(smm.sample_nuts, X, n, K, **kw)
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
        str(harness.PEER_SCRIPTS / "run_biogeme_bayes.py"),
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
    res = harness.run_script(cmd, out, timeout)
    if res["status"] != "ok":
        return res
    z = np.load(out)
    return {
        **res,
        "weights": z["weights"],
        "atoms": z["atoms"],
        "seconds": float(z["time_s"]),
        "strategy": str(z["strategy"]),
    }


def measure(args) -> dict:
    t_start = time.perf_counter()
    X = smm.simulate_features(args.seed, args.p, args.L)
    base = smm.simulate_params(args.seed + 1, args.K, args.L, atoms_scale=1.0, min_separation=1.5)
    w = np.linspace(1.0, 1.5, args.K)
    truth = smm.SMMParams(w / w.sum(), base.atoms)
    n = smm.simulate_counts(args.seed + 2, X, truth, args.N)
    em_res = smm.fit_em(X, n, args.K, init="auto", seed=args.seed)
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
        return {
            "name": "bayes",
            "smoke": True,
            "tools": tools,
            "self_agreement": agreement(a, b),
            "wall_s": time.perf_counter() - t_start,
        }

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
    return {
        "name": "bayes",
        "smoke": False,
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


def report(d) -> tuple[str, list[str]]:
    des = d["design"]
    txt = [
        f"Same data (`p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`, `N = {des['N']:,}`), same model "
        f"and priors, {des['chains']} chains × ({des['warmup']} warm-up + {des['draws']} draws), both started at "
        "the EM estimate; draws relabelled to it. Time = the sampling call, compilation included.",
        "",
    ]
    rows = []
    for name in ("smm", "biogeme"):
        t = d["tools"].get(name)
        if not t:
            continue
        if t.get("status") != "ok":
            rows.append([name, t.get("status"), "–", "–", "–", "–", (t.get("reason") or "")[:160].replace("|", "/")])
            continue
        rows.append(
            [
                name,
                harness.fmt(t["time_s"], "{:.1f}"),
                harness.fmt(t["ess_bulk_min"], "{:.0f}"),
                harness.fmt(t["ess_bulk_median"], "{:.0f}"),
                harness.fmt(t["ess_bulk_min_per_s"], "{:.2f}"),
                harness.fmt(t["rhat_max"], "{:.3f}"),
                "",
            ]
        )
    txt += [harness.table("tool | time s | bulk ESS min | bulk ESS median | min ESS / s | R-hat max | note", rows)]
    head = []
    ag = d["tools"].get("agreement")
    if ag:
        txt += [
            "",
            f"Posterior means agree within {ag['max_mean_difference_in_sd']:.2f} posterior sd; "
            f"posterior sd ratio biogeme/smm in [{ag['sd_ratio_min']:.2f}, {ag['sd_ratio_max']:.2f}].",
        ]
        s, b = d["tools"]["smm"], d["tools"]["biogeme"]
        head.append(
            f"NUTS, same model and draws: smm {s['time_s']:.0f} s (min ESS/s {s['ess_bulk_min_per_s']:.1f}) vs "
            f"biogeme {b['time_s']:.0f} s (min ESS/s {b['ess_bulk_min_per_s']:.2f}); "
            f"posterior means within {ag['max_mean_difference_in_sd']:.2f} sd (`python benchmarks/bench_bayes.py`)"
        )
    elif "biogeme" in d["tools"]:
        head.append(f"biogeme Bayesian: {d['tools']['biogeme'].get('status')} (`python benchmarks/bench_bayes.py`)")
    txt += ["", f"biogeme install: {d['peer'].get('status')} {d['peer'].get('version', '')}"]
    return "\n".join(txt), head


BENCHMARK = harness.Benchmark(
    name="bayes",
    measure=measure,
    report=report,
    options=(
        harness.option("--p", type=int, default=100),
        harness.option("--L", type=int, default=3),
        harness.option("--K", type=int, default=2),
        harness.option("--N", type=int, default=5_000),
        harness.option("--chains", type=int, default=4),
        harness.option("--warmup", type=int, default=500),
        harness.option("--draws", type=int, default=500),
        harness.option("--seed", type=int, default=0),
        harness.option("--timeout", type=float, default=1200.0),
        harness.option("--no-install", action="store_true"),
    ),
    # No install: a tiny smm NUTS and the summary code. p, L, K as in bench_accuracy --smoke: in one process
    # (the smoke test) the EM compilation is shared.
    smoke={"p": 200, "N": 2_000, "chains": 2, "warmup": 20, "draws": 20},
    timeout=2400,
    required=True,
    smoke_fields=True,
    heading="### Against biogeme's Bayesian estimation",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
