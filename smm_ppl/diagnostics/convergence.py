"""Convergence diagnostics and summaries of the model's parameters.

``weights`` and ``atoms`` for the SMM; ``z`` (named by its ``parameter``
coordinate) for the latent-class logit (:func:`smm_ppl.sample_latent_class`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._arviz import arviz, check_idata, check_prob, model_variables
from .idata import raw_posterior

__all__ = ["rhat", "ess", "summary", "hdi"]


def rhat(idata: Any, *, raw: bool = False) -> dict:
    """Rank-normalised split R-hat of the parameters (``raw``: before relabelling).

    Returns ``{"weights": array (K,), "atoms": array (K, L), "max": float}``
    (``{"z": array (P,), "max": float}`` for the latent-class logit).
    """
    az = arviz()
    names = model_variables(check_idata(idata))
    post = raw_posterior(idata) if raw else idata.posterior[names]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # A constant weight (K = 1) divides 0 by 0 inside ArviZ.
        warnings.simplefilter("ignore", RuntimeWarning)
        r = az.rhat(post)
    out = {k: np.asarray(r[k].values) for k in names}
    # K = 1 has a constant weight, whose R-hat is NaN: ignore it.
    both = np.concatenate([out[k].ravel() for k in names])
    out["max"] = float(np.nanmax(both)) if np.isfinite(both).any() else float("nan")
    return out


def ess(idata: Any, *, method: str = "bulk") -> dict:
    """Effective sample sizes of the parameters; ``"min"`` is the smallest."""
    az = arviz()
    names = model_variables(check_idata(idata))
    e = az.ess(idata.posterior[names], method=method)
    out = {k: np.asarray(e[k].values) for k in names}
    both = np.concatenate([out[k].ravel() for k in names])
    out["min"] = float(np.nanmin(both)) if np.isfinite(both).any() else float("nan")
    return out


def summary(idata: Any, **kwargs):
    """``az.summary`` of the parameters (keyword arguments passed on)."""
    az = arviz()
    kwargs.setdefault("var_names", model_variables(check_idata(idata)))
    return az.summary(idata, **kwargs)


def hdi(idata: Any, hdi_prob: float = 0.94):
    """Highest-density intervals of the parameters (an ``xarray.Dataset`` with dim ``hdi``)."""
    az = arviz()
    check_prob(hdi_prob, "hdi_prob")
    return az.hdi(idata.posterior[model_variables(check_idata(idata))], hdi_prob=hdi_prob)
