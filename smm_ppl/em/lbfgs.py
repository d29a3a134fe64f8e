"""Quasi-Newton acceleration of EM: L-BFGS on the observed log-likelihood, preconditioned by the EM step.

Why.  The paper's M-step is one gradient step in whitened coordinates, where
the Hessian of a class's weighted logit is close to ``-alpha_k I``.  That
holds for diffuse classes on a Gaussian design.  A class concentrated on a
few hundred items of a real design (a language over a vocabulary) has a
within-class covariance far smaller and far from isotropic, so the EM step
is far too short in most directions and EM (even with SQUAREM) crawls.

What.  By Fisher's identity the EM direction is a preconditioned gradient of
the observed log-likelihood: ``R_k @ X = grad_k / alpha_raw_k``.  This module
runs L-BFGS on ``ll(eta, beta)`` (``alpha = softmax(eta)``) with that
preconditioner as the initial inverse Hessian (Jamshidian & Jennrich's
quasi-Newton acceleration of EM, in its limited-memory form).  Each
iteration costs the two passes of an EM iteration in the common case (the
logits at the trial point, the gradient at the accepted one).

Monotone.  A step is accepted only under Armijo's condition, which implies
that the log-likelihood rose; after :data:`MAX_HALVINGS` failed halvings the
iteration backtracks along the EM direction instead (an ascent direction, so
a short enough step is accepted unless round-off intervenes; then the state
is kept) and clears the curvature memory.  Curvature pairs with
``s.y <= 0`` are skipped, so the implicit inverse Hessian stays positive
definite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..core.params import WEIGHT_FLOOR
from ..core.prior import Penalty
from ..layouts import Layout
from .kernel import EMState, accept, em_init, inner_property, state_at

__all__ = ["LBFGSState", "LBFGSInfo", "lbfgs_init", "lbfgs_update", "MEMORY"]

#: Curvature pairs kept.
MEMORY = 12
#: Halvings of the quasi-Newton step before falling back to an EM update.
MAX_HALVINGS = 12
#: Armijo's sufficient-increase constant.
ARMIJO = 1e-4
#: Log-weights are kept above this: a class whose weight underflows keeps a finite logit.
_MIN_LOG_WEIGHT = -700.0


class LBFGSState(NamedTuple):
    """The EM state at the current point, its gradient and the curvature memory.

    ``grad`` is the gradient of the log-likelihood per observation in the
    flat coordinates ``(log alpha, beta)``; ``s``/``y`` hold the last
    :data:`MEMORY` pairs (rows), ``rho = 1 / (s.y)`` (0 in unused rows), the
    newest at ``head - 1``.
    """

    inner: EMState
    grad: jax.Array  # (K + K L,)
    s: jax.Array  # (MEMORY, K + K L)
    y: jax.Array  # (MEMORY, K + K L)
    rho: jax.Array  # (MEMORY,)
    head: jax.Array  # () int: rows written so far (mod MEMORY gives the next slot)

    weights = inner_property("weights")
    atoms = inner_property("atoms")
    ll = inner_property("ll")
    objective = inner_property("objective")


class LBFGSInfo(NamedTuple):
    """What one iteration did."""

    halvings: jax.Array  # () int
    fallback: jax.Array  # () bool: the quasi-Newton step failed; the EM direction was taken


def _flat(weights, atoms):
    return jnp.concatenate([jnp.maximum(jnp.log(jnp.maximum(weights, 0.0)), _MIN_LOG_WEIGHT), atoms.ravel()])


def _unflat(x, K, L):
    return jax.nn.softmax(x[:K]), x[K:].reshape(K, L)


def _gradient(layout: Layout, inner: EMState, penalty: Penalty | None = None) -> jax.Array:
    """Gradient of the objective (per observation) in ``(log alpha, beta)``.

    ``d ll / d beta_k = alpha_raw_k (R_k @ X)``, ``d ll / d eta_k = alpha_raw_k
    - alpha_k``: one pass over the features (``R @ X``), as the EM step.  The
    prior adds ``-P beta_k`` and ``e (1 - K alpha_k)`` (:class:`~smm_ppl.core.prior.Penalty`).
    """
    alpha_raw, residual = layout.weights_and_residual(inner.weights, inner.logits, inner.stats)
    g_atoms = alpha_raw[:, None] * (residual @ layout.features)
    g_eta = alpha_raw - inner.weights
    if penalty is not None:
        K = inner.weights.shape[0]
        g_atoms = g_atoms - inner.atoms @ penalty.precision.astype(g_atoms.dtype)
        g_eta = g_eta + penalty.weights_exponent.astype(g_eta.dtype) * (1.0 - K * inner.weights)
    return jnp.concatenate([g_eta, g_atoms.ravel()])


def _preconditioner(weights, L):
    """The EM step's inverse curvature ``1 / alpha_k``, for the log-weight and the atom of each class."""
    d = 1.0 / jnp.maximum(weights, WEIGHT_FLOOR)
    return jnp.concatenate([d, jnp.repeat(d, L)])


def lbfgs_init(layout: Layout, weights: jax.Array, atoms: jax.Array, penalty: Penalty | None = None) -> LBFGSState:
    inner = em_init(layout, weights, atoms, penalty)
    grad = _gradient(layout, inner, penalty)
    n = grad.shape[0]
    zeros = jnp.zeros((MEMORY, n), grad.dtype)
    return LBFGSState(inner, grad, zeros, zeros, jnp.zeros((MEMORY,), grad.dtype), jnp.asarray(0))


def _direction(state: LBFGSState, diag: jax.Array) -> jax.Array:
    """The two-loop recursion: ``H g`` with ``H_0 = gamma D`` (an ascent direction)."""
    order = (state.head - 1 - jnp.arange(MEMORY)) % MEMORY  # newest first

    def first(q, i):
        a = state.rho[i] * jnp.dot(state.s[i], q)
        return q - a * state.y[i], a

    q, alphas = lax.scan(first, state.grad, order)
    newest = (state.head - 1) % MEMORY
    sy = jnp.where(state.rho[newest] > 0, 1.0 / jnp.where(state.rho[newest] > 0, state.rho[newest], 1.0), 0.0)
    ydy = jnp.dot(state.y[newest], diag * state.y[newest])
    gamma = jnp.where((state.head > 0) & (sy > 0) & (ydy > 0), sy / jnp.where(ydy > 0, ydy, 1.0), 1.0)
    r = gamma * diag * q

    def second(r, ia):
        i, a = ia
        b = state.rho[i] * jnp.dot(state.y[i], r)
        return r + (a - b) * state.s[i], None

    r, _ = lax.scan(second, r, (order[::-1], alphas[::-1]))
    return r


def lbfgs_update(
    layout: Layout, state: LBFGSState, step_size: Any = 1.0, penalty: Penalty | None = None
) -> tuple[LBFGSState, LBFGSInfo]:
    """One monotone quasi-Newton iteration (pure, jittable); ``step_size`` scales the first trial.

    One backtracking loop: :data:`MAX_HALVINGS` halvings along the
    quasi-Newton direction, then as many along the EM direction (the
    preconditioned gradient) from the full step; if both fail the state is
    kept and the memory cleared.
    """
    inner = state.inner
    K, L = inner.atoms.shape
    dtype = inner.atoms.dtype
    x0 = _flat(inner.weights, inner.atoms)
    diag = _preconditioner(inner.weights, L)
    em_direction = diag * state.grad
    direction = _direction(state, diag)
    # A direction that does not ascend (round-off in the memory) gives way to the EM direction at once.
    bad = ~(jnp.isfinite(jnp.dot(state.grad, direction)) & (jnp.dot(state.grad, direction) > 0))
    direction = jnp.where(bad, em_direction, direction)
    t0 = jnp.asarray(step_size, dtype)

    def trial(d, t):
        w, a = _unflat(x0 + t * d, K, L)
        return state_at(layout, w, a, a @ layout.features_t, penalty)

    def ok(candidate, d, t):
        return accept(candidate.objective, inner.objective, dtype) & (
            candidate.objective >= inner.objective + ARMIJO * t * jnp.dot(state.grad, d)
        )

    last = 2 * MAX_HALVINGS + 1

    def cond(c):
        i, good, _, _, _ = c
        return ~good & (i < last)

    def body(c):
        i, _, t, d, _ = c
        i = i + 1
        switch = i == MAX_HALVINGS + 1
        d = jnp.where(switch, em_direction, d)
        t = jnp.where(switch, t0, 0.5 * t)
        candidate = trial(d, t)
        return i, ok(candidate, d, t), t, d, candidate

    first = trial(direction, t0)
    i, good, _, _, candidate = lax.while_loop(
        cond, body, (jnp.asarray(0), ok(first, direction, t0), t0, direction, first)
    )
    new_inner = jax.tree_util.tree_map(lambda a, b: jnp.where(good, a, b), candidate, inner)
    grad = _gradient(layout, new_inner, penalty)
    s = _flat(new_inner.weights, new_inner.atoms) - x0
    y = state.grad - grad  # of the negative log-likelihood: -(g_new - g_old)
    sy = jnp.dot(s, y)
    keep = good & jnp.isfinite(sy) & (sy > 1e-12 * jnp.sqrt(jnp.dot(s, s) * jnp.dot(y, y)))
    slot = state.head % MEMORY
    clear = ~good | (i > MAX_HALVINGS)  # the quasi-Newton step failed: its memory misleads
    rho = jnp.where(keep, state.rho.at[slot].set(1.0 / jnp.where(keep, sy, 1.0)), state.rho)
    new = LBFGSState(
        new_inner,
        grad,
        jnp.where(clear, 0.0, jnp.where(keep, state.s.at[slot].set(s), state.s)),
        jnp.where(clear, 0.0, jnp.where(keep, state.y.at[slot].set(y), state.y)),
        jnp.where(clear, 0.0, rho),
        jnp.where(clear, 0, state.head + keep.astype(state.head.dtype)),
    )
    return new, LBFGSInfo(i.astype(jnp.int32), i > MAX_HALVINGS)
