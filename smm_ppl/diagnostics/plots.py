"""Plots of posteriors and point estimates (``arviz_plots``; each returns its ``PlotCollection``).

The backend is matplotlib unless ``backend=`` says otherwise; ``pc.show()`` or
``pc.savefig(path)`` display or write the figure, ``pc.viz`` holds its artists.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ..core.params import SMMParams, match_components
from ._arviz import arviz_plots, check_idata, check_prob, check_smm_idata, model_variables
from .comparison import point_and_se
from .idata import datatree_from_groups, posterior_mean_params, raw_posterior

__all__ = ["plot_posterior_vs_point", "plot_forest_comparison", "plot_trace"]


def plot_posterior_vs_point(idata: Any, point: Any, *, hdi_prob: float = 0.94, align: bool = True, **kwargs):
    """``arviz_plots.plot_dist`` of every scalar (with its HDI) and the point estimate as a reference line.

    Keyword arguments go to ``plot_dist``.  Returns the ``PlotCollection``: one
    panel per scalar.
    """
    import xarray as xr

    azp = arviz_plots()
    check_smm_idata(idata)
    post = idata.posterior
    L = post.sizes["feature"]
    point, _ = point_and_se(point, None, L)
    if align:
        perm = match_components(point.atoms, posterior_mean_params(idata).atoms)
        point = SMMParams(point.weights[perm], point.atoms[perm])
    hdi_prob = check_prob(hdi_prob, "hdi_prob")
    references = xr.Dataset(
        {"weights": (("component",), point.weights), "atoms": (("component", "feature"), point.atoms)},
        coords={"component": post["component"].values, "feature": post["feature"].values},
    )
    kwargs.setdefault("backend", "matplotlib")
    kwargs.setdefault("figure_kwargs", {"layout": "constrained"})  # titles clear of the row above
    # The posterior mean where it is: arviz-plots rounds it (to rcParams["stats.round_to"]) before drawing it.
    stats = dict(kwargs.pop("stats", None) or {})
    stats["point_estimate"] = {"round_to": "none", **stats.get("point_estimate", {})}
    pc = azp.plot_dist(idata, var_names=["weights", "atoms"], ci_kind="hdi", ci_prob=hdi_prob, stats=stats, **kwargs)
    azp.add_lines(pc, references)
    return pc


def _point_as_idata(point: SMMParams, se: SMMParams | None, n_draws: int = 2000, seed: int = 0):
    """A pseudo-posterior for a point estimate: its normal approximation, or the point repeated."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    K, L = point.atoms.shape
    if se is None:
        w = np.broadcast_to(point.weights, (1, n_draws, K)).copy()
        a = np.broadcast_to(point.atoms, (1, n_draws, K, L)).copy()
    else:
        w = point.weights + se.weights * rng.standard_normal((1, n_draws, K))
        a = point.atoms + se.atoms * rng.standard_normal((1, n_draws, K, L))
    ds = xr.Dataset(
        {"weights": (("chain", "draw", "component"), w), "atoms": (("chain", "draw", "component", "feature"), a)},
        coords={"chain": [0], "draw": np.arange(n_draws), "component": np.arange(K), "feature": np.arange(L)},
    )
    return datatree_from_groups({"posterior": ds})


def plot_forest_comparison(
    models: Mapping[str, Any],
    point: Any = None,
    standard_errors: Any = None,
    *,
    point_name: str = "EM",
    hdi_prob: float = 0.94,
    **kwargs,
):
    """Forest plot of several posteriors (e.g. NUTS, SVI) and the EM estimate.

    The EM estimate enters as its normal approximation (estimate +- standard
    error) when standard errors are known, else as a point; it is matched to
    the labelling of the first model.  ``arviz_plots.plot_forest`` of the
    models (a ``model`` dimension; keyword arguments passed on), 50 % and
    ``hdi_prob`` HDIs.  Returns the ``PlotCollection``.
    """
    azp = arviz_plots()
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {name: DataTree}.")
    datas, names = [], []
    for name, value in models.items():
        datas.append(check_smm_idata(value, f"models[{name!r}]"))
        names.append(str(name))
    if point is not None:
        L = datas[0].posterior.sizes["feature"]
        p, se = point_and_se(point, standard_errors, L)
        perm = match_components(p.atoms, posterior_mean_params(datas[0]).atoms)
        p = SMMParams(p.weights[perm], p.atoms[perm])
        se = None if se is None else SMMParams(se.weights[perm], se.atoms[perm])
        datas.append(_point_as_idata(p, se))
        names.append(point_name)
    kwargs.setdefault("combined", True)
    kwargs.setdefault("backend", "matplotlib")
    # The models are stacked along a "model" dimension, their draws padded with NaN to the longest.
    stats = {key: {"skipna": True, **value} for key, value in dict(kwargs.pop("stats", None) or {}).items()}
    for key in ("trunk", "twig", "point_estimate"):
        stats.setdefault(key, {"skipna": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # xarray's notice on concat's defaults, inside plot_forest
        pc = azp.plot_forest(
            dict(zip(names, datas)),
            var_names=["weights", "atoms"],
            ci_kind="hdi",
            ci_probs=(0.5, check_prob(hdi_prob, "hdi_prob")),
            stats=stats,
            **kwargs,
        )
    pc.add_legend("model")
    return pc


def plot_trace(idata: Any, var_names: Any = None, *, raw: bool = False, **kwargs):
    """``arviz_plots.plot_trace_dist`` of the parameters (``weights`` and ``atoms``, or ``z``; ``raw``: before
    relabelling): per variable, the marginal densities of its scalars and their traces, one line per
    chain (``compact``: the scalars of a variable share a panel).  Returns the ``PlotCollection``.
    """
    azp = arviz_plots()
    data = check_idata(idata)
    names = var_names or model_variables(data)
    if raw:
        data = datatree_from_groups({"posterior": raw_posterior(data)})
    kwargs.setdefault("compact", True)
    kwargs.setdefault("backend", "matplotlib")
    if "plot_collection" not in kwargs:
        posterior = data.posterior.to_dataset()[[names] if isinstance(names, str) else list(names)]
        kwargs["plot_collection"] = _trace_dist_layout(azp, posterior, kwargs["compact"], kwargs["backend"])
    return azp.plot_trace_dist(data, var_names=names, **kwargs)


def _trace_dist_layout(azp, posterior: Any, compact: bool, backend: str):
    """``plot_trace_dist``'s own layout (per variable, or per scalar unless ``compact``: its densities,
    then its traces), laid out by ``PlotCollection.wrap``.

    arviz-plots 0.8 lays it out with ``PlotCollection.grid``, which fails on xarray >= 2026.4 whenever
    each variable has a row of its own (arviz-devs/arviz#2576; fixed in arviz-plots 1.1, Python >= 3.12).
    """
    aux = [d for d in posterior.dims if d not in ("chain", "draw")]
    if compact:
        facets = ["__variable__"]
        aes = {"color": ["__variable__", *aux], "overlay": ["__variable__", "chain", *aux], "linestyle": ["chain"]}
        n_rows = len(posterior.data_vars)
    else:
        facets = ["__variable__", *aux]
        aes = {"color": ["chain"], "overlay": ["chain"]}
        n_rows = sum(int(np.prod([v.sizes[d] for d in v.dims if d in aux])) for v in posterior.data_vars.values())
    return azp.PlotCollection.wrap(
        posterior.expand_dims(column=2).assign_coords(column=["dist", "trace"]),
        cols=[*facets, "column"],
        col_wrap=2,
        aes=aes,
        backend=backend,
        figure_kwargs={"figsize": (10.0, 2.2 * n_rows + 0.4), "layout": "constrained"},
    )
