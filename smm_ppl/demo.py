"""The ``smm demo`` workflow: simulate, warm start, EM, NUTS, compare, plot, save.

Kept out of the CLI so that it can be called (and tested) from Python:
:func:`run_demo` returns the comparison table and the paths it wrote.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from .core.params import SMMParams

__all__ = ["DemoResult", "DEMO_TRUTH", "demo_problem", "run_demo"]

#: The demo's true parameters: two unequal classes in three features.
DEMO_TRUTH = SMMParams(
    weights=np.array([0.35, 0.65]),
    atoms=np.array([[1.2, -0.6, 0.5], [-0.7, 0.8, -0.4]]),
)
_DEMO_COV = np.array([[1.0, 0.3, 0.1], [0.3, 1.2, -0.2], [0.1, -0.2, 0.8]])
_DEMO_MEAN = np.array([0.5, -1.0, 0.25])


class DemoResult(NamedTuple):
    table: Any  # pandas.DataFrame, one row per scalar parameter
    em: Any  # EMResult
    warm_start: SMMParams
    idata: Any  # xarray.DataTree
    files: dict  # name -> Path
    max_rhat: float
    all_inside_hdi: bool


def demo_problem(seed: int = 0, n_items: int = 1000, n_obs: int = 20_000):
    """The demo's simulated data: ``(features, counts, truth)``."""
    from .data.simulate import simulate_counts, simulate_features

    features = simulate_features(seed, n_items, 3, cov=_DEMO_COV, mean=_DEMO_MEAN)
    counts = simulate_counts(seed + 1, features, DEMO_TRUTH, n_obs)
    return features, counts, DEMO_TRUTH


def _say(log: Callable[[str], None] | None, msg: str) -> None:
    if log is not None:
        log(msg)


def run_demo(
    out_dir: Any = "smm-demo-output",
    *,
    seed: int = 0,
    n_items: int = 1000,
    n_obs: int = 20_000,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    progress_bar: bool | None = None,
    log: Callable[[str], None] | None = print,
) -> DemoResult:
    """Run the demo end to end and write its outputs to ``out_dir``.

    Simulates a ``K = 2`` problem, computes the method-of-moments warm start,
    fits EM from ``init="auto"`` (with standard errors), runs NUTS with every
    chain started at the EM estimate, and compares truth, warm start, EM and
    posterior in one table. Writes ``summary.csv``, ``em_fit.json``,
    ``posterior.nc`` and the plots ``trace.png``, ``posterior.png``,
    ``forest.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import diagnostics
    from .core.params import align_params
    from .core.validation import check_positive_int
    from .em import fit_em
    from .inference import sample_nuts
    from .io import save_params
    from .warmstart import mom_init

    seed = check_positive_int(seed, "seed", minimum=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    K = DEMO_TRUTH.n_components

    features, counts, truth = demo_problem(seed, n_items, n_obs)
    _say(
        log,
        f"[1/4] simulated p={features.shape[0]} items, L={features.shape[1]} features, "
        f"K={K} classes, N={int(counts.sum())} draws",
    )

    t0 = time.perf_counter()
    warm = align_params(mom_init(features, counts, K, seed=seed), truth)
    _say(log, f"[2/4] method-of-moments warm start ({time.perf_counter() - t0:.2f} s)")

    t0 = time.perf_counter()
    em = fit_em(features, counts, K, init="auto", seed=seed)
    _say(
        log,
        f"[3/4] EM from init='auto' (winning start: {em.init}; {em.n_iter} iterations, "
        f"converged={em.converged}; {time.perf_counter() - t0:.2f} s)",
    )

    t0 = time.perf_counter()
    _say(
        log,
        f"[4/4] NUTS: {num_chains} chains x ({num_warmup} warm-up + {num_samples} draws), "
        "every chain started at the EM estimate ...",
    )
    idata = sample_nuts(
        features,
        counts,
        K,
        init=em,
        num_chains=num_chains,
        num_warmup=num_warmup,
        num_samples=num_samples,
        seed=seed,
        progress_bar=progress_bar,
    )
    _say(log, f"      done in {time.perf_counter() - t0:.1f} s")

    table = diagnostics.compare_point_to_posterior(idata, em)
    # compare_point_to_posterior aligned EM to the posterior labelling, which is EM's own
    # (the draws were relabelled to it); line truth and warm start up the same way.
    ref = SMMParams(em.params.weights, em.params.atoms)
    truth_aligned = align_params(truth, ref)
    warm_aligned = align_params(warm, ref)
    table.insert(0, "truth", np.concatenate([truth_aligned.weights, truth_aligned.atoms.ravel()]))
    table.insert(1, "warm_start", np.concatenate([warm_aligned.weights, warm_aligned.atoms.ravel()]))
    rhat = diagnostics.rhat(idata)
    ess = diagnostics.ess(idata)
    table["r_hat"] = np.concatenate([np.ravel(rhat["weights"]), np.ravel(rhat["atoms"])])
    table["ess_bulk"] = np.concatenate([np.ravel(ess["weights"]), np.ravel(ess["atoms"])])

    files = {
        "summary": out / "summary.csv",
        "em_fit": out / "em_fit.json",
        "posterior": out / "posterior.nc",
        "trace": out / "trace.png",
        "posterior_plot": out / "posterior.png",
        "forest": out / "forest.png",
    }
    table.to_csv(files["summary"])
    save_params(
        files["em_fit"],
        em.params,
        em.standard_errors,
        log_likelihood=em.log_likelihood,
        n_iter=em.n_iter,
        converged=em.converged,
        init=em.init,
        truth=truth.to_dict(),
    )
    diagnostics.save_inference_data(idata, files["posterior"])
    for key, plot in (
        ("trace", lambda: diagnostics.plot_trace(idata)),
        ("posterior_plot", lambda: diagnostics.plot_posterior_vs_point(idata, em)),
        ("forest", lambda: diagnostics.plot_forest_comparison({"NUTS": idata}, em)),
    ):
        fig = figure_of(plot())
        fig.savefig(files[key], dpi=110, bbox_inches="tight")
        plt.close(fig)

    max_rhat = float(np.nanmax(table["r_hat"]))
    inside = bool(table["inside_hdi"].all())
    return DemoResult(table, em, warm_aligned, idata, files, max_rhat, inside)


def figure_of(obj: Any):
    """The matplotlib Figure behind whatever a plot returned (a PlotCollection of arviz_plots, axes, figure)."""
    import matplotlib.figure

    if isinstance(obj, matplotlib.figure.Figure):
        return obj
    if hasattr(obj, "viz"):  # arviz_plots' PlotCollection keeps its figure at the root of .viz
        return obj.viz["figure"].item()
    arr = np.ravel(np.asarray(obj, dtype=object))
    first = arr[0]
    return first if isinstance(first, matplotlib.figure.Figure) else first.get_figure()
