"""ArviZ 1 on first use (``arviz-base``, ``arviz-stats``, ``arviz-plots``), and the checks every diagnostic shares."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

__all__ = [
    "arviz_base",
    "arviz_stats",
    "arviz_plots",
    "has_group",
    "check_datatree",
    "check_idata",
    "check_smm_idata",
    "check_prob",
    "model_variables",
    "is_item_counts",
]


def arviz_base():
    """``arviz_base`` (conversions, ``DataTree`` conventions), imported on first use."""
    import arviz_base

    return arviz_base


def arviz_stats():
    """``arviz_stats`` (LOO, ``compare``, R-hat, ESS, summaries, HDIs), imported on first use."""
    import arviz_stats

    return arviz_stats


def arviz_plots():
    """``arviz_plots`` (with its matplotlib backend), imported on first use.

    arviz-plots 0.8 registers its styles through ``matplotlib.style.core``, a module that matplotlib
    3.11 no longer imports with ``matplotlib.style`` (it is deprecated there): importing it first,
    without its deprecation warning, keeps ``import arviz_plots`` working on every matplotlib >= 3.7.
    """
    import matplotlib.style

    if not hasattr(matplotlib.style, "core"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import matplotlib.style.core  # noqa: F401
    import arviz_plots

    return arviz_plots


#: The posterior variables that carry the model's free parameters, by kind of model.
_MODEL_VARIABLES = (("weights", "atoms"), ("z",))


def model_variables(idata: Any) -> list[str]:
    """The posterior variables of the model's parameters: ``weights`` and ``atoms`` (the SMM), or
    ``z`` (the latent-class logit's free parameters, with a ``parameter`` coordinate)."""
    for names in _MODEL_VARIABLES:
        if all(v in idata.posterior for v in names):
            return list(names)
    raise ValueError(
        "idata.posterior has neither 'weights' and 'atoms' (smm_ppl.sample_nuts, fit_svi) nor 'z' "
        "(smm_ppl.sample_latent_class, fit_latent_class_svi); was it built by smm_ppl?"
    )


def has_group(idata: Any, group: str) -> bool:
    """Whether the ``DataTree`` has the group (a child node) ``group``."""
    return group in getattr(idata, "children", {})


def is_item_counts(idata: Any) -> bool:
    """Whether the pointwise log-likelihood is per item with counts (the SMM's weighted LOO)."""
    return has_group(idata, "log_likelihood") and "counts" in idata.log_likelihood.data_vars


#: How a result of ArviZ 0.x (``arviz.InferenceData``) becomes the ``DataTree`` the package reads.
CONVERSION = "arviz_base.convert_to_datatree(idata) (or idata.to_datatree() under ArviZ 0.x)"


def check_datatree(idata: Any, name: str = "idata"):
    """An ``xarray.DataTree`` with a posterior group; an ArviZ 0.x ``InferenceData`` gets the conversion."""
    import xarray as xr

    if type(idata).__name__ == "InferenceData":
        raise TypeError(
            f"{name} is an ArviZ 0.x InferenceData; smm_ppl reads the xarray.DataTree of ArviZ 1. "
            f"Convert it with {CONVERSION}."
        )
    if not isinstance(idata, xr.DataTree) or not has_group(idata, "posterior"):
        raise TypeError(
            f"{name} must be an xarray.DataTree with a posterior group (ArviZ 1's results, as smm_ppl.sample_nuts, "
            f"fit_svi(...).idata and sample_latent_class return), got {type(idata).__name__}."
        )
    return idata


def check_idata(idata: Any, name: str = "idata"):
    """:func:`check_datatree`, with the posterior variables of an smm_ppl model."""
    model_variables(check_datatree(idata, name))
    return idata


def check_smm_idata(idata: Any, name: str = "idata"):
    """:func:`check_idata`, for the diagnostics written for the SMM's ``weights`` and ``atoms``."""
    if model_variables(check_idata(idata, name)) != ["weights", "atoms"]:
        raise ValueError(
            f"{name} is a latent-class posterior (variable 'z'); this diagnostic is for the SMM's weights and "
            "atoms. Use smm.compare_latent_class_posterior, or ArviZ on idata.posterior['z']."
        )
    return idata


def check_prob(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {value!r}.")
    return float(value)
