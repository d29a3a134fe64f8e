"""The latent-class logit on choice situations and panels, the class marginalised (docs/math.md#choice-situations-and-panels).

One sample site, ``"z"`` (P,): the free parameter vector of a
:class:`smm_ppl.choice.ParameterMap` (class-specific and shared
coefficients, then the membership coefficients of classes ``2 .. K``, in the
order of ``pmap.names``).  Its prior is ``Normal(0, prior_scale^2)``
independently per parameter, ``prior_scale = 10`` by default: weakly
informative on the scale of logit coefficients (a coefficient of 10 already
makes a one-unit change of its feature decide the choice), so that the
posterior is dominated by the likelihood whenever the data identify a
parameter, while a parameter the data do not identify (a class that no one
joins, a feature with no variation in a class) stays proper instead of
drifting to infinity.  With standardised features the prior is nearly flat
where the likelihood lives; features on large scales (prices in cents) need
a larger ``prior_scale`` or rescaling.

Deterministic sites, for reading the draws:

- ``"coefficients"`` (K, L): every class's coefficients, fixed ones included
  (``pmap.atoms(z)``).
- ``"shares"`` (K,): the class shares, the mean over units of the prior class
  probabilities (the same definition as ``LatentClassResult.weights``).

Its positional arguments ``(layout, pmap, prior_scale)`` are the data of the
package's one NUTS sampler and SVI program (:func:`smm_ppl.inference.nuts.run_chains`,
:func:`smm_ppl.inference.svi.run_svi`).

The likelihood is ``pmap.unit_log_likelihoods(z, layout)`` (the class summed
out by logsumexp, never sampled), entered as a plate over the units, each a
``numpyro.factor`` scaled by the unit's weight: the exact log density, and
one pointwise log-likelihood value per unit through
:func:`numpyro.infer.log_likelihood` (which ignores the scale): per person in
a panel, per situation otherwise, as LOO and WAIC need.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from smm_ppl.choice.bayes import DEFAULT_PRIOR_SCALE

__all__ = ["latent_class_model", "DEFAULT_PRIOR_SCALE"]


def latent_class_model(layout, pmap, prior_scale: Any = DEFAULT_PRIOR_SCALE, *, site: str = "obs"):
    """NumPyro model of the latent-class logit (sample site ``"z"``, likelihood site ``site``).

    Parameters
    ----------
    layout : ChoiceSituations
        The choice data's layout (``ChoiceData.layout``); may be a traced argument.
    pmap : ParameterMap
        The specification (``LatentClassResult.parameter_map``); a pytree, may be traced.
    prior_scale : float or array (P,), default 10
        Prior standard deviation of the free parameters, one for all or one per
        parameter (in the order of ``pmap.names``).
    site : str, default "obs"
        Name of the likelihood site (one value per unit).
    """
    P = len(pmap.names)
    scale = jnp.broadcast_to(jnp.asarray(prior_scale, dtype=jnp.result_type(float)), (P,))
    z = numpyro.sample("z", dist.Normal(jnp.zeros(P, scale.dtype), scale).to_event(1))
    numpyro.deterministic("coefficients", pmap.atoms(z))
    numpyro.deterministic("shares", jnp.mean(jnp.exp(pmap.log_class_probs(z)), axis=0))
    log_lik = pmap.unit_log_likelihoods(z, layout)
    w = jnp.asarray(layout.unit_weights, dtype=log_lik.dtype)
    with numpyro.plate("units", log_lik.shape[0]):
        # A unit of weight 0 is masked (a scale must be positive, so it gets 1 before the mask).
        with handlers.mask(mask=w > 0), handlers.scale(scale=jnp.where(w > 0, w, 1.0)):
            numpyro.factor(site, log_lik)
