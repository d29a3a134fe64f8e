"""Choice situations and panels: the layout of the latent-class conditional logit (docs/math.md#choice-situations-and-panels).

Rows are the *available* alternatives of every choice situation (an
unavailable alternative is simply not a row, so it carries no mass in its
situation's normaliser).  Each row carries the number of times it was chosen.
Situations belong to units: a person in a panel (the class is drawn once per
person), or the situation itself in cross-sectional data.  Class ``k``'s
log-probability of a unit is

    log P_k(unit) = sum_{rows r of the unit} c_r (x_r . theta_k - log sum_{a in s(r)} exp(x_a . theta_k)),

a softmax per situation, summed over the unit's situations.  Every reduction
runs on dense slots (each situation's rows gathered into ``J`` slots, ``J``
the largest choice set) and on cumulative sums over a unit's contiguous
situations, so the layout is a pytree of arrays whose shapes fix the numbers
of situations, units and slots.

Units may carry a weight (``unit_weights``, 1 by default): the log-likelihood
is ``sum_u w_u log pi(u)``.  The mixture weights may be one vector (K,) or a
row per unit (U, K), for a class-membership model with person covariates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.params import safe_divisor
from .items import PAD_LOGIT

__all__ = ["ChoiceSituations", "ChoiceStatistics", "choice_situations"]


class ChoiceStatistics(NamedTuple):
    """Log-probabilities within situations and the units' mixture log-probabilities."""

    log_prob: jax.Array  # (K, S, J) log P_k(alternative | situation), padding slots -inf-like
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
        The situation of each row, ``0 .. S-1``, non-decreasing.
    unit : (S,) int
        The unit (person, or the situation itself) of each situation,
        ``0 .. U-1``, non-decreasing.
    unit_weights : (U,)
        The weight of each unit's log-likelihood.
    slots : (S, J) int
        The row in each of a situation's ``J`` slots (``J``: the most
        alternatives of any situation); padding slots point at row 0.
    slot_valid : (S, J) bool
    row_slot : (R,) int
        Each row's position in the flattened ``(S, J)`` slots.
    unit_start : (U + 1,) int
        The units' first situations (and the end).

    Notes
    -----
    The softmax of every situation runs on a dense ``(K, S, J)`` array (a
    gather of the rows into slots) and sums over a unit's situations are
    differences of a cumulative sum: no scatter, which XLA:CPU runs several
    times slower than the dense passes.
    """

    features: Any
    counts: Any
    situation: Any
    unit: Any
    unit_weights: Any
    slots: Any
    slot_valid: Any
    row_slot: Any
    unit_start: Any

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
    def n_slots(self) -> int:
        """``J``: the most alternatives available in one situation."""
        return int(self.slots.shape[1])

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

    # ---- dense slots -------------------------------------------------------
    def _dense(self, values: jax.Array) -> jax.Array:
        """(..., R) -> (..., S, J): each situation's rows in its slots (padding: row 0's value)."""
        return jnp.take(values, jnp.asarray(self.slots), axis=-1)

    def _rows(self, dense: jax.Array) -> jax.Array:
        """(K, S, J) -> (K, R): back from slots to rows."""
        flat = dense.reshape(dense.shape[0], -1)
        return jnp.take(flat, jnp.asarray(self.row_slot), axis=1)

    def _dense_features(self, dtype) -> jax.Array:
        x = jnp.asarray(self.features, dtype=dtype)[jnp.asarray(self.slots)]
        return jnp.where(jnp.asarray(self.slot_valid)[..., None], x, 0.0)

    def _dense_counts(self, dtype) -> jax.Array:
        c = jnp.asarray(self.counts, dtype=dtype)[jnp.asarray(self.slots)]
        return jnp.where(jnp.asarray(self.slot_valid), c, 0.0)

    def _by_unit(self, values: jax.Array) -> jax.Array:
        """(K, S, ...) -> (K, U, ...): sums over each unit's (contiguous) situations."""
        if self.n_units == self.n_situations:  # every unit one situation, in order
            return values
        cs = jnp.cumsum(values, axis=1)
        cs = jnp.concatenate([jnp.zeros_like(cs[:, :1]), cs], axis=1)
        start = jnp.asarray(self.unit_start)
        return jnp.take(cs, start[1:], axis=1) - jnp.take(cs, start[:-1], axis=1)

    def _situation_log_probs(self, logits: jax.Array) -> jax.Array:
        """(K, S, J) log-softmax of every situation over its available alternatives."""
        d = jnp.where(jnp.asarray(self.slot_valid), self._dense(logits), PAD_LOGIT)
        return jax.nn.log_softmax(d, axis=2)

    # ---- exact log space ---------------------------------------------------
    def log_row_probs(self, logits: jax.Array) -> jax.Array:
        """(K, R) ``log P_k(row | its situation)`` at ``logits`` (K, R): a log-softmax per situation."""
        return self._rows(self._situation_log_probs(logits))

    def _unit_log_probs(self, log_prob: jax.Array) -> jax.Array:
        """(K, S, J) -> (K, U): ``sum`` over the unit's choices of their log-probabilities."""
        c = self._dense_counts(log_prob.dtype)
        return self._by_unit(jnp.sum(jnp.where(c > 0, c * log_prob, 0.0), axis=2))

    def log_component_probs(self, atoms: jax.Array) -> jax.Array:
        return self._unit_log_probs(self._situation_log_probs(atoms @ self.features_t))

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
        log_prob = self._situation_log_probs(logits)
        log_joint = self._unit_log_probs(log_prob) + _log_weights(weights)
        log_pi = jax.nn.logsumexp(log_joint, axis=0)
        f = self._frequencies(log_pi.dtype)
        ll = jnp.sum(jnp.where(f > 0, f * log_pi, 0.0))
        return ChoiceStatistics(log_prob, log_joint, log_pi, ll)

    def _moments(self, stats: ChoiceStatistics):
        """``alpha_raw``, the residual ``(w h / alpha_raw)(c - n P)`` in slots, ``m_ks`` and ``P``."""
        f = self._frequencies(stats.log_pi.dtype)
        wh = f * jnp.exp(stats.log_joint - stats.log_pi)  # (K, U) w_u h_uk
        alpha_raw = jnp.sum(wh, axis=1)
        scale = (wh / safe_divisor(alpha_raw)[:, None])[:, jnp.asarray(self.unit)]  # (K, S)
        c = self._dense_counts(f.dtype)
        n_sit = jnp.sum(c, axis=1)
        prob = jnp.exp(stats.log_prob)
        residual = scale[:, :, None] * (c - n_sit[:, None] * prob)
        return alpha_raw, residual, scale * n_sit, prob

    def weights_and_residual(self, weights, logits, stats: ChoiceStatistics, exact=None):
        """``alpha_raw_k = sum_u w_u h_uk`` and the residual ``(w h / alpha_raw)_u(r) (c_r - n_s(r) P_k(r))``."""
        alpha_raw, residual, _, _ = self._moments(stats)
        return alpha_raw, self._rows(residual)

    def newton_system(self, weights, logits, stats: ChoiceStatistics):
        """The gradient and the Hessians ``sum_s m_ks Cov_{P_k(.|s)}(x)`` of each class's M-step objective."""
        alpha_raw, residual, mass, prob = self._moments(stats)
        x = self._dense_features(prob.dtype)
        grad = jnp.einsum("ksj,sjl->kl", residual, x)
        return alpha_raw, grad, self._curvature(prob, mass, x)

    @staticmethod
    def _curvature(prob, mass, x):
        """(K, L, L) ``sum_s m_ks Cov_{P_k(.|s)}(x)`` from ``P`` (K, S, J), ``m`` (K, S) and ``x`` (S, J, L)."""
        second = jnp.einsum("ks,ksj,sjl,sjm->klm", mass, prob, x, x)
        means = jnp.einsum("ksj,sjl->ksl", prob, x)
        return second - jnp.einsum("ks,ksl,ksm->klm", mass, means, means)

    # ---- per-unit derivatives (the latent-class logit's Newton steps and scores) ----
    def unit_derivatives(self, stats: ChoiceStatistics, h: Any = None):
        """Per-unit scores and the complete-data curvature at ``stats`` (unnormalised, unit weights applied).

        Returns ``h`` (K, U) the responsibilities (given, or the posterior at ``stats``),
        ``scores`` (K, U, L) with ``scores[k, u] = d log P_k(unit u) / d theta_k
        = sum_{r in u} (c_r - n_s(r) P_k(r)) x_r``, and ``curvature`` (K, L,
        L), minus the Hessian of ``sum_u w_u h_uk log P_k(unit u)`` in
        ``theta_k``.
        """
        if h is None:
            h = jnp.exp(stats.log_joint - stats.log_pi)
        c = self._dense_counts(h.dtype)
        n_sit = jnp.sum(c, axis=1)
        prob = jnp.exp(stats.log_prob)
        x = self._dense_features(h.dtype)
        scores = self._by_unit(jnp.einsum("ksj,sjl->ksl", c - n_sit[:, None] * prob, x))
        w = jnp.asarray(self.unit_weights, dtype=h.dtype)
        mass = (w * h)[:, jnp.asarray(self.unit)] * n_sit
        return h, scores, self._curvature(prob, mass, x)


def _log_weights(weights: jax.Array) -> jax.Array:
    """log weights as (K, 1) or, for one row per unit (U, K), as (K, U)."""
    lw = jnp.log(weights)
    return lw[:, None] if lw.ndim == 1 else lw.T


def choice_situations(
    features: Any, counts: Any, situation: Any, unit: Any = None, unit_weights: Any = None
) -> ChoiceSituations:
    """The :class:`ChoiceSituations` layout of validated arrays (no validation here).

    ``situation`` (R,) are situation indices ``0 .. S-1`` in non-decreasing
    order; ``unit`` (S,) are unit indices ``0 .. U-1``, non-decreasing
    (default: each situation its own unit).  Public entry points validate
    first (:func:`smm_ppl.choice_data`).
    """
    features = np.asarray(features, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    situation = np.asarray(situation, dtype=np.int64)
    if situation.size and np.any(np.diff(situation) < 0):
        raise ValueError("situation must be non-decreasing: rows of a situation contiguous, in order.")
    S = int(situation.max()) + 1 if situation.size else 0
    unit = np.arange(S, dtype=np.int64) if unit is None else np.asarray(unit, dtype=np.int64)
    if unit.size and np.any(np.diff(unit) < 0):
        raise ValueError("unit must be non-decreasing: situations of a unit contiguous, in order.")
    U = int(unit.max()) + 1 if unit.size else 0
    unit_weights = np.ones(U) if unit_weights is None else np.asarray(unit_weights, dtype=np.float64)
    sizes = np.bincount(situation, minlength=S)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(situation.size) - first[situation]
    J = int(sizes.max()) if S else 1
    slots = np.zeros((S, J), dtype=np.int64)
    slots[situation, position] = np.arange(situation.size)
    slot_valid = np.zeros((S, J), dtype=bool)
    slot_valid[situation, position] = True
    unit_start = np.concatenate([[0], np.cumsum(np.bincount(unit, minlength=U))])
    return ChoiceSituations(
        features, counts, situation, unit, unit_weights, slots, slot_valid, situation * J + position, unit_start
    )
