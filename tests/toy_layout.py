"""A second data layout, written for the tests only: the items split into groups that share the atoms.

Each observation is a draw from one group; class ``k`` chooses item ``j`` of
group ``g`` with ``softmax over group g of x . theta_k``.  The weights and atoms
are shared by the groups.  (With one group this is the SMM of counts over
items.)  It implements the :class:`smm_ppl.layouts.Layout` protocol in plain
log space, without the fast path of :mod:`smm_ppl.layouts.items`: the point is
that the EM kernel, the observed information and the NumPyro model fit it
unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from smm_ppl.core.params import safe_divisor


class GroupedStatistics(NamedTuple):
    log_prob: jax.Array  # (K, R) log P_k(row) within its group
    log_pi: jax.Array  # (R,)
    ll: jax.Array  # ()


class GroupedItems(NamedTuple):
    features: jax.Array  # (R, L)
    features_t: jax.Array  # (L, R)
    counts: np.ndarray  # (R,)
    frequencies: np.ndarray  # (R,)
    membership: jax.Array  # (G, R) one-hot: row r belongs to group g

    supports_moments = False

    @property
    def n_rows(self):
        return int(self.features.shape[0])

    @property
    def n_features(self):
        return int(self.features.shape[1])

    @property
    def n_units(self):
        return self.n_rows

    @property
    def n_obs(self):
        return int(round(float(np.sum(np.asarray(self.counts)))))

    def unit_counts(self):
        return self.counts if isinstance(self.counts, jax.core.Tracer) else np.asarray(self.counts)

    def observed_units(self):
        return np.flatnonzero(np.asarray(self.counts) > 0)

    def with_features(self, features):
        x = jnp.asarray(features)
        return self._replace(features=x, features_t=jnp.transpose(x))

    # ---- log space ----
    def _log_prob(self, logits):
        m = jnp.max(logits, axis=1, keepdims=True)
        totals = jnp.exp(logits - m) @ self.membership.T  # (K, G)
        log_norm = m + jnp.log(totals)
        return logits - log_norm @ self.membership  # each row's own group normaliser

    def log_component_probs(self, atoms):
        return self._log_prob(atoms @ self.features_t)

    def log_mixture_probs(self, weights, atoms):
        return jax.nn.logsumexp(self.log_component_probs(atoms) + jnp.log(weights)[:, None], axis=0)

    def log_likelihood(self, weights, atoms):
        log_pi = self.log_mixture_probs(weights, atoms)
        return jnp.sum(jnp.where(self.counts > 0, self.counts * log_pi, 0.0))

    # ---- EM ----
    def statistics(self, weights, logits, exact=None):
        log_prob = self._log_prob(logits)
        log_pi = jax.nn.logsumexp(log_prob + jnp.log(weights)[:, None], axis=0)
        ll = jnp.sum(jnp.where(self.frequencies > 0, self.frequencies * log_pi, 0.0))
        return GroupedStatistics(log_prob, log_pi, ll)

    def _moments(self, weights, stats):
        wgamma = self.frequencies * jnp.exp(stats.log_prob + jnp.log(weights)[:, None] - stats.log_pi)
        alpha_raw = jnp.sum(wgamma, axis=1)
        mass = (wgamma @ self.membership.T) / safe_divisor(alpha_raw)[:, None]  # (K, G) per unit weight
        return wgamma, alpha_raw, mass, jnp.exp(stats.log_prob)

    def weights_and_residual(self, weights, logits, stats, exact=None):
        wgamma, alpha_raw, mass, sigma = self._moments(weights, stats)
        return alpha_raw, wgamma / safe_divisor(alpha_raw)[:, None] - (mass @ self.membership) * sigma

    def newton_system(self, weights, logits, stats):
        wgamma, alpha_raw, mass, sigma = self._moments(weights, stats)
        x = self.features
        grad = (wgamma / safe_divisor(alpha_raw)[:, None] - (mass @ self.membership) * sigma) @ x
        row_weight = (mass @ self.membership) * sigma  # (K, R)
        second = jnp.einsum("kr,rl,rm->klm", row_weight, x, x)
        group_means = jnp.einsum("kr,gr,rl->kgl", sigma, self.membership, x)  # (K, G, L)
        hess = second - jnp.einsum("kg,kgl,kgm->klm", mass, group_means, group_means)
        return alpha_raw, grad, hess


def grouped_items(features, counts, groups) -> GroupedItems:
    """The layout of ``features`` (R, L), ``counts`` (R,) and a group id (R,) per row."""
    x = jnp.asarray(np.asarray(features, dtype=np.float64))
    counts = np.asarray(counts, dtype=np.float64)
    groups = np.asarray(groups)
    ids = np.unique(groups)
    membership = (groups[None, :] == ids[:, None]).astype(np.float64)
    return GroupedItems(x, jnp.transpose(x), counts, counts / counts.sum(), jnp.asarray(membership))


def simulate_grouped(seed, features, groups, params, n_obs_per_group):
    """Counts: ``n_obs_per_group`` draws in every group from the group's mixture probabilities."""
    rng = np.random.default_rng(seed)
    layout = grouped_items(features, np.ones(len(groups)), groups)
    pi = np.exp(np.asarray(layout.log_mixture_probs(jnp.asarray(params.weights), jnp.asarray(params.atoms))))
    counts = np.zeros(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        counts[rows] = rng.multinomial(n_obs_per_group, pi[rows] / pi[rows].sum())
    return counts
