"""Simulation-based calibration of NUTS, SVI and the Laplace posterior (smm.sbc_mixture, smm.sbc_latent_class).

Parts (``--parts``, all by default):

``nuts``
    The acceptance runs: NUTS (2 chains x (400 warmup + 400) draws from
    ``init="auto"``) on the softmax mixture at p = 40 items, L = 2, N = 400,
    K = 2 and K = 3 with ``ordered=True``, K = 2 relabelled to the EM
    estimate; the latent-class logit at K = 2 (100 persons x 4 situations x
    3 alternatives, L = 2, prior sd 1).  400 replications each.  Passes when
    every scalar's chi-square test of uniform ranks (20 bins) has a
    Bonferroni-corrected p-value >= 0.001.
``broken``
    The same NUTS on the softmax mixture (K = 2, ordered) with the
    likelihood deliberately mis-scaled (the counts doubled in the fit): it
    must fail.
``approx``
    SVI (guides ``normal`` and ``mvn``) and the Laplace posterior at K = 2,
    relabelled to the MAP fit, at N = 100, 1,000 and 10,000 (``delta``, a
    point mass, at N = 1,000 only), and SVI on the latent-class logit:
    which scalars are over- or under-dispersed and by how much (the sd
    ratio implied by the 90 % intervals' coverage), and SVI with a longer
    optimisation and more particles at the smallest N.

Every configuration saves its ranks' ECDF-difference plot
(``results/sbc_<name>.png``, ``arviz_plots.plot_ecdf_pit``) and its rows in
``results/sbc.json`` (rewritten after every configuration, so a run cut
short keeps what it finished).

    python benchmarks/bench_sbc.py                      # everything (about an hour on 2 cores)
    python benchmarks/bench_sbc.py --parts nuts --sims 400
    python benchmarks/bench_sbc.py --smoke              # seconds: a few replications, scratch output
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import numpy as np
import pandas as pd

import smm_ppl as smm

PARTS = ("nuts", "broken", "approx")


def choice_design(seed: int = 0, persons: int = 100, situations: int = 4, alternatives: int = 3):
    """A panel design of choice situations (features N(0, 1), two of them); its choices are placeholders."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(persons):
        for t in range(situations):
            x = rng.normal(size=(alternatives, 2))
            y = rng.integers(alternatives)
            rows += [(u, u * situations + t, j, int(j == y), *x[j]) for j in range(alternatives)]
    frame = pd.DataFrame(rows, columns=["person", "situation", "alternative", "chosen", "x1", "x2"])
    return smm.choice_data(
        frame, situation="situation", alternative="alternative", choice="chosen", features=["x1", "x2"], person="person"
    )


def doubled_counts_nuts(features, counts, n_components, *, prior, seed, **kwargs):
    """A deliberately broken sampler: NUTS on the counts doubled (the likelihood squared)."""
    return smm.sample_nuts(features, 2 * np.asarray(counts), n_components, prior=prior, seed=seed, **kwargs)


def _configs(parts, sims: int, smoke: bool) -> list[dict]:
    nuts = {"num_chains": 2, "num_warmup": 400, "num_samples": 400}
    if smoke:
        nuts = {"num_chains": 2, "num_warmup": 60, "num_samples": 60}
    out = []
    if "nuts" in parts:
        out += [
            dict(name="nuts_k2_ordered", model="smm", K=2, N=400, method="nuts", labels="ordered", fit=nuts),
            dict(name="nuts_k3_ordered", model="smm", K=3, N=400, method="nuts", labels="ordered", fit=nuts),
            dict(name="nuts_k2_relabel", model="smm", K=2, N=400, method="nuts", labels="relabel", fit=nuts),
            dict(name="lc_nuts_k2", model="lc", K=2, method="nuts", fit=nuts),
        ]
    if "broken" in parts:
        out += [
            dict(
                name="broken_nuts_k2_doubled_counts",
                model="smm",
                K=2,
                N=400,
                method=doubled_counts_nuts,
                labels="ordered",
                fit=dict(nuts, ordered=True, init="auto", progress_bar=False),
                sims=min(sims, 200),
            )
        ]
    if "approx" in parts:
        Ns = (100, 400) if smoke else (100, 1000, 10000)
        for N in Ns:
            for method in ("laplace", "svi-normal", "svi-mvn"):
                out.append(
                    dict(
                        name=f"{method}_n{N}",
                        model="smm",
                        K=2,
                        N=N,
                        method=method,
                        labels="relabel",
                        fit={},
                        sims=min(sims, 200),
                    )
                )
        # A point mass: its ranks are 0 or M whatever N (shown once).
        out.append(
            dict(
                name=f"svi-delta_n{Ns[1]}",
                model="smm",
                K=2,
                N=Ns[1],
                method="svi-delta",
                labels="relabel",
                fit={},
                sims=min(sims, 100),
            )
        )
        for method in ("svi-normal", "svi-mvn"):
            out.append(dict(name=f"lc_{method}_k2", model="lc", K=2, method=method, fit={}, sims=min(sims, 100)))
        longer = {"num_steps": 500 if smoke else 10000, "num_particles": 4}
        out.append(
            dict(
                name="svi-mvn_long_n100",
                model="smm",
                K=2,
                N=100,
                method="svi-mvn",
                labels="relabel",
                fit=longer,
                sims=min(sims, 200),
            )
        )
    return out


def run_config(cfg: dict, sims: int, num_ranks: int, seed: int, p: int, L: int):
    """One SBC run: the tree and its statistics table."""
    n = cfg.get("sims", sims)
    t0 = time.perf_counter()

    def progress(i, seconds):
        if (i + 1) % max(1, n // 10) == 0:
            print(f"    {cfg['name']}: {i + 1}/{n} replications, {time.perf_counter() - t0:.0f} s", flush=True)

    if cfg["model"] == "lc":
        tree = smm.sbc_latent_class(
            choice_design(seed),
            cfg["K"],
            method=cfg["method"],
            prior_scale=1.0,
            num_simulations=n,
            num_ranks=num_ranks,
            seed=seed,
            fit_kwargs=cfg["fit"],
            progress=progress,
        )
    else:
        X = smm.simulate_features(seed, p, L)
        tree = smm.sbc_mixture(
            X,
            cfg["N"],
            cfg["K"],
            method=cfg["method"],
            labels=cfg["labels"],
            num_simulations=n,
            num_ranks=num_ranks,
            seed=seed,
            fit_kwargs=cfg["fit"],
            progress=progress,
        )
    return tree, time.perf_counter() - t0


def summarise(cfg: dict, tree, wall: float, bins: int) -> dict:
    table = smm.sbc_statistics(tree, bins=bins, alpha=0.001)
    stats = tree["sbc_stats"].to_dataset()
    method = cfg["method"] if isinstance(cfg["method"], str) else cfg["method"].__name__
    return {
        "name": cfg["name"],
        "model": cfg["model"],
        "method": method,
        "labels": cfg.get("labels", "relabel"),
        "K": cfg["K"],
        "N": cfg.get("N"),
        "fit": {k: v for k, v in cfg["fit"].items() if isinstance(v, (int, float, str, bool))},
        "n_simulations": table.attrs["n_simulations"],
        "failures": int(tree.attrs.get("failures", 0)),
        "max_rank": table.attrs["max_rank"],
        "bins": bins,
        "all_uniform": table.attrs["all_uniform"],
        "min_p_bonferroni": float(table["p_bonferroni"].min()),
        "wall_s": wall,
        "seconds_per_replication": float(np.mean(stats["seconds"].values)),
        "max_rhat_median": float(np.nanmedian(stats["rhat_max"].values))
        if np.isfinite(stats["rhat_max"].values).any()
        else None,
        "divergences_total": float(np.nansum(stats["divergences"].values)),
        "relabelled_share_mean": float(np.nanmean(stats["relabelled_share"].values))
        if np.isfinite(stats["relabelled_share"].values).any()
        else None,
        "scalars": table.reset_index(names="scalar").to_dict(orient="records"),
    }


def save_plot(tree, name: str, folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pc = smm.plot_sbc(tree)
    path = folder / f"sbc_{name}.png"
    folder.mkdir(parents=True, exist_ok=True)
    pc.savefig(path, dpi=80)
    plt.close("all")
    return path.name


def save_by_n_figure(rows: list[dict], folder: Path) -> str | None:
    """The approximations' calibration against N: the sd ratio (median and range over scalars) and coverage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    approx = [
        r
        for r in rows
        if r["method"] in ("laplace", "svi-normal", "svi-mvn") and r.get("N") and "_long" not in r["name"]
    ]
    if not approx:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for method in ("laplace", "svi-normal", "svi-mvn"):
        rs = sorted((r for r in approx if r["method"] == method), key=lambda r: r["N"])
        if not rs:
            continue
        N = [r["N"] for r in rs]
        sd = [[s["sd_ratio"] for s in r["scalars"]] for r in rs]
        cov = [[s["coverage_90"] for s in r["scalars"]] for r in rs]
        line = axes[0].plot(N, [np.median(v) for v in sd], marker="o", label=method)[0]
        axes[0].fill_between(N, [min(v) for v in sd], [max(v) for v in sd], color=line.get_color(), alpha=0.2)
        axes[1].plot(N, [np.median(v) for v in cov], marker="o", color=line.get_color(), label=method)
        axes[1].fill_between(N, [min(v) for v in cov], [max(v) for v in cov], color=line.get_color(), alpha=0.2)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[1].axhline(0.9, color="k", lw=0.8)
    for ax, label in zip(axes, ("sd ratio (fit / true posterior)", "coverage of the 90 % intervals")):
        ax.set_xscale("log")
        ax.set_xlabel("N (choices)")
        ax.set_ylabel(label)
    axes[0].legend()
    fig.suptitle("SBC of the approximate posteriors, K = 2: median and range over the 6 scalars")
    fig.tight_layout()
    return harness.save_figure(fig, folder, "sbc_by_n.png")


def measure(args) -> dict | None:
    sims = args.sims or (4 if args.smoke else 400)
    num_ranks, bins = (19, 5) if args.smoke else (99, 20)
    path = args.out
    figures = path.parent
    previous = (None if args.smoke else harness.load_json(path)) or {}
    rows = {r["name"]: r for r in previous.get("rows", [])}
    result = None
    warnings.simplefilter("ignore")
    configs = [c for c in _configs(args.parts, sims, args.smoke) if not args.only or c["name"] in args.only]
    if args.smoke:
        few = ("nuts_k2_ordered", "broken_nuts_k2_doubled_counts", "laplace_n100", "svi-normal_n100")
        configs = [dict(c, sims=min(c.get("sims", sims), sims)) for c in configs if args.only or c["name"] in few]
    for cfg in configs:
        print(f"=== {cfg['name']}", flush=True)
        target = cfg.get("sims", sims)
        store = harness.PEERS_DIR / ("sbc_smoke" if args.smoke else "sbc_trees") / f"{cfg['name']}.nc"
        if args.smoke and store.exists():
            store.unlink()  # a smoke run starts afresh
        tree, wall = _load_tree(store, target, args.chunk)
        # Chunks of replications, each with its own seed, saved as they finish: a run cut short keeps its
        # replications and a rerun continues from them.
        for c in range(_done(tree) // args.chunk, -(-target // args.chunk)):
            n = min(args.chunk, target - c * args.chunk)
            part, seconds = run_config(dict(cfg, sims=n), n, num_ranks, args.seed + 1000 * c, p=40, L=2)
            tree = part if tree is None else _concat(tree, part)
            wall += seconds
            tree.attrs["wall_s"] = wall
            store.parent.mkdir(parents=True, exist_ok=True)
            tree.to_netcdf(store, engine="h5netcdf")
            result = _save_row(
                cfg, tree, wall, bins, figures, path, rows, args, num_ranks, complete=_done(tree) >= target
            )
            rows = {r["name"]: r for r in result["rows"]}
    return result or previous or None


def _done(tree) -> int:
    return 0 if tree is None else int(tree["prior_sbc"].sizes["draw"])


def _load_tree(store: Path, target: int, chunk: int):
    import xarray as xr

    if not store.exists():
        return None, 0.0
    tree = xr.open_datatree(store, engine="h5netcdf").load()
    return tree, float(tree.attrs.get("wall_s", 0.0))


def _concat(a, b):
    """Two SBC trees of the same configuration as one (replications appended along ``draw``)."""
    import xarray as xr

    out = {}
    for g in ("prior_sbc", "sbc_stats"):
        da, db = a[g].to_dataset(), b[g].to_dataset()
        out[f"/{g}"] = xr.concat([da, db.assign_coords(draw=db["draw"] + da.sizes["draw"])], dim="draw")
    attrs = dict(a.attrs)
    attrs["failures"] = int(a.attrs.get("failures", 0)) + int(b.attrs.get("failures", 0))
    attrs["failure_messages"] = "\n".join(
        m for m in (a.attrs.get("failure_messages"), b.attrs.get("failure_messages")) if m
    )
    out["/"] = xr.Dataset(attrs=attrs)
    return xr.DataTree.from_dict(out)


def _save_row(cfg, tree, wall, bins, figures, path, rows, args, num_ranks, *, complete: bool):
    row = summarise(cfg, tree, wall, bins)
    row["complete"] = complete
    row["target_simulations"] = cfg.get("sims", args.sims)
    row["plot"] = save_plot(tree, cfg["name"], figures)
    worst = min(row["scalars"], key=lambda r: r["p_bonferroni"])
    print(
        f"  {row['n_simulations']} replications so far, {wall:.0f} s ({row['seconds_per_replication']:.2f} s each), "
        f"failures {row['failures']}: {'every scalar uniform' if row['all_uniform'] else 'NOT uniform'} "
        f"(worst {worst['scalar']}: p_bonf {worst['p_bonferroni']:.2g}, coverage_90 {worst['coverage_90']:.2f}, "
        f"sd ratio {worst['sd_ratio']:.2f})",
        flush=True,
    )
    if not args.smoke:
        # Another part may run beside this one (in another process): keep the rows it saved meanwhile.
        rows = {**rows, **{r["name"]: r for r in (harness.load_json(path) or {}).get("rows", [])}}
    rows[cfg["name"]] = row
    result = {
        "smoke": bool(args.smoke),
        "design": {"p": 40, "L": 2, "seed": args.seed, "num_ranks": num_ranks, "bins": bins, "alpha": 0.001},
        "environment": harness.environment(),
        "rows": list(rows.values()),
        "plot_by_n": save_by_n_figure(list(rows.values()), figures),
    }
    harness.save_json(result, path)  # after every chunk: a run cut short keeps what it finished
    return result


def report(res) -> tuple[str, list[str]]:
    """SBC of NUTS, SVI and Laplace (bench_sbc.py): per configuration, uniformity and the worst scalar."""
    rows = res.get("rows") or []
    if not rows:
        return "", []
    d = res.get("design", {})
    lines = [
        f"Prior SBC on a fixed design (softmax mixture: p = {d.get('p')} items, L = {d.get('L')}; latent-class logit: "
        "100 persons x 4 situations x 3 alternatives, prior sd 1): parameters from the model's prior, data simulated "
        f"from them, fitted with the same prior; each true scalar ranked among {d.get('num_ranks')} thinned draws. "
        f"Uniform = every scalar's chi-square test ({d.get('bins')} bins) has a Bonferroni-corrected p >= "
        f"{d.get('alpha')}. sd ratio = the fit's posterior sd over the true posterior's implied by the 90 % "
        "intervals' coverage (1: calibrated; < 1: intervals too narrow); failures = replications whose fit could "
        "not run (Laplace at a singular Hessian), excluded from the ranks. Times on the shared 2-core CPU, several "
        "configurations at once: `python benchmarks/bench_sbc.py --parts nuts` reruns the 400-replication runs "
        "(chunks of 50, resumable), `--parts broken`, `--parts approx` the others.",
        "",
        "| configuration | method | K | N | replications | failures | uniform | min p (Bonf.) | coverage 90 % "
        "(min–max) | sd ratio (min–max) | s / replication | wall s | figure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = [s["coverage_90"] for s in r["scalars"]]
        sd = [s["sd_ratio"] for s in r["scalars"]]
        lines.append(
            f"| {r['name']} | {r['method']} ({r['labels']}) | {r['K']} | {harness.fmt(r.get('N'), '{:,}')} | "
            f"{r['n_simulations']} | {r['failures']} | {'yes' if r['all_uniform'] else '**no**'} | "
            f"{r['min_p_bonferroni']:.2g} | {min(cov):.2f}–{max(cov):.2f} | {min(sd):.2f}–{max(sd):.2f} | "
            f"{r['seconds_per_replication']:.2f} | {r['wall_s']:.0f} | `results/{r.get('plot', '')}` |"
        )
    if res.get("plot_by_n"):
        lines += ["", f"![SBC of the approximations against N](results/{res['plot_by_n']})"]
    nuts = [r for r in rows if r["method"] == "nuts"]
    head = []
    if nuts:
        ok = sum(r["all_uniform"] for r in nuts)
        sizes = ", ".join(f"{r['name']}: {r['n_simulations']}" for r in nuts)
        head.append(
            f"SBC: NUTS uniform in {ok} of {len(nuts)} configurations (replications {sizes}) "
            "(`python benchmarks/bench_sbc.py`)"
        )
    return "\n".join(lines), head


BENCHMARK = harness.Benchmark(
    name="sbc",
    measure=measure,
    report=report,
    options=(
        harness.option("--parts", nargs="+", choices=PARTS, default=list(PARTS)),
        harness.option("--only", nargs="+", default=None, help="run only these configurations (by name)"),
        harness.option("--sims", type=int, default=None, help="replications per configuration (default 400)"),
        harness.option("--seed", type=int, default=0),
        harness.option("--chunk", type=int, default=50, help="replications per saved chunk"),
    ),
    timeout=14400,
    heading="## Simulation-based calibration (`python benchmarks/bench_sbc.py`)",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
