"""Counts over one set of items: the layout of the paper's SMM (docs/math.md#likelihood-of-counts).

Rows are the ``p`` items, units are the items too: unit ``j`` carries the
count ``n_j`` and the log-likelihood ``log pi_j``.  Every class has one
softmax over all items.

The module-level functions are the package's one implementation of the SMM
likelihood in log space (``log_component_probs``, ``log_mixture_probs``,
``log_likelihood``); :class:`ItemCounts` adds the fast EM path.

EM's fast path
--------------
At given logits (K, p) one exponential pass ``expd = exp(logits - max)``
gives the normalisers over items, ``sigma = inv_total * expd``, the mixture
probabilities ``pi`` in linear space and, in the next M-step, the
responsibilities ``alpha sigma / pi`` (on CPU an exponential pass over a
``(K, p)`` array costs about three plain passes, so no iteration computes
two).  Only when some observed item's ``pi`` underflows (extreme logits) are
``log pi`` and the responsibilities computed in log space instead, behind a
``lax.cond``.  Every ``(K, p)`` array is item-minor: on XLA:CPU that layout
made the reductions over items and the M-step product about twice as fast as
``(p, K)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh

from ..core.params import safe_divisor
from ..core.programs import on_device
from ._base import accumulator, log_pi_floor, over_classes
from .placement import place_rows, process_local_rows, spans_processes, transpose_rows

__all__ = [
    "ItemCounts",
    "ItemStatistics",
    "item_counts",
    "log_component_probs",
    "log_mixture_probs",
    "log_responsibilities",
    "log_likelihood",
    "PAD_LOGIT",
]

# Beyond this many classes the unrolled reductions over classes stop paying.
_UNROLL_CLASSES = 32

#: The logit of a padding row: ``exp(PAD_LOGIT - max)`` is exactly 0 in
#: float32 and float64, and sums with it stay finite (no ``inf - inf``).
PAD_LOGIT = -1e30


# --------------------------------------------------------------------------- #
# The likelihood, in log space (docs/math.md#likelihood-of-counts)
# --------------------------------------------------------------------------- #


def _masked(logits: jax.Array, valid: jax.Array | None, axis: int) -> jax.Array:
    """Padding rows (``valid`` False) get :data:`PAD_LOGIT`: no mass in any normaliser."""
    if valid is None:
        return logits
    return jnp.where(jnp.expand_dims(valid, 1 - axis), logits, PAD_LOGIT)


def log_component_probs(features: jax.Array, atoms: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """``log sigma_j(theta_k)`` as an array of shape ``(p, K)`` (``valid``: see :meth:`ItemCounts.padded`)."""
    return jax.nn.log_softmax(_masked(features @ atoms.T, valid, 0), axis=0)


def log_mixture_probs(
    features: jax.Array, weights: jax.Array, atoms: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
    """``log pi_j`` of shape ``(p,)``; zero weights give ``-inf`` terms that logsumexp ignores."""
    return jax.nn.logsumexp(log_component_probs(features, atoms, valid) + jnp.log(weights), axis=1)


def log_responsibilities(features: jax.Array, weights: jax.Array, atoms: jax.Array):
    """E-step quantities in log space: ``(log gamma (p, K), log pi (p,))``."""
    joint = log_component_probs(features, atoms) + jnp.log(weights)
    log_pi = jax.nn.logsumexp(joint, axis=1)
    return joint - log_pi[:, None], log_pi


def log_likelihood(
    features: jax.Array, counts: jax.Array, weights: jax.Array, atoms: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
    """``sum_j n_j log pi_j``; items with ``n_j = 0`` contribute exactly zero (even if ``log pi_j = -inf``)."""
    log_pi = log_mixture_probs(features, weights, atoms, valid)
    return jnp.sum(jnp.where(counts > 0, counts * log_pi, 0.0))


# --------------------------------------------------------------------------- #
# The layout
# --------------------------------------------------------------------------- #


class ItemStatistics(NamedTuple):
    """Normalisers and log-likelihood at given logits (one ``(K, p)`` exponential).

    ``expd = exp(logits - max_j logits)`` with ``inv_total = 1 / sum_j expd``
    (so ``sigma = inv_total * expd``), ``log_norm = logsumexp_j logits``,
    ``log_pi`` and ``ll = sum_j w_j log pi_j`` (per observation).  ``exact``
    records that ``log_pi`` had to be computed in log space; the next E-step
    then forms the responsibilities in log space too.
    """

    log_norm: jax.Array  # (K,)
    expd: jax.Array  # (K, p)
    inv_total: jax.Array  # (K,) in (0, 1]
    log_pi: jax.Array  # (p,)
    ll: jax.Array  # ()
    exact: jax.Array  # () bool


class ItemCounts(NamedTuple):
    """Counts over one set of items (build with :func:`item_counts`).

    Attributes
    ----------
    features : (p, L)
    counts : (p,)
    frequencies : (p,) ``counts / N``
    rows_t : (L, p) or None
        The features transposed and contiguous, the operand of the logits
        ``atoms @ features_t``.  Materialised for the layout EM runs on (the
        whitened one, :meth:`padded`); ``None`` leaves
        :attr:`features_t` to a transpose on demand, so that a layout that
        only evaluates the likelihood holds one copy of the features.
    valid : (p,) bool or None
        ``None``: every row is an item.  Otherwise rows past the data are
        padding (:meth:`padded`): zero features, zero counts, and the logit
        :data:`PAD_LOGIT`, so they carry no mass in any normaliser.
    """

    features: jax.Array
    counts: jax.Array
    frequencies: jax.Array
    rows_t: jax.Array | None = None
    valid: jax.Array | None = None

    @property
    def features_t(self) -> jax.Array:
        return jnp.transpose(jnp.asarray(self.features)) if self.rows_t is None else self.rows_t

    supports_moments = True

    # ---- structure ---------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_units(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_obs(self) -> int:
        return int(round(float(np.sum(np.asarray(self.counts)))))

    def unit_counts(self) -> np.ndarray:
        return self.counts if isinstance(self.counts, jax.core.Tracer) else np.asarray(self.counts)

    def observed_units(self) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.counts) > 0)

    def with_features(self, features: Any) -> ItemCounts:
        return _build(features, self.counts, self.frequencies, transpose=False)._replace(valid=self.valid)

    def padded(self, n_rows: int, mesh: Mesh | None = None, *, buffer: np.ndarray | None = None) -> ItemCounts:
        """The same data padded with ``n_rows - p`` rows that carry nothing, transposed for EM and placed.

        Compiled programs depend on the number of rows: padding every data
        set to a bucket (:func:`~smm_ppl.layouts.rows_bucket`) lets data of
        another size reuse them.  The result always has a ``valid`` mask (also
        without padding), so that every size in a bucket has the same pytree.
        ``mesh``: split the rows over its devices
        (:mod:`~smm_ppl.layouts.placement`; ``n_rows`` must be a multiple of
        its size); ``None``: JAX's default device.  A mesh over several
        processes: these are this process's rows, ``n_rows`` this process's
        share (the same in every process), and the result holds the rows of
        all processes in their order.  ``buffer``: the features already
        padded, ``(n_rows, L)`` with zero rows after the data (saves a copy of
        a large matrix; see :func:`smm_ppl.prepare`).
        """
        x = np.asarray(self.features)
        p, L = x.shape
        pad = int(n_rows) - p
        if pad < 0:
            raise ValueError(f"n_rows={n_rows} is smaller than the {p} rows of the data.")
        if buffer is None:
            x = np.concatenate([x, np.zeros((pad, L), dtype=x.dtype)])
        elif buffer.shape != (p + pad, L) or np.any(buffer[p:]):
            raise ValueError(f"buffer must have shape ({p + pad}, {L}) with zero rows after the first {p}.")
        else:
            x = buffer
        # Counts and frequencies in the features' precision: no float32 array is promoted in the programs.
        counts = np.concatenate([np.asarray(self.counts), np.zeros(pad)]).astype(x.dtype)
        frequencies = np.concatenate([np.asarray(self.frequencies), np.zeros(pad)]).astype(x.dtype)
        valid = np.arange(p + pad) < p if self.valid is None else np.concatenate([self.valid, np.zeros(pad, bool)])
        if mesh is None:
            return _build(x, counts, frequencies, transpose=True)._replace(valid=valid)
        if spans_processes(mesh):
            # This process's rows, padded to the same n_rows in every process: the global arrays.
            x = process_local_rows(x, mesh)
            return ItemCounts(
                x,
                process_local_rows(counts, mesh),
                process_local_rows(frequencies, mesh),
                transpose_rows(x),
                process_local_rows(valid, mesh),
            )
        if (p + pad) % mesh.size:
            raise ValueError(f"n_rows={n_rows} is not a multiple of the {mesh.size} devices the rows are split over.")
        # Placed from host memory block by block: no device holds the whole array.
        x = place_rows(x, mesh)
        return ItemCounts(
            x, place_rows(counts, mesh), place_rows(frequencies, mesh), transpose_rows(x), place_rows(valid, mesh)
        )

    # ---- exact log space ---------------------------------------------------
    def log_component_probs(self, atoms):
        return log_component_probs(self.features, atoms, self.valid).T

    def log_mixture_probs(self, weights, atoms):
        return log_mixture_probs(self.features, weights, atoms, self.valid)

    def log_likelihood(self, weights, atoms):
        return log_likelihood(self.features, self.counts, weights, atoms, self.valid)

    # ---- EM fast path ------------------------------------------------------
    def statistics(self, weights, logits, exact=None) -> ItemStatistics:
        """Normalisers and log-likelihood at ``logits``: one ``(K, p)`` exponential.

        ``pi_j = sum_k (alpha_k / sum_j expd_kj) expd_kj`` in linear space is
        exact to round-off unless some observed item's ``pi_j`` falls below
        ``pi_tiny`` (``log pi_j < -472``: atoms a few hundred whitened units
        long); then ``log_pi`` is recomputed in log space behind a
        ``lax.cond`` (under ``vmap`` a select: both run) and ``exact`` is set.
        ``exact=True`` / ``False`` forces a path (tests).
        """
        w = self.frequencies
        K = logits.shape[0]
        logits = _masked(logits, self.valid, 1)
        m = jnp.max(logits, axis=1)
        expd = jnp.exp(logits - m[:, None])
        total = jnp.sum(expd, axis=1)  # >= 1 (the maximum contributes exp(0))
        log_norm = m + jnp.log(total)
        inv_total = 1.0 / total
        coef = weights * inv_total
        if K <= _UNROLL_CLASSES:
            pi = over_classes([coef[k] * expd[k] for k in range(K)], jnp.add)
        else:
            pi = coef @ expd
        # The predicate is taken on log(pi), not pi: XLA fuses the cheap sum
        # giving pi into each of its consumers (one more read of expd each),
        # but not the log, so expd is read once.
        log_pi_fast = jnp.log(pi)
        observed = w > 0

        def slow(_):
            return _log_pi_exact(weights, logits, log_norm)

        if exact is None:
            exact = jnp.any(observed & (log_pi_fast < log_pi_floor(logits.dtype)))
            log_pi = lax.cond(exact, slow, lambda _: log_pi_fast, None)
        else:
            log_pi = slow(None) if exact else log_pi_fast
            exact = jnp.asarray(bool(exact))
        ll = jnp.sum(jnp.where(observed, w * log_pi, 0.0), dtype=accumulator(log_pi.dtype))
        return ItemStatistics(log_norm, expd, inv_total, log_pi, ll, exact)

    def weights_and_residual(self, weights, logits, stats: ItemStatistics, exact=None):
        """``alpha_raw = sum_j w_j gamma_kj`` and the residual ``R = w gamma / alpha_raw - sigma``.

        The gradient ``Xt^T (w gamma_k / alpha_k - sigma_k)`` needs one product
        with ``R`` rather than two (K rows instead of the 2K of
        ``[w gamma ; sigma]``: the product over the features dominates an
        iteration).  Normally ``alpha_raw_k = alpha_k inv_total_k (expd @ (w /
        pi))_k``, a read of ``expd``; when ``stats.exact``, ``w gamma`` in log
        space (its exponent is ``<= 0``).  ``exact`` forces a path (tests).
        """
        w = self.frequencies

        def fast(_):
            # Items with w_j = 0 may have pi_j = 0 (w_j / pi_j = NaN): they get 0.
            wr = jnp.where(w > 0, w * jnp.exp(-stats.log_pi), 0.0)
            coef = weights * stats.inv_total
            alpha_raw = coef * (stats.expd @ wr)
            safe = safe_divisor(alpha_raw)
            r = stats.expd * ((coef / safe)[:, None] * wr - stats.inv_total[:, None])
            return alpha_raw, r

        def slow(_):
            sigma = stats.inv_total[:, None] * stats.expd
            wgamma = self._wgamma_log_space(weights, logits, stats)
            alpha_raw = jnp.sum(wgamma, axis=1)
            return alpha_raw, wgamma / safe_divisor(alpha_raw)[:, None] - sigma

        return _choose(stats.exact, exact, fast, slow)

    def newton_system(self, weights, logits, stats: ItemStatistics):
        """``alpha_raw``, the gradient (K, L) and the Hessians ``Xt^T (diag sigma - sigma sigma^T) Xt``."""
        K = logits.shape[0]
        # The Hessian needs the class means on their own: one product for both
        # halves of the gradient, [w gamma ; sigma] @ Xt (2K rows, one pass).
        h = self.responsibility_rows(weights, logits, stats)
        both = h @ self.features
        alpha_raw = jnp.sum(h[:K], axis=1)
        mu = both[K:]
        grad = both[:K] / safe_divisor(alpha_raw)[:, None] - mu
        xt = self.features
        sigma = stats.inv_total[:, None] * stats.expd
        # One class at a time: O(p L^2) memory-light products (an einsum over
        # all classes at once materialises a (p, K, L) array, 2-3x slower).
        second = lax.map(lambda s: (xt * s[:, None]).T @ xt, sigma)
        hess = second - mu[:, :, None] * mu[:, None, :]
        return alpha_raw, grad, hess

    def responsibility_rows(self, weights, logits, stats: ItemStatistics, exact=None):
        """``[w gamma ; sigma]`` (2K, p) from the carried statistics (``exact`` forces a path)."""
        w = self.frequencies

        # sigma is formed inside each branch so that it fuses into the one
        # pass writing the product's operand.
        def fast(_):
            sigma = stats.inv_total[:, None] * stats.expd
            wr = jnp.where(w > 0, w * jnp.exp(-stats.log_pi), 0.0)
            wgamma = (weights * stats.inv_total)[:, None] * stats.expd * wr
            return jnp.concatenate([wgamma, sigma], axis=0)

        def slow(_):
            sigma = stats.inv_total[:, None] * stats.expd
            return jnp.concatenate([self._wgamma_log_space(weights, logits, stats), sigma], axis=0)

        return _choose(stats.exact, exact, fast, slow)

    def _wgamma_log_space(self, weights, logits, stats: ItemStatistics):
        log_sigma = _masked(logits, self.valid, 1) - stats.log_norm[:, None]
        return self.frequencies * jnp.exp(log_sigma + jnp.log(weights)[:, None] - stats.log_pi)


def _choose(flag, forced, fast, slow):
    if forced is None:
        return lax.cond(flag, slow, fast, None)
    return slow(None) if forced else fast(None)


def _log_pi_exact(weights, logits, log_norm):
    """``log pi_j = logsumexp_k (log alpha_k + logits_kj - log_norm_k)``: exact at any logits."""
    K = logits.shape[0]
    c = jnp.log(weights) - log_norm
    if K <= _UNROLL_CLASSES:
        rows = [logits[k] + c[k] for k in range(K)]
        mk = over_classes(rows, jnp.maximum)
        z = over_classes([jnp.exp(r - mk) for r in rows], jnp.add)
    else:
        joint = logits + c[:, None]
        mk = jnp.max(joint, axis=0)
        z = jnp.sum(jnp.exp(joint - mk), axis=0)
    return mk + jnp.log(z)


#: Feature matrices up to this many numbers are transposed on the host (above, on the device:
#: a second host copy of large features would raise the peak memory).
_HOST_TRANSPOSE_NUMBERS = 1 << 22


def _build(features, counts, frequencies=None, *, transpose: bool) -> ItemCounts:
    # Concrete counts stay NumPy, so that the observed items are known when a
    # model is traced (the plate's size); jitted programs convert them.
    xp = np if isinstance(counts, np.ndarray) else jnp
    if frequencies is None:
        total = xp.sum(counts)
        frequencies = counts / xp.where(total > 0, total, 1)
    if not transpose:
        return ItemCounts(features, counts, frequencies)
    if isinstance(features, np.ndarray) and features.size <= _HOST_TRANSPOSE_NUMBERS:
        # Small rows transposed on the host: no transpose program to compile or load in a new process.
        return ItemCounts(on_device(features), counts, frequencies, on_device(np.ascontiguousarray(features.T)))
    x = jnp.asarray(features)
    # jnp.transpose materialises a row-major copy: the (L, p) operand of the logits.
    return ItemCounts(x, counts, frequencies, jnp.transpose(x))


def item_counts(features: Any, counts: Any) -> ItemCounts:
    """The :class:`ItemCounts` layout of validated ``features`` (p, L) and ``counts`` (p,).

    No validation here: public entry points validate first
    (:func:`smm_ppl.as_layout`).  NumPy features are kept as they are (no
    copy); :meth:`ItemCounts.padded` gives the layout EM runs on.
    """
    if not isinstance(features, (np.ndarray, jax.Array)):
        features = np.asarray(features)
    if not isinstance(counts, jax.core.Tracer):
        # float64 also beside float32 features: counts and their sum stay exact.
        counts = np.asarray(counts, dtype=np.promote_types(features.dtype, np.float64))
    return _build(features, counts, transpose=False)
