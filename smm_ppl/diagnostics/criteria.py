"""Information criteria that count every observation: LOO, WAIC and ``az.compare`` (docs/math.md#count-weighted-loo).

All draws of item ``j`` share ``log pi_j``, so the pointwise values are per item and the totals weight
them by the counts; each equals ArviZ on the log-likelihood expanded to one column per observation.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ._arviz import arviz, check_idata, is_item_counts

__all__ = ["loo", "waic", "compare"]


def _item_counts(idata) -> np.ndarray:
    """``n_j`` for the items of the log_likelihood group, in its order."""
    if not hasattr(idata, "log_likelihood") or "counts" not in idata.log_likelihood:
        raise ValueError("idata has no log_likelihood group with a 'counts' variable; build it with smm_ppl.")
    if not hasattr(idata, "observed_data") or "counts" not in idata.observed_data:
        raise ValueError("idata has no observed_data 'counts'; the count weights of LOO/WAIC come from it.")
    items = idata.log_likelihood["item"].values
    n = np.asarray(idata.observed_data["counts"].sel(item=items).values, dtype=np.int64)
    if (n <= 0).any():
        raise ValueError("the log_likelihood group holds an item with a zero count; it cannot be weighted.")
    return n


def _weighted_se(values_item: np.ndarray, n: np.ndarray) -> float:
    """``sqrt(N var)`` of the ``N`` expanded pointwise values (ArviZ's se, ``ddof = 0``)."""
    N = n.sum()
    mean = np.sum(n * values_item) / N
    return float(np.sqrt(N * np.sum(n * (values_item - mean) ** 2) / N))


def _expanded(values_item: np.ndarray, n: np.ndarray, name: str):
    import xarray as xr

    return xr.DataArray(np.repeat(values_item, n), dims=("observation",), name=name)


def loo(idata: Any, pointwise: bool = False, *, reff: float | None = None, scale: str | None = None):
    """PSIS-LOO that counts every observation (docs/math.md#count-weighted-loo).

    All draws of item ``j`` share ``log pi_j``, so PSIS runs once per observed
    item and ``elpd_loo = sum_j n_j elpd_j``; this equals ``az.loo`` on the
    log-likelihood expanded to one column per observation, without building it.
    ``se`` and ``p_loo`` are those of the expanded problem.

    Parameters
    ----------
    idata : az.InferenceData
        From :func:`smm_ppl.sample_nuts` or ``fit_svi(...).idata``.
    pointwise : bool, default False
        Also return ``loo_i`` (one value per *observation*, length ``N``, so that
        ``az.compare`` computes the right ``dse`` and stacking weights; memory
        ``O(N)``), ``loo_item`` and ``pareto_k`` (one per observed item).
    reff : float, optional
        Relative efficiency, as in ``az.loo`` (from the posterior ESS by default).
    scale : {"log", "negative_log", "deviance"}, optional
        As in ``az.loo`` (default ``"log"``).

    Returns
    -------
    arviz.ELPDData
        Accepted by ``az.compare`` (with ``pointwise=True``) and by :func:`compare`.
    """
    az = arviz()
    check_idata(idata)
    if not is_item_counts(idata):  # one value per unit (latent-class logit): ArviZ's own LOO
        return az.loo(idata, pointwise=pointwise, reff=reff, scale=scale)
    n = _item_counts(idata)
    with warnings.catch_warnings():
        # Per-item warnings are reissued below in the right unit.
        warnings.simplefilter("ignore", UserWarning)
        item = az.loo(idata, pointwise=True, var_name="counts", reff=reff, scale=scale)
    scale = item["scale"]
    scale_value = {"log": 1.0, "negative_log": -1.0, "deviance": -2.0}[scale]
    loo_item = np.asarray(item["loo_i"].values, dtype=np.float64)
    pareto_k = item["pareto_k"]
    ll = idata.log_likelihood["counts"].stack(__sample__=("chain", "draw")).transpose("item", "__sample__").values
    S = ll.shape[1]
    lppd_item = _logsumexp_rows(ll) - np.log(S)
    elpd = float(np.sum(n * loo_item))
    se = _weighted_se(loo_item, n)
    p_loo = float(np.sum(n * lppd_item) - elpd / scale_value)
    good_k = item["good_k"]
    warn = bool(np.any(pareto_k.values > good_k))
    if warn:
        warnings.warn(
            f"Estimated Pareto k is greater than {good_k:.2f} for {int(np.sum(pareto_k.values > good_k))} "
            "item(s): PSIS-LOO may be unreliable for them.",
            UserWarning,
            stacklevel=2,
        )
    data = [elpd, se, p_loo, S, int(n.sum()), warn]
    index = ["elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning"]
    if pointwise:
        data += [_expanded(loo_item, n, "loo_i"), pareto_k, loo_item, int(n.shape[0])]
        index += ["loo_i", "pareto_k", "loo_item", "n_items"]
    data += [scale, good_k]
    index += ["scale", "good_k"]
    return az.ELPDData(data=data, index=index)


def waic(idata: Any, pointwise: bool = False, *, scale: str | None = None):
    """WAIC that counts every observation: ``sum_j n_j waic_j`` (docs/math.md#count-weighted-loo).

    Same conventions as :func:`loo` (``waic_i`` per observation when
    ``pointwise``, ``waic_item`` per item); equals ``az.waic`` on the expanded
    log-likelihood.
    """
    az = arviz()
    check_idata(idata)
    if not is_item_counts(idata):
        return az.waic(idata, pointwise=pointwise, scale=scale)
    n = _item_counts(idata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        item = az.waic(idata, pointwise=True, var_name="counts", scale=scale)
    waic_item = np.asarray(item["waic_i"].values, dtype=np.float64)
    ll = idata.log_likelihood["counts"].stack(__sample__=("chain", "draw")).transpose("item", "__sample__").values
    var_item = ll.var(axis=1)  # ddof = 0, as ArviZ (xarray) does
    warn = bool(np.any(var_item > 0.4))
    if warn:
        warnings.warn(
            "For one or more items the posterior variance of log pi_j exceeds 0.4: WAIC may be failing.",
            UserWarning,
            stacklevel=2,
        )
    total = float(np.sum(n * waic_item))
    se = _weighted_se(waic_item, n)
    p_waic = float(np.sum(n * var_item))
    # ArviZ names the total "waic" without pointwise values, which its own printing
    # and az.compare cannot parse; "elpd_waic" works everywhere.
    data = [total, se, p_waic, ll.shape[1], int(n.sum()), warn]
    index = ["elpd_waic", "se", "p_waic", "n_samples", "n_data_points", "warning"]
    if pointwise:
        data += [_expanded(waic_item, n, "waic_i"), waic_item, int(n.shape[0])]
        index += ["waic_i", "waic_item", "n_items"]
    data += [item["scale"]]
    index += ["scale"]
    return az.ELPDData(data=data, index=index)


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    m = np.max(a, axis=1, keepdims=True)
    return (m + np.log(np.sum(np.exp(a - m), axis=1, keepdims=True)))[:, 0]


def compare(models: Mapping[str, Any], ic: str = "loo", *, method: str = "stacking", scale: str | None = None):
    """``az.compare`` with count-weighted ELPDs.

    Parameters
    ----------
    models : dict of name -> az.InferenceData (or ELPDData from :func:`loo`/:func:`waic`)
        Fitted to the *same* counts.
    ic : {"loo", "waic"}
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        As in ``az.compare``.  "BB-pseudo-BMA" draws Dirichlet weights over the
        ``N`` observations: memory ``O(1000 N)``, avoid it for large ``N``.
    scale : str, optional

    Returns
    -------
    pandas.DataFrame
        ``az.compare``'s table (rank, elpd_<ic>, p_<ic>, elpd_diff, weight, se,
        dse, warning, scale), best first; identical to ``az.compare`` on the
        expanded observations.
    """
    az = arviz()
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("models must be a dict of at least two {name: InferenceData} to compare.")
    if ic not in ("loo", "waic"):
        raise ValueError(f"ic must be 'loo' or 'waic', got {ic!r}.")
    func = loo if ic == "loo" else waic
    elpds = {}
    for name, value in models.items():
        if isinstance(value, az.ELPDData):
            elpds[name] = value
        else:
            elpds[name] = func(value, pointwise=True, scale=scale)
    sizes = {name: int(e["n_data_points"]) for name, e in elpds.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the models were not fitted to the same number of observations: {sizes}.")
    return az.compare(elpds, ic=ic, method=method)
