"""ArviZ on first use, and the checks every diagnostic shares."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

__all__ = ["arviz", "check_idata", "check_prob"]


def arviz():
    """Import ArviZ on first use, without its import-time FutureWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def check_idata(idata: Any, name: str = "idata"):
    if not hasattr(idata, "posterior") or not hasattr(idata.posterior, "data_vars"):
        raise TypeError(
            f"{name} must be an az.InferenceData with a posterior group (from smm_ppl.sample_nuts or "
            f"fit_svi(...).idata), got {type(idata).__name__}."
        )
    for var in ("weights", "atoms"):
        if var not in idata.posterior:
            raise ValueError(f"{name}.posterior has no variable {var!r}; was it built by smm_ppl?")
    return idata


def check_prob(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {value!r}.")
    return float(value)
