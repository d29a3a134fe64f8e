"""Log-likelihood of a softmax mixture, in log space throughout (SPEC section 1).

The ``*_jax`` functions are pure and jittable (no validation) and are what the
EM, the NumPyro model and the diagnostics call; :func:`log_likelihood` is the
validated public entry point.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .data import as_data
from .params import SMMParams
from .validation import check_params

__all__ = [
    "log_likelihood",
    "log_mixture_probs",
    "log_component_probs_jax",
    "log_mixture_probs_jax",
    "log_responsibilities_jax",
    "log_likelihood_jax",
]


def log_component_probs_jax(features: jax.Array, atoms: jax.Array) -> jax.Array:
    """``log sigma_j(theta_k)`` as an array of shape ``(p, K)``."""
    return jax.nn.log_softmax(features @ atoms.T, axis=0)


def log_mixture_probs_jax(features: jax.Array, weights: jax.Array, atoms: jax.Array) -> jax.Array:
    """``log pi_j`` of shape ``(p,)``; zero weights give ``-inf`` terms that logsumexp ignores."""
    return jax.nn.logsumexp(log_component_probs_jax(features, atoms) + jnp.log(weights), axis=1)


def log_responsibilities_jax(features, weights, atoms):
    """E-step quantities: ``(log gamma (p, K), log pi (p,))``."""
    joint = log_component_probs_jax(features, atoms) + jnp.log(weights)
    log_pi = jax.nn.logsumexp(joint, axis=1)
    return joint - log_pi[:, None], log_pi


def log_likelihood_jax(features, counts, weights, atoms) -> jax.Array:
    """``sum_j n_j log pi_j``; items with ``n_j = 0`` contribute exactly zero (even if ``log pi_j = -inf``)."""
    log_pi = log_mixture_probs_jax(features, weights, atoms)
    return jnp.sum(jnp.where(counts > 0, counts * log_pi, 0.0))


_log_likelihood_jit = jax.jit(log_likelihood_jax)
_log_mixture_probs_jit = jax.jit(log_mixture_probs_jax)


def log_likelihood(features: Any, counts: Any, params: SMMParams) -> float:
    """Log-likelihood ``sum_j n_j log pi_j`` of counts under an SMM.

    The multinomial coefficient ``log N! - sum_j log n_j!`` is not included: it
    does not depend on the parameters, and without it the value is the
    log-likelihood of the ``N`` individual draws.

    Parameters
    ----------
    features : array of shape (p, L)
    counts : array of shape (p,)
        Non-negative integer counts of how often each item was chosen.
    params : SMMParams

    Returns
    -------
    float
    """
    data = as_data(features, counts)
    params = check_params(params, data.n_features)
    return float(_log_likelihood_jit(jnp.asarray(data.features), jnp.asarray(data.counts),
                                     jnp.asarray(params.weights), jnp.asarray(params.atoms)))


def log_mixture_probs(features: Any, params: SMMParams) -> np.ndarray:
    """Log choice probabilities ``log pi_j`` of every item, shape ``(p,)``."""
    from .validation import check_features

    features = check_features(features)
    params = check_params(params, features.shape[1])
    return np.asarray(_log_mixture_probs_jit(jnp.asarray(features), jnp.asarray(params.weights),
                                             jnp.asarray(params.atoms)))
