"""Choosing the number of classes: BIC/AIC from EM, count-weighted PSIS-LOO from NUTS."""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from .core.params import n_free_parameters
from .core.validation import check_choice, check_key, check_positive_int

__all__ = ["compare_components", "n_free_parameters"]

_METHODS = ("bic", "aic", "loo")


def _check_ks(ks: Any) -> list[int]:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Sequence) and not isinstance(ks, np.ndarray):
        raise TypeError(f"ks must be a list of numbers of components, e.g. [1, 2, 3], got {type(ks).__name__}.")
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty: give at least one number of components.")
    out = []
    for i, k in enumerate(ks):
        if isinstance(k, (np.integer,)):
            k = int(k)
        if not isinstance(k, numbers.Integral) or isinstance(k, bool):
            raise TypeError(f"ks[{i}] must be an integer, got {type(k).__name__} {k!r}.")
        # Whether the data can have K classes is the fit's to say (each K is fitted, the largest first).
        out.append(check_positive_int(k, f"ks[{i}]"))
    if len(set(out)) != len(out):
        raise ValueError(f"ks has repeated values: {out}.")
    return out


def _check_kwargs(value: Any, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}.")
    return dict(value)


def compare_components(
    features: Any,
    counts: Any,
    ks: Sequence[int],
    method: str = "bic",
    *,
    seed: Any = 0,
    em_kwargs: Mapping[str, Any] | None = None,
    nuts_kwargs: Mapping[str, Any] | None = None,
    return_fits: bool = False,
):
    """Rank numbers of classes ``K``, best first.

    Parameters
    ----------
    features : array (p, L), a layout, or ChoiceData
        Counts over items (the SMM), or choice data (the latent-class logit,
        :func:`smm_ppl.choice_data`; then ``counts=None``, ``em_kwargs`` go to
        :func:`smm_ppl.fit_latent_class` (e.g. ``shared``, ``fixed``), the
        parameters are its free ones, ``N`` is the number of units (persons in
        a panel) and LOO runs :func:`smm_ppl.sample_latent_class`).  The data
        choose the fit (:func:`smm_ppl.em.fit_components`) and the fit the
        sampler (:func:`smm_ppl.inference.nuts_from_fit`); the table reads
        what every result has (``log_likelihood``, ``n_params``, ``bic``,
        ``aic``, ``converged``).
    counts : array (p,) or None
    ks : list of int
        Candidate numbers of classes (distinct, each at most ``p``).
    method : {"bic", "aic", "loo"}, default "bic"
        ``"bic"``: ``-2 ell + k log N``; ``"aic"``: ``-2 ell + 2 k`` with
        ``k = (K - 1) + K L`` and ``ell`` the EM maximum (lower is better).
        ``"loo"``: count-weighted PSIS-LOO (:func:`smm_ppl.loo`) of NUTS started
        at the EM estimate (higher ``elpd_loo`` is better), with ``arviz_stats.compare``'s
        differences, their standard errors and stacking weights.
    seed : int or jax key
        Each ``K`` gets its own key derived from it.
    em_kwargs : dict, optional
        Passed to :func:`smm_ppl.fit_em` (e.g. ``max_iter``, ``init``).
    nuts_kwargs : dict, optional
        Passed to :func:`smm_ppl.sample_nuts` (``method="loo"`` only), e.g.
        ``num_chains``, ``num_warmup``, ``num_samples``.
    return_fits : bool, default False
        Also return ``{K: fit}`` (EM results, or the posterior DataTree for ``"loo"``).

    Returns
    -------
    pandas.DataFrame
        One row per ``K``, best first, index ``n_components``.  Columns for
        BIC/AIC: ``rank``, ``log_likelihood``, ``n_params``, ``bic``, ``aic``,
        ``delta`` (to the best), ``converged``.  For LOO: ``rank``, ``elpd_loo``,
        ``se``, ``p_loo``, ``elpd_diff``, ``dse``, ``weight``, ``warning``,
        ``log_likelihood`` (EM), ``n_params``, ``max_rhat``.
    (table, fits) when ``return_fits``.
    """
    import pandas as pd

    from .em import fit_components
    from .inference import nuts_from_fit

    ks = _check_ks(ks)
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {list(_METHODS)}, got {type(method).__name__}.")
    method = check_choice(method.lower(), "method", _METHODS)
    em_kwargs = _check_kwargs(em_kwargs, "em_kwargs")
    nuts_kwargs = _check_kwargs(nuts_kwargs, "nuts_kwargs")
    for bad in ("seed",):
        if bad in em_kwargs or bad in nuts_kwargs:
            raise ValueError(f"pass {bad} to compare_components itself, not in em_kwargs/nuts_kwargs.")
    if "init" in nuts_kwargs:
        raise ValueError("nuts_kwargs may not set init: NUTS starts at each K's EM estimate.")
    if not isinstance(return_fits, (bool, np.bool_)):
        raise TypeError("return_fits must be True or False.")
    key = check_key(seed)

    # The data choose the model (smm_ppl.em.fit_components) and every result speaks one vocabulary. The
    # largest K first: a K the data cannot have fails before the others are fitted.
    ems = {
        k: fit_components(features, counts, k, seed=jax.random.fold_in(key, 2 * k), **em_kwargs)
        for k in sorted(ks, reverse=True)
    }
    em_table = pd.DataFrame(
        [
            {
                "n_components": k,
                "log_likelihood": float(ems[k].log_likelihood),
                "n_params": ems[k].n_params,
                "bic": float(ems[k].bic),
                "aic": float(ems[k].aic),
                "converged": bool(ems[k].converged),
            }
            for k in ks
        ]
    ).set_index("n_components")
    ems = {k: ems[k] for k in ks}

    if method in ("bic", "aic"):
        table = em_table.sort_values(method, kind="stable")
        table.insert(0, "rank", np.arange(len(table)))
        table.insert(table.columns.get_loc("aic") + 1, "delta", table[method] - table[method].iloc[0])
        return (table, ems) if return_fits else table

    from .diagnostics import compare, loo, rhat

    fits = {k: nuts_from_fit(ems[k], seed=jax.random.fold_in(key, 2 * k + 1), **nuts_kwargs) for k in ks}
    if len(ks) > 1:
        cmp = compare({k: fits[k] for k in ks}, ic="loo")
        cmp.index = pd.Index([int(i) for i in cmp.index], name="n_components")
        table = cmp[["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "warning"]].copy()
    else:
        e = loo(fits[ks[0]])
        table = pd.DataFrame(
            {
                "rank": [0],
                "elpd_loo": [e.elpd],
                "se": [e.se],
                "p_loo": [e.p],
                "elpd_diff": [0.0],
                "dse": [0.0],
                "weight": [1.0],
                "warning": [bool(e.warning)],
            },
            index=pd.Index(ks, name="n_components"),
        )
    table["log_likelihood"] = em_table.loc[table.index, "log_likelihood"].values
    table["n_params"] = em_table.loc[table.index, "n_params"].values
    table["max_rhat"] = [rhat(fits[k])["max"] for k in table.index]
    table = table.astype({"rank": int, "warning": bool})
    return (table, fits) if return_fits else table
