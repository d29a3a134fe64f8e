"""Predictive draws: counts (or choices) replicated from parameter draws, compiled and batched (docs/guides/checking.md).

Counts over items
-----------------
For each draw ``(weights, atoms)`` the mixture's item probabilities ``pi``
(p,) and ``N`` multinomial draws from them (``N``: the observed number of
choices, or ``n_obs``).  Two exact samplers, chosen by size:

- ``N <= 16 p``: ``N`` uniforms through the inverse of ``cumsum(pi)``
  (``searchsorted``) and a count per item: ``O(p + N log p)`` work and
  ``p + N`` numbers per draw;
- larger ``N``: :func:`jax.random.multinomial`, a chain of ``p`` binomial
  draws: ``O(p)`` work and memory per draw, whatever ``N``.

Choices
-------
For the latent-class logit (a :class:`~smm_ppl.layouts.ChoiceSituations`
layout) every draw first draws each unit's class from its prior class
probabilities (a new person of the same covariates: the replicated data of
a panel keep one class per person), then each situation's choices from its
class's softmax over the available alternatives, as many as the situation
had.

Cost
----
Draws run ``jax.vmap``-ed in batches of ``batch_size`` draws (default: as
many as keep one batch under :data:`smm_ppl.core.programs.BATCH_NUMBERS` numbers,
20 million, about 160 MB in float64), one compiled program per shape bucket.
The output itself is ``draws x p`` integers: 1,000 draws of ``p = 30,522``
items are 233 MiB of int64, so for large ``p`` thin the posterior first
(``num_draws``).  On a shared 2-core CPU those 1,000 draws (L = 16, K = 4)
took 37 s at ``N = 200,000`` (inverse CDF) and 105 s at ``N = 10^7``
(binomial chains), 1.7 GB peak.  Nothing here imports ArviZ: :mod:`smm_ppl.diagnostics.predictive`
assembles the groups.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core.prior import Prior
from ..core.programs import batch_size as default_batch_size
from ..core.programs import jit_program
from ..core.validation import check_features, check_key, check_n_components, check_positive_int
from ..layouts import ChoiceSituations, ItemCounts, as_layout, bucketed, item_counts
from .init import sampler_prior

__all__ = [
    "item_count_draws",
    "choice_draws",
    "prior_draws",
    "posterior_predictive",
    "sample_prior_predictive",
    "loo_pit_data",
    "with_posterior_predictive",
    "INVERSE_CDF_FACTOR",
]

#: The inverse-CDF sampler draws counts while ``N <= INVERSE_CDF_FACTOR * p``; above, binomial chains.
INVERSE_CDF_FACTOR = 16


def _bucket(n: int) -> int:
    """The next power of two: the number of uniform slots one compiled program serves."""
    return 1 << max(0, int(n - 1).bit_length())


@functools.partial(jit_program, static_argnames=("n_slots",), name="predictive_counts")
def _counts_batch(layout, weights, atoms, n_obs, keys, *, n_slots: int):
    def one(w, a, key):
        log_pi = layout.log_mixture_probs(w, a)
        probs = jnp.exp(log_pi - jax.nn.logsumexp(log_pi))
        if n_slots == 0:
            return jax.random.multinomial(key, n_obs, probs)
        cdf = jnp.cumsum(probs)
        # u * cdf[-1] < cdf[-1]: every uniform lands on an item of positive mass (padding has none).
        u = jax.random.uniform(key, (n_slots,), dtype=cdf.dtype) * cdf[-1]
        idx = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), probs.shape[0] - 1)
        used = (jnp.arange(n_slots) < n_obs).astype(probs.dtype)
        return jnp.zeros_like(probs).at[idx].add(used)

    return jax.vmap(one)(weights, atoms, keys)


def _flat_draws(weights: Any, atoms: Any):
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    if w.ndim < 1 or a.shape[:-1] != w.shape:
        raise ValueError(f"weights (..., K) and atoms (..., K, L) must agree, got shapes {w.shape} and {a.shape}.")
    return w.shape[:-1], w.reshape(-1, w.shape[-1]), a.reshape((-1,) + a.shape[-2:])


def _padded_draws(x: np.ndarray, size: int) -> np.ndarray:
    # Every batch has the same number of draws (the last one padded by repeats): one compiled shape.
    return x if x.shape[0] == size else np.concatenate([x, np.repeat(x[-1:], size - x.shape[0], axis=0)])


def _in_batches(run, arrays: tuple, seed: Any, size: int) -> np.ndarray:
    """``run(*batch_arrays, keys)`` over the draws (leading axis) in batches of ``size``: int64 counts, stacked.

    Draw ``i`` always gets key ``i`` of ``split(seed, n)``, so the result does not depend on ``size``.
    """
    n = arrays[0].shape[0]
    size = min(size, n)
    keys = np.asarray(jax.random.split(check_key(seed), n))
    parts = []
    for s in range(0, n, size):
        e = min(n, s + size)
        draws = run(*(_padded_draws(x[s:e], size) for x in arrays), _padded_draws(keys[s:e], size))
        parts.append(np.rint(np.asarray(draws)[: e - s]).astype(np.int64))
    return np.concatenate(parts, axis=0)


def item_count_draws(
    layout: Any,
    weights: Any,
    atoms: Any,
    seed: Any = 0,
    *,
    n_obs: int | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Multinomial counts over the items for every parameter draw.

    Parameters
    ----------
    layout : ItemCounts, or features (p, L)
        The items (a layout's counts give the default ``n_obs``).
    weights : array (..., K)
    atoms : array (..., K, L)
    seed : int or jax.random key
    n_obs : int, optional
        Choices per draw; default the layout's number of observations.
    batch_size : int, optional
        Draws per compiled batch (see the module notes).

    Returns
    -------
    ndarray of int64, shape (..., p), every row summing to ``n_obs``
    """
    if not isinstance(layout, ItemCounts):
        x = check_features(layout, check_rank=False)
        layout = item_counts(x, np.zeros(x.shape[0]))
    p = layout.n_rows
    n = layout.n_obs if n_obs is None else check_positive_int(n_obs, "n_obs")
    if n <= 0:
        raise ValueError("n_obs: the layout has no observations; pass n_obs= (the choices to draw per draw).")
    batch, w, a = _flat_draws(weights, atoms)
    padded = bucketed(layout)
    slots = _bucket(n) if n <= INVERSE_CDF_FACTOR * p else 0
    per_draw = padded.n_rows * (w.shape[1] + 2) + slots
    size = (
        default_batch_size(w.shape[0], per_draw) if batch_size is None else check_positive_int(batch_size, "batch_size")
    )
    program = functools.partial(_counts_batch, n_slots=slots)
    out = _in_batches(lambda w, a, k: program(padded, w, a, float(n), k), (w, a), seed, size)
    return out[:, :p].reshape(batch + (p,))


@jit_program(name="predictive_choices")
def _choices_batch(layout, totals, log_class_probs, atoms, keys):
    slots = jnp.asarray(layout.slots)
    valid = jnp.asarray(layout.slot_valid)
    x = jnp.asarray(layout.features)
    row_unit = jnp.asarray(layout.unit)[jnp.asarray(layout.situation)]

    def one(lcp, a, key):
        key_class, key_choice = jax.random.split(key)
        cls = jax.random.categorical(key_class, lcp, axis=-1)  # (U,) one class per unit
        logits = jnp.sum(x * a[cls[row_unit]], axis=-1)  # (R,) each row under its unit's class
        log_p = layout.log_row_probs(logits[None])[0]
        probs = jnp.where(valid, jnp.exp(log_p[slots]), 0.0)  # (S, J)
        dense = jax.random.multinomial(key_choice, totals, probs)
        return dense.reshape(-1)[jnp.asarray(layout.row_slot)]

    return jax.vmap(one)(log_class_probs, atoms, keys)


def choice_draws(
    layout: ChoiceSituations,
    log_class_probs: Any,
    atoms: Any,
    seed: Any = 0,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """Replicated choices of a choice layout for every parameter draw.

    Parameters
    ----------
    layout : ChoiceSituations
        The situations (their choices' totals are kept: a situation with
        ``n`` choices gets ``n`` new ones).
    log_class_probs : array (..., U, K)
        Each unit's prior log class probabilities under each draw.
    atoms : array (..., K, L)
        Each class's coefficients under each draw.
    seed : int or jax.random key
    batch_size : int, optional
        Draws per compiled batch.

    Returns
    -------
    ndarray of int64, shape (..., R): how often each row (available alternative) was chosen
    """
    lcp = np.asarray(log_class_probs, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    batch = a.shape[:-2]
    lcp = lcp.reshape((-1,) + lcp.shape[-2:])
    a = a.reshape((-1,) + a.shape[-2:])
    counts = np.asarray(layout.counts, dtype=np.float64)
    totals = np.bincount(np.asarray(layout.situation), weights=counts, minlength=layout.n_situations)
    S, J = layout.n_situations, layout.n_slots
    per_draw = layout.n_rows * (a.shape[1] + 2) + S * J * 2
    size = (
        default_batch_size(a.shape[0], per_draw) if batch_size is None else check_positive_int(batch_size, "batch_size")
    )
    out = _in_batches(lambda c, x, k: _choices_batch(layout, totals, c, x, k), (lcp, a), seed, size)
    return out.reshape(batch + (layout.n_rows,))


def prior_draws(
    prior: Prior | None, n_components: int, n_features: int, num_draws: int, seed: Any = 0, *, ordered: bool = False
):
    """``num_draws`` draws of ``(weights, atoms)`` from the model's prior (:class:`~smm_ppl.Prior`).

    ``ordered=True``: the ordered model's prior, the classes sorted by their
    first atom coordinate (the Normal prior restricted to the ordered cone).

    Returns
    -------
    weights : ndarray (num_draws, K)
    atoms : ndarray (num_draws, K, L)
    """
    prior = sampler_prior(prior)
    K = check_positive_int(n_components, "n_components")
    L = check_positive_int(n_features, "n_features")
    S = check_positive_int(num_draws, "num_draws")
    key_w, key_a = jax.random.split(check_key(seed))
    alpha = jnp.full((K,), float(prior.weights_concentration))
    weights = np.asarray(jax.random.dirichlet(key_w, alpha, (S,)), dtype=np.float64)
    atoms = float(prior.atoms_scale) * np.asarray(jax.random.normal(key_a, (S, K, L)), dtype=np.float64)
    if ordered:
        order = np.argsort(atoms[..., 0], axis=-1)
        weights = np.take_along_axis(weights, order, axis=-1)
        atoms = np.take_along_axis(atoms, order[..., None], axis=-2)
    return weights, atoms


def _is_latent_class(idata: Any) -> bool:
    return "z" in idata.posterior.data_vars and "weights" not in idata.posterior.data_vars


def _smm_layout(idata: Any, data: Any):
    if data is None:
        const = getattr(idata, "constant_data", None)
        obs = getattr(idata, "observed_data", None)
        if const is None or obs is None or "features" not in const or "counts" not in obs:
            raise ValueError(
                "posterior_predictive: idata has no constant_data['features'] and observed_data['counts']; "
                "pass data=(features, counts) or the data layout."
            )
        return as_layout(np.asarray(const["features"].values), np.asarray(obs["counts"].values))
    if isinstance(data, tuple) and len(data) == 2:
        return as_layout(*data)
    return as_layout(data)


def posterior_predictive(
    idata: Any, data: Any = None, *, seed: Any = 0, batch_size: int | None = None, num_draws: int | None = None
):
    """Add the ``posterior_predictive`` group: data replicated from every posterior draw.

    Parameters
    ----------
    idata : DataTree
        A result of :func:`smm_ppl.sample_nuts`, ``fit_svi(...).idata``,
        :func:`smm_ppl.laplace`, :func:`smm_ppl.sample_latent_class` or
        :func:`smm_ppl.fit_latent_class_svi`.
    data : optional
        Softmax mixture: ``None`` (the features and counts stored in
        ``idata``), ``(features, counts)`` or a data layout.  Latent-class
        logit: the :class:`~smm_ppl.LatentClassResult` the sampler started
        at (it carries the specification and the choice situations).
    seed : int or jax.random key
    batch_size : int, optional
        Draws per compiled batch (see the module notes on memory).
    num_draws : int, optional
        Replicate only this many draws per chain (evenly spaced; the
        posterior group is thinned alike so the groups stay paired).  For
        large ``p``, where ``draws x p`` counts do not fit.

    Returns
    -------
    The same ``idata``, with ``posterior_predictive`` (``counts`` (chain,
    draw, item) for the mixture, ``choices`` (chain, draw, row) for choice
    data, matching ``observed_data``), so that ArviZ's predictive checks
    (``arviz_plots.plot_ppc_dist``, ``plot_ppc_pit``, ``plot_ppc_tstat``,
    ``arviz_stats.loo_pit`` and ``plot_loo_pit``) run on it.
    """
    from ..diagnostics.predictive import add_groups, thin_draws

    if not hasattr(idata, "posterior"):
        raise TypeError(
            f"idata must have a posterior group (a result of smm_ppl's samplers), got {type(idata).__name__}."
        )
    if num_draws is not None:
        idata = thin_draws(idata, check_positive_int(num_draws, "num_draws"))
    post = idata.posterior
    if _is_latent_class(idata):
        if not hasattr(data, "parameter_map") or not hasattr(data, "data"):
            raise TypeError(
                "posterior_predictive of a latent-class posterior needs data=<the LatentClassResult the sampler "
                f"started at> (its specification and choice situations), got {type(data).__name__}."
            )
        pmap, layout = data.parameter_map, data.data.layout
        z = np.asarray(post["z"].values, dtype=np.float64)
        if z.shape[-1] != pmap.n_params:
            raise ValueError(f"idata's z has {z.shape[-1]} parameters, the result {pmap.n_params}: not the same model.")
        atoms, lcp = _class_parameters(pmap, z.reshape(-1, z.shape[-1]))
        draws = choice_draws(layout, lcp, atoms, seed, batch_size=batch_size).reshape(z.shape[:2] + (-1,))
        variables = {"choices": (("chain", "draw", "row"), draws)}
        coords = {"row": np.arange(layout.n_rows)}
    else:
        layout = _smm_layout(idata, data)
        if not isinstance(layout, ItemCounts):
            raise TypeError(f"posterior_predictive draws counts over items; got a {type(layout).__name__} layout.")
        draws = item_count_draws(layout, post["weights"].values, post["atoms"].values, seed, batch_size=batch_size)
        variables = {"counts": (("chain", "draw", "item"), draws)}
        coords = {"item": np.arange(layout.n_rows)}
    return add_groups(idata, {"posterior_predictive": variables}, coords)


def with_posterior_predictive(idata: Any, data: Any, flag: Any, seed: Any):
    """``idata`` with the ``posterior_predictive`` group when ``flag`` (the samplers' ``posterior_predictive=``)."""
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"posterior_predictive must be True or False, got {flag!r}.")
    return posterior_predictive(idata, data, seed=seed) if flag else idata


@jax.jit
def _class_parameters_jit(pmap, z):
    return jax.vmap(pmap.atoms)(z), jax.vmap(pmap.log_class_probs)(z)


def _class_parameters(pmap, z: np.ndarray):
    atoms, lcp = _class_parameters_jit(pmap, jnp.asarray(z))
    return np.asarray(atoms, dtype=np.float64), np.asarray(lcp, dtype=np.float64)


def sample_prior_predictive(
    features: Any,
    counts: Any = None,
    n_components: int | None = None,
    *,
    n_obs: int | None = None,
    prior: Prior | None = None,
    ordered: bool = False,
    num_draws: int = 500,
    seed: Any = 0,
    batch_size: int | None = None,
):
    """Draws from the prior and the prior predictive of the softmax mixture, as ArviZ groups.

    Parameters
    ----------
    features : array (p, L), or a data layout of counts over items (then ``counts=None``)
    counts : array (p,), optional
        Observed counts: stored as ``observed_data`` (for
        ``arviz_plots.plot_ppc_dist(..., group="prior_predictive")``) and
        giving the default ``n_obs``.
    n_components : int
        ``K``.
    n_obs : int, optional
        Choices per simulated data set (default: the observed total).
    prior : Prior, optional
        The model's prior (default ``smm.Prior()``), as the samplers take it.
    ordered : bool, default False
        The ordered model's prior (classes sorted by the first atom coordinate).
    num_draws : int, default 500
    seed : int or jax.random key
    batch_size : int, optional
        Draws per compiled batch (see :func:`posterior_predictive`).

    Returns
    -------
    DataTree
        ``prior``: ``weights`` (chain, draw, component), ``atoms`` (chain,
        draw, component, feature), one chain; ``prior_predictive``:
        ``counts`` (chain, draw, item); ``observed_data`` (with counts) and
        ``constant_data`` (``features``).

    Examples
    --------
    >>> import smm_ppl as smm
    >>> X = smm.simulate_features(0, n_items=30, n_features=2)
    >>> dt = smm.sample_prior_predictive(X, n_components=2, n_obs=100, num_draws=50, seed=0)
    >>> dt["prior_predictive"]["counts"].shape
    (1, 50, 30)
    """
    from ..diagnostics.predictive import predictive_tree

    if n_components is None:
        raise TypeError("sample_prior_predictive needs n_components (the number of classes K).")
    if counts is None and not isinstance(features, ItemCounts):
        x = check_features(features, check_rank=False)
        layout = item_counts(x, np.zeros(x.shape[0]))
        observed = None
    else:
        layout = as_layout(features, counts)
        if not isinstance(layout, ItemCounts):
            raise TypeError(f"sample_prior_predictive draws counts over items; got a {type(layout).__name__} layout.")
        observed = np.rint(np.asarray(layout.unit_counts(), dtype=np.float64)).astype(np.int64)
    K = check_n_components(n_components, layout.n_rows)
    n = (layout.n_obs if observed is not None else None) if n_obs is None else check_positive_int(n_obs, "n_obs")
    if n is None:
        raise ValueError("sample_prior_predictive: give counts or n_obs (the choices per simulated data set).")
    key_prior, key_counts = jax.random.split(check_key(seed))
    weights, atoms = prior_draws(prior, K, layout.n_features, num_draws, key_prior, ordered=bool(ordered))
    sim = item_count_draws(layout, weights, atoms, key_counts, n_obs=n, batch_size=batch_size)
    p = sampler_prior(prior)
    groups = {
        "prior": {
            "weights": (("chain", "draw", "component"), weights[None]),
            "atoms": (("chain", "draw", "component", "feature"), atoms[None]),
        },
        "prior_predictive": {"counts": (("chain", "draw", "item"), sim[None])},
        "constant_data": {"features": (("item", "feature"), np.asarray(layout.features, dtype=np.float64))},
    }
    if observed is not None:
        groups["observed_data"] = {"counts": (("item",), observed)}
    attrs = {
        "weights_concentration": p.weights_concentration,
        "atoms_scale": p.atoms_scale,
        "ordered": int(bool(ordered)),
        "n_obs": int(n),
    }
    coords = {
        "item": np.arange(layout.n_rows),
        "component": np.arange(K),
        "feature": np.arange(layout.n_features),
    }
    return predictive_tree(groups, coords, attrs)


def loo_pit_data(idata: Any, data: Any = None):
    """The groups ArviZ's LOO-PIT needs, with the pointwise log-likelihood of what is replicated.

    ``idata.log_likelihood`` holds what LOO needs: for the mixture ``log pi_j``
    of *one* observation of each observed item (the count-weighted LOO), for
    choice data one value per unit.  The LOO-PIT of a replicated value needs
    the likelihood of that value, on the same coordinates: here, for the
    mixture, every item's count, ``log Binomial(n_j; N, pi_j)`` (leave the
    item's count out), and for choice data every row's choices under its
    unit's log-likelihood (leave the person, or situation, out).  So
    ``arviz_plots.plot_loo_pit(smm.loo_pit_data(idata))`` and
    ``arviz_stats.loo_pit(smm.loo_pit_data(idata))`` compute the LOO-PIT of
    the item counts (of the chosen rows).

    Parameters
    ----------
    idata : DataTree
        A result with its ``posterior_predictive`` group
        (:func:`posterior_predictive`).
    data : optional
        As for :func:`posterior_predictive` (for choice data the
        :class:`~smm_ppl.LatentClassResult`).

    Returns
    -------
    DataTree
        ``posterior``, ``posterior_predictive``, ``observed_data`` and that
        ``log_likelihood``; ``idata`` itself is unchanged.
    """
    from scipy.special import gammaln

    from ..diagnostics.predictive import predictive_tree
    from .idata import unit_log_likelihood_draws

    groups = [g for g in ("posterior", "posterior_predictive", "observed_data") if g in _groups(idata)]
    if "posterior_predictive" not in groups:
        raise ValueError("loo_pit_data: idata has no posterior_predictive group; call smm.posterior_predictive first.")
    post = idata.posterior
    if _is_latent_class(idata):
        if not hasattr(data, "parameter_map"):
            raise TypeError("loo_pit_data of a latent-class posterior needs data=<the LatentClassResult>.")
        layout = data.data.layout
        unit_ll = np.asarray(idata.log_likelihood["obs"].values, dtype=np.float64)
        row_unit = np.asarray(layout.unit)[np.asarray(layout.situation)]
        ll = {"choices": (("chain", "draw", "row"), unit_ll[..., row_unit])}
        coords = {"row": np.arange(layout.n_rows)}
    else:
        layout = _smm_layout(idata, data)
        p = layout.n_rows
        log_pi = unit_log_likelihood_draws(layout, post["weights"].values, post["atoms"].values, np.arange(p))
        n = np.asarray(layout.unit_counts(), dtype=np.float64)
        N = float(n.sum())
        log_rest = np.log1p(-np.minimum(np.exp(log_pi), 1.0 - 1e-16))
        binom = gammaln(N + 1.0) - gammaln(n + 1.0) - gammaln(N - n + 1.0)
        ll = {"counts": (("chain", "draw", "item"), binom + n * log_pi + (N - n) * log_rest)}
        coords = {"item": np.arange(p)}
    tree = predictive_tree({"log_likelihood": ll}, coords)
    for g in groups:
        tree[g] = idata[g].copy() if hasattr(idata[g], "copy") else idata[g]
    return tree


def _groups(idata: Any) -> list[str]:
    if hasattr(idata, "children"):
        return list(idata.children)
    return list(idata.groups())
