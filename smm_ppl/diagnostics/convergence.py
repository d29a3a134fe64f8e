"""Convergence diagnostics and summaries of the model's parameters.

``weights`` and ``atoms`` for the SMM; ``z`` (named by its ``parameter``
coordinate) for the latent-class logit (:func:`smm_ppl.sample_latent_class`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._arviz import arviz_base, arviz_stats, check_idata, check_prob, model_variables
from .idata import raw_posterior

__all__ = ["rhat", "ess", "summary", "hdi"]

#: The tail ESS is that of the 5 % and 95 % quantiles (Vehtari et al. 2021, as ArviZ 0.x, Stan and R's
#: posterior compute it); ArviZ 1 takes the tails of its ``stats.ci_prob`` (89 %) unless told: ``prob``
#: of ``arviz_stats.ess(method="tail")``, and ``stats.ci_prob`` for ``arviz_stats.summary``'s ``ess_tail``.
TAIL_ESS_PROB = 0.95


def rhat(idata: Any, *, raw: bool = False) -> dict:
    """Rank-normalised split R-hat of the parameters (``raw``: before relabelling).

    Returns ``{"weights": array (K,), "atoms": array (K, L), "max": float}``
    (``{"z": array (P,), "max": float}`` for the latent-class logit).
    ``arviz_stats.rhat`` (``method="rank"``).
    """
    azs = arviz_stats()
    names = model_variables(check_idata(idata))
    post = raw_posterior(idata) if raw else _parameters(idata, names)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # A constant weight (K = 1) divides 0 by 0 inside ArviZ.
        warnings.simplefilter("ignore", RuntimeWarning)
        r = azs.rhat(post)
    out = {k: np.asarray(r[k].values) for k in names}
    # K = 1 has a constant weight, whose R-hat is NaN: ignore it.
    both = np.concatenate([out[k].ravel() for k in names])
    out["max"] = float(np.nanmax(both)) if np.isfinite(both).any() else float("nan")
    return out


def _parameters(idata: Any, names: list[str]):
    """The posterior variables ``names`` as an ``xarray.Dataset``."""
    return idata.posterior.to_dataset()[names]


def ess(idata: Any, *, method: str = "bulk", prob: Any = None) -> dict:
    """Effective sample sizes of the parameters (``arviz_stats.ess``); ``"min"`` is the smallest.

    ``method`` and ``prob`` as in ``arviz_stats.ess``, except that ``method="tail"``
    defaults to the 5 % and 95 % quantiles (``prob=0.95``), the tail ESS of
    Vehtari et al. (2021) and of ArviZ 0.x.
    """
    azs = arviz_stats()
    names = model_variables(check_idata(idata))
    if method == "tail" and prob is None:
        prob = TAIL_ESS_PROB
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant weight (K = 1), as in rhat
        e = azs.ess(_parameters(idata, names), method=method, prob=prob)
    out = {k: np.asarray(e[k].values) for k in names}
    both = np.concatenate([out[k].ravel() for k in names])
    out["min"] = float(np.nanmin(both)) if np.isfinite(both).any() else float("nan")
    return out


def summary(idata: Any, **kwargs):
    """``arviz_stats.summary`` of the parameters (keyword arguments passed on).

    The interval is the 94 % HDI, as everywhere in the package (``ci_prob=0.94``,
    ``ci_kind="hdi"``; ArviZ 1's own default is the 89 % ETI): columns ``mean``,
    ``sd``, ``hdi94_lb``, ``hdi94_ub``, ``ess_bulk``, ``ess_tail``, ``r_hat``,
    ``mcse_mean``, ``mcse_sd``.  ``ess_tail`` is that of :func:`ess` (the 5 % and
    95 % quantiles).  Numbers are rounded to three decimals (``round_to``, as in
    ArviZ 1: decimals, ``"3g"`` for significant digits, ``"none"``).
    """
    azs = arviz_stats()
    kwargs.setdefault("var_names", model_variables(check_idata(idata)))
    if kwargs.get("ci_prob") is None:
        kwargs["ci_prob"] = 0.94
    kwargs.setdefault("ci_kind", "hdi")
    fmt = kwargs.pop("fmt", "wide")
    round_to = kwargs.pop("round_to", 3)
    with (
        np.errstate(divide="ignore", invalid="ignore"),
        warnings.catch_warnings(),
        arviz_base().rc_context({"stats.ci_prob": TAIL_ESS_PROB}),  # the ess_tail column's quantiles
    ):
        warnings.simplefilter("ignore", RuntimeWarning)  # a constant weight (K = 1), as in rhat
        table = azs.summary(idata, fmt="xarray", round_to="none", **kwargs)
        if kwargs["ci_kind"] == "hdi" and kwargs.get("kind", "all") in ("all", "stats"):
            _put_hdi(table, idata, kwargs)
    if fmt == "wide":
        table = arviz_base().dataset_to_dataframe(table, sample_dims=["summary"]).T
    elif fmt == "long":
        table = table.to_dataframe().reset_index().set_index("summary")
        table.index = list(table.index)
    if round_to is not None and round_to not in ("None", "none"):
        table = table.round(round_to)
    return table


def _put_hdi(table: Any, idata: Any, kwargs: dict) -> None:
    """Write the HDI into ``arviz_stats.summary``'s interval rows (``fmt="xarray"``), in place.

    arviz-stats 0.8 computes the equal-tailed interval whatever ``ci_kind`` says, and labels it by
    ``ci_kind`` (fixed upstream after 0.8, arviz-devs/arviz-stats#416).
    """
    sample_dims = kwargs.get("sample_dims") or list(arviz_base().rcParams["data.sample_dims"])
    data = arviz_base().extract(
        idata,
        var_names=kwargs["var_names"],
        filter_vars=kwargs.get("filter_vars"),
        group=kwargs.get("group", "posterior"),
        sample_dims=sample_dims,
        combined=False,
        keep_dataset=True,
    )
    if kwargs.get("coords") is not None:
        data = data.sel(kwargs["coords"])
    percent = int(kwargs["ci_prob"] * 100)
    rows = [f"hdi{percent}_lb", f"hdi{percent}_ub"]
    interval = data.azstats.hdi(prob=kwargs["ci_prob"], dim=sample_dims, skipna=kwargs.get("skipna", False))
    for name in table.data_vars:
        bounds = interval[name].rename(ci_bound="summary").assign_coords(summary=rows)
        table[name].loc[{"summary": rows}] = bounds.transpose(*table[name].dims).values


def hdi(idata: Any, hdi_prob: float = 0.94):
    """Highest-density intervals of the parameters (``arviz_stats.hdi``).

    An ``xarray.Dataset``: every variable gains a last dimension ``ci_bound``
    (``"lower"``, ``"upper"``; ArviZ 0.x called it ``hdi``).
    """
    azs = arviz_stats()
    check_prob(hdi_prob, "hdi_prob")
    return azs.hdi(_parameters(idata, model_variables(check_idata(idata))), prob=hdi_prob)
