"""Starting values for the samplers: one start per chain, all in the same labelling (docs/math.md#label-switching).

Every NUTS chain starts at the warm start plus a small Gaussian jitter in the
*unconstrained* space (different per chain), passed through
``MCMC.run(init_params=...)``: NumPyro's ``init_to_value`` would give all chains
the same start (numpyro issue 1615).  All chains then begin in the same
labelling, which is what makes R-hat meaningful for a mixture: from NumPyro's
default initialisation two chains can settle in different permutations of the
classes (or different local modes), and R-hat then measures the label
switching, not the mixing.

Start names are those of :data:`smm_ppl.em.INIT_NAMES`, with one meaning
everywhere: the EM estimate from that start.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import models
from ..core.params import SMMParams, floor_weights
from ..core.prior import DEFAULT_PRIOR, Prior, check_prior
from ..core.validation import check_key, check_params
from ..em import INIT_NAMES, fit_em
from ..layouts import Layout

__all__ = [
    "resolve_init",
    "chain_init_params",
    "model_kwargs",
    "sampler_prior",
    "site_values",
    "MIN_CHAIN_WEIGHT",
    "DEFAULT_INIT_NAME",
]

#: Weights this close to 0 have no finite stick-breaking coordinate: chains start above it.
MIN_CHAIN_WEIGHT = 1e-8
#: How a sampler's ``posterior.attrs["init"]`` names NumPyro's own initialisation.
DEFAULT_INIT_NAME = "numpyro-default"


def _is_em_result(obj: Any) -> bool:
    # EMResult is itself a NamedTuple: recognise it by its .params, not by type.
    return hasattr(obj, "params") and isinstance(obj.params, tuple)


def sampler_prior(value: Any, name: str = "prior") -> Prior:
    """The prior a sampler's model uses: ``value``, validated, or the default :class:`~smm_ppl.Prior`."""
    return DEFAULT_PRIOR if value is None else check_prior(value, name)


def resolve_init(
    init: Any, layout: Layout, n_components: int, seed: Any = 0, *, num_chains: int | None = None, prior: Any = None
):
    """Turn ``init`` into starting parameters.

    Parameters
    ----------
    init : EM result, SMMParams, str or None
        An EM result (anything with ``.params``, optionally
        ``.standard_errors``); an :class:`SMMParams` of shape ``(K,)``/``(K, L)``,
        or with a leading ``num_chains`` axis for one start per chain; a start
        name from :data:`smm_ppl.em.INIT_NAMES`, meaning the EM estimate from
        that start (``fit_em(..., init=name, prior=prior)``: the posterior mode
        of the prior the sampler samples, or the maximum likelihood estimate
        where that prior has no mode); or ``None`` for NumPyro's default
        initialisation (returns ``None``).
    layout : Layout (or anything :func:`smm_ppl.as_layout` accepts with counts inside)
    n_components : int
    seed : int or jax key
        Used by EM's starts.
    num_chains : int, optional
        Required to accept per-chain starts.
    prior : Prior, optional
        The sampler's prior: a start name means its posterior mode.

    Returns
    -------
    (params, standard_errors, name)
        ``params`` has shapes ``(C, K)`` and ``(C, K, L)`` with ``C`` = 1 for a
        single start (or ``num_chains`` for per-chain starts);
        ``standard_errors`` is an SMMParams or None; ``name`` says where the
        start came from: the start name, ``"em"`` (an EM result), ``"user"``
        (parameters) or ``"numpyro-default"``.
    """
    K, L = n_components, layout.n_features
    if init is None:
        return None, None, DEFAULT_INIT_NAME
    se = None
    if isinstance(init, str):
        if init not in INIT_NAMES:
            raise ValueError(
                f"init must be one of {list(INIT_NAMES)}, an SMMParams, an EM result or None; got {init!r}."
            )
        # Chains start at the mode of the posterior they sample; a prior with no mode (a0 < 1) starts at the MLE.
        has_mode = prior is not None and prior.weights_concentration >= 1.0
        res = fit_em(layout, None, K, init=init, seed=check_key(seed), prior=prior if has_mode else None)
        params, se, name = res.params, res.standard_errors, init
    elif _is_em_result(init):
        params, se, name = init.params, getattr(init, "standard_errors", None), "em"
    elif isinstance(init, tuple) and len(init) == 2:
        params, name = init, "user"
    else:
        raise TypeError(
            f"init must be an EM result (with .params), an SMMParams, one of {list(INIT_NAMES)} or None; "
            f"got {type(init).__name__}."
        )
    w = np.asarray(params[0], dtype=np.float64)
    a = np.asarray(params[1], dtype=np.float64)
    if w.ndim == 2 and a.ndim == 3:
        if num_chains is None or w.shape[0] != num_chains:
            raise ValueError(
                f"init has a leading axis of {w.shape[0]} starts; per-chain starts need exactly num_chains="
                f"{num_chains} of them."
            )
        checked = [check_params(SMMParams(w[c], a[c]), L, name=f"init[{c}]") for c in range(w.shape[0])]
        w = np.stack([c.weights for c in checked])
        a = np.stack([c.atoms for c in checked])
    else:
        p = check_params(SMMParams(w, a), L, name="init")
        w, a = p.weights[None], p.atoms[None]
    if w.shape[-1] != K:
        raise ValueError(f"init has {w.shape[-1]} components but n_components={K}.")
    if se is not None:
        se = SMMParams(np.asarray(se[0], dtype=np.float64), np.asarray(se[1], dtype=np.float64))
    return SMMParams(w, a), se, name


def model_kwargs(n_components: int, ordered: bool, prior: Prior) -> dict:
    """The keyword arguments of :func:`smm_ppl.models.mixture_model` for a sampler's settings."""
    return {
        "n_components": n_components,
        "ordered": ordered,
        "weights_concentration": float(prior.weights_concentration),
        "atoms_scale": float(prior.atoms_scale),
    }


def site_values(weights: np.ndarray, atoms: np.ndarray, ordered: bool) -> dict:
    """Constrained values of the model's sample sites for one start."""
    w = floor_weights(weights, MIN_CHAIN_WEIGHT)
    K = w.shape[0]
    if not ordered or K == 1:
        return {"weights": jnp.asarray(w), "atoms": jnp.asarray(atoms)}
    order = np.argsort(atoms[:, 0], kind="stable")
    first = atoms[order, 0].copy()
    # The ordered transform needs strictly increasing values (log of the gaps).
    gap = 1e-6 * max(1.0, float(np.abs(first).max()))
    for k in range(1, K):
        first[k] = max(first[k], first[k - 1] + gap)
    values = {"weights": jnp.asarray(w[order]), "atoms_first": jnp.asarray(first)}
    if atoms.shape[1] > 1:
        values["atoms_rest"] = jnp.asarray(atoms[order, 1:])
    return values


def chain_init_params(
    starts: SMMParams, num_chains: int, jitter: float, key: Any, *, model_args: tuple, model_kwargs: dict
) -> dict:
    """Per-chain *unconstrained* starting values for ``MCMC.run(init_params=...)``.

    Chain ``c`` starts at ``starts[c]`` (or the single start) mapped to the
    unconstrained space with ``numpyro.infer.util.unconstrain_fn``, plus
    ``jitter`` times a standard normal draw of its own.  The values have a
    leading ``num_chains`` axis when ``num_chains > 1`` (NumPyro's
    convention).  ``model_args`` are those of
    :func:`smm_ppl.models.mixture_model`: ``(layout,)``.
    """
    from numpyro.infer.util import unconstrain_fn

    per_chain = []
    keys = jax.random.split(check_key(key, "key"), num_chains)
    for c in range(num_chains):
        s = c if starts.weights.shape[0] > 1 else 0
        values = site_values(starts.weights[s], starts.atoms[s], bool(model_kwargs.get("ordered", False)))
        u = unconstrain_fn(models.mixture_model, model_args, model_kwargs, values)
        leaves, treedef = jax.tree_util.tree_flatten(u)
        sub = jax.random.split(keys[c], len(leaves))
        leaves = [
            v + jitter * jax.random.normal(k, jnp.shape(v), dtype=jnp.result_type(v)) for v, k in zip(leaves, sub)
        ]
        per_chain.append(jax.tree_util.tree_unflatten(treedef, leaves))
    if num_chains == 1:
        return per_chain[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_chain)
