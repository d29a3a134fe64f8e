"""ArviZ on first use, and the checks every diagnostic shares."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

__all__ = ["arviz", "check_idata", "check_smm_idata", "check_prob", "model_variables", "is_item_counts"]


def arviz():
    """Import ArviZ on first use, without its import-time FutureWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


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


def is_item_counts(idata: Any) -> bool:
    """Whether the pointwise log-likelihood is per item with counts (the SMM's weighted LOO)."""
    return hasattr(idata, "log_likelihood") and "counts" in idata.log_likelihood


def check_idata(idata: Any, name: str = "idata"):
    if not hasattr(idata, "posterior") or not hasattr(idata.posterior, "data_vars"):
        raise TypeError(
            f"{name} must be an az.InferenceData with a posterior group (from smm_ppl.sample_nuts, "
            f"fit_svi(...).idata or sample_latent_class), got {type(idata).__name__}."
        )
    model_variables(idata)
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
