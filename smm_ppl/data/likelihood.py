"""The public, validated log-likelihood entry points (docs/math.md#likelihood-of-counts).

The computation itself lives in one place, the data layouts
(:mod:`smm_ppl.layouts`; for counts over items :mod:`smm_ppl.layouts.items`,
whose pure jittable functions are re-exported here under their historical
``*_jax`` names).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core.params import SMMParams
from ..core.validation import check_features, check_params
from ..layouts import as_layout, bucketed, row_mesh
from ..layouts.items import log_component_probs as log_component_probs_jax
from ..layouts.items import log_likelihood as log_likelihood_jax
from ..layouts.items import log_mixture_probs as log_mixture_probs_jax
from ..layouts.items import log_responsibilities as log_responsibilities_jax

__all__ = [
    "log_likelihood",
    "layout_log_likelihood",
    "log_mixture_probs",
    "log_component_probs_jax",
    "log_mixture_probs_jax",
    "log_responsibilities_jax",
    "log_likelihood_jax",
]


@jax.jit
def _layout_log_likelihood(layout, weights, atoms):
    return layout.log_likelihood(weights, atoms)


def layout_log_likelihood(layout: Any, weights: Any, atoms: Any) -> float:
    """``sum_u n_u log pi_u`` of a (validated) layout, in float64 whatever the layout's precision."""
    return float(_layout_log_likelihood(layout, jnp.asarray(weights, jnp.float64), jnp.asarray(atoms, jnp.float64)))


_log_mixture_probs_jit = jax.jit(log_mixture_probs_jax)


def log_likelihood(features: Any, counts: Any, params: SMMParams, *, devices: Any = None) -> float:
    """Log-likelihood ``sum_j n_j log pi_j`` of counts under an SMM.

    The multinomial coefficient ``log N! - sum_j log n_j!`` is not included: it
    does not depend on the parameters, and without it the value is the
    log-likelihood of the ``N`` individual draws.

    Parameters
    ----------
    features : array of shape (p, L), or a data layout (then ``counts=None``)
    counts : array of shape (p,)
        Non-negative integer counts of how often each item was chosen.
    params : SMMParams
    devices : int, sequence of jax devices or Mesh, optional
        Split the items over these devices (see :func:`smm_ppl.fit_em`).

    Returns
    -------
    float
    """
    layout = as_layout(features, counts)
    mesh = row_mesh(devices)
    if mesh is not None:
        layout = bucketed(layout, mesh)
    params = check_params(params, layout.n_features)
    return layout_log_likelihood(layout, params.weights, params.atoms)


def log_mixture_probs(features: Any, params: SMMParams) -> np.ndarray:
    """Log choice probabilities ``log pi_j`` of every item, shape ``(p,)``."""
    features = check_features(features)
    params = check_params(params, features.shape[1])
    return np.asarray(
        _log_mixture_probs_jit(jnp.asarray(features), jnp.asarray(params.weights), jnp.asarray(params.atoms))
    )
