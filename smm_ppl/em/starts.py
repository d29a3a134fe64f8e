"""Starting points in a registry: name -> function of (prepared data, K, key, n_starts).

:data:`START_METHODS` is the one vocabulary of start names: ``fit_em``, the
samplers' ``resolve_init`` and the CLI's choices all derive from it.  Each
method declares when it applies; the latent-moment (Hermite) starts need
counts over one set of items and ``K <= L``, so a layout without them skips
them under ``init="auto"`` and rejects them by name with the reason.

Every method returns :class:`~smm_ppl.SMMParams` with a leading starts axis,
in the user's original coordinates.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from ..core.params import SMMParams, floor_weights
from ..core.validation import check_params, host_rng
from ..data.prepared import Prepared

__all__ = ["StartMethod", "START_METHODS", "INIT_NAMES", "AUTO", "Starts", "build_starts", "register_start"]

AUTO = "auto"


class StartMethod(NamedTuple):
    """A registered start.

    ``make(prepared, K, key, n_starts) -> SMMParams`` with shapes ``(S, K)``
    and ``(S, K, L)`` (a ``make`` with a ``penalty`` parameter also receives a
    MAP fit's :class:`~smm_ppl.core.prior.Penalty`, ``None`` for maximum
    likelihood, for starts that refit); ``applies(prepared, K)`` returns ``None`` when the
    method applies, else the reason it does not; ``batched`` methods draw
    ``n_starts`` starts; ``in_auto(K)`` says whether ``init="auto"`` tries it.
    """

    name: str
    make: Callable[[Prepared, int, jax.Array, int], SMMParams]
    applies: Callable[[Prepared, int], str | None]
    batched: bool
    in_auto: Callable[[int], bool]
    seed: int  # which derived seed the method draws from (fixed: same seed, same start)


def _moments_apply(prepared: Prepared, K: int) -> str | None:
    layout = prepared.white
    if not getattr(layout, "supports_moments", False):
        return f"the latent moments need counts over one set of items, not a {type(layout).__name__} layout"
    if K > layout.n_features:
        return (
            f"K={K} > L={layout.n_features}: the atoms cannot span a K-dimensional subspace "
            "(the subspace methods need n_components <= n_features)"
        )
    return None


def _batch(params: SMMParams) -> SMMParams:
    w, a = np.asarray(params.weights, dtype=np.float64), np.asarray(params.atoms, dtype=np.float64)
    return SMMParams(w[None], a[None]) if w.ndim == 1 else SMMParams(w, a)


def _mom(prepared, K, key, n_starts):
    from ..warmstart import mom_init

    return _batch(mom_init(prepared, None, K, seed=key))


def _tensor(prepared, K, key, n_starts):
    from ..warmstart import tensor_init

    return _batch(tensor_init(prepared, None, K, seed=key))


def _subspace(prepared, K, key, n_starts):
    from ..warmstart import subspace_random_inits

    return _batch(subspace_random_inits(prepared, None, K, n_starts, seed=key))


def _random(prepared, K, key, n_starts):
    """Random atoms in the full whitened space.

    With counts over items, ``beta_k ~ N(m1, C)``: ``m1`` the first latent
    moment and ``C = M2 - m1 m1^T`` the between-class covariance
    (docs/math.md#latent-moments) with its eigenvalues clipped to ``[0.05, 4]``, the right location and
    scale without the subspace.  Other layouts: ``N(0, I)`` in whitened units.
    """
    white = prepared.white
    L = white.n_features
    z = host_rng(key).standard_normal((n_starts, K, L))
    if getattr(white, "supports_moments", False):
        xt, w = np.asarray(white.features), np.asarray(white.frequencies)
        m1 = w @ xt
        m2 = (xt * w[:, None]).T @ xt - np.eye(L)
        between = m2 - np.outer(m1, m1)
        lam, vec = np.linalg.eigh((between + between.T) / 2)
        root = (vec * np.sqrt(np.clip(lam, 0.05, 4.0))) @ vec.T
        beta = m1 + z @ root
    else:
        beta = z
    return SMMParams(np.full((n_starts, K), 1.0 / K), prepared.whitening.to_original(beta))


def always_applies(prepared, K):
    return None


def _items_apply(prepared: Prepared, K: int) -> str | None:
    layout = prepared.white
    if not getattr(layout, "supports_moments", False):
        return f"it needs counts over one set of items, not a {type(layout).__name__} layout"
    if K > int(np.count_nonzero(np.asarray(layout.counts) > 0)):
        return f"K={K} exceeds the number of observed items"
    return None


def _split(prepared, K, key, n_starts, penalty=None):
    from .greedy import split_start

    return split_start(prepared, K, key, n_starts, penalty)


def _clusters(prepared, K, key, n_starts, penalty=None):
    from .greedy import clusters_start

    return clusters_start(prepared, K, key, n_starts, penalty)


#: The registry, in the order ``init="auto"`` tries the methods.
START_METHODS: dict[str, StartMethod] = {}


def register_start(method: StartMethod) -> None:
    """Add a start to the registry (its name becomes valid for ``fit_em``, the samplers and the CLI)."""
    if method.name == AUTO:
        raise ValueError(f"{AUTO!r} is reserved for the automatic choice.")
    START_METHODS[method.name] = method


register_start(StartMethod("mom", _mom, _moments_apply, False, lambda K: K <= 3, 2))
register_start(StartMethod("tensor", _tensor, _moments_apply, False, lambda K: True, 3))
register_start(StartMethod("subspace", _subspace, _moments_apply, True, lambda K: True, 4))
register_start(StartMethod("split", _split, _items_apply, False, lambda K: True, 5))
register_start(StartMethod("clusters", _clusters, _items_apply, False, lambda K: True, 6))
register_start(StartMethod("random", _random, always_applies, True, lambda K: False, 1))


def init_names() -> tuple[str, ...]:
    """Valid names for ``init``: ``"auto"`` and every registered start."""
    return (AUTO,) + tuple(START_METHODS)


INIT_NAMES = init_names()


class Starts(NamedTuple):
    """Candidate starts for EM (original coordinates) and what went wrong on the way."""

    names: list
    params: SMMParams  # (S, K), (S, K, L)
    failed: list  # rows {"name", "error", "skipped"}: starts that failed, or (skipped) do not apply
    warnings: list  # messages the starts emitted (re-issued once each under "auto")


def _key_for(key, method: StartMethod) -> int:
    """The seed of a method's own stream (drawn on the host: no program to compile)."""
    return int(host_rng(key, method.seed).integers(2**31 - 1))


def _names(method: StartMethod, count: int) -> list[str]:
    return [f"{method.name}[{i}]" for i in range(count)] if method.batched else [method.name] * count


def _user_starts(init: Any, K: int, L: int) -> tuple[list, SMMParams]:
    if hasattr(init, "params") and isinstance(init.params, tuple):  # an EM result
        init = init.params
    if not isinstance(init, tuple) or len(init) != 2:
        raise TypeError(
            f"init must be one of {list(INIT_NAMES)} or an SMMParams(weights, atoms), got {type(init).__name__}."
        )
    weights, atoms = np.asarray(init[0]), np.asarray(init[1])
    if weights.ndim == 2 and atoms.ndim == 3:  # a batch of starts
        if weights.shape[0] != atoms.shape[0] or weights.shape[0] == 0:
            raise ValueError(
                f"init with a leading starts axis needs weights (S, K) and atoms (S, K, L) with the same S >= 1, "
                f"got {weights.shape} and {atoms.shape}."
            )
        batch = [check_params((w, a), L, name=f"init[{i}]") for i, (w, a) in enumerate(zip(weights, atoms))]
        names = [f"user[{i}]" for i in range(len(batch))]
    else:
        batch = [check_params((weights, atoms), L, name="init")]
        names = ["user"]
    if batch[0].weights.shape[0] != K:
        raise ValueError(f"init has {batch[0].weights.shape[0]} components but n_components={K}; they must match.")
    return names, SMMParams(np.stack([b.weights for b in batch]), np.stack([b.atoms for b in batch]))


def check_init(init: Any) -> Any:
    """Reject an unknown start name early (before any work), naming the valid ones."""
    if isinstance(init, str) and init not in INIT_NAMES:
        raise ValueError(f"init must be one of {list(INIT_NAMES)} or an SMMParams, got the unknown name {init!r}.")
    return init


def _make(method: StartMethod, prepared: Prepared, K: int, key, n_starts: int, penalty) -> SMMParams:
    """``method.make``, with the MAP fit's penalty where the method takes one."""
    try:
        takes_penalty = "penalty" in inspect.signature(method.make).parameters
    except (TypeError, ValueError):
        takes_penalty = False
    kwargs = {"penalty": penalty} if takes_penalty else {}
    return method.make(prepared, K, _key_for(key, method), n_starts, **kwargs)


def build_starts(init: Any, prepared: Prepared, K: int, key: jax.Array, n_starts: int, penalty: Any = None) -> Starts:
    """The candidate starts for ``init``: a registered name, ``"auto"``, or user parameters.

    ``penalty``: a MAP fit's :class:`~smm_ppl.core.prior.Penalty`, for the starts that refit.
    """
    L = prepared.n_features
    if not isinstance(init, str):
        names, params = _user_starts(init, K, L)
        return Starts(names, SMMParams(floor_weights(params.weights), params.atoms), [], [])
    check_init(init)
    if init != AUTO:
        method = START_METHODS[init]
        reason = method.applies(prepared, K)
        if reason is not None:
            raise ValueError(f"init={init!r} does not apply here: {reason}; use init='random' or 'auto'.")
        params = _make(method, prepared, K, key, n_starts, penalty)
        return Starts(_names(method, params.weights.shape[0]), _finite(params, init), [], [])

    if K == 1:  # one class: a concave problem, one start (the plain MNL fit) is enough
        method = START_METHODS["split"]
        if method.applies(prepared, K) is None:
            return Starts(["split"], _make(method, prepared, K, key, 1, penalty), [], [])
    names, weights, atoms, failed, caught = [], [], [], [], []
    have_batch = False
    for method in START_METHODS.values():
        if not method.in_auto(K):
            continue
        reason = method.applies(prepared, K)
        if reason is not None:
            failed.append({"name": method.name, "error": f"does not apply: {reason}", "skipped": True})
            continue
        try:
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                params = _finite(_make(method, prepared, K, key, n_starts, penalty), method.name)
        except Exception as err:  # recorded, not fatal: other starts remain
            failed.append({"name": method.name, "error": f"{type(err).__name__}: {err}", "skipped": False})
            continue
        caught.extend(str(r.message) for r in record if str(r.message) not in caught)
        names += _names(method, params.weights.shape[0])
        weights.append(params.weights)
        atoms.append(params.atoms)
        have_batch |= method.batched
    if not have_batch:  # no family of random starts yet: the full-space random starts
        method = START_METHODS["random"]
        params = _make(method, prepared, K, key, n_starts, penalty)
        names += _names(method, params.weights.shape[0])
        weights.append(params.weights)
        atoms.append(params.atoms)
    return Starts(names, SMMParams(floor_weights(np.concatenate(weights)), np.concatenate(atoms)), failed, caught)


def _finite(params: SMMParams, name: str) -> SMMParams:
    if not (np.isfinite(params.weights).all() and np.isfinite(params.atoms).all()):
        raise ValueError(f"the {name} start returned non-finite values")
    return params
