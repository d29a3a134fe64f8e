"""Posterior diagnostics: relabelling, InferenceData, count-weighted LOO/WAIC, comparisons, plots.

Every ArviZ call of the package lives in this module (issue 5): the samplers in
:mod:`smm_ppl.inference` hand plain arrays to :func:`build_inference_data`, and
everything that summarises an ``az.InferenceData`` is here.  ArviZ is imported
lazily (it takes about a second to import and prints a ``FutureWarning``), so
``import smm_ppl`` stays fast.

Layout of the ``InferenceData`` built here
-------------------------------------------
``posterior``
    ``weights`` (chain, draw, component) and ``atoms`` (chain, draw, component,
    feature), relabelled to the reference labelling when ``relabel`` was on
    (``posterior.attrs["relabelled"] == 1``).
``sample_stats``
    the sampler's statistics (``diverging``, ``lp``, ``energy``, ``n_steps``,
    ``acceptance_rate``, ``step_size``, ``tree_depth``) and ``label_permutation``
    (chain, draw, component): draw ``(c, d)`` had its class ``label_permutation[c, d, k]``
    renamed ``k``.  :func:`raw_posterior` undoes the relabelling, so the raw
    draws stay available without storing them twice.
``log_likelihood``
    ``counts`` (chain, draw, item): ``log pi_j`` of the observed items
    (coordinate ``item`` = their indices), i.e. the log-likelihood of *one* draw
    of item ``j``.  Plain ``az.loo`` on it counts each item once; the
    count-weighted :func:`loo` / :func:`waic` count every observation.
``observed_data``
    ``counts`` (item) for all items.
``constant_data``
    ``features`` (item, feature), ``reference_weights`` and ``reference_atoms``
    (the labelling the draws were matched to).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from .params import SMMParams, match_components
from .validation import check_params

__all__ = [
    "relabel_draws",
    "build_inference_data",
    "raw_posterior",
    "loo",
    "waic",
    "compare",
    "rhat",
    "ess",
    "summary",
    "hdi",
    "posterior_mean_params",
    "compare_point_to_posterior",
    "plot_posterior_vs_point",
    "plot_forest_comparison",
    "plot_trace",
    "save_inference_data",
    "load_inference_data",
]

# Enumerating all K! permutations vectorises the matching over draws; beyond
# this K the factorial loses to a loop of Hungarian assignments.
_MAX_K_ENUMERATE = 6


def _az():
    """Import ArviZ on first use, without its import-time FutureWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


# ---------------------------------------------------------------------------
# Relabelling
# ---------------------------------------------------------------------------


def relabel_draws(weights: Any, atoms: Any, reference_atoms: Any):
    """Match every draw's classes to a reference labelling (Hungarian on the atoms).

    Parameters
    ----------
    weights : array of shape (..., K)
        Draws of the mixing weights (any leading batch shape, e.g. (chain, draw)).
    atoms : array of shape (..., K, L)
        Draws of the atoms, same leading shape.
    reference_atoms : array of shape (K, L)
        The reference labelling (usually the warm start / EM estimate).

    Returns
    -------
    weights, atoms : ndarray
        Relabelled draws: ``atoms_out[..., k, :] = atoms[..., perm[..., k], :]``.
    perm : ndarray of int64, shape (..., K)
        The permutation applied to each draw; the same convention as
        :func:`smm_ppl.match_components` (minimum total Euclidean distance).
    """
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    ref = np.asarray(reference_atoms, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] != ref.shape or w.shape != a.shape[:-1]:
        raise ValueError(
            f"relabel_draws: weights (..., K), atoms (..., K, L) and reference_atoms (K, L) must agree, got "
            f"{w.shape}, {a.shape} and {ref.shape}."
        )
    batch = w.shape[:-1]
    K = ref.shape[0]
    flat_a = a.reshape((-1,) + ref.shape)
    # dist[s, r, e]: distance from reference class r to the draw's class e.
    dist = np.linalg.norm(ref[None, :, None, :] - flat_a[:, None, :, :], axis=-1)
    if K <= _MAX_K_ENUMERATE:
        perms = np.array(list(itertools.permutations(range(K))), dtype=np.int64)  # (K!, K)
        cost = dist[:, np.arange(K)[None, :], perms].sum(axis=-1)  # (S, K!)
        perm = perms[np.argmin(cost, axis=1)]
    else:
        perm = np.empty((flat_a.shape[0], K), dtype=np.int64)
        for s in range(flat_a.shape[0]):
            rows, cols = linear_sum_assignment(dist[s])
            perm[s, rows] = cols
    perm = perm.reshape(batch + (K,))
    w_out = np.take_along_axis(w, perm, axis=-1)
    a_out = np.take_along_axis(a, perm[..., None], axis=-2)
    return w_out, a_out, perm


def _unpermute(values: np.ndarray, perm: np.ndarray, axis_from_end: int) -> np.ndarray:
    """Inverse of ``take_along_axis(values, perm)`` on the component axis."""
    inv = np.argsort(perm, axis=-1)
    idx = inv if axis_from_end == 1 else inv[..., None]
    return np.take_along_axis(values, idx, axis=-axis_from_end)


# ---------------------------------------------------------------------------
# InferenceData
# ---------------------------------------------------------------------------


def build_inference_data(
    weights: Any,
    atoms: Any,
    *,
    features: Any,
    counts: Any,
    log_likelihood: Any,
    observed_items: Any,
    reference: SMMParams | None = None,
    permutation: Any = None,
    sample_stats: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    """Assemble an ``az.InferenceData`` from arrays with a leading (chain, draw) shape.

    Parameters
    ----------
    weights : array (chain, draw, K)
    atoms : array (chain, draw, K, L)
    features : array (p, L)
    counts : array (p,)
    log_likelihood : array (chain, draw, n_observed_items)
        ``log pi_j`` of the observed items, in the order of ``observed_items``.
    observed_items : array of int (n_observed_items,)
    reference : SMMParams, optional
        The labelling the draws were matched to (stored in ``constant_data``).
    permutation : array of int (chain, draw, K), optional
        Per-draw relabelling permutation (stored in ``sample_stats``).
    sample_stats : mapping of name -> array (chain, draw), optional
    attrs : mapping, optional
        Extra attributes for the ``posterior`` group (numbers or strings).

    Returns
    -------
    az.InferenceData
    """
    import xarray as xr

    az = _az()
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64)
    n = np.asarray(counts, dtype=np.int64)
    items = np.asarray(observed_items, dtype=np.int64)
    n_chain, n_draw, K = w.shape
    L = a.shape[-1]
    base = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    comp = {"component": np.arange(K)}
    feat = {"feature": np.arange(L)}

    post_attrs = {"relabelled": int(permutation is not None)}
    post_attrs.update(dict(attrs or {}))
    posterior = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), w),
            "atoms": (("chain", "draw", "component", "feature"), a),
        },
        coords={**base, **comp, **feat},
        attrs=post_attrs,
    )
    groups = {"posterior": posterior}

    stats = {k: (("chain", "draw"), np.asarray(v)) for k, v in dict(sample_stats or {}).items()}
    if permutation is not None:
        stats["label_permutation"] = (("chain", "draw", "component"), np.asarray(permutation, dtype=np.int64))
    if stats:
        groups["sample_stats"] = xr.Dataset(stats, coords={**base, **comp})

    groups["log_likelihood"] = xr.Dataset(
        {"counts": (("chain", "draw", "item"), ll)}, coords={**base, "item": items}
    )
    groups["observed_data"] = xr.Dataset({"counts": (("item",), n)}, coords={"item": np.arange(n.shape[0])})
    const = {"features": (("item", "feature"), x)}
    if reference is not None:
        const["reference_weights"] = (("component",), np.asarray(reference.weights, dtype=np.float64))
        const["reference_atoms"] = (("component", "feature"), np.asarray(reference.atoms, dtype=np.float64))
    groups["constant_data"] = xr.Dataset(const, coords={"item": np.arange(n.shape[0]), **comp, **feat})
    return az.InferenceData(**groups)


def _check_idata(idata: Any, name: str = "idata"):
    if not hasattr(idata, "posterior") or not hasattr(idata.posterior, "data_vars"):
        raise TypeError(
            f"{name} must be an az.InferenceData with a posterior group (from smm_ppl.sample_nuts or "
            f"fit_svi(...).idata), got {type(idata).__name__}."
        )
    for var in ("weights", "atoms"):
        if var not in idata.posterior:
            raise ValueError(f"{name}.posterior has no variable {var!r}; was it built by smm_ppl?")
    return idata


def raw_posterior(idata: Any):
    """The posterior draws in the sampler's own labelling (relabelling undone).

    Returns an ``xarray.Dataset`` with ``weights`` and ``atoms`` of the same shape
    as ``idata.posterior``.  When the draws were not relabelled, a copy of the
    posterior.
    """
    _check_idata(idata)
    post = idata.posterior[["weights", "atoms"]].copy(deep=True)
    has_perm = hasattr(idata, "sample_stats") and "label_permutation" in idata.sample_stats
    if not has_perm:
        return post
    perm = idata.sample_stats["label_permutation"].values
    post["weights"].values = _unpermute(post["weights"].values, perm, 1)
    post["atoms"].values = _unpermute(post["atoms"].values, perm, 2)
    post.attrs["relabelled"] = 0
    return post


# ---------------------------------------------------------------------------
# Count-weighted LOO / WAIC
# ---------------------------------------------------------------------------


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
    """PSIS-LOO that counts every observation (SPEC section 5).

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
    az = _az()
    _check_idata(idata)
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
    """WAIC that counts every observation: ``sum_j n_j waic_j`` (SPEC section 5).

    Same conventions as :func:`loo` (``waic_i`` per observation when
    ``pointwise``, ``waic_item`` per item); equals ``az.waic`` on the expanded
    log-likelihood.
    """
    az = _az()
    _check_idata(idata)
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
    az = _az()
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


# ---------------------------------------------------------------------------
# Convergence and summaries
# ---------------------------------------------------------------------------


def rhat(idata: Any, *, raw: bool = False) -> dict:
    """Rank-normalised split R-hat of ``weights`` and ``atoms`` (``raw``: before relabelling).

    Returns ``{"weights": array (K,), "atoms": array (K, L), "max": float}``.
    """
    az = _az()
    post = raw_posterior(idata) if raw else _check_idata(idata).posterior[["weights", "atoms"]]
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
    az = _az()
    post = _check_idata(idata).posterior[["weights", "atoms"]]
    e = az.ess(post, method=method)
    out = {k: np.asarray(e[k].values) for k in ("weights", "atoms")}
    both = np.concatenate([out["weights"].ravel(), out["atoms"].ravel()])
    out["min"] = float(np.nanmin(both)) if np.isfinite(both).any() else float("nan")
    return out


def summary(idata: Any, **kwargs):
    """``az.summary`` of ``weights`` and ``atoms`` (keyword arguments passed on)."""
    az = _az()
    kwargs.setdefault("var_names", ["weights", "atoms"])
    return az.summary(_check_idata(idata), **kwargs)


def hdi(idata: Any, hdi_prob: float = 0.94):
    """Highest-density intervals of ``weights`` and ``atoms`` (an ``xarray.Dataset`` with dim ``hdi``)."""
    az = _az()
    _check_prob(hdi_prob, "hdi_prob")
    return az.hdi(_check_idata(idata).posterior[["weights", "atoms"]], hdi_prob=hdi_prob)


def posterior_mean_params(idata: Any) -> SMMParams:
    """Posterior means of ``weights`` and ``atoms`` as :class:`SMMParams` (of the relabelled draws)."""
    post = _check_idata(idata).posterior
    w = post["weights"].mean(("chain", "draw")).values
    return SMMParams(np.asarray(w / w.sum()), np.asarray(post["atoms"].mean(("chain", "draw")).values))


def _check_prob(value: Any, name: str) -> float:
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {value!r}.")
    return float(value)


# ---------------------------------------------------------------------------
# Point estimate against posterior
# ---------------------------------------------------------------------------


def _point_and_se(point: Any, standard_errors: Any, n_features: int):
    """Accept an SMMParams or an EM-like result (``.params``, ``.standard_errors``)."""
    se = standard_errors
    if hasattr(point, "params") and isinstance(getattr(point, "params"), tuple):  # an EM result
        if se is None:
            se = getattr(point, "standard_errors", None)
        point = point.params
    if not isinstance(point, tuple):
        raise TypeError(
            f"point must be an SMMParams or an EM result with .params, got {type(point).__name__}."
        )
    point = check_params(point, n_features, name="point")
    if se is not None:
        if not isinstance(se, tuple) or len(se) != 2:
            raise TypeError("standard_errors must be an SMMParams of standard errors (or None).")
        se = SMMParams(np.asarray(se[0], dtype=np.float64), np.asarray(se[1], dtype=np.float64))
        if se.weights.shape != point.weights.shape or se.atoms.shape != point.atoms.shape:
            raise ValueError(
                f"standard_errors shapes {se.weights.shape}, {se.atoms.shape} do not match the point's "
                f"{point.weights.shape}, {point.atoms.shape}."
            )
    return point, se


def _scalar_names(K: int, L: int) -> list[str]:
    return [f"weights[{k}]" for k in range(K)] + [f"atoms[{k},{l}]" for k in range(K) for l in range(L)]


def compare_point_to_posterior(
    idata: Any,
    point: Any,
    standard_errors: Any = None,
    *,
    hdi_prob: float = 0.94,
    align: bool = True,
):
    """One row per scalar parameter: point estimate (EM) against the posterior.

    Parameters
    ----------
    idata : az.InferenceData
        Posterior draws (relabelled) from :func:`smm_ppl.sample_nuts` or ``fit_svi``.
    point : SMMParams or EM result
        The point estimate; an EM result also supplies ``standard_errors``.
    standard_errors : SMMParams, optional
        Standard errors of ``point`` (overrides the EM result's).
    hdi_prob : float, default 0.94
    align : bool, default True
        Match the point's classes to the posterior-mean labelling first
        (Hungarian); the standard errors follow the same permutation.

    Returns
    -------
    pandas.DataFrame
        Index ``"weights[k]"``, ``"atoms[k,l]"``; columns ``em_estimate``,
        ``em_se`` (NaN without standard errors), ``post_mean``, ``post_sd``,
        ``hdi_low``, ``hdi_high``, ``z`` (= (em_estimate - post_mean) / post_sd),
        ``se_ratio`` (= em_se / post_sd), ``inside_hdi``.
    """
    import pandas as pd

    az = _az()
    _check_idata(idata)
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    post = idata.posterior
    K = post.sizes["component"]
    L = post.sizes["feature"]
    point, se = _point_and_se(point, standard_errors, L)
    if point.weights.shape[0] != K:
        raise ValueError(f"point has {point.weights.shape[0]} components but the posterior has {K}.")
    if align:
        perm = match_components(point.atoms, posterior_mean_params(idata).atoms)
        point = SMMParams(point.weights[perm], point.atoms[perm])
        if se is not None:
            se = SMMParams(se.weights[perm], se.atoms[perm])
    w = post["weights"].values.reshape(-1, K)
    a = post["atoms"].values.reshape(-1, K * L)
    draws = np.concatenate([w, a], axis=1)  # (S, K + K L)
    est = np.concatenate([point.weights, point.atoms.ravel()])
    ses = np.full(est.shape, np.nan) if se is None else np.concatenate([se.weights, se.atoms.ravel()])
    h = az.hdi(draws[None], hdi_prob=hdi_prob)  # (n_scalars, 2)
    mean = draws.mean(axis=0)
    sd = draws.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (est - mean) / sd
        ratio = ses / sd
    table = pd.DataFrame(
        {
            "em_estimate": est,
            "em_se": ses,
            "post_mean": mean,
            "post_sd": sd,
            "hdi_low": h[:, 0],
            "hdi_high": h[:, 1],
            "z": z,
            "se_ratio": ratio,
            "inside_hdi": (est >= h[:, 0]) & (est <= h[:, 1]),
        },
        index=pd.Index(_scalar_names(K, L), name="parameter"),
    )
    return table


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------


def plot_posterior_vs_point(idata: Any, point: Any, *, hdi_prob: float = 0.94, align: bool = True, **kwargs):
    """``az.plot_posterior`` of every scalar with the point estimate as reference value.

    Returns the array of matplotlib axes.
    """
    az = _az()
    _check_idata(idata)
    post = idata.posterior
    L = post.sizes["feature"]
    point, _ = _point_and_se(point, None, L)
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
        idata, var_names=["weights", "atoms"], ref_val=ref_val, hdi_prob=_check_prob(hdi_prob, "hdi_prob"), **kwargs
    )


def _point_as_idata(point: SMMParams, se: SMMParams | None, n_draws: int = 2000, seed: int = 0):
    """A pseudo-posterior for a point estimate: its normal approximation, or the point repeated."""
    import xarray as xr

    az = _az()
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
    az = _az()
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty dict {name: InferenceData}.")
    datas, names = [], []
    for name, value in models.items():
        datas.append(_check_idata(value, f"models[{name!r}]"))
        names.append(str(name))
    if point is not None:
        L = datas[0].posterior.sizes["feature"]
        p, se = _point_and_se(point, standard_errors, L)
        perm = match_components(p.atoms, posterior_mean_params(datas[0]).atoms)
        p = SMMParams(p.weights[perm], p.atoms[perm])
        se = None if se is None else SMMParams(se.weights[perm], se.atoms[perm])
        datas.append(_point_as_idata(p, se))
        names.append(point_name)
    kwargs.setdefault("combined", True)
    return az.plot_forest(
        datas, model_names=names, var_names=["weights", "atoms"], hdi_prob=_check_prob(hdi_prob, "hdi_prob"), **kwargs
    )


def plot_trace(idata: Any, var_names: Any = None, *, raw: bool = False, **kwargs):
    """``az.plot_trace`` of ``weights`` and ``atoms`` (``raw``: the draws before relabelling)."""
    az = _az()
    data = _check_idata(idata)
    if raw:
        data = az.InferenceData(posterior=raw_posterior(data))
    kwargs.setdefault("compact", True)
    kwargs.setdefault("backend_kwargs", {"layout": "constrained"})
    return az.plot_trace(data, var_names=var_names or ["weights", "atoms"], **kwargs)


# ---------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------


def save_inference_data(idata: Any, path: Any):
    """Write an InferenceData to netCDF (through h5netcdf); returns the path."""
    from pathlib import Path

    data = _check_idata(idata)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data.to_netcdf(str(p), engine="h5netcdf")
    return p


def load_inference_data(path: Any):
    """Read an InferenceData written by :func:`save_inference_data`."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such file: {p}")
    return _az().from_netcdf(str(p), engine="h5netcdf")
