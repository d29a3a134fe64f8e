"""Input validation shared by every public entry point.

Each checker takes the user's object and the *argument name* it came in as,
and either returns a clean NumPy array or raises ``TypeError``/``ValueError``
whose message names the argument, what is wrong and what to do.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import numpy as np

from .rows import row_blocks, row_moments

__all__ = [
    "check_features",
    "check_counts",
    "check_n_components",
    "check_positive_int",
    "check_positive_float",
    "check_nonnegative_float",
    "check_params",
    "check_key",
    "check_choice",
    "check_draws",
    "check_bool",
]


def _as_numeric_array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise TypeError(f"{name} is None; expected an array of numbers.")
    if isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}.")
    try:
        arr = np.asarray(value)
    except Exception as err:  # pragma: no cover - exotic containers
        raise TypeError(f"{name} could not be converted to an array: {err}") from err
    if arr.dtype == bool:
        raise TypeError(f"{name} has boolean dtype; pass numbers (e.g. {name}.astype(float)).")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    return arr


def check_features(
    features: Any, name: str = "features", *, check_rank: bool = True, keep_float32: bool = False
) -> np.ndarray:
    """Validate a feature matrix ``(n_items, n_features)`` and return it as float64.

    Rejects non-numeric or non-2-D input, fewer than two items, NaN or infinite
    entries, constant columns (their atom coordinate is unidentifiable: the
    softmax is invariant to shifting all features) and, when ``check_rank``,
    linearly dependent columns after centring (same reason, in a rotated basis).
    The checks run over row blocks; with ``keep_float32`` a float32 matrix is
    returned as it is (no float64 copy of a large matrix).
    """
    arr = _as_numeric_array(features, name)
    if arr.ndim != 2:
        hint = f" (for one feature use {name}.reshape(-1, 1))" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D of shape (n_items, n_features), got shape {arr.shape}{hint}.")
    n_items, n_features = arr.shape
    if n_items < 2:
        raise ValueError(f"{name} must have at least 2 items (rows), got {n_items}.")
    if n_features < 1:
        raise ValueError(f"{name} must have at least 1 feature (column), got {n_features}.")
    if not (keep_float32 and arr.dtype == np.float32):
        arr = arr.astype(np.float64, copy=False)
    for rows in row_blocks(n_items):
        finite = np.isfinite(arr[rows])
        if not finite.all():
            r, c = np.nonzero(~finite)
            total = sum(int((~np.isfinite(arr[b])).sum()) for b in row_blocks(n_items))
            kind = "NaN" if np.isnan(arr[rows][r[0], c[0]]) else "infinite"
            raise ValueError(
                f"{name} contains {total} NaN or infinite value(s) (first: {kind} at row {rows.start + r[0]}, "
                f"column {c[0]}); drop or impute those items first."
            )
    high, low = arr.max(axis=0).astype(np.float64), arr.min(axis=0).astype(np.float64)
    spread = high - low
    scale = np.maximum(np.maximum(np.abs(high), np.abs(low)), 1.0)
    constant = np.nonzero(spread <= 1e-12 * scale)[0]
    if constant.size:
        raise ValueError(
            f"{name} column(s) {constant.tolist()} are constant across items; a constant feature "
            "(an intercept) cancels in the softmax, so its atom coordinate is unidentifiable. "
            "Drop those column(s)."
        )
    if check_rank and n_features > 1:
        _, cov = row_moments(arr)
        sd = np.sqrt(np.diag(cov))
        eig = np.linalg.eigvalsh(cov / np.outer(sd, sd))
        if eig[0] <= 1e-10 * max(eig[-1], 1.0):
            raise ValueError(
                f"{name} has linearly dependent columns after centring (rank < {n_features}); the atoms "
                "are then unidentifiable along the null direction. Remove redundant columns."
            )
    return arr


def check_counts(counts: Any, n_items: int, name: str = "counts") -> np.ndarray:
    """Validate a count vector of shape ``(n_items,)`` and return it as int64."""
    arr = _as_numeric_array(counts, name)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D of shape (n_items,) = ({n_items},), got shape {arr.shape}. "
            "For raw draws (item indices) use smm_ppl.counts_from_draws."
        )
    if arr.shape[0] != n_items:
        raise ValueError(f"{name} has {arr.shape[0]} entries but features has {n_items} items (rows); they must match.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values; counts must be finite integers.")
        if not np.all(arr == np.round(arr)):
            bad = int(np.nonzero(arr != np.round(arr))[0][0])
            raise ValueError(
                f"{name} must be whole numbers (counts of draws), got fractional value {arr[bad]!r} at "
                f"index {bad}. For frequencies, multiply by the number of observations."
            )
    if (arr < 0).any():
        bad = int(np.nonzero(arr < 0)[0][0])
        raise ValueError(f"{name} must be non-negative, got {arr[bad]!r} at index {bad}.")
    arr = arr.astype(np.int64)
    if arr.sum() == 0:
        raise ValueError(f"{name} are all zero: there is no observation to fit.")
    return arr


def check_draws(draws: Any, n_items: int, name: str = "draws") -> np.ndarray:
    """Validate raw draws: a 1-D array of item indices in ``[0, n_items)``."""
    arr = _as_numeric_array(draws, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of item indices, got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: there is no observation.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer item indices; found non-integer values.")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n_items:
        raise ValueError(f"{name} must be item indices in [0, {n_items}); found values in [{arr.min()}, {arr.max()}].")
    return arr


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer ``>= minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            raise TypeError(f"{name} must be an integer, got the float {value!r}; pass int({value!r}).")
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return value


def check_n_components(n_components: Any, n_items: int, name: str = "n_components") -> int:
    """Validate the number of classes ``K``: a positive integer no larger than ``n_items``."""
    k = check_positive_int(n_components, name)
    if k > n_items:
        raise ValueError(
            f"{name}={k} exceeds the number of items ({n_items}); a mixture of more classes than items "
            "is not identifiable."
        )
    return k


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as float if it is a finite number ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}.")
    return value


def check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``value`` as float if it is a finite number ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return value


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as bool if it is ``True`` or ``False`` (NumPy bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}.")
    return bool(value)


def check_choice(value: Any, name: str, choices) -> str:
    """Validate that ``value`` is one of the strings in ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}.")
    return value


def check_params(params: Any, n_features: int | None = None, name: str = "params", *, atol: float = 1e-6):
    """Validate an :class:`~smm_ppl.SMMParams` (or a ``(weights, atoms)`` pair).

    ``weights`` must be ``(K,)`` on the simplex (non-negative, summing to one
    within ``atol``), ``atoms`` must be ``(K, n_features)`` and finite.
    Returns a new ``SMMParams`` of float64 NumPy arrays.
    """
    from .params import SMMParams

    if not isinstance(params, tuple) or len(params) != 2:
        raise TypeError(f"{name} must be an SMMParams(weights=..., atoms=...), got {type(params).__name__}.")
    weights = _as_numeric_array(params[0], f"{name}.weights").astype(np.float64)
    atoms = _as_numeric_array(params[1], f"{name}.atoms").astype(np.float64)
    if weights.ndim != 1:
        raise ValueError(f"{name}.weights must be 1-D of shape (K,), got shape {weights.shape}.")
    if atoms.ndim != 2 or atoms.shape[0] != weights.shape[0]:
        raise ValueError(
            f"{name}.atoms must be 2-D of shape (K, n_features) with K = len(weights) = {weights.shape[0]}, "
            f"got shape {atoms.shape}."
        )
    if n_features is not None and atoms.shape[1] != n_features:
        raise ValueError(f"{name}.atoms has {atoms.shape[1]} columns but features has {n_features}; they must match.")
    if not np.isfinite(weights).all() or not np.isfinite(atoms).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    if (weights < 0).any():
        raise ValueError(f"{name}.weights must be non-negative, got {weights.tolist()}.")
    if abs(weights.sum() - 1.0) > atol:
        raise ValueError(
            f"{name}.weights must sum to 1 (a point on the simplex), got sum {weights.sum():.6g}; "
            "normalise with weights / weights.sum()."
        )
    return SMMParams(weights=weights / weights.sum(), atoms=atoms)


def check_key(seed: Any, name: str = "seed") -> jax.Array:
    """Turn an int seed or a ``jax.random`` key into a key; reject anything else."""
    if isinstance(seed, bool):
        raise TypeError(f"{name} must be an int or a jax.random key, got bool.")
    if isinstance(seed, numbers.Integral):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int, got {seed}.")
        return jax.random.PRNGKey(int(seed))
    if isinstance(seed, jax.Array) or isinstance(seed, np.ndarray):
        if jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
            return seed
        if seed.shape == (2,) and np.issubdtype(np.asarray(seed).dtype, np.unsignedinteger):
            return jax.numpy.asarray(seed)
    raise TypeError(f"{name} must be an int or a jax.random key (jax.random.PRNGKey(...)), got {type(seed).__name__}.")


def host_rng(key: Any, *stream: int) -> np.random.Generator:
    """A NumPy generator determined by a ``jax.random`` key (or an int seed) and optional stream numbers.

    The warm starts draw a few small arrays once per fit: on the host they
    compile nothing (each ``jax.random`` shape is a program of its own, a
    few tenths of a second when first met).  Same key, same draws.
    """
    if isinstance(key, numbers.Integral):
        words = [int(key)]
    else:
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        words = np.asarray(key).astype(np.uint32).ravel().tolist()
    return np.random.default_rng([*words, *(int(s) for s in stream)])


# --------------------------------------------------------------------------- #
# Declarative parameter constraints (scikit-learn's ``_parameter_constraints``)
# --------------------------------------------------------------------------- #


class Constraint:
    """A named check: ``constraint(value, name)`` returns the checked value or raises."""

    def __init__(self, check, description: str):
        self._check = check
        self.description = description

    def __call__(self, value: Any, name: str) -> Any:
        return self._check(value, name)

    def __repr__(self) -> str:
        return f"Constraint({self.description})"


def Integer(minimum: int = 1) -> Constraint:  # noqa: N802  (reads like a type in a constraint table)
    return Constraint(lambda v, n: check_positive_int(v, n, minimum=minimum), f"integer >= {minimum}")


def Real(*, strict: bool) -> Constraint:  # noqa: N802
    if strict:
        return Constraint(check_positive_float, "finite real > 0")
    return Constraint(check_nonnegative_float, "finite real >= 0")


def Options(choices) -> Constraint:  # noqa: N802
    choices = tuple(choices)
    return Constraint(lambda v, n: check_choice(v, n, choices), f"one of {list(choices)}")


def Boolean() -> Constraint:  # noqa: N802
    return Constraint(check_bool, "True or False")


def Optional(inner: Constraint) -> Constraint:  # noqa: N802
    return Constraint(lambda v, n: None if v is None else inner(v, n), f"None or {inner.description}")


def validate_params(constraints: dict, values: dict) -> dict:
    """Check every ``values[name]`` against ``constraints[name]``; return the checked values.

    A name without a constraint is a programming error (the table must cover
    every argument it is given).
    """
    missing = set(values) - set(constraints)
    if missing:
        raise KeyError(f"no constraint declared for {sorted(missing)}")
    return {name: constraints[name](value, name) for name, value in values.items()}
