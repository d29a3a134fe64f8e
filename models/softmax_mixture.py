"""The softmax mixture as a NumPyro generative model (docs/math.md#bayesian-model).

``weights ~ Dirichlet(weights_concentration * 1_K)``,
``atoms[k] ~ Normal(0, atoms_scale^2 I_L)`` i.i.d.,
``counts ~ Multinomial(N, pi(weights, atoms))`` with the class marginalised by
logsumexp rather than sampled.

The observed counts enter as a plate over the items with ``n_j > 0``, each a
``numpyro.factor`` of ``log pi_j`` scaled by ``n_j``.  This gives the exact
multinomial log density (without the multinomial coefficient, which does not
depend on the parameters) *and* a pointwise log-likelihood of one value per
observed item through :func:`numpyro.infer.log_likelihood`, which ignores the
scale: each value is the log-likelihood of one draw of that item, as the
count-weighted LOO (docs/math.md#count-weighted-loo) needs.  Zero-count items still enter
every softmax normaliser.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from smm_ppl.layouts import item_counts

from .mixture import DEFAULT_ATOMS_SCALE, DEFAULT_WEIGHTS_CONCENTRATION, mixture_model, sample_class_parameters

__all__ = ["softmax_mixture", "DEFAULT_WEIGHTS_CONCENTRATION", "DEFAULT_ATOMS_SCALE"]


def _concrete_counts(counts) -> np.ndarray:
    try:
        return np.asarray(counts)
    except Exception as err:  # a tracer: the plate size must be known when the model is traced
        raise TypeError(
            "counts must be a concrete array, not a traced value: the plate over observed items needs "
            "its size when the model is traced (do not use jit_model_args=True with this model)."
        ) from err


def softmax_mixture(
    features,
    counts=None,
    *,
    n_components: int,
    n_obs: int | None = None,
    weights_concentration: float = DEFAULT_WEIGHTS_CONCENTRATION,
    atoms_scale: float = DEFAULT_ATOMS_SCALE,
    ordered: bool = False,
):
    """NumPyro model of a softmax mixture.

    Parameters
    ----------
    features : array of shape (p, L)
        Item features (fixed, observed).
    counts : array of shape (p,), optional
        Observed counts. With ``None`` the model simulates ``n_obs`` draws at the
        site ``"counts"`` (prior predictive through ``numpyro.infer.Predictive``).
    n_components : int
        Number of classes ``K`` (keyword only).
    n_obs : int, optional
        Number of draws to simulate when ``counts`` is ``None`` (required then).
    weights_concentration : float, default 1.0
        Symmetric Dirichlet concentration ``a0`` of the weights (1 = uniform on
        the simplex).
    atoms_scale : float, default 3.0
        Prior standard deviation ``s0`` of every atom coordinate, in the units
        of ``1 / features``. Scale features to unit variance for this default
        to be weakly informative.
    ordered : bool, default False
        Identify the classes by ordering the first atom coordinate
        (``atoms[0, 0] < atoms[1, 0] < ...``) instead of relabelling draws
        afterwards. The ordering prior is the Normal prior restricted to the
        ordered cone (times ``K!``); it distorts the posterior when classes
        are close along that coordinate.

    Sample sites
    ------------
    ``"weights"`` (K,), ``"atoms"`` (K, L), and the likelihood site ``"counts"``.
    """
    if counts is None:
        features = jnp.asarray(features)
        weights, atoms = sample_class_parameters(
            int(n_components),
            features.shape[1],
            weights_concentration=weights_concentration,
            atoms_scale=atoms_scale,
            ordered=ordered,
        )
        if n_obs is None:
            raise ValueError("n_obs is required when counts is None (it is the number of draws to simulate).")
        log_pi = item_counts(features, np.zeros(features.shape[0])).log_mixture_probs(weights, atoms)
        numpyro.sample("counts", dist.Multinomial(total_count=int(n_obs), logits=log_pi))
        return
    layout = item_counts(features, _concrete_counts(counts))
    mixture_model(
        layout,
        n_components=n_components,
        weights_concentration=weights_concentration,
        atoms_scale=atoms_scale,
        ordered=ordered,
    )
