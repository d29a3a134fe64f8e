"""The EM map: a pure ``init``/``update`` pair over :class:`EMState` (docs/math.md#em).

Works on any :class:`~smm_ppl.layouts.Layout` in whitened coordinates
(``beta_k = Sigma_hat^{1/2} theta_k``), where the Hessian of each class's
weighted logit is close to minus the identity: that is what makes the
paper's single gradient step with ``step_size = 1`` a sensible M-step.

Cost per plain iteration: the two passes over the features, ``residual @
features`` (the M-step gradient) and ``atoms @ features_t`` (the new logits),
plus what the layout does between them (for counts over items: a few
memory-bound passes over ``(K, p)`` arrays, one of them exponential).  The
log-likelihood at the new point, which the monotonicity safeguard needs,
comes with the layout's statistics, which the next M-step reuses, so a
safeguarded iteration costs no extra pass in the common (accepted) case.

Safeguard.  The single gradient (or Newton) step is not guaranteed to raise
the likelihood, so each iteration evaluates the observed log-likelihood at
the proposed point and, if it fell, backtracks along the step.  The last
candidate is the weights-only update (a generalised EM step that cannot
lower the likelihood in exact arithmetic); if even that fails by round-off,
the iteration keeps the parameters.  The trace is therefore monotone up to a
relative slack of ``1e-12``.

Prior (MAP-EM).  With a :class:`~smm_ppl.core.prior.Penalty` the objective is
the log posterior per observation, ``ll + log p(weights, atoms) / N``
(Dempster, Laird and Rubin 1977, section 4.5): the E-step is unchanged, the
weights take the Dirichlet mode ``(N_k + a0 - 1) / (N + K (a0 - 1))``, and
each class's step solves with the prior's curvature added (``docs/math.md``).
Every acceptance test, trace and selection then compares the log posterior.

Collapsed classes.  A class whose weight falls below
:data:`~smm_ppl.core.params.WEIGHT_FLOOR` has its atom frozen (its M-step would
divide by the weight); the weight keeps following the closed-form update.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..core.params import WEIGHT_FLOOR
from ..core.prior import Penalty, penalty_log_density
from ..layouts import Layout

__all__ = ["EMState", "EMInfo", "em_init", "em_update", "state_at", "M_STEPS", "accept", "decrement"]

M_STEPS = ("gradient", "newton")

#: Relative slack of the monotonicity safeguard (far below the 1e-9 the tests demand).
SLACK = 1e-12
#: Backtracking halvings of the atom step before the weights-only update is tried.
MAX_HALVINGS = 30
#: Newton directions longer than this (whitened units, per class) are shortened:
#: a near-degenerate class (its softmax on few rows) has a near-singular Hessian.
NEWTON_MAX_STEP = 5.0


class EMState(NamedTuple):
    """State of the EM map for one start, in whitened coordinates.

    Besides the parameters it carries the logits ``atoms @ features_t`` (K, R)
    and the layout's statistics at them (normalisers, ``log_pi``, the mean
    log-likelihood per observation ``ll``): the safeguard computes them at the
    new point and the next M-step reuses them.  ``log_prior`` is the log prior
    per observation (0 for maximum likelihood); ``objective``, what EM
    maximises, is their sum.
    """

    weights: jax.Array  # (K,)
    atoms: jax.Array  # (K, L) = beta
    logits: jax.Array  # (K, R)
    stats: Any  # the layout's Statistics
    log_prior: jax.Array  # ()

    @property
    def ll(self) -> jax.Array:
        """Mean log-likelihood per observation."""
        return self.stats.ll

    @property
    def objective(self) -> jax.Array:
        """What EM maximises, per observation: the log-likelihood, plus the log prior for a MAP fit."""
        return self.stats.ll + self.log_prior


class EMInfo(NamedTuple):
    """What one EM update did."""

    halvings: jax.Array  # () int: 0 when the full step was accepted; MAX_HALVINGS + 1: weights only
    kept: jax.Array  # () bool: even the weights-only update lost to round-off; parameters kept


def inner_property(name: str) -> property:
    """A wrapper state's ``weights``, ``atoms`` or ``ll``: those of the :class:`EMState` it holds as ``inner``."""
    return property(lambda self: getattr(self.inner, name), doc=f"``inner.{name}``")


def em_init(layout: Layout, weights: jax.Array, atoms: jax.Array, penalty: Penalty | None = None) -> EMState:
    """The :class:`EMState` at ``(weights, atoms)`` (whitened coordinates)."""
    logits = atoms @ layout.features_t
    return state_at(layout, weights, atoms, logits, penalty)


def state_at(layout: Layout, weights, atoms, logits, penalty: Penalty | None) -> EMState:
    """The :class:`EMState` at ``(weights, atoms)`` whose logits are already computed."""
    stats = layout.statistics(weights, logits)
    return EMState(weights, atoms, logits, stats, penalty_log_density(penalty, weights, atoms).astype(stats.ll.dtype))


def slack(dtype) -> float:
    """Relative slack of the monotonicity test for parameters in ``dtype``: :data:`SLACK`, or a few of
    its rounding units (float32: about 5e-7, the rounding of each log-likelihood term)."""
    return max(SLACK, 4.0 * float(jnp.finfo(dtype).eps))


def accept(ll: jax.Array, ll_ref: jax.Array, dtype) -> jax.Array:
    """The monotonicity test: finite and not below ``ll_ref`` beyond the slack of parameters in ``dtype``."""
    return jnp.isfinite(ll) & (ll >= ll_ref - slack(dtype) * jnp.abs(ll_ref))


def _alive_weights(alpha_raw, penalty: Penalty | None = None):
    """The new weights (the Dirichlet mode under a prior) and which classes are alive.

    ``alpha_raw`` sums to 1 (``N_k / N``); the mode ``(N_k + a0 - 1) / (N + K (a0 - 1))`` is
    ``(alpha_raw_k + e) / (1 + K e)`` with ``e = (a0 - 1) / N >= 0``.
    """
    if penalty is not None:
        e = penalty.weights_exponent.astype(alpha_raw.dtype)
        alpha_raw = alpha_raw + e
    alpha = alpha_raw / jnp.sum(alpha_raw)  # remove round-off drift off the simplex
    return alpha, alpha > WEIGHT_FLOOR


def _with_prior(direction, atoms, alpha_raw, penalty: Penalty | None):
    """The gradient M-step under the prior: ``(I + P / a_k)^{-1} (d_k - P beta_k / a_k)`` per class.

    ``d_k`` is the likelihood's step (its gradient over ``a_k = alpha_raw_k``, where
    the class's curvature is about ``-a_k I``); the prior adds ``-P beta_k`` to the
    gradient and ``-P`` to the curvature, solved exactly through ``P``'s eigenvectors.
    """
    if penalty is None:
        return direction
    a = jnp.maximum(alpha_raw, WEIGHT_FLOOR)[:, None]
    V, lam = penalty.eigenvectors.astype(atoms.dtype), penalty.eigenvalues.astype(atoms.dtype)
    rhs = direction - (atoms @ penalty.precision.astype(atoms.dtype)) / a
    return ((rhs @ V) * (a / (a + lam))) @ V.T


def decrement(layout: Layout, weights: jax.Array, atoms: jax.Array, penalty: Penalty | None = None) -> jax.Array:
    """The objective per observation that one more step could still gain, to second order (docs/math.md#stopping-rule).

    ``1/2 g^T H^{-1} g`` with the gradient ``g`` of the objective and EM's own
    curvature in whitened coordinates: ``a_k I + P`` for class ``k``'s atom
    (``a_k = alpha_raw_k``, ``P`` the prior's precision per observation) and
    the multinomial's ``diag(1 / weights)`` for the weights, on the simplex.  Without a prior the
    atoms' part is ``1/2 sum_k a_k |residual_k @ features|^2``: the squared
    gradient norm in whitened units.  Two passes over the features (the
    logits and the gradient), so the driver evaluates it only where the
    projected gains already say stop.
    """
    logits = atoms @ layout.features_t
    stats = layout.statistics(weights, logits)
    alpha_raw, residual = layout.weights_and_residual(weights, logits, stats)
    gradient = residual @ layout.features  # per unit of alpha_raw, as in the M-step
    step = _with_prior(gradient, atoms, alpha_raw, penalty)
    if penalty is not None:
        gradient = (
            gradient - (atoms @ penalty.precision.astype(atoms.dtype)) / jnp.maximum(alpha_raw, WEIGHT_FLOOR)[:, None]
        )
    _, alive = _alive_weights(alpha_raw, penalty)
    a = jnp.where(alive, alpha_raw, 0.0)
    atoms_part = 0.5 * jnp.sum(a * jnp.sum(step * gradient, axis=1))
    # The weights' gradient is (alpha_raw + e) / weights; its component along the simplex, in the metric diag(1 / weights).
    pulled = alpha_raw if penalty is None else alpha_raw + penalty.weights_exponent.astype(alpha_raw.dtype)
    weights_part = 0.5 * jnp.sum((pulled - jnp.sum(pulled) * weights) ** 2 / jnp.maximum(weights, WEIGHT_FLOOR))
    return (atoms_part + weights_part).astype(stats.ll.dtype)


def _newton_direction(layout, state, penalty: Penalty | None = None):
    alpha_raw, grad, hess = layout.newton_system(state.weights, state.logits, state.stats)
    L = hess.shape[-1]
    if penalty is not None:  # per unit of alpha_raw, as the layout's system: the prior's gradient and curvature
        a = jnp.maximum(alpha_raw, WEIGHT_FLOOR)
        precision = penalty.precision.astype(hess.dtype)
        grad = grad - (state.atoms @ precision) / a[:, None]
        hess = hess + precision[None] / a[:, None, None]
    scale = jnp.trace(hess, axis1=1, axis2=2) / L
    hess = hess + (1e-8 * scale + 1e-12)[:, None, None] * jnp.eye(L, dtype=hess.dtype)
    direction = jnp.linalg.solve(hess, grad[..., None])[..., 0]
    norm = jnp.linalg.norm(direction, axis=1, keepdims=True)
    return alpha_raw, direction * jnp.minimum(1.0, NEWTON_MAX_STEP / jnp.maximum(norm, 1e-300))


def em_update(
    layout: Layout, state: EMState, step_size: Any = 1.0, penalty: Penalty | None = None, *, m_step: str = "gradient"
) -> tuple[EMState, EMInfo]:
    """One safeguarded EM iteration (pure, jittable, vmappable).

    E-step from the carried statistics; the weights take their closed form
    ``alpha_k = sum_u w_u gamma_uk`` (the Dirichlet mode under a prior); the
    atoms take one gradient step ``beta_k + step_size * residual_k @ features``
    or one Newton step (with the prior's gradient and curvature), then
    backtrack on the objective (module docstring).
    """
    dtype = state.atoms.dtype
    if m_step == "newton":
        alpha_raw, direction = _newton_direction(layout, state, penalty)
    else:
        alpha_raw, residual = layout.weights_and_residual(state.weights, state.logits, state.stats)
        direction = _with_prior(residual @ layout.features, state.atoms, alpha_raw, penalty)  # the pass X.T @ R
    alpha, alive = _alive_weights(alpha_raw, penalty)
    direction = jnp.where(alive[:, None], direction, 0.0)
    atoms_full = state.atoms + step_size * direction
    logits_full = atoms_full @ layout.features_t  # the pass X @ B (reused by the next E-step)
    full = state_at(layout, alpha, atoms_full, logits_full, penalty)
    ok = accept(full.objective, state.objective, dtype)

    # Backtracking along the step: trial i (i = 1 .. MAX_HALVINGS) takes the
    # step length 2^-i, trial MAX_HALVINGS + 1 the weights-only update (0); the
    # last trial is the old state itself, accepted unconditionally.  A
    # while_loop whose carry starts at the full step runs no trial in the
    # common case and passes the (K, R) arrays through without copying them (a
    # lax.cond choosing between the full step and a backtracking branch copied
    # them).  Each trial recomputes its logits from its atoms rather than
    # interpolating with the old ones: referring to those here would keep them
    # alive past the new ones, and cost every iteration a copy.
    stay = MAX_HALVINGS + 2

    def cond(c):
        return ~c[1]

    def body(c):
        i, _, frac, _ = c
        frac_t = jnp.where(i <= MAX_HALVINGS, 0.5 * frac, 0.0).astype(dtype)
        weights_t = jnp.where(i < stay, alpha, state.weights)
        atoms_t = jnp.where(i < stay, state.atoms + (frac_t * step_size) * direction, state.atoms)
        logits_t = atoms_t @ layout.features_t
        trial = state_at(layout, weights_t, atoms_t, logits_t, penalty)
        ok_t = accept(trial.objective, state.objective, dtype) | (i >= stay)
        return i + 1, ok_t, frac_t, trial

    init = (jnp.asarray(1), ok, jnp.asarray(1.0, dtype), full)
    trials, _, _, new = lax.while_loop(cond, body, init)
    info = EMInfo(halvings=trials - 1, kept=trials - 1 >= stay)
    return new, info
