"""Plots of posteriors and point estimates (ArviZ)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..params import SMMParams, match_components
from ._arviz import arviz, check_idata, check_prob, check_smm_idata, model_variables
from .comparison import point_and_se
from .idata import posterior_mean_params, raw_posterior

__all__ = ["plot_posterior_vs_point", "plot_forest_comparison", "plot_trace"]


def plot_posterior_vs_point(idata: Any, point: Any, *, hdi_prob: float = 0.94, align: bool = True, **kwargs):
    """``az.plot_posterior`` of every scalar with the point estimate as reference value.

    Returns the array of matplotlib axes.
    """
    az = arviz()
    check_smm_idata(idata)
    post = idata.posterior
    L = post.sizes["feature"]
    point, _ = point_and_se(point, None, L)
    if align:
        perm = match_components(point.atoms, posterior_mean_params(idata).atoms)
        point = SMMParams(point.weights[perm], point.atoms[perm])
    ref_val = {
        "weights": [{"component": k, "ref_val": float(point.weights[k])} for k in range(point.weights.shape[0])],
        "atoms": [
            {"component": k, "feature": l, "ref_val": float(point.atoms[k, l])}
            for k in range(point.atoms.shape[0])
            for l in range(L)
        ],
    }
    return az.plot_posterior(
        idata, var_names=["weights", "atoms"], ref_val=ref_val, hdi_prob=check_prob(hdi_prob, "hdi_prob"), **kwargs
    )


def _point_as_idata(point: SMMParams, se: SMMParams | None, n_draws: int = 2000, seed: int = 0):
    """A pseudo-posterior for a point estimate: its normal approximation, or the point repeated."""
    import xarray as xr

    az = arviz()
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
    return az.InferenceData(posterior=ds)


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
    the labelling of the first model.  Returns the array of matplotlib axes.
    """
    az = arviz()
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {name: InferenceData}.")
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
    return az.plot_forest(
        datas, model_names=names, var_names=["weights", "atoms"], hdi_prob=check_prob(hdi_prob, "hdi_prob"), **kwargs
    )


def plot_trace(idata: Any, var_names: Any = None, *, raw: bool = False, **kwargs):
    """``az.plot_trace`` of the parameters (``weights`` and ``atoms``, or ``z``; ``raw``: before relabelling)."""
    az = arviz()
    data = check_idata(idata)
    names = model_variables(data)
    if raw:
        data = az.InferenceData(posterior=raw_posterior(data))
    kwargs.setdefault("compact", True)
    kwargs.setdefault("backend_kwargs", {"layout": "constrained"})
    return az.plot_trace(data, var_names=var_names or names, **kwargs)
