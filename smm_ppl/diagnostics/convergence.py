"""Convergence diagnostics and summaries of ``weights`` and ``atoms``."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._arviz import arviz, check_idata, check_prob
from .idata import raw_posterior

__all__ = ["rhat", "ess", "summary", "hdi"]


def rhat(idata: Any, *, raw: bool = False) -> dict:
    """Rank-normalised split R-hat of ``weights`` and ``atoms`` (``raw``: before relabelling).

    Returns ``{"weights": array (K,), "atoms": array (K, L), "max": float}``.
    """
    az = arviz()
    post = raw_posterior(idata) if raw else check_idata(idata).posterior[["weights", "atoms"]]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # A constant weight (K = 1) divides 0 by 0 inside ArviZ.
        warnings.simplefilter("ignore", RuntimeWarning)
        r = az.rhat(post)
    out = {k: np.asarray(r[k].values) for k in ("weights", "atoms")}
    # K = 1 has a constant weight, whose R-hat is NaN: ignore it.
    both = np.concatenate([out["weights"].ravel(), out["atoms"].ravel()])
    out["max"] = float(np.nanmax(both)) if np.isfinite(both).any() else float("nan")
    return out


def ess(idata: Any, *, method: str = "bulk") -> dict:
    """Effective sample sizes of ``weights`` and ``atoms``; ``"min"`` is the smallest."""
    az = arviz()
    post = check_idata(idata).posterior[["weights", "atoms"]]
    e = az.ess(post, method=method)
    out = {k: np.asarray(e[k].values) for k in ("weights", "atoms")}
    both = np.concatenate([out["weights"].ravel(), out["atoms"].ravel()])
    out["min"] = float(np.nanmin(both)) if np.isfinite(both).any() else float("nan")
    return out


def summary(idata: Any, **kwargs):
    """``az.summary`` of ``weights`` and ``atoms`` (keyword arguments passed on)."""
    az = arviz()
    kwargs.setdefault("var_names", ["weights", "atoms"])
    return az.summary(check_idata(idata), **kwargs)


def hdi(idata: Any, hdi_prob: float = 0.94):
    """Highest-density intervals of ``weights`` and ``atoms`` (an ``xarray.Dataset`` with dim ``hdi``)."""
    az = arviz()
    check_prob(hdi_prob, "hdi_prob")
    return az.hdi(check_idata(idata).posterior[["weights", "atoms"]], hdi_prob=hdi_prob)
