"""SQUAREM acceleration as a wrapper of the EM update (Varadhan & Roland 2008).

Step length S3 with Varadhan's adaptive maximum step, which lives in the
state.  An extrapolated point is kept only if the map applied at it does not
lower the objective (log-likelihood, or log posterior) below the start of the cycle; otherwise the cycle
returns the plain double EM step, so the trace stays monotone.  One cycle is
three EM maps and one extra E-step.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..core.prior import Penalty
from ..layouts import Layout
from .kernel import EMState, accept, em_init, em_update, inner_property

__all__ = ["SquaremState", "SquaremInfo", "squarem_init", "squarem_update"]


class SquaremState(NamedTuple):
    """The EM state and the adaptive maximum step length."""

    inner: EMState
    step_max: jax.Array  # ()

    weights = inner_property("weights")
    atoms = inner_property("atoms")
    ll = inner_property("ll")
    objective = inner_property("objective")


class SquaremInfo(NamedTuple):
    """What one SQUAREM cycle did."""

    step_length: jax.Array  # () the S3 length used (>= 1)
    extrapolated: jax.Array  # () bool: the extrapolated point was kept


def squarem_init(layout: Layout, weights: jax.Array, atoms: jax.Array, penalty: Penalty | None = None) -> SquaremState:
    state = em_init(layout, weights, atoms, penalty)
    return SquaremState(state, jnp.asarray(1.0, dtype=state.atoms.dtype))


def _to_vector(state: EMState) -> jax.Array:
    logw = jnp.log(jnp.maximum(state.weights, 1e-300))
    return jnp.concatenate([logw, state.atoms.ravel()])


def squarem_update(
    layout: Layout,
    state: SquaremState,
    step_size: Any = 1.0,
    penalty: Penalty | None = None,
    *,
    m_step: str = "gradient",
) -> tuple[SquaremState, SquaremInfo]:
    """One SQUAREM cycle around :func:`~smm_ppl.em.kernel.em_update`.

    Extrapolates in ``(log weights, atoms)``; the weights are mapped back
    with a softmax.
    """
    s0, step_max = state.inner, state.step_max
    K, L = s0.atoms.shape
    f = partial(em_update, layout, step_size=step_size, penalty=penalty, m_step=m_step)
    s1, _ = f(s0)
    s2, _ = f(s1)
    x0, x1, x2 = _to_vector(s0), _to_vector(s1), _to_vector(s2)
    r = x1 - x0
    v = x2 - 2.0 * x1 + x0
    rr, vv = jnp.sum(r * r), jnp.sum(v * v)
    # Varadhan & Roland's S3 length, in their sign convention a = |r| / |v| >= 1.
    a = jnp.where(vv > 0, jnp.sqrt(rr / jnp.where(vv > 0, vv, 1.0)), 1.0)
    a = jnp.clip(a, 1.0, step_max)
    x_ext = x0 + 2.0 * a * r + a * a * v
    weights = jax.nn.softmax(x_ext[:K])
    atoms = x_ext[K:].reshape(K, L)
    s3, _ = f(em_init(layout, weights, atoms, penalty))
    ok = (
        accept(s3.objective, s0.objective, s3.atoms.dtype)
        & jnp.all(jnp.isfinite(s3.atoms))
        & jnp.all(jnp.isfinite(s3.weights))
    )
    new = jax.tree_util.tree_map(lambda a_, b_: jnp.where(ok, a_, b_), s3, s2)
    # Adaptive maximum step (mstep = 4): grow when the cap binds and the step
    # was kept, shrink back after a rejected extrapolation.
    step_max = jnp.where(ok & (a >= step_max), 4.0 * step_max, step_max)
    step_max = jnp.where(ok, step_max, jnp.maximum(1.0, step_max / 4.0))
    return SquaremState(new, step_max), SquaremInfo(a, ok)
