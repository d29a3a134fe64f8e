"""The model's prior, stated once: :class:`Prior` (Dirichlet weights, Normal atoms).

``weights ~ Dirichlet(weights_concentration * 1_K)`` and ``atoms[k] ~
Normal(0, atoms_scale^2 I_L)`` independently, the atoms in the units of
``1 / features`` (original coordinates).  The NumPyro model, NUTS, SVI, the
Laplace posterior and the MAP fit of EM all take the same object, so that one
object states the model everywhere.

For EM the prior enters in whitened coordinates (``beta_k = Sigma^{1/2}
theta_k``, :mod:`smm_ppl.data.whitening`), where ``|theta_k|^2 = beta_k^T
Sigma^{-1} beta_k`` exactly, and per observation, as EM's objective is the
mean log-likelihood per observation: :meth:`Prior.penalty` builds that form
(:class:`Penalty`), and :func:`penalty_log_density` evaluates it.  The centring
of the features does not enter: it shifts every item's logit in a class by
the same amount, which the softmax ignores.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

__all__ = ["Prior", "Penalty", "penalty_log_density", "scale_penalty", "check_prior", "DEFAULT_PRIOR"]

DEFAULT_WEIGHTS_CONCENTRATION = 1.0
DEFAULT_ATOMS_SCALE = 3.0


class Penalty(NamedTuple):
    """A :class:`Prior` as EM uses it: whitened coordinates, divided by the number of observations ``N``.

    ``log p(weights, beta) / N = weights_exponent * sum_k log alpha_k
    - 0.5 * sum_k beta_k precision beta_k^T`` (plus a constant), with
    ``weights_exponent = (a0 - 1) / N`` and ``precision = Sigma^{-1} / (s0^2 N)``;
    ``eigenvalues``/``eigenvectors`` are ``precision``'s, for the M-step's
    solves.  A pytree of arrays: another ``N`` or prior reuses the compiled EM.
    """

    weights_exponent: jax.Array  # ()
    precision: jax.Array  # (L, L)
    eigenvalues: jax.Array  # (L,)
    eigenvectors: jax.Array  # (L, L)


def scale_penalty(penalty: Penalty, factor: float) -> Penalty:
    """The same prior per observation of a data set ``1 / factor`` times as large (a subset's share)."""
    f = float(factor)
    return Penalty(penalty.weights_exponent * f, penalty.precision * f, penalty.eigenvalues * f, penalty.eigenvectors)


def penalty_log_density(penalty: Penalty | None, weights: jax.Array, atoms: jax.Array) -> jax.Array:
    """The log prior per observation at whitened ``(weights, atoms)``, up to a constant (0 without a prior)."""
    if penalty is None:
        return jnp.zeros((), atoms.dtype)
    log_w = jnp.log(jnp.maximum(weights, jnp.finfo(weights.dtype).tiny))
    quadratic = jnp.sum((atoms @ penalty.precision) * atoms)
    return penalty.weights_exponent * jnp.sum(log_w) - 0.5 * quadratic


class Prior(NamedTuple):
    """The prior of the softmax mixture: ``Dirichlet(a0)`` weights, ``Normal(0, s0^2)`` atoms.

    Parameters
    ----------
    weights_concentration : float, default 1.0
        ``a0`` of the symmetric Dirichlet on the weights (1: flat on the
        simplex).  A MAP fit needs ``a0 >= 1``: below 1 the density is
        unbounded where a weight goes to 0, so there is no mode.
    atoms_scale : float, default 3.0
        ``s0``, the prior standard deviation of every atom coordinate, in the
        units of ``1 / features``.  A coordinate of ``s0`` moves an item's
        logit by ``s0`` per unit of that feature.

    Examples
    --------
    >>> import smm_ppl as smm
    >>> prior = smm.Prior(atoms_scale=1.0)
    >>> prior.atoms_scale
    1.0
    """

    weights_concentration: float = DEFAULT_WEIGHTS_CONCENTRATION
    atoms_scale: float = DEFAULT_ATOMS_SCALE

    def log_normaliser(self, n_components: int, n_features: int) -> float:
        """The log density's constant: ``log Gamma(K a0) - K log Gamma(a0) - K L log(s0 sqrt(2 pi))``."""
        K, L = int(n_components), int(n_features)
        a0, s0 = float(self.weights_concentration), float(self.atoms_scale)
        return float(gammaln(K * a0)) - K * float(gammaln(a0)) - K * L * (math.log(s0) + 0.5 * math.log(2.0 * math.pi))

    def log_density(self, weights: Any, atoms: Any) -> float:
        """``log Dirichlet(weights; a0) + sum_k log Normal(atoms_k; 0, s0^2 I)``, normalised, in original units."""
        w = np.asarray(weights, dtype=np.float64)
        a = np.asarray(atoms, dtype=np.float64)
        a0, s0 = float(self.weights_concentration), float(self.atoms_scale)
        kernel = (a0 - 1.0) * np.sum(np.log(np.maximum(w, 1e-300))) - 0.5 * np.sum(a * a) / s0**2
        return float(kernel + self.log_normaliser(a.shape[-2], a.shape[-1]))

    def penalty(self, whitening: Any, n_obs: float, dtype: Any = np.float64) -> Penalty:
        """The :class:`Penalty` of this prior for EM in ``whitening``'s coordinates with ``n_obs`` observations."""
        precision = whitening.inv_root @ whitening.inv_root / (float(self.atoms_scale) ** 2 * float(n_obs))
        precision = 0.5 * (precision + precision.T)
        eigenvalues, eigenvectors = np.linalg.eigh(precision)
        return Penalty(
            np.asarray((float(self.weights_concentration) - 1.0) / float(n_obs), dtype=dtype),
            precision.astype(dtype),
            np.maximum(eigenvalues, 0.0).astype(dtype),
            eigenvectors.astype(dtype),
        )


DEFAULT_PRIOR = Prior()


def check_prior(value: Any, name: str = "prior", *, for_mode: bool = False) -> Prior | None:
    """``None`` or a valid :class:`Prior` (``for_mode``: one whose posterior has a mode, ``a0 >= 1``)."""
    if value is None:
        return None
    if not isinstance(value, Prior):
        raise TypeError(
            f"{name} must be None or an smm_ppl.Prior, e.g. smm.Prior(weights_concentration=1.0, atoms_scale=3.0); "
            f"got {type(value).__name__}."
        )
    for field in Prior._fields:
        v = getattr(value, field)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float, np.integer, np.floating))
            or not np.isfinite(v)
            or v <= 0
        ):
            raise ValueError(f"{name}.{field} must be a finite positive number, got {v!r}.")
    if for_mode and value.weights_concentration < 1.0:
        raise ValueError(
            f"{name}.weights_concentration={value.weights_concentration:g} < 1: the Dirichlet density is unbounded "
            "where a weight goes to 0, so the posterior has no mode for EM to find. Use weights_concentration >= 1 "
            "for a MAP fit (1 is flat on the simplex); NUTS and SVI accept any positive value."
        )
    return Prior(float(value.weights_concentration), float(value.atoms_scale))
