"""What a data layout is: the only code that knows how observations are arranged.

A *layout* holds the feature rows of every softmax the data touch and the
observations on them, and answers the questions every method asks:

* the class log-probabilities of each *unit* (the thing with its own
  log-likelihood value: an item with its count, a choice situation, a
  person), the mixture's log-probability of each unit and the total
  log-likelihood, in log space only (the NumPyro model, the observed
  information, LOO);
* for EM, at given logits ``atoms @ features.T`` (K, R): the normalisers and
  the log-likelihood (:meth:`Layout.statistics`, whose result the next step
  reuses), the new weights with the gradient's residual (K, R) so that the
  atoms' gradient is one product ``residual @ features`` (the second pass),
  and the Newton system.

The EM kernel only ever computes ``atoms @ features_t`` and
``residual @ features``: the two passes over the features.  Everything
between them belongs to the layout.  A layout is a JAX pytree (a NamedTuple
of arrays), so jitted programs take it as an argument, and
:meth:`Layout.with_features` gives the same observations on other (whitened)
feature rows.

A new data shape is one module implementing this protocol plus its tests;
see :mod:`smm_ppl.layouts.items` for the reference implementation and
``docs/architecture.md``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

__all__ = [
    "Layout",
    "Statistics",
    "class_log_posteriors",
    "total_weight",
    "over_classes",
    "pi_tiny",
    "accumulator",
    "log_pi_floor",
    "rows_bucket",
]


class Statistics(Protocol):
    """What :meth:`Layout.statistics` returns: layout-specific arrays plus these."""

    log_pi: jax.Array  # (U,) log mixture probability of each unit
    ll: jax.Array  # () mean log-likelihood per unit weight (times total_weight: the total)


@runtime_checkable
class Layout(Protocol):
    """The protocol every data layout implements (see the module docstring).

    ``R`` is the number of feature rows, ``U`` the number of units, ``K`` the
    number of classes, ``L`` the number of features.
    """

    features: jax.Array  # (R, L)
    features_t: jax.Array  # (L, R), contiguous: the logits are atoms @ features_t

    #: Whether the Hermite latent-moment warm starts apply (one softmax over
    #: all rows, observations as item frequencies).
    supports_moments: bool

    # ---- structure (concrete, outside jit) -------------------------------
    @property
    def n_rows(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    @property
    def n_units(self) -> int: ...

    @property
    def n_obs(self) -> int: ...

    def unit_counts(self) -> np.ndarray:
        """(U,) observations per unit (the weight of each unit's log-likelihood); traced in a traced layout."""

    def observed_units(self) -> np.ndarray:
        """Indices of the units with observations (concrete)."""

    def with_features(self, features: Any) -> Layout:
        """The same observations on other feature rows (e.g. whitened)."""

    # ---- exact log space (model, information, LOO) -----------------------
    def log_component_probs(self, atoms: jax.Array) -> jax.Array:
        """(K, U) ``log P_k(unit)``."""

    def log_mixture_probs(self, weights: jax.Array, atoms: jax.Array) -> jax.Array:
        """(U,) ``log pi(unit) = logsumexp_k (log alpha_k + log P_k(unit))``."""

    def log_likelihood(self, weights: jax.Array, atoms: jax.Array) -> jax.Array:
        """``sum_u n_u log pi(unit)``; units without observations contribute exactly 0."""

    # ---- EM (fast path, reusing the logits) ------------------------------
    def statistics(self, weights: jax.Array, logits: jax.Array, exact: Any = None) -> Statistics:
        """Normalisers and the mean log-likelihood at ``logits`` (K, R)."""

    def weights_and_residual(
        self, weights: jax.Array, logits: jax.Array, stats: Statistics, exact: Any = None
    ) -> tuple[jax.Array, jax.Array]:
        """``alpha_raw`` (K,), the unnormalised new weights, and the residual (K, R).

        ``residual @ features`` is the gradient of class ``k``'s M-step
        objective divided by ``alpha_raw_k`` (zero for classes below the
        weight floor is the kernel's business).
        """

    def newton_system(
        self, weights: jax.Array, logits: jax.Array, stats: Statistics
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``alpha_raw`` (K,), the gradient (K, L) (per unit weight) and the Hessians (K, L, L)."""


def total_weight(layout: Layout) -> float:
    """``sum_u n_u``: the factor from the mean log-likelihood of :meth:`Layout.statistics` to the total.

    The number of draws for counts over items; the number of persons (or
    situations) for choice data, whose units weigh 1 each.
    """
    return float(np.sum(np.asarray(layout.unit_counts())))


def class_log_posteriors(layout: Layout, weights: jax.Array, atoms: jax.Array) -> jax.Array:
    """(U, K) ``log P(class k | unit)``, from the protocol's log-space methods (any layout)."""
    joint = layout.log_component_probs(atoms) + jax.numpy.log(weights)[:, None]
    return (joint - jax.nn.logsumexp(joint, axis=0)).T


def over_classes(rows, op):
    """Reduce a short list of rows elementwise (K is small and static).

    An unrolled elementwise reduction fuses into one vectorised loop; XLA:CPU's
    reduction over the leading axis of a ``(K, R)`` array was several times
    slower.
    """
    out = rows[0]
    for r in rows[1:]:
        out = op(out, r)
    return out


def accumulator(dtype):
    """The dtype a log-likelihood over many units is summed in: float64 when JAX has it.

    A float32 fit keeps its ``(K, R)`` arrays in float32 and sums the scalar
    log-likelihood in float64, so that EM's monotonicity test compares values
    accurate to the terms' own rounding, not to the rounding of a sum over
    millions of rows.
    """
    return jax.numpy.float64 if jax.config.jax_enable_x64 else dtype


def pi_tiny(dtype) -> float:
    """Smallest mixture probability of an observed unit that a linear-space E-step accepts.

    ``tiny ** (2/3)`` (about ``4e-206`` in float64): a term ``alpha_k P_k``
    lost to underflow (below ``tiny``) then changes ``pi`` and the
    responsibilities by at most ``tiny ** (1/3)`` relative, and ``w / pi``
    cannot overflow.
    """
    return float(np.finfo(dtype).tiny) ** (2.0 / 3.0)


def log_pi_floor(dtype) -> float:
    """``log(pi_tiny)``: below it the E-step switches to log space."""
    return math.log(pi_tiny(dtype))


#: Up to this many rows, buckets double (compilation dominates a fit); above,
#: they are eighths of an octave (the iterations dominate, padding costs).
_COARSE_ROWS = 49_152
_COARSE_ROWS_MIN = 6_144
_COARSE_WORK = 49_152 * 16


def rows_bucket(n_rows: int, n_features: int = 1) -> int:
    """The number of rows a layout with ``n_rows`` rows is padded to for the compiled programs.

    ``3 * 2^k`` (at least 96) up to a coarse limit: the edges sit between the
    round sizes people use (1,000 and 1,200 share 1,536; 2,000 and 3,000
    share 3,072), and padding at most doubles an iteration that costs
    microseconds.  Above, the next multiple of ``2^(floor(log2 n) - 3)``:
    at most 12.5 % padding, where the iterations dominate.  The coarse limit
    is 49,152 rows while ``rows * n_features`` stays below about 800,000
    (an iteration of well under a millisecond), halved for wider features
    down to 6,144 (a vocabulary of 30,522 tokens in 384 dimensions pads to
    30,720 rows, not 49,152).
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows must be a positive int, got {n_rows!r}.")
    n = int(n_rows)
    coarse = _COARSE_ROWS
    while coarse > _COARSE_ROWS_MIN and coarse * max(int(n_features), 1) > _COARSE_WORK:
        coarse //= 2
    if n <= coarse:
        bucket = 96
        while bucket < n:
            bucket *= 2
        return bucket
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step
