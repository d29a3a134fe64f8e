"""The mixture model over any data layout, with the class marginalised (docs/math.md#bayesian-model).

``weights ~ Dirichlet(weights_concentration * 1_K)``, ``atoms[k] ~
Normal(0, atoms_scale^2 I_L)`` i.i.d.; the layout gives ``log pi(unit)`` by
logsumexp over classes (never sampled).  The observations enter as a plate
over the units with observations, each a ``numpyro.factor`` of ``log pi``
scaled by the unit's count: the exact log density *and* one pointwise
log-likelihood value per unit through :func:`numpyro.infer.log_likelihood`
(which ignores the scale), as the count-weighted LOO needs.  Units without
observations still shape every normaliser through the layout; with
``units="all"`` they are masked instead of sliced out (a traceable model).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers

from smm_ppl.core.prior import DEFAULT_ATOMS_SCALE, DEFAULT_WEIGHTS_CONCENTRATION

__all__ = ["mixture_model", "sample_class_parameters", "DEFAULT_WEIGHTS_CONCENTRATION", "DEFAULT_ATOMS_SCALE"]


def sample_class_parameters(
    n_components: int,
    n_features: int,
    *,
    weights_concentration: float = DEFAULT_WEIGHTS_CONCENTRATION,
    atoms_scale: float = DEFAULT_ATOMS_SCALE,
    ordered: bool = False,
):
    """The sample sites ``"weights"`` (K,) and ``"atoms"`` (K, L) under the priors.

    ``ordered=True`` identifies the classes by ordering the first atom
    coordinate (sites ``"atoms_first"``, ``"atoms_rest"``, and ``"atoms"`` as a
    deterministic site): the Normal prior restricted to the ordered cone
    (times ``K!``).
    """
    K = int(n_components)
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.full(K, weights_concentration)))
    if ordered and K > 1:
        first = numpyro.sample("atoms_first", dist.ImproperUniform(dist.constraints.ordered_vector, (), (K,)))
        numpyro.factor("atoms_first_prior", dist.Normal(0.0, atoms_scale).log_prob(first).sum())
        rest = (
            numpyro.sample("atoms_rest", dist.Normal(0.0, atoms_scale).expand([K, n_features - 1]).to_event(2))
            if n_features > 1
            else jnp.zeros((K, 0))
        )
        atoms = numpyro.deterministic("atoms", jnp.concatenate([first[:, None], rest], axis=1))
    else:
        atoms = numpyro.sample("atoms", dist.Normal(0.0, atoms_scale).expand([K, n_features]).to_event(2))
    return weights, atoms


def mixture_model(
    layout,
    *,
    n_components: int,
    weights_concentration: float = DEFAULT_WEIGHTS_CONCENTRATION,
    atoms_scale: float = DEFAULT_ATOMS_SCALE,
    ordered: bool = False,
    site: str = "counts",
    units: str = "observed",
):
    """NumPyro model of a softmax mixture on a data layout (sample sites ``"weights"``, ``"atoms"``).

    ``units="observed"``: the likelihood site ``site`` has one value per unit
    with observations (the counts must be concrete).  ``units="all"``: one
    value per unit, those without observations (padding included) masked
    out; nothing depends on which units are observed, so the layout can be a
    traced argument (``MCMC(jit_model_args=True)``) and data of another size
    in the same shape bucket reuse the compiled sampler.  The log density is
    the same.
    """
    weights, atoms = sample_class_parameters(
        n_components,
        layout.n_features,
        weights_concentration=weights_concentration,
        atoms_scale=atoms_scale,
        ordered=ordered,
    )
    log_pi = layout.log_mixture_probs(weights, atoms)
    counts = jnp.asarray(layout.unit_counts())
    if units == "observed":
        observed = layout.observed_units()
        counts, log_pi = counts[observed], log_pi[observed]
    elif units != "all":
        raise ValueError(f"units must be 'observed' or 'all', got {units!r}.")
    with numpyro.plate("units", counts.shape[0]):
        # Masked units get scale 1 (a scale must be positive); the mask zeroes them.
        scale = jnp.where(counts > 0, counts, 1).astype(log_pi.dtype)
        with handlers.mask(mask=counts > 0), handlers.scale(scale=scale):
            numpyro.factor(site, log_pi)
