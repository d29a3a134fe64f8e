"""Choosing K, measured: how often LOO, WAIC, BIC and AIC pick the true number of classes.

For K_true = 1 .. 5, two designs and several N, simulate data sets and fit
every candidate K = 1 .. max(3, K_true + 2) (at most 6):

- BIC and AIC from the maximum likelihood fit of ``fit_em`` (the best of its
  starts);
- count-weighted PSIS-LOO and WAIC from NUTS (2 chains x (250 + 250) draws
  from the MAP fit, ``prior=smm.Prior()``), and PSIS-LOO from the Laplace
  posterior at the same MAP fit (``smm.laplace``).

The choice of each criterion is its best K; LOO's choice is "uncertain" when
a smaller K is within two standard errors of the difference (``dse`` of
``smm.compare``) of the best: the usual advice is then to prefer the smaller
model.  ``loo_1se`` is that rule's choice (the smallest K within 2 dse).

Designs: ``gaussian`` (p = 100 items, L = 3, features N(0, I)) and ``real``
(100 tokens of the MiniLM vocabulary design shipped in
``tests/data/vocab_en_de_fr.npz``, its first 3 principal components,
standardised: clustered, heavy-tailed features).  Classes: atoms
``N(0, 1.5^2)`` at least 1.5 apart (``smm.simulate_params``), weights
Dirichlet(5) (no class below a few percent, mostly).

    python benchmarks/bench_select_k.py                 # 2 designs x N in (1000, 10000) x K_true 1..5 x 2 seeds
    python benchmarks/bench_select_k.py --seeds 10      # more data sets per cell
    python benchmarks/bench_select_k.py --smoke         # seconds
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np

import smm_ppl as smm
from smm_ppl.selection import n_free_parameters

CRITERIA = ("loo_nuts", "loo_1se", "waic", "loo_laplace", "bic", "aic")
VOCAB = harness.ROOT / "tests" / "data" / "vocab_en_de_fr.npz"


def design(kind: str, p: int, L: int, seed: int) -> np.ndarray:
    if kind == "gaussian":
        return smm.simulate_features(seed, p, L)
    x = np.load(VOCAB)["features"]
    rng = np.random.default_rng(seed)
    x = x[rng.choice(x.shape[0], size=p, replace=False)]
    x = x - x.mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    pcs = x @ vt[:L].T
    return pcs / pcs.std(0)


def _elpd(result, old_name: str) -> float:
    """The total elpd of ``smm.loo``/``smm.waic``: ``.elpd`` (ArviZ 1's ELPDData), else the ArviZ 0.x field."""
    value = getattr(result, "elpd", None)
    return float(result[old_name] if value is None else value)


def _elpd_and_compare(idatas: dict):
    """(elpd per K, dse of each K against the best, the best K) from smm.compare."""
    table = smm.compare({str(k): v for k, v in idatas.items()}, ic="loo")
    elpd_col = "elpd_loo" if "elpd_loo" in table.columns else "elpd"
    best = int(table.index[0])
    elpd = {int(k): float(table.loc[k, elpd_col]) for k in table.index}
    dse = {int(k): float(table.loc[k, "dse"]) for k in table.index}
    return elpd, dse, best


def one_data_set(kind, p, L, K_true, N, seed, ks, nuts):
    X = design(kind, p, L, seed)
    truth = smm.simulate_params(seed + 1, K_true, L, atoms_scale=1.5, min_separation=1.5, weights_concentration=5.0)
    counts = smm.simulate_counts(seed + 2, X, truth, N)
    prior = smm.Prior()
    bic, aic, waic, nuts_idata, lap_idata, rhat = {}, {}, {}, {}, {}, {}
    t0 = time.perf_counter()
    for K in ks:
        mle = smm.fit_em(X, counts, K, seed=seed)
        q = n_free_parameters(K, L)
        bic[K] = -2 * mle.log_likelihood + q * np.log(N)
        aic[K] = -2 * mle.log_likelihood + 2 * q
        mode = smm.fit_em(X, counts, K, seed=seed, prior=prior)
        try:
            lap_idata[K] = smm.laplace(mode, num_draws=1000, seed=seed)
        except ValueError:  # a singular Hessian: no Gaussian approximation (an empty class)
            pass
        idata = smm.sample_nuts(X, counts, K, init=mode, prior=prior, seed=seed, progress_bar=False, **nuts)
        nuts_idata[K] = idata
        waic[K] = _elpd(smm.waic(idata), "elpd_waic")
        rhat[K] = float(smm.rhat(idata)["max"])
    elpd, dse, best_loo = _elpd_and_compare(nuts_idata)
    one_se = min(k for k in ks if elpd[best_loo] - elpd[k] <= 2 * dse[k]) if len(ks) > 1 else ks[0]
    # Only the K whose Laplace posterior exists compete (an empty class has none): one left is the choice.
    lap_best = _elpd_and_compare(lap_idata)[2] if len(lap_idata) > 1 else next(iter(lap_idata), None)
    choice = {
        "loo_nuts": best_loo,
        "loo_1se": one_se,
        "waic": max(waic, key=waic.get),
        "loo_laplace": lap_best,
        "bic": min(bic, key=bic.get),
        "aic": min(aic, key=aic.get),
    }
    uncertain = any(elpd[best_loo] - elpd[k] <= 2 * dse[k] for k in ks if k < best_loo)
    return {
        "design": kind,
        "N": N,
        "K_true": K_true,
        "seed": seed,
        "choice": choice,
        "loo_uncertain": bool(uncertain),
        "elpd_loo": elpd,
        "dse": dse,
        "waic": waic,
        "bic": bic,
        "aic": aic,
        "laplace_failed": [k for k in ks if k not in lap_idata],
        "rhat_max": rhat,
        "wall_s": time.perf_counter() - t0,
    }


def table(rows: list[dict]) -> list[dict]:
    """Per (design, N, K_true): the share of data sets where each criterion picked K_true, and LOO flagged."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["design"], r["N"], r["K_true"]), []).append(r)
    out = []
    for (kind, N, K), rs in sorted(cells.items()):
        row = {"design": kind, "N": N, "K_true": K, "n": len(rs)}
        for c in CRITERIA:
            row[c] = float(np.mean([r["choice"][c] == K for r in rs]))
        row["loo_uncertain"] = float(np.mean([r["loo_uncertain"] for r in rs]))
        row["loo_picks"] = [r["choice"]["loo_nuts"] for r in rs]
        out.append(row)
    return out


def save_figure(summary: list[dict], folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    designs = sorted({r["design"] for r in summary})
    Ns = sorted({r["N"] for r in summary})
    fig, axes = plt.subplots(len(designs), len(Ns), figsize=(4.2 * len(Ns), 3.2 * len(designs)), squeeze=False)
    for i, d in enumerate(designs):
        for j, N in enumerate(Ns):
            ax = axes[i, j]
            rs = sorted((r for r in summary if r["design"] == d and r["N"] == N), key=lambda r: r["K_true"])
            for c in CRITERIA:
                ax.plot([r["K_true"] for r in rs], [r[c] for r in rs], marker="o", label=c)
            ax.set_title(f"{d}, N = {N:,}")
            ax.set_ylim(-0.05, 1.05)
            ax.set_xlabel("K_true")
            ax.set_ylabel("share picking K_true")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return harness.save_figure(fig, folder, "select_k.png")


def measure(args) -> dict:
    if args.smoke:
        cfg = dict(
            p=40,
            L=2,
            Ns=[500],
            Ks=[1, 2],
            ks=[1, 2],
            seeds=1,
            nuts=dict(num_chains=2, num_warmup=40, num_samples=40),
        )
    else:
        cfg = dict(
            p=100,
            L=3,
            Ns=[1000, 10000],
            Ks=[1, 2, 3, 4, 5],
            ks=[1, 2, 3, 4, 5, 6],
            seeds=2,
            nuts=dict(num_chains=2, num_warmup=250, num_samples=250),
        )
    if args.seeds:
        cfg["seeds"] = args.seeds
    if args.n_obs:
        cfg["Ns"] = args.n_obs
    previous = (None if args.smoke else harness.load_json(args.out)) or {}
    done = {(r["design"], r["N"], r["K_true"], r["seed"]): r for r in previous.get("runs", [])}
    warnings.simplefilter("ignore")

    def result():
        runs = list(done.values())
        summary = table(runs)
        return {
            "smoke": bool(args.smoke),
            "config": {k: v for k, v in cfg.items()},
            "criteria": list(CRITERIA),
            "environment": harness.environment(),
            "summary": summary,
            "runs": runs,
            "plot": save_figure(summary, args.out.parent),
        }

    for seed in range(cfg["seeds"]):
        for kind in args.designs:
            for N in cfg["Ns"]:
                for K in cfg["Ks"]:
                    key = (kind, N, K, seed)
                    if key in done:
                        continue
                    # Candidates up to K_true + 2 (at least 1..3): enough to see over-fitting, and the
                    # samplers of K = 6 cost most of the time.
                    ks = [k for k in cfg["ks"] if k <= max(3, K + 2)]
                    r = one_data_set(
                        kind, cfg["p"], cfg["L"], K, N, 1000 * seed + 10 * K + (kind == "real"), ks, cfg["nuts"]
                    )
                    r["seed"] = seed
                    done[key] = r
                    print(
                        f"{kind:8s} N={N:>6,} K_true={K} seed={seed}: "
                        + ", ".join(f"{c} {r['choice'][c]}" for c in CRITERIA)
                        + f"{' (LOO uncertain)' if r['loo_uncertain'] else ''} [{r['wall_s']:.0f} s]",
                        flush=True,
                    )
                    harness.save_json(result(), args.out)  # after every data set: a long run keeps them
    return result()


def report(res) -> tuple[str, list[str]]:
    """How often each criterion picks K_true (bench_select_k.py)."""
    summary = res.get("summary") or []
    if not summary:
        return "", []
    crit = res.get("criteria", ["loo_nuts", "loo_1se", "waic", "loo_laplace", "bic", "aic"])
    lines = [
        "Share of simulated data sets in which each criterion picked the true K (candidates K = 1 .. max(3, K_true + 2)). "
        "loo_nuts: "
        "count-weighted PSIS-LOO from NUTS; loo_1se: the smallest K within 2 dse of LOO's best; waic: from NUTS; "
        "loo_laplace: PSIS-LOO from the Laplace posterior; bic/aic: from the maximum likelihood fit. "
        "LOO uncertain = a smaller K within 2 dse of LOO's best.",
        "",
        "| design | N | K_true | data sets | " + " | ".join(crit) + " | LOO uncertain |",
        "|---|---|---|---|" + "---|" * len(crit) + "---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['design']} | {r['N']:,} | {r['K_true']} | {r['n']} | "
            + " | ".join(f"{r[c]:.2f}" for c in crit)
            + f" | {r['loo_uncertain']:.2f} |"
        )
    if res.get("plot"):
        lines += ["", f"![K selection](results/{res['plot']})"]
    overall = {c: sum(r[c] * r["n"] for r in summary) / max(1, sum(r["n"] for r in summary)) for c in crit}
    head = [
        "choosing K (share picking K_true over all cells): "
        + ", ".join(f"{c} {overall[c]:.2f}" for c in crit)
        + " (`python benchmarks/bench_select_k.py`)"
    ]
    return "\n".join(lines), head


BENCHMARK = harness.Benchmark(
    name="select_k",
    measure=measure,
    report=report,
    options=(
        harness.option("--seeds", type=int, default=None, help="data sets per (design, N, K_true) cell (default 2)"),
        harness.option("--designs", nargs="+", default=["gaussian", "real"], choices=["gaussian", "real"]),
        harness.option("--n-obs", nargs="+", type=int, default=None),
    ),
    timeout=14400,
    heading="## Choosing K, measured (`python benchmarks/bench_select_k.py`)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
