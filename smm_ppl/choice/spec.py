"""The specification of a latent-class logit: which coefficients are free, shared or fixed.

Coefficients are class-specific by default (one per class, named
``"time[2]"`` for class 2; classes are numbered ``1 .. K`` in names and
specifications, as in the output of biogeme and apollo), shared across classes
(one coefficient, named after its column), or fixed to a value (all classes,
or chosen classes: fixing to 0 removes a feature from a class).  The
class-membership model has one coefficient per covariate for classes
``2 .. K`` (class 1 is the reference), named ``"membership[k]:<covariate>"``.

:class:`ParameterMap` turns the free parameter vector ``z = [coefficients,
membership]`` into the atoms (K, L) and the units' log class probabilities,
the one function every method of the package differentiates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LatentClassSpec", "ParameterMap", "parameter_map"]


class LatentClassSpec(NamedTuple):
    """Shared and fixed coefficients (everything else is class-specific).

    Attributes
    ----------
    shared : tuple of str
        Features with one coefficient for all classes.
    fixed : dict
        ``{feature: value}`` fixes it in every class; ``{feature: {class: value}}``
        in the named classes (``1 .. K``).
    """

    shared: tuple[str, ...] = ()
    fixed: dict = {}


def _check_spec(spec: LatentClassSpec, feature_names, K: int) -> dict[tuple[str, int], float]:
    names = list(feature_names)
    shared = spec.shared
    if isinstance(shared, str):
        shared = (shared,)
    for s in shared:
        if s not in names:
            raise ValueError(f"shared names {s!r}, which is not a feature; the features are {names}.")
    if not isinstance(spec.fixed, dict):
        raise TypeError(
            f"fixed must be a dict {{feature: value or {{class: value}}}}, got {type(spec.fixed).__name__}."
        )
    out: dict[tuple[str, int], float] = {}
    for name, value in spec.fixed.items():
        if name not in names:
            raise ValueError(f"fixed names {name!r}, which is not a feature; the features are {names}.")
        per_class = value if isinstance(value, dict) else dict.fromkeys(range(1, K + 1), value)
        for k, v in per_class.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K:
                raise ValueError(f"fixed[{name!r}] names class {k!r}; classes are numbered 1 .. {K} (n_classes={K}).")
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"fixed[{name!r}][{k}] must be a number, got {v!r}.") from None
            if not np.isfinite(v):
                raise ValueError(f"fixed[{name!r}][{k}] must be finite, got {v}.")
            out[(name, int(k))] = v
        if name in shared and len(per_class) < K:
            raise ValueError(
                f"{name!r} is shared and fixed in some classes only; a shared coefficient is fixed in all "
                "classes or none."
            )
    return out


@dataclass(frozen=True, eq=False)
class ParameterMap:
    """``z -> (atoms, log class probabilities)`` for one specification.

    Attributes
    ----------
    names : tuple of str
        The free parameters: coefficients, then membership.
    n_coefficients : int
    index : (K, L) int ndarray
        Which coefficient each atom entry is (-1: fixed).
    fixed_values : (K, L) ndarray
    covariates : (U, C) ndarray
    """

    names: tuple[str, ...]
    n_coefficients: int
    index: np.ndarray
    fixed_values: np.ndarray
    covariates: np.ndarray
    feature_names: tuple[str, ...]
    covariate_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_params(self) -> int:
        return len(self.names)

    def atoms(self, z: jax.Array) -> jax.Array:
        """(K, L) coefficients of every class."""
        index = jnp.asarray(self.index)
        fixed = jnp.asarray(self.fixed_values, dtype=z.dtype)
        if not self.n_coefficients:
            return fixed
        free = z[: self.n_coefficients][jnp.maximum(index, 0)]
        return jnp.where(index >= 0, free, fixed)

    def membership(self, z: jax.Array) -> jax.Array:
        """(C, K) membership coefficients, class 1's column 0."""
        C = int(self.covariates.shape[1])
        g = z[self.n_coefficients :].reshape(self.n_classes - 1, C).T
        return jnp.concatenate([jnp.zeros((C, 1), z.dtype), g], axis=1)

    def log_class_probs(self, z: jax.Array, covariates: Any = None) -> jax.Array:
        """(U, K) ``log pi_uk``: a softmax over classes of the covariates' scores."""
        cov = jnp.asarray(self.covariates if covariates is None else covariates, dtype=z.dtype)
        return jax.nn.log_softmax(cov @ self.membership(z), axis=1)

    def unit_log_likelihoods(self, z: jax.Array, layout) -> jax.Array:
        """(U,) ``log L_u`` through the layout's one likelihood."""
        weights = jnp.exp(self.log_class_probs(z))
        return layout.log_mixture_probs(weights, self.atoms(z))

    def coefficient_map(self, dtype=jnp.float64) -> jax.Array:
        """(K, L, n_coefficients) ``d atoms / d coefficients``: one where the atom entry is that coefficient."""
        index = jnp.asarray(self.index)
        return jax.nn.one_hot(index, self.n_coefficients, dtype=dtype) * (index >= 0)[..., None]

    def pack(self, atoms: Any, membership: Any) -> jax.Array:
        """The free vector of given atoms (K, L) (shared entries averaged) and membership (C, K)."""
        atoms = jnp.asarray(atoms, dtype=jnp.float64)
        A = self.coefficient_map(atoms.dtype)
        coef = jnp.einsum("klp,kl->p", A, atoms) / jnp.maximum(jnp.einsum("klp->p", A), 1.0)
        m = jnp.asarray(membership, dtype=atoms.dtype)
        return jnp.concatenate([coef, (m[:, 1:] - m[:, :1]).T.ravel()])


jax.tree_util.register_pytree_node(
    ParameterMap,
    lambda m: (
        (m.index, m.fixed_values, m.covariates),
        (m.names, m.n_coefficients, m.feature_names, m.covariate_names),
    ),
    lambda aux, ch: ParameterMap(aux[0], aux[1], ch[0], ch[1], ch[2], aux[2], aux[3]),
)


def parameter_map(
    spec: LatentClassSpec, feature_names, covariates: np.ndarray, covariate_names, K: int
) -> ParameterMap:
    """The :class:`ParameterMap` of ``spec`` for ``K`` classes (validates ``spec`` against the features)."""
    fixed = _check_spec(spec, feature_names, K)
    shared = (spec.shared,) if isinstance(spec.shared, str) else tuple(spec.shared)
    L = len(feature_names)
    index = -np.ones((K, L), dtype=np.int64)
    fixed_values = np.zeros((K, L))
    names: list[str] = []
    for j, f in enumerate(feature_names):
        if f in shared and (f, 1) not in fixed:
            index[:, j] = len(names)
            names.append(f)
            continue
        for k in range(1, K + 1):
            if (f, k) in fixed:
                fixed_values[k - 1, j] = fixed[(f, k)]
            else:
                index[k - 1, j] = len(names)
                names.append(f if K == 1 else f"{f}[{k}]")
        if f in shared:
            fixed_values[:, j] = [fixed[(f, k)] for k in range(1, K + 1)]
    n_coef = len(names)
    for k in range(2, K + 1):
        for c in covariate_names:
            names.append(f"membership[{k}]:{c}")
    return ParameterMap(
        names=tuple(names),
        n_coefficients=n_coef,
        index=index,
        fixed_values=fixed_values,
        covariates=np.asarray(covariates, dtype=np.float64),
        feature_names=tuple(feature_names),
        covariate_names=tuple(covariate_names),
    )
