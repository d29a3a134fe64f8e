"""Hermite latent moments (docs/math.md#latent-moments).

Each moment is a weighted sum over the ``p`` items with the empirical
frequencies ``w = n / N`` as weights, so its cost is ``O(p d)`` per direction
(``d`` the dimension of the coordinates passed in: ``L`` whitened, or ``K``
after projection on the subspace) and does not depend on the number of
observations.  No ``d^3`` tensor is formed except by
:func:`third_moment_tensor_jax`, which is meant for the projected
``K``-dimensional coordinates only.

The ``*_jax`` functions are pure and jittable; they take coordinates that are
already centred and whitened (:mod:`smm_ppl.data.whitening`).  Under a
Gaussian design, with ``beta_k`` the whitened atoms:

- ``first_moment_jax``      ~ ``sum_k alpha_k beta_k``
- ``second_moment_jax``     ~ ``sum_k alpha_k beta_k beta_k^T``
- ``directional_moments_jax`` (unit ``v``) ~ ``sum_k alpha_k (v . beta_k)^r``
- ``mixed_moments_jax`` (unit ``v``, ``u``) ~ ``sum_k alpha_k (v . beta_k)^r (u . beta_k)``
- ``third_moment_contraction_jax(u)`` ~ ``sum_k alpha_k (u . beta_k) beta_k beta_k^T``
- ``third_moment_eval_jax(a)``  ~ ``sum_k alpha_k (a . beta_k)^3`` (any ``a``)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.programs import batch_size, jit_program
from ..core.validation import check_positive_int
from ..data.arrays import as_data
from ..data.whitening import Whitening, fit_whitening

__all__ = [
    "hermite_jax",
    "first_moment_jax",
    "second_moment_jax",
    "directional_moments_jax",
    "mixed_moments_jax",
    "third_moment_contraction_jax",
    "third_moment_eval_jax",
    "third_moment_tensor_jax",
    "LatentMoments",
    "latent_moments",
    "directional_moments",
]


def hermite_jax(s: jax.Array, order: int) -> jax.Array:
    """Probabilists' Hermite polynomials ``He_0 .. He_order`` at ``s``.

    Returns an array of shape ``(order + 1, *s.shape)``, built by the
    three-term recurrence ``He_{r+1}(s) = s He_r(s) - r He_{r-1}(s)``.
    """
    h = [jnp.ones_like(s)]
    if order >= 1:
        h.append(s)
    for r in range(1, order):
        h.append(s * h[r] - r * h[r - 1])
    return jnp.stack(h)


@jit_program
def first_moment_jax(xt: jax.Array, w: jax.Array) -> jax.Array:
    """``m1 = sum_j w_j xt_j``, shape ``(d,)``."""
    return xt.T @ w


@jit_program
def second_moment_jax(xt: jax.Array, w: jax.Array) -> jax.Array:
    """``M2 = sum_j w_j (xt_j xt_j^T - I)``, shape ``(d, d)``."""
    d = xt.shape[1]
    return (xt * w[:, None]).T @ xt - jnp.sum(w) * jnp.eye(d, dtype=xt.dtype)


@jit_program(static_argnames=("order",))
def directional_moments_jax(xt: jax.Array, w: jax.Array, directions: jax.Array, order: int):
    """Moments along unit directions.

    Parameters
    ----------
    xt : (p, d) whitened coordinates
    w : (p,) frequencies
    directions : (D, d) unit vectors
    order : int
        Highest order ``r``.

    Returns
    -------
    moments : (D, order + 1)
        ``m_r(v) = sum_j w_j He_r(v . xt_j)``.
    second : (D, order + 1)
        ``sum_j w_j He_r(v . xt_j)^2``: the per-observation second moment of
        each statistic, i.e. its noise scale (used to weight the denoising fit).
    """

    def one(v):
        h = hermite_jax(xt @ v, order)  # (order+1, p)
        return h @ w, (h * h) @ w

    # Directions in batches: the Hermite values of all of them at once would be (order+1, p, D).
    size = batch_size(directions.shape[0], 2 * (order + 1) * xt.shape[0])
    return jax.lax.map(one, directions, batch_size=size)


@jit_program(static_argnames=("order",))
def mixed_moments_jax(xt: jax.Array, w: jax.Array, directions: jax.Array, others: jax.Array, order: int):
    """Mixed moments ``sum_j w_j He_r(v . xt_j) (u . xt_j)``.

    Parameters
    ----------
    directions : (D, d) unit vectors ``v``
    others : (D, M, d) unit vectors ``u``, each orthogonal to its ``v``
    order : int

    Returns
    -------
    (D, order + 1, M)
    """

    def one(v_u):
        v, u = v_u
        h = hermite_jax(xt @ v, order)  # (order+1, p)
        return (h * w) @ (xt @ u.T)  # (order+1, M)

    size = batch_size(directions.shape[0], xt.shape[0] * (order + 1 + others.shape[1]))
    return jax.lax.map(one, (directions, others), batch_size=size)


@jit_program
def third_moment_contraction_jax(xt: jax.Array, w: jax.Array, u: jax.Array) -> jax.Array:
    """``M3(., ., u) = sum_j w_j [(u.x)(x x^T) - (u.x) I - x u^T - u x^T]``, shape ``(d, d)``.

    ``u`` need not be a unit vector (the Hermite correction is linear in ``u``).
    """
    d = xt.shape[1]
    s = xt @ u
    m1 = xt.T @ w
    first = (xt * (w * s)[:, None]).T @ xt
    return first - jnp.dot(w, s) * jnp.eye(d, dtype=xt.dtype) - jnp.outer(m1, u) - jnp.outer(u, m1)


@jit_program
def third_moment_eval_jax(xt: jax.Array, w: jax.Array, a: jax.Array) -> jax.Array:
    """``M3(a, a, a) = sum_j w_j [(a . x_j)^3 - 3 |a|^2 (a . x_j)]`` for each row of ``a`` (n, d)."""
    s = xt @ a.T  # (p, n)
    sq = jnp.sum(a * a, axis=1)
    return w @ (s**3) - 3.0 * sq * (w @ s)


@jit_program
def third_moment_tensor_jax(xt: jax.Array, w: jax.Array, cov: jax.Array | None = None) -> jax.Array:
    """The full third Hermite moment ``(d, d, d)``; only for small ``d`` (projected coordinates).

    ``cov`` is the covariance of the coordinates' noise (identity for whitened
    coordinates; ``W W^T`` after a further linear map ``W``), used in the
    correction ``sym(x (x) cov)``.
    """
    d = xt.shape[1]
    if cov is None:
        cov = jnp.eye(d, dtype=xt.dtype)
    # One coordinate at a time: the einsum over all three could form a (p, d, d) intermediate.
    raw = jax.lax.map(lambda col: (xt * (w * col)[:, None]).T @ xt, xt.T)
    m1 = xt.T @ w
    corr = jnp.einsum("a,bc->abc", m1, cov) + jnp.einsum("b,ac->abc", m1, cov) + jnp.einsum("c,ab->abc", m1, cov)
    return raw - corr


class LatentMoments(NamedTuple):
    """First and second latent moments in whitened coordinates (docs/math.md#latent-moments).

    Attributes
    ----------
    first : ndarray (L,)
        ``m1 ~ sum_k alpha_k beta_k``.
    second : ndarray (L, L)
        ``M2 ~ sum_k alpha_k beta_k beta_k^T``.
    whitening : Whitening
        The map between original and whitened coordinates
        (``beta_k = whitening.root @ theta_k``).
    """

    first: np.ndarray
    second: np.ndarray
    whitening: Whitening


def latent_moments(features: Any, counts: Any) -> LatentMoments:
    """First and second Hermite latent moments of the data, in whitened coordinates.

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,) of non-negative integers

    Returns
    -------
    LatentMoments
    """
    data = as_data(features, counts)
    wh = fit_whitening(data.features)
    xt = jnp.asarray(wh.whiten(data.features))
    w = jnp.asarray(data.frequencies)
    return LatentMoments(np.asarray(first_moment_jax(xt, w)), np.asarray(second_moment_jax(xt, w)), wh)


def directional_moments(features: Any, counts: Any, direction: Any, order: int) -> np.ndarray:
    """Moments ``m_r(v) = sum_j w_j He_r(v . xt_j)``, ``r = 0..order``, along a whitened direction.

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,)
    direction : array (L,)
        Direction ``v`` in whitened coordinates; normalised to unit length.
    order : int
        Highest order (``>= 1``).

    Returns
    -------
    ndarray (order + 1,)
        Approximately ``sum_k alpha_k (v . beta_k)^r``.
    """
    data = as_data(features, counts)
    order = check_positive_int(order, "order")
    v = np.asarray(direction, dtype=np.float64)
    if v.shape != (data.n_features,):
        raise ValueError(f"direction must have shape (n_features,) = ({data.n_features},), got {v.shape}.")
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("direction must be a finite, non-zero vector.")
    wh = fit_whitening(data.features)
    xt = jnp.asarray(wh.whiten(data.features))
    m, _ = directional_moments_jax(xt, jnp.asarray(data.frequencies), jnp.asarray(v / norm)[None, :], order)
    return np.asarray(m[0])
