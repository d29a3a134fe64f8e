"""The specification of a latent-class logit: named parameters, ties across classes, fixed values.

Two ways to write it, one map underneath:

* :class:`ChoiceModel` names the parameters, as biogeme's ``Beta``, larch's
  ``P`` and apollo's ``beta`` vector do: each class's utility maps columns to
  parameter names (``{"cost": "b_cost", "asc_car": "asc_car"}``); a name used
  in several classes (or on several columns) is one parameter; any parameter
  may be fixed; the class-membership model maps covariates to names per
  class (classes without one are the reference).
* The shorthand of :func:`~smm_ppl.fit_latent_class` (``n_components``,
  ``shared=``, ``fixed=``, held by :class:`LatentClassSpec`): coefficients are
  class-specific by default (one per class, named ``"time[2]"`` for class 2;
  classes are numbered ``1 .. K`` in names and specifications, as in the
  output of biogeme and apollo), shared across classes (one coefficient, named
  after its column), or fixed to a value (all classes, or chosen classes:
  fixing to 0 removes a feature from a class).  The membership model has one
  coefficient per covariate for classes ``2 .. K`` (class 1 is the
  reference), named ``"membership[k]:<covariate>"``.  It builds the
  :class:`ChoiceModel` with those names.

:class:`ParameterMap` is the one affine map from the free parameter vector
``z = [coefficients, membership]`` to the atoms (K, L) and the units' log
class probabilities (docs/math.md#named-parameters), the one function every
method of the package differentiates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .data import CONSTANT

#: The names of the default membership parameters.
_DEFAULT_MEMBERSHIP = re.compile(r"membership\[\d+\]:.+")

__all__ = [
    "ChoiceModel",
    "LatentClassSpec",
    "ParameterMap",
    "parameter_map",
    "model_map",
    "shorthand_model",
    "pooled_map",
]


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


# --------------------------------------------------------------------------- #
# The named specification
# --------------------------------------------------------------------------- #


def _class_number(k: Any, K: int, arg: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K:
        raise ValueError(f"{arg} names class {k!r}; classes are numbered 1 .. {K}.")
    return int(k)


def _fixed_value(value: Any, arg: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{arg} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{arg} must be a number, got {value!r}.") from None
    if not np.isfinite(v):
        raise ValueError(f"{arg} must be finite, got {v}.")
    return v


def _terms(value: Any, arg: str, what: str) -> dict[str, str]:
    """``{column: parameter name}`` of one class's utility (or membership score), checked."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{arg} must be a dict {{{what}: parameter name}}, e.g. {{'cost': 'b_cost'}}, got {type(value).__name__}."
        )
    out: dict[str, str] = {}
    for col, name in value.items():
        if not isinstance(col, str):
            raise TypeError(f"{arg} has the key {col!r}; keys are {what} names (str).")
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"{arg}[{col!r}] must be a parameter name (a non-empty str), got {name!r}; fix a value with "
                "ChoiceModel(fixed={name: value})."
            )
        out[col] = name
    return out


@dataclass(frozen=True, eq=False, init=False)
class ChoiceModel:
    """A latent-class logit with named parameters (docs/guides/choice-models.md#named-parameters).

    Parameters
    ----------
    utilities : dict or list
        One utility per class: ``{1: utility_1, 2: utility_2, ...}`` (classes
        ``1 .. K``) or ``[utility_1, utility_2, ...]``.  A utility is a dict
        ``{column: parameter}``: the sum over its entries of the parameter
        times the feature column of :func:`smm_ppl.choice_data` (constants are
        dummy columns, alternative-specific attributes are columns that are 0
        for the other alternatives).  A parameter name used in several classes
        or on several columns is one parameter; a column absent from a class
        has coefficient 0 there; ``{}`` is a class of equal choice
        probabilities.
    membership : dict, optional
        ``{class: {covariate: parameter}}``: class ``k``'s score is the sum of
        its parameters times the person covariates of
        :func:`smm_ppl.choice_data` (``"const"`` is the constant); a class
        not listed scores 0 (the reference), and the class probabilities are a
        softmax of the scores.  Default: every covariate for classes
        ``2 .. K``, named ``"membership[k]:<covariate>"``, class 1 the
        reference.  ``{}``: equal class probabilities.
    fixed : dict, optional
        ``{parameter: value}``: parameters held at a value (0 removes a term).

    Attributes
    ----------
    n_components : int
    parameters : tuple of str
        Every parameter named, in order of first appearance (the utilities,
        then the membership); those not fixed are estimated, in this order.

    Examples
    --------
    >>> model = smm.ChoiceModel(
    ...     utilities={
    ...         1: {"asc_car": "asc_car", "cost": "b_cost_1"},
    ...         2: {"asc_car": "asc_car", "cost": "b_cost_2", "time": "b_time"},
    ...         3: {"cost": "b_cost_3"},
    ...     },
    ...     membership={2: {"const": "s2"}, 3: {"const": "s3"}},
    ...     fixed={"b_cost_3": -0.5},
    ... )
    """

    utilities: tuple[dict[str, str], ...]
    membership: dict[int, dict[str, str]] | None
    fixed: dict[str, float]

    def __init__(self, utilities: Any, membership: Any = None, fixed: Any = None):
        if isinstance(utilities, Mapping):
            if not utilities:
                raise ValueError("utilities is empty: give one utility per class, {1: {...}, 2: {...}}.")
            if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in utilities):
                raise TypeError(
                    "utilities maps each class (1 .. K) to its utility {column: parameter}; for one class write "
                    f"{{1: {{...}}}} or [{{...}}]. Got keys {list(utilities)}."
                )
            K = len(utilities)
            if sorted(int(k) for k in utilities) != list(range(1, K + 1)):
                raise ValueError(f"utilities has classes {sorted(utilities)}; number them 1 .. {K}.")
            per_class = [utilities[k] for k in range(1, K + 1)]
        elif isinstance(utilities, Sequence) and not isinstance(utilities, str):
            per_class = list(utilities)
            if not per_class:
                raise ValueError("utilities is empty: give one utility per class, [{...}, {...}].")
        else:
            raise TypeError(
                f"utilities must be a dict {{class: {{column: parameter}}}} or a list of such dicts, got "
                f"{type(utilities).__name__}."
            )
        K = len(per_class)
        util = tuple(_terms(u, f"utilities[{k}]", "column") for k, u in enumerate(per_class, start=1))
        member = None
        if membership is not None:
            if not isinstance(membership, Mapping):
                raise TypeError(
                    f"membership must be a dict {{class: {{covariate: parameter}}}}, got {type(membership).__name__}."
                )
            member = {}
            for k, score in membership.items():
                k = _class_number(k, K, "membership")
                member[k] = _terms(score, f"membership[{k}]", "covariate")
        used = {n for u in util for n in u.values()}
        used_m = {n for s in (member or {}).values() for n in s.values()}
        both = sorted(used & used_m)
        if both:
            raise ValueError(
                f"parameter(s) {both} appear in a utility and in the membership model; a parameter multiplies "
                "feature columns or membership covariates, not both. Rename one of them."
            )
        if fixed is None:
            fixed = {}
        if not isinstance(fixed, Mapping):
            raise TypeError(f"fixed must be a dict {{parameter: value}}, got {type(fixed).__name__}.")
        fix: dict[str, float] = {}
        for name, value in fixed.items():
            default_member = member is None and isinstance(name, str) and _DEFAULT_MEMBERSHIP.fullmatch(name)
            if name not in used and name not in used_m and not default_member:
                raise ValueError(
                    f"fixed names {name!r}, which no utility or membership score uses; the parameters are "
                    f"{sorted(used | used_m)}."
                )
            fix[name] = _fixed_value(value, f"fixed[{name!r}]")
        object.__setattr__(self, "utilities", util)
        object.__setattr__(self, "membership", member)
        object.__setattr__(self, "fixed", fix)

    @property
    def n_components(self) -> int:
        return len(self.utilities)

    @property
    def parameters(self) -> tuple[str, ...]:
        names = [n for u in self.utilities for n in u.values()]
        names += [n for _, s in sorted((self.membership or {}).items()) for n in s.values()]
        return tuple(dict.fromkeys(names))

    def __repr__(self) -> str:
        util = ", ".join(f"{k}: {u}" for k, u in enumerate(self.utilities, start=1))
        member = "default" if self.membership is None else self.membership
        return f"ChoiceModel(utilities={{{util}}}, membership={member}, fixed={self.fixed})"


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
                raise ValueError(
                    f"fixed[{name!r}] names class {k!r}; classes are numbered 1 .. {K} (n_components={K})."
                )
            out[(name, int(k))] = _fixed_value(v, f"fixed[{name!r}][{k}]")
        if name in shared and len(per_class) < K:
            raise ValueError(
                f"{name!r} is shared and fixed in some classes only; a shared coefficient is fixed in all "
                "classes or none. To tie a coefficient across some classes and fix it in others, name the "
                "parameters with smm.ChoiceModel."
            )
    return out


def shorthand_model(spec: LatentClassSpec, feature_names, K: int) -> tuple[ChoiceModel, list[str]]:
    """The :class:`ChoiceModel` of ``spec``, and its parameters in the shorthand's order (feature by feature)."""
    fixed = _check_spec(spec, feature_names, K)
    shared = (spec.shared,) if isinstance(spec.shared, str) else tuple(spec.shared)
    utilities: list[dict[str, str]] = [{} for _ in range(K)]
    fixed_names: dict[str, float] = {}
    order: list[str] = []
    for f in feature_names:
        for k in range(1, K + 1):
            tied = f in shared and (f, 1) not in fixed
            name = f if (tied or K == 1) else f"{f}[{k}]"
            utilities[k - 1][f] = name
            if (f, k) in fixed:
                fixed_names[name] = fixed[(f, k)]
            else:
                order.append(name)
    return ChoiceModel(utilities, None, fixed_names), list(dict.fromkeys(order))


# --------------------------------------------------------------------------- #
# The map
# --------------------------------------------------------------------------- #


def _one_hot_map(index, n: int, dtype) -> jax.Array:
    index = jnp.asarray(index)
    return jax.nn.one_hot(index, n, dtype=dtype) * (index >= 0)[..., None]


@dataclass(frozen=True, eq=False)
class ParameterMap:
    """``z -> (atoms, log class probabilities)``: one affine map from the free parameters.

    Every atom entry (class ``k``, feature ``l``) and every membership entry
    (covariate ``c``, class ``k``) is one free parameter or a fixed value; a
    parameter may occupy any number of entries (ties across classes and
    columns).

    Attributes
    ----------
    names : tuple of str
        The free parameters: coefficients, then membership.
    n_coefficients : int
    index : (K, L) int ndarray
        Which coefficient each atom entry is (-1: fixed).
    fixed_values : (K, L) ndarray
    covariates : (U, C) ndarray
    feature_names, covariate_names : tuple of str
    membership_index : (C, K) int ndarray
        Which parameter (a position in ``z``, ``>= n_coefficients``) each
        membership entry is (-1: fixed).  Default: class 1 the reference, then
        classes ``2 .. K`` with one parameter per covariate each.
    membership_fixed : (C, K) ndarray
        The fixed membership entries (default 0).
    """

    names: tuple[str, ...]
    n_coefficients: int
    index: np.ndarray
    fixed_values: np.ndarray
    covariates: np.ndarray
    feature_names: tuple[str, ...]
    covariate_names: tuple[str, ...]
    membership_index: np.ndarray | None = None
    membership_fixed: np.ndarray | None = None

    def __post_init__(self):
        C, K = np.shape(self.covariates)[1], np.shape(self.index)[0]
        if self.membership_index is None:
            idx = -np.ones((C, K), dtype=np.int64)
            idx[:, 1:] = self.n_coefficients + np.arange((K - 1) * C).reshape(K - 1, C).T
            object.__setattr__(self, "membership_index", idx)
        if self.membership_fixed is None:
            object.__setattr__(self, "membership_fixed", np.zeros((C, K)))

    @property
    def n_components(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_params(self) -> int:
        return len(self.names)

    @property
    def n_membership(self) -> int:
        return len(self.names) - self.n_coefficients

    def atoms(self, z: jax.Array) -> jax.Array:
        """(K, L) coefficients of every class."""
        index = jnp.asarray(self.index)
        fixed = jnp.asarray(self.fixed_values, dtype=z.dtype)
        if not self.n_coefficients:
            return fixed
        free = z[: self.n_coefficients][jnp.maximum(index, 0)]
        return jnp.where(index >= 0, free, fixed)

    def membership(self, z: jax.Array) -> jax.Array:
        """(C, K) membership coefficients (the reference class's column fixed, 0 by default)."""
        index = jnp.asarray(self.membership_index)
        fixed = jnp.asarray(self.membership_fixed, dtype=z.dtype)
        if not self.n_membership:
            return fixed
        return jnp.where(index >= 0, z[jnp.maximum(index, 0)], fixed)

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
        return _one_hot_map(self.index, self.n_coefficients, dtype)

    def membership_map(self, dtype=jnp.float64) -> jax.Array:
        """(C, K, n_membership) ``d membership / d z[n_coefficients:]``."""
        index = jnp.asarray(self.membership_index)
        return _one_hot_map(jnp.where(index >= 0, index - self.n_coefficients, -1), self.n_membership, dtype)

    def pack(self, atoms: Any, membership: Any) -> jax.Array:
        """The free vector of given atoms (K, L) and membership (C, K) (tied entries averaged).

        The membership is first shifted, per covariate, so that the first
        class whose entry is fixed holds its fixed value (class
        probabilities do not change).
        """
        atoms = jnp.asarray(atoms, dtype=jnp.float64)
        A = self.coefficient_map(atoms.dtype)
        coef = jnp.einsum("klp,kl->p", A, atoms) / jnp.maximum(jnp.einsum("klp->p", A), 1.0)
        m = jnp.asarray(membership, dtype=atoms.dtype)
        index = jnp.asarray(self.membership_index)
        fixed_entry = index < 0
        ref = jnp.argmax(fixed_entry, axis=1)  # the first class with a fixed entry, per covariate
        rows = jnp.arange(m.shape[0])
        shift = jnp.where(
            jnp.any(fixed_entry, axis=1),
            m[rows, ref] - jnp.asarray(self.membership_fixed, dtype=m.dtype)[rows, ref],
            0.0,
        )
        B = self.membership_map(atoms.dtype)
        mem = jnp.einsum("ckp,ck->p", B, m - shift[:, None]) / jnp.maximum(jnp.einsum("ckp->p", B), 1.0)
        return jnp.concatenate([coef, mem])

    def without_names(self) -> ParameterMap:
        """The same map with blank names: compiled programs keyed on it serve every model of its shapes."""
        return _replace(
            self,
            names=("",) * len(self.names),
            feature_names=("",) * len(self.feature_names),
            covariate_names=("",) * len(self.covariate_names),
        )


def _make(values: dict) -> ParameterMap:
    out = object.__new__(ParameterMap)  # no __post_init__: the leaves may be tracers or placeholders
    for f in fields(ParameterMap):
        object.__setattr__(out, f.name, values[f.name])
    return out


def _replace(pmap: ParameterMap, **changes) -> ParameterMap:
    return _make({**{f.name: getattr(pmap, f.name) for f in fields(ParameterMap)}, **changes})


_LEAVES = ("index", "fixed_values", "covariates", "membership_index", "membership_fixed")
_AUX = ("names", "n_coefficients", "feature_names", "covariate_names")

jax.tree_util.register_pytree_node(
    ParameterMap,
    lambda m: (tuple(getattr(m, n) for n in _LEAVES), tuple(getattr(m, n) for n in _AUX)),
    lambda aux, ch: _make({**dict(zip(_AUX, aux, strict=True)), **dict(zip(_LEAVES, ch, strict=True))}),
)


def model_map(
    model: ChoiceModel, feature_names, covariates: np.ndarray, covariate_names, order: list[str] | None = None
) -> ParameterMap:
    features, cov_names = list(feature_names), list(covariate_names)
    K = model.n_components
    for k, util in enumerate(model.utilities, start=1):
        unknown = [c for c in util if c not in features]
        if unknown:
            raise ValueError(
                f"the utility of class {k} names column(s) {unknown}, which are not features of the data; the "
                f"features are {features} (list every column a utility uses in choice_data(features=[...]))."
            )
    if model.membership is None:
        membership = {k: {c: f"membership[{k}]:{c}" for c in cov_names} for k in range(2, K + 1)}
    else:
        membership = model.membership
        for k, score in membership.items():
            unknown = [c for c in score if c not in cov_names]
            if unknown:
                raise ValueError(
                    f"the membership score of class {k} names covariate(s) {unknown}, which the data do not have; "
                    f"its covariates are {cov_names} ({CONSTANT!r} is the constant; add person covariates with "
                    "choice_data(covariates=[...]))."
                )
    coef_names = [n for u in model.utilities for n in u.values() if n not in model.fixed]
    mem_names = [n for k in sorted(membership) for n in membership[k].values() if n not in model.fixed]
    coef_order = list(dict.fromkeys(coef_names))
    if order is not None:
        coef_order = [n for n in order if n in set(coef_order)]
    mem_order = list(dict.fromkeys(mem_names))
    used = set(coef_names) | {n for u in model.utilities for n in u.values()}
    used |= {n for score in membership.values() for n in score.values()}
    unused = [n for n in model.fixed if n not in used]
    if unused:
        raise ValueError(
            f"fixed names {unused}, which the model does not use; its membership parameters are "
            f"{sorted({n for score in membership.values() for n in score.values()})}."
        )
    names = coef_order + mem_order
    position = {n: i for i, n in enumerate(names)}

    L, C = len(features), len(cov_names)
    index = -np.ones((K, L), dtype=np.int64)
    fixed_values = np.zeros((K, L))
    for k, util in enumerate(model.utilities):
        for col, name in util.items():
            j = features.index(col)
            if name in model.fixed:
                fixed_values[k, j] = model.fixed[name]
            else:
                index[k, j] = position[name]
    m_index = -np.ones((C, K), dtype=np.int64)
    m_fixed = np.zeros((C, K))
    for k, score in membership.items():
        for cov, name in score.items():
            c = cov_names.index(cov)
            if name in model.fixed:
                m_fixed[c, k - 1] = model.fixed[name]
            else:
                m_index[c, k - 1] = position[name]
    for c, cov in enumerate(cov_names):
        row = m_index[c]
        if K > 1 and np.all(row >= 0) and not np.isin(row, np.delete(m_index, c, axis=0)).any():
            raise ValueError(
                f"every class has a membership parameter for {cov!r}: adding the same number to all of them "
                f"leaves the class probabilities unchanged, so they are not identified. Leave one class (the "
                f"reference) without {cov!r}."
            )
    return ParameterMap(
        names=tuple(names),
        n_coefficients=len(coef_order),
        index=index,
        fixed_values=fixed_values,
        covariates=np.asarray(covariates, dtype=np.float64),
        feature_names=tuple(features),
        covariate_names=tuple(cov_names),
        membership_index=m_index,
        membership_fixed=m_fixed,
    )


def parameter_map(
    spec: LatentClassSpec | ChoiceModel,
    feature_names,
    covariates: np.ndarray,
    covariate_names,
    K: int | None = None,
) -> ParameterMap:
    """The :class:`ParameterMap` of ``spec`` (validated against the features and covariates).

    ``spec`` is a :class:`ChoiceModel` (its parameters in order of first
    appearance) or the shorthand :class:`LatentClassSpec` for ``K`` classes
    (coefficients feature by feature, then membership class by class).
    """
    if isinstance(spec, ChoiceModel):
        if K is not None and K != spec.n_components:
            raise ValueError(f"K={K} but the model has {spec.n_components} classes.")
        return model_map(spec, feature_names, covariates, covariate_names)
    if K is None:
        raise TypeError("the shorthand LatentClassSpec needs the number of classes K.")
    model, order = shorthand_model(spec, feature_names, K)
    return model_map(model, feature_names, covariates, covariate_names, order)


def pooled_map(pmap: ParameterMap) -> ParameterMap:
    """The one-class logit the starts build on: a coefficient per feature any class estimates, constant membership.

    A feature fixed in every class keeps the mean of its fixed values; a
    feature no class uses stays 0.
    """
    free = np.any(pmap.index >= 0, axis=0)
    index = np.where(free, np.cumsum(free) - 1, -1)[None, :]
    fixed = np.where(free, 0.0, np.mean(pmap.fixed_values, axis=0))[None, :]
    names = tuple(f for f, use in zip(pmap.feature_names, free, strict=True) if use)
    return ParameterMap(
        names=names,
        n_coefficients=len(names),
        index=index,
        fixed_values=fixed,
        covariates=np.asarray(pmap.covariates)[:, :1],
        feature_names=pmap.feature_names,
        covariate_names=pmap.covariate_names[:1],
    )
