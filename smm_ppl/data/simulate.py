"""Simulated designs and counts (docs/math.md#the-model)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core.params import SMMParams
from ..core.programs import jit_program, on_device
from ..core.validation import check_features, check_key, check_params, check_positive_int
from ..layouts import rows_bucket
from .likelihood import log_mixture_probs_jax

__all__ = ["simulate_features", "simulate_counts", "simulate_params"]


def simulate_features(
    seed: Any,
    n_items: int,
    n_features: int,
    cov: Any = None,
    mean: Any = None,
) -> np.ndarray:
    """Gaussian design: ``n_items`` rows drawn i.i.d. from ``N(mean, cov)``.

    Parameters
    ----------
    seed : int or jax.random key
    n_items, n_features : int
        ``p`` and ``L``.
    cov : array of shape (L, L), optional
        Symmetric positive-definite covariance; identity if omitted.
    mean : array of shape (L,), optional
        Zero if omitted.

    Returns
    -------
    features : ndarray of shape (n_items, n_features), float64
    """
    key = check_key(seed)
    p = check_positive_int(n_items, "n_items", minimum=2)
    L = check_positive_int(n_features, "n_features")
    z = np.asarray(
        jax.random.normal(key, (p, L), dtype=jnp.float64 if jax.config.jax_enable_x64 else jnp.float32),
        dtype=np.float64,
    )
    if cov is not None:
        c = np.asarray(cov, dtype=np.float64)
        if c.shape != (L, L):
            raise ValueError(f"cov must have shape (n_features, n_features) = ({L}, {L}), got {c.shape}.")
        if not np.allclose(c, c.T, atol=1e-10 * max(1.0, np.abs(c).max())):
            raise ValueError("cov must be symmetric.")
        try:
            chol = np.linalg.cholesky(c)
        except np.linalg.LinAlgError as err:
            raise ValueError("cov must be positive definite (its Cholesky factorisation failed).") from err
        z = z @ chol.T
    if mean is not None:
        m = np.asarray(mean, dtype=np.float64)
        if m.shape != (L,):
            raise ValueError(f"mean must have shape (n_features,) = ({L},), got {m.shape}.")
        if not np.isfinite(m).all():
            raise ValueError("mean must be finite.")
        z = z + m
    return z


@jax.jit
def _mixture_probs(features, weights, atoms):
    log_pi = log_mixture_probs_jax(features, weights, atoms)
    return jnp.exp(log_pi - jax.nn.logsumexp(log_pi)), log_pi


@jit_program(name="simulate")
def _draw_counts(key, n_obs, probs):
    # n_obs is traced and the probabilities padded to their row bucket with zeros, so that one
    # compilation (seconds: the multinomial's binomial sampler) serves every sample size and every
    # number of items in the bucket.  The padding comes last: the multinomial draws categories in
    # order with one key each (keys split per index), so the items' counts are those of the
    # unpadded draw.
    return jax.random.multinomial(key, n_obs, probs)


def simulate_counts(seed: Any, features: Any, params: SMMParams, n_obs: int) -> np.ndarray:
    """Draw ``n_obs`` choices from the mixture and return their counts.

    Parameters
    ----------
    seed : int or jax.random key
    features : array of shape (p, L)
    params : SMMParams
    n_obs : int
        Total number of draws ``N``.

    Returns
    -------
    counts : ndarray of int64, shape (p,), summing to ``n_obs``
    """
    key = check_key(seed)
    x = check_features(features, check_rank=False)
    params = check_params(params, x.shape[1])
    n = check_positive_int(n_obs, "n_obs")
    probs, log_pi = _mixture_probs(on_device(x), on_device(params.weights), on_device(params.atoms))
    p = x.shape[0]
    padded = np.zeros(rows_bucket(p, x.shape[1]), dtype=probs.dtype)
    padded[:p] = np.asarray(probs)
    counts = np.asarray(_draw_counts(key, float(n), padded))[:p].round().astype(np.int64)
    log_pi = np.asarray(log_pi)
    # The float multinomial can be off by one through round-off in its running total.
    diff = n - int(counts.sum())
    if diff:
        counts[int(np.argmax(log_pi))] += diff
    return counts


def simulate_params(
    seed: Any,
    n_components: int,
    n_features: int,
    *,
    atoms_scale: float = 1.0,
    min_separation: float = 0.0,
    weights_concentration: float | None = None,
) -> SMMParams:
    """Random parameters for simulation studies.

    Atoms are ``N(0, atoms_scale^2 I)``, redrawn (up to 100 times) until every
    pair is at least ``min_separation`` apart; weights are uniform, or
    ``Dirichlet(weights_concentration)`` when given.
    """
    from ..core.validation import check_nonnegative_float, check_positive_float

    key = check_key(seed)
    K = check_positive_int(n_components, "n_components")
    L = check_positive_int(n_features, "n_features")
    atoms_scale = check_positive_float(atoms_scale, "atoms_scale")
    min_separation = check_nonnegative_float(min_separation, "min_separation")
    key_w, key_a = jax.random.split(key)
    for attempt in range(100):
        atoms = atoms_scale * np.asarray(
            jax.random.normal(jax.random.fold_in(key_a, attempt), (K, L)), dtype=np.float64
        )
        if K == 1:
            break
        d = np.linalg.norm(atoms[:, None] - atoms[None], axis=-1)
        if d[np.triu_indices(K, 1)].min() >= min_separation:
            break
    else:
        raise ValueError(
            f"could not draw {K} atoms at least min_separation={min_separation} apart with atoms_scale={atoms_scale}; "
            "lower min_separation or raise atoms_scale."
        )
    if weights_concentration is None:
        weights = np.full(K, 1.0 / K)
    else:
        c = check_positive_float(weights_concentration, "weights_concentration")
        weights = np.asarray(jax.random.dirichlet(key_w, jnp.full(K, c)), dtype=np.float64)
        weights = weights / weights.sum()
    return SMMParams(weights, atoms)
