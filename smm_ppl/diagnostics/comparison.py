"""A point estimate (EM) against the posterior, scalar by scalar."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..choice import LatentClassResult
from ..core.params import SMMParams, match_components
from ..core.validation import check_params
from ._arviz import arviz_stats, check_datatree, check_prob, check_smm_idata
from .idata import posterior_mean_params

__all__ = ["compare_point_to_posterior", "compare_latent_class_posterior", "point_posterior_table"]


def point_and_se(point: Any, standard_errors: Any, n_features: int):
    """Accept an SMMParams or an EM-like result (``.params``, ``.standard_errors``)."""
    se = standard_errors
    if hasattr(point, "params") and isinstance(point.params, tuple):  # an EM result
        if se is None:
            se = getattr(point, "standard_errors", None)
        point = point.params
    if not isinstance(point, tuple):
        raise TypeError(f"point must be an SMMParams or an EM result with .params, got {type(point).__name__}.")
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
    idata : xarray.DataTree
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
        ``se_ratio`` (= em_se / post_sd), ``inside_hdi``.  ``table.attrs["estimate"]``
        says what the point is: ``"MAP"`` (an EM result fitted with a prior:
        the posterior mode, ``attrs["prior"]`` its prior), ``"MLE"`` (an EM
        result without one) or ``"point"`` (parameters given as they are).
    """
    check_smm_idata(idata)
    kind, prior = _estimate_kind(point)
    hdi_prob = check_prob(hdi_prob, "hdi_prob")
    post = idata.posterior
    K = post.sizes["component"]
    L = post.sizes["feature"]
    point, se = point_and_se(point, standard_errors, L)
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
    table = point_posterior_table(draws, est, ses, _scalar_names(K, L), hdi_prob)
    table.attrs["estimate"] = kind
    if prior is not None:
        table.attrs["prior"] = repr(prior)
    return table


def _estimate_kind(point: Any) -> tuple[str, Any]:
    """``("MAP", prior)``, ``("MLE", None)`` for an EM result; ``("point", None)`` for bare parameters."""
    if not hasattr(point, "params"):
        return "point", None
    prior = getattr(point, "prior", None)
    return ("MAP", prior) if prior is not None else ("MLE", None)


def point_posterior_table(draws: np.ndarray, estimate: np.ndarray, se: np.ndarray, names, hdi_prob: float):
    """A point estimate with its standard errors against posterior draws (S, n), one row per scalar.

    Columns ``em_estimate``, ``em_se``, ``post_mean``, ``post_sd``, ``hdi_low``,
    ``hdi_high``, ``z`` (= (em_estimate - post_mean) / post_sd), ``se_ratio``
    (= em_se / post_sd), ``inside_hdi``.
    """
    import pandas as pd

    h = arviz_stats().hdi(draws.T, prob=hdi_prob)  # (n, 2): the HDI of every column
    mean = draws.mean(axis=0)
    sd = draws.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (estimate - mean) / sd
        ratio = se / sd
    return pd.DataFrame(
        {
            "em_estimate": estimate,
            "em_se": se,
            "post_mean": mean,
            "post_sd": sd,
            "hdi_low": h[:, 0],
            "hdi_high": h[:, 1],
            "z": z,
            "se_ratio": ratio,
            "inside_hdi": (estimate >= h[:, 0]) & (estimate <= h[:, 1]),
        },
        index=pd.Index(list(names), name="parameter"),
    )


def compare_latent_class_posterior(
    idata: Any, result: LatentClassResult, *, hdi_prob: float = 0.94, robust: bool = False
):
    """One row per parameter and class share: the EM estimate against the posterior.

    Parameters
    ----------
    idata : xarray.DataTree
        From :func:`sample_latent_class` or :func:`fit_latent_class_svi` (relabelled to
        the EM labelling, so rows compare like with like).
    result : LatentClassResult
        The EM fit.
    hdi_prob : float, default 0.94
    robust : bool, default False
        Compare with the robust (sandwich) standard errors instead of the classical ones.

    Returns
    -------
    pandas.DataFrame
        Index: the parameter names, then ``"weight[k]"``; columns
        ``em_estimate``, ``em_se``, ``post_mean``, ``post_sd``,
        ``hdi_low``, ``hdi_high``, ``z`` (= (em_estimate - post_mean) /
        post_sd), ``se_ratio`` (= em_se / post_sd) and ``inside_hdi``, as
        :func:`smm_ppl.compare_point_to_posterior`.
    """
    if not isinstance(result, LatentClassResult):
        raise TypeError(f"result must be a LatentClassResult, got {type(result).__name__}.")
    post = check_datatree(idata).posterior
    if "z" not in post.data_vars or "shares" not in post.data_vars:
        raise TypeError("idata must be a DataTree from sample_latent_class or fit_latent_class_svi.")
    names = [str(n) for n in post["parameter"].values]
    if names != list(result.names):
        raise ValueError(f"idata has parameters {names}, the result {list(result.names)}: not the same model.")
    if isinstance(hdi_prob, bool) or not isinstance(hdi_prob, (int, float)) or not 0.0 < float(hdi_prob) < 1.0:
        raise ValueError(f"hdi_prob must be strictly between 0 and 1, got {hdi_prob!r}.")
    column = "robust_std_err" if robust else "std_err"
    K = result.n_components
    shares = (
        result.weights_table if K > 1 else result.weights_table.iloc[:0]
    )  # one class: its share is 1, not a parameter
    draws = np.concatenate(
        [post["z"].values.reshape(-1, result.n_params), post["shares"].values.reshape(-1, K)[:, : len(shares)]],
        axis=1,
    )
    est = np.concatenate([result.params["estimate"].to_numpy(), shares["estimate"].to_numpy()])
    se = np.concatenate([result.params[column].to_numpy(), shares[column].to_numpy()])
    return point_posterior_table(draws, est, se, list(result.names) + list(shares.index), float(hdi_prob))
