"""Choice situations and panels: the layout of the latent-class conditional logit (SPEC section 10).

Rows are the *available* alternatives of every choice situation (an
unavailable alternative is simply not a row, so it carries no mass in its
situation's normaliser).  Each row carries the number of times it was chosen.
Situations belong to units: a person in a panel (the class is drawn once per
person), or the situation itself in cross-sectional data.  Class ``k``'s
log-probability of a unit is

    log P_k(unit) = sum_{rows r of the unit} c_r (x_r . theta_k - log sum_{a in s(r)} exp(x_a . theta_k)),

a softmax per situation, summed over the unit's situations.  Every reduction
is a segment sum over static index arrays (rows to situations, situations to
units), so the layout is a pytree of arrays and the shapes fix the numbers of
situations and units.

Units may carry a weight (``unit_weights``, 1 by default): the log-likelihood
is ``sum_u w_u log pi(u)``.  The mixture weights may be one vector (K,) or a
row per unit (U, K), for a class-membership model with person covariates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..params import safe_divisor

__all__ = ["ChoiceSituations", "ChoiceStatistics", "choice_situations"]


class ChoiceStatistics(NamedTuple):
    """Row log-probabilities within situations and the units' mixture log-probabilities."""

    log_prob: jax.Array  # (K, R) log P_k(row | its situation)
    log_joint: jax.Array  # (K, U) log alpha_k + log P_k(unit)
    log_pi: jax.Array  # (U,)
    ll: jax.Array  # () sum_u w_u log pi_u / sum_u w_u


class ChoiceSituations(NamedTuple):
    """Choice situations, optionally grouped into panels (build with :func:`choice_situations`).

    Attributes
    ----------
    features : (R, L)
        One row per available alternative of every situation.
    counts : (R,)
        How often each row was chosen (0/1 for one choice per situation).
    situation : (R,) int
        The situation of each row, ``0 .. S-1``, rows of a situation contiguous.
    unit : (S,) int
        The unit (person, or the situation itself) of each situation, ``0 .. U-1``.
    unit_weights : (U,)
        The weight of each unit's log-likelihood.
    """

    features: Any
    counts: Any
    situation: Any
    unit: Any
    unit_weights: Any

    #: The Hermite latent-moment starts assume one softmax over all rows.
    supports_moments = False

    @property
    def features_t(self) -> jax.Array:
        return jnp.transpose(jnp.asarray(self.features))

    # ---- structure ---------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_situations(self) -> int:
        return int(self.unit.shape[0])

    @property
    def n_units(self) -> int:
        return int(self.unit_weights.shape[0])

    @property
    def n_obs(self) -> int:
        """The number of choices."""
        return int(round(float(np.sum(np.asarray(self.counts)))))

    def unit_counts(self):
        return self.unit_weights if isinstance(self.unit_weights, jax.core.Tracer) else np.asarray(self.unit_weights)

    def observed_units(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.unit_weights) > 0)

    def with_features(self, features: Any) -> ChoiceSituations:
        return self._replace(features=features)

    @property
    def row_unit(self):
        """(R,) the unit of each row."""
        xp = jnp if isinstance(self.unit, jax.Array) else np
        return xp.asarray(self.unit)[xp.asarray(self.situation)]

    # ---- exact log space ---------------------------------------------------
    def log_row_probs(self, logits: jax.Array) -> jax.Array:
        """(K, R) ``log P_k(row | its situation)`` at ``logits`` (K, R): a log-softmax per situation."""
        S = self.n_situations
        sit = jnp.asarray(self.situation)
        z = logits.T  # (R, K)
        m = jax.ops.segment_max(z, sit, num_segments=S, indices_are_sorted=True)
        m = jax.lax.stop_gradient(m)
        total = jax.ops.segment_sum(jnp.exp(z - m[sit]), sit, num_segments=S, indices_are_sorted=True)
        log_norm = m + jnp.log(total)
        return (z - log_norm[sit]).T

    def _unit_sum(self, row_values: jax.Array) -> jax.Array:
        """(K, R) -> (K, U): the counts-weighted sum of row values over each unit's rows."""
        c = jnp.asarray(self.counts, dtype=row_values.dtype)
        vals = jnp.where(c > 0, c * row_values, 0.0).T
        return jax.ops.segment_sum(vals, jnp.asarray(self.row_unit), num_segments=self.n_units).T

    def log_component_probs(self, atoms: jax.Array) -> jax.Array:
        return self._unit_sum(self.log_row_probs(atoms @ self.features_t))

    def log_mixture_probs(self, weights: jax.Array, atoms: jax.Array) -> jax.Array:
        """(U,) ``log pi(unit)``; ``weights`` (K,) or one row per unit (U, K)."""
        return jax.nn.logsumexp(self.log_component_probs(atoms) + _log_weights(weights), axis=0)

    def log_likelihood(self, weights: jax.Array, atoms: jax.Array) -> jax.Array:
        log_pi = self.log_mixture_probs(weights, atoms)
        w = jnp.asarray(self.unit_weights, dtype=log_pi.dtype)
        return jnp.sum(jnp.where(w > 0, w * log_pi, 0.0))

    # ---- EM fast path ------------------------------------------------------
    def _frequencies(self, dtype):
        w = jnp.asarray(self.unit_weights, dtype=dtype)
        return w / jnp.sum(w)

    def statistics(self, weights, logits, exact=None) -> ChoiceStatistics:
        log_prob = self.log_row_probs(logits)
        log_joint = self._unit_sum(log_prob) + _log_weights(weights)
        log_pi = jax.nn.logsumexp(log_joint, axis=0)
        f = self._frequencies(log_pi.dtype)
        ll = jnp.sum(jnp.where(f > 0, f * log_pi, 0.0))
        return ChoiceStatistics(log_prob, log_joint, log_pi, ll)

    def _moments(self, stats: ChoiceStatistics):
        f = self._frequencies(stats.log_pi.dtype)
        wh = f * jnp.exp(stats.log_joint - stats.log_pi)  # (K, U) w_u h_uk
        alpha_raw = jnp.sum(wh, axis=1)
        scale = wh / safe_divisor(alpha_raw)[:, None]
        c = jnp.asarray(self.counts, dtype=f.dtype)
        # n_s: choices per situation, spread to its rows.
        sit = jnp.asarray(self.situation)
        n_sit = jax.ops.segment_sum(c, sit, num_segments=self.n_situations, indices_are_sorted=True)
        row_scale = scale[:, jnp.asarray(self.row_unit)]  # (K, R)
        prob = jnp.exp(stats.log_prob)
        return alpha_raw, row_scale, c, n_sit[sit], prob

    def weights_and_residual(self, weights, logits, stats: ChoiceStatistics, exact=None):
        """``alpha_raw_k = sum_u w_u h_uk`` and the residual ``(w h / alpha_raw)_u(r) (c_r - n_s(r) P_k(r))``."""
        alpha_raw, row_scale, c, n_row, prob = self._moments(stats)
        return alpha_raw, row_scale * (c - n_row * prob)

    def newton_system(self, weights, logits, stats: ChoiceStatistics):
        """The gradient and the Hessians ``sum_s m_ks Cov_{P_k(.|s)}(x)`` of each class's M-step objective."""
        alpha_raw, row_scale, c, n_row, prob = self._moments(stats)
        x = jnp.asarray(self.features, dtype=prob.dtype)
        grad = (row_scale * (c - n_row * prob)) @ x
        row_weight = row_scale * n_row * prob  # (K, R) m_k,s(r) P_k(r)
        second = jnp.einsum("kr,rl,rm->klm", row_weight, x, x)
        sit = jnp.asarray(self.situation)
        # sqrt(m_ks) times the class mean of situation s, so that the outer products carry m_ks.
        means = jax.vmap(lambda p, s: jax.ops.segment_sum((p * s)[:, None] * x, sit, num_segments=self.n_situations))(
            prob, jnp.sqrt(row_scale * n_row)
        )
        hess = second - jnp.einsum("ksl,ksm->klm", means, means)
        return alpha_raw, grad, hess


def _log_weights(weights: jax.Array) -> jax.Array:
    """log weights as (K, 1) or, for one row per unit (U, K), as (K, U)."""
    lw = jnp.log(weights)
    return lw[:, None] if lw.ndim == 1 else lw.T


def choice_situations(
    features: Any, counts: Any, situation: Any, unit: Any = None, unit_weights: Any = None
) -> ChoiceSituations:
    """The :class:`ChoiceSituations` layout of validated arrays (no validation here).

    ``situation`` (R,) are situation indices ``0 .. S-1`` in non-decreasing
    order; ``unit`` (S,) are unit indices ``0 .. U-1`` (default: each
    situation its own unit).  Public entry points validate first
    (:func:`smm_ppl.choice_data`).
    """
    features = np.asarray(features, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    situation = np.asarray(situation, dtype=np.int32)
    S = int(situation.max()) + 1 if situation.size else 0
    unit = np.arange(S, dtype=np.int32) if unit is None else np.asarray(unit, dtype=np.int32)
    U = int(unit.max()) + 1 if unit.size else 0
    unit_weights = np.ones(U) if unit_weights is None else np.asarray(unit_weights, dtype=np.float64)
    return ChoiceSituations(features, counts, situation, unit, unit_weights)
