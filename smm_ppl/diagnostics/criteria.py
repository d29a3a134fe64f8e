"""Information criteria that count every observation: LOO, WAIC and ``compare`` (docs/math.md#count-weighted-loo).

All draws of item ``j`` share ``log pi_j``, so the pointwise values are per item and the totals weight
them by the counts; each equals ArviZ on the log-likelihood expanded to one column per observation.
PSIS, its Pareto ``k`` and the model comparison are ``arviz_stats``'s; ArviZ 1 has no WAIC, so WAIC is
computed here, with the definition of ArviZ 0.x.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ._arviz import arviz_stats, check_idata, has_group, is_item_counts

__all__ = ["loo", "waic", "compare"]

#: WAIC's warning threshold on the posterior variance of a pointwise log-likelihood (ArviZ 0.x's).
_WAIC_VARIANCE_WARNING = 0.4


def _item_counts(idata) -> np.ndarray:
    """``n_j`` for the items of the log_likelihood group, in its order."""
    if not is_item_counts(idata):
        raise ValueError("idata has no log_likelihood group with a 'counts' variable; build it with smm_ppl.")
    if not has_group(idata, "observed_data") or "counts" not in idata.observed_data.data_vars:
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


def _expanded(values_item: np.ndarray, n: np.ndarray):
    """One value per observation: item ``j``'s value repeated ``n_j`` times (dimension ``observation``)."""
    import xarray as xr

    return xr.DataArray(np.repeat(values_item, n), dims=("observation",))


def _pointwise_log_likelihood(idata):
    """The pointwise log-likelihood as (values (m, S), weights (m,), DataArray): per item with its count
    (the SMM), or per unit with weight one (the latent-class logit: one unit is one observation)."""
    if not has_group(idata, "log_likelihood"):
        raise ValueError("idata has no log_likelihood group; LOO and WAIC need the pointwise log-likelihood.")
    if is_item_counts(idata):
        da = idata.log_likelihood["counts"]
        n = _item_counts(idata)
    else:
        names = list(idata.log_likelihood.data_vars)
        if len(names) != 1:
            raise ValueError(f"idata.log_likelihood must hold one variable, got {names}.")
        da = idata.log_likelihood[names[0]]
        n = None
    stacked = da.stack(__sample__=("chain", "draw"))
    obs_dims = [d for d in stacked.dims if d != "__sample__"]
    ll = stacked.transpose(*obs_dims, "__sample__").values.reshape(-1, stacked.sizes["__sample__"])
    return ll, (np.ones(ll.shape[0], dtype=np.int64) if n is None else n), da


def _lppd_rows(ll: np.ndarray) -> np.ndarray:
    """``log mean_s exp(ll[:, s])`` of every row."""
    m = np.max(ll, axis=1, keepdims=True)
    return (m + np.log(np.mean(np.exp(ll - m), axis=1, keepdims=True)))[:, 0]


def loo(idata: Any, pointwise: bool = False, *, reff: float | None = None):
    """PSIS-LOO that counts every observation (docs/math.md#count-weighted-loo).

    All draws of item ``j`` share ``log pi_j``, so PSIS (``arviz_stats.loo``) runs
    once per observed item and ``elpd = sum_j n_j elpd_j``; this equals
    ``arviz_stats.loo`` on the log-likelihood expanded to one column per
    observation, without building it.  ``se`` and ``p`` are those of the expanded
    problem.  A latent-class posterior (one value per unit) gets
    ``arviz_stats.loo`` itself.

    Parameters
    ----------
    idata : xarray.DataTree
        From :func:`smm_ppl.sample_nuts`, ``fit_svi(...).idata``, :func:`smm_ppl.laplace`
        or :func:`smm_ppl.sample_latent_class`.
    pointwise : bool, default False
        Also return ``elpd_i`` (one value per *observation*, length ``N``, so that
        ``arviz_stats.compare`` computes the right ``dse`` and stacking weights;
        memory ``O(N)``) and ``pareto_k`` (one per observed item).
    reff : float, optional
        Relative efficiency, as in ``arviz_stats.loo`` (from the posterior ESS by default).

    Returns
    -------
    arviz_stats.ELPDData
        ``kind == "loo"``; ``elpd``, ``se``, ``p`` (``p_loo``), ``n_samples``,
        ``n_data_points`` (``N``), ``warning``, ``good_k``, ``scale == "log"``,
        and with ``pointwise`` ``elpd_i`` and ``pareto_k``.  The count-weighted
        result also has ``elpd_item`` (one value per observed item) and
        ``n_items``.  Accepted by ``arviz_stats.compare`` (with ``pointwise=True``)
        and by :func:`compare`.
    """
    azs = arviz_stats()
    check_idata(idata)
    if not is_item_counts(idata):  # one value per unit (latent-class logit): ArviZ's own LOO
        return azs.loo(idata, pointwise=pointwise, reff=reff)
    n = _item_counts(idata)
    with warnings.catch_warnings():
        # Per-item warnings are reissued below in the right unit.
        warnings.simplefilter("ignore", UserWarning)
        item = azs.loo(idata, pointwise=True, var_name="counts", reff=reff)
    elpd_item = np.asarray(item.elpd_i.values, dtype=np.float64)
    ll, _, _ = _pointwise_log_likelihood(idata)
    elpd = float(np.sum(n * elpd_item))
    p_loo = float(np.sum(n * _lppd_rows(ll)) - elpd)
    warn = bool(np.any(item.pareto_k.values > item.good_k))
    if warn:
        warnings.warn(
            f"Estimated Pareto k is greater than {item.good_k:.2f} for "
            f"{int(np.sum(item.pareto_k.values > item.good_k))} item(s): PSIS-LOO may be unreliable for them.",
            UserWarning,
            stacklevel=2,
        )
    out = azs.ELPDData(
        kind="loo",
        elpd=elpd,
        se=_weighted_se(elpd_item, n),
        p=p_loo,
        n_samples=ll.shape[1],
        n_data_points=int(n.sum()),
        scale="log",
        warning=warn,
        good_k=item.good_k,
        elpd_i=_expanded(elpd_item, n) if pointwise else None,
        pareto_k=item.pareto_k if pointwise else None,
        log_weights=item.log_weights,
    )
    out.elpd_item = elpd_item
    out.n_items = int(n.shape[0])
    return out


def waic(idata: Any, pointwise: bool = False):
    """WAIC that counts every observation: ``sum_j n_j waic_j`` (docs/math.md#count-weighted-loo).

    ``waic_j = lppd_j - var_s(log pi_j)`` (ArviZ 0.x's ``az.waic``, which ArviZ 1
    no longer has; variance with ``ddof = 0``), weighted by the counts as
    :func:`loo`; equals that WAIC on the expanded log-likelihood.  A latent-class
    posterior counts every unit once.

    Returns
    -------
    arviz_stats.ELPDData
        ``kind == "waic"``; ``elpd``, ``se``, ``p`` (``p_waic``), ``n_samples``,
        ``n_data_points``, ``warning`` (a pointwise variance above 0.4),
        ``scale == "log"``, and with ``pointwise`` ``elpd_i`` (per observation);
        ``elpd_item`` and ``n_items`` as :func:`loo`'s.  :func:`compare` takes it
        with ``ic="waic"``.
    """
    azs = arviz_stats()
    check_idata(idata)
    ll, n, da = _pointwise_log_likelihood(idata)
    var_item = ll.var(axis=1)
    waic_item = _lppd_rows(ll) - var_item
    warn = bool(np.any(var_item > _WAIC_VARIANCE_WARNING))
    if warn:
        warnings.warn(
            f"For one or more items the posterior variance of the log-likelihood exceeds {_WAIC_VARIANCE_WARNING}: "
            "WAIC may be failing; prefer LOO.",
            UserWarning,
            stacklevel=2,
        )
    counts = is_item_counts(idata)
    if not pointwise:
        elpd_i = None
    elif counts:
        elpd_i = _expanded(waic_item, n)
    else:  # one value per unit, labelled as the log-likelihood
        obs = da.isel(chain=0, draw=0, drop=True)
        elpd_i = obs.copy(data=waic_item.reshape(obs.shape)).rename(None)
    out = azs.ELPDData(
        kind="waic",
        elpd=float(np.sum(n * waic_item)),
        se=_weighted_se(waic_item, n),
        p=float(np.sum(n * var_item)),
        n_samples=ll.shape[1],
        n_data_points=int(n.sum()),
        scale="log",
        warning=warn,
        good_k=None,
        elpd_i=elpd_i,
    )
    out.elpd_item = waic_item
    out.n_items = int(n.shape[0])
    return out


def compare(models: Mapping[str, Any], ic: str = "loo", *, method: str = "stacking"):
    """``arviz_stats.compare`` with count-weighted ELPDs.

    Parameters
    ----------
    models : dict of name -> xarray.DataTree (or ELPDData from :func:`loo`/:func:`waic` with ``pointwise=True``)
        Fitted to the *same* counts.
    ic : {"loo", "waic"}
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        As in ``arviz_stats.compare``.  "BB-pseudo-BMA" draws Dirichlet weights
        over the ``N`` observations: memory ``O(1000 N)``, avoid it for large ``N``.

    Returns
    -------
    pandas.DataFrame
        ``arviz_stats.compare``'s table, best first, with its ``elpd`` and ``p``
        columns named by the criterion: rank, elpd_<ic>, p_<ic>, elpd_diff,
        weight, se, dse, warning.  Identical to ``arviz_stats.compare`` on the
        expanded observations.
    """
    azs = arviz_stats()
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("models must be a dict of at least two {name: DataTree} to compare.")
    if ic not in ("loo", "waic"):
        raise ValueError(f"ic must be 'loo' or 'waic', got {ic!r}.")
    func = loo if ic == "loo" else waic
    elpds = {}
    for name, value in models.items():
        if isinstance(value, azs.ELPDData):
            if value.kind != ic:
                raise ValueError(f"models[{name!r}] is a {value.kind!r} result; compare(ic={ic!r}) needs {ic!r}.")
            elpds[name] = value
        else:
            elpds[name] = func(value, pointwise=True)
    sizes = {name: int(e.n_data_points) for name, e in elpds.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the models were not fitted to the same number of observations: {sizes}.")
    table = azs.compare(elpds, method=method)
    return table.rename(columns={"elpd": f"elpd_{ic}", "p": f"p_{ic}"})
