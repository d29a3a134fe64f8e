"""Bayesian latent-class logit: NUTS and SVI warm-started at the EM estimate (docs/math.md#bayesian-model, docs/math.md#choice-situations-and-panels).

The model is :func:`smm_ppl.models.latent_class.latent_class_model`: one
sample site ``"z"``, the free parameters of the specification (in the order
of ``LatentClassResult.names``), the class summed out.  Both samplers start
at a :class:`~smm_ppl.choice.LatentClassResult` (fitting one first when given
:class:`~smm_ppl.choice.ChoiceData`) and return an ``xarray.DataTree`` (ArviZ 1):

``posterior``
    ``z`` (chain, draw, parameter), coordinate ``parameter`` = the names
    (``"time[2]"``, ``"membership[2]:const"``, ...); ``coefficients``
    (chain, draw, class, feature), fixed ones included; ``shares`` (chain,
    draw, class), the mean prior class probability over units.  Classes are
    numbered ``1 .. K`` as in the names.
``sample_stats`` (NUTS)
    ``diverging``, ``lp``, ``energy``, ``n_steps``, ``acceptance_rate``,
    ``step_size``, and ``label_permutation`` (chain, draw, class) when the
    draws were relabelled.
``log_likelihood``
    ``obs`` (chain, draw, unit): ``log L_u`` of every unit, coordinate
    ``unit`` = the person ids in a panel, else the situation ids;
    ``smm.loo``, ``smm.waic`` and ``arviz_stats.loo`` use it directly (one unit
    is one observation).
``observed_data``
    ``choices`` (row): how often each available alternative was chosen, with
    its ``situation`` and ``alternative`` ids as coordinates.
``constant_data``
    ``features`` (row, feature), ``covariates`` (unit, covariate),
    ``unit_weights`` (unit), and the EM estimate the draws were labelled to
    (``reference_z``, ``reference_coefficients``, ``reference_shares``).

Label switching
---------------
Permuting the classes maps a parameter vector to another of the same
likelihood whenever the permuted classes have the same specification (the
same features free, the same fixed values).  With ``relabel=True`` every
draw is matched to the EM labelling within each group of such classes
(minimum distance between the draw's class-specific coefficients and the
EM's, the Hungarian assignment of :func:`smm_ppl.diagnostics.relabel_draws`);
``z`` is rewritten accordingly (membership coefficients re-referenced to the
new class 1).  Classes with a specification of their own (a coefficient fixed
in some classes only) are identified by it and never permuted; with no two
classes alike nothing is relabelled.

ArviZ
-----
The package's diagnostics :func:`smm_ppl.rhat`, :func:`smm_ppl.ess`,
:func:`smm_ppl.summary`, :func:`smm_ppl.loo`, :func:`smm_ppl.waic` and
:func:`smm_ppl.compare` read ``z``; :func:`compare_latent_class_posterior`
sets the EM estimate against the posterior.  ArviZ 1 (``arviz_stats``,
``arviz_plots``) takes these trees directly.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core.programs import batch_size, jit_program
from ..core.progress import Progress
from ..core.validation import (
    Options,
    check_key,
    validate_params,
)
from ..diagnostics import check_datatree, datatree_from_groups, relabel_draws
from ..diagnostics.comparison import point_posterior_table
from ..inference.nuts import SAMPLER_CONSTRAINTS, nuts_chains, sample_stats
from ..inference.svi import OPTIMISER_CONSTRAINTS
from ..models.latent_class import DEFAULT_PRIOR_SCALE, latent_class_model
from .api import LatentClassResult, fit_latent_class
from .data import ChoiceData
from .spec import ParameterMap

__all__ = [
    "sample_latent_class",
    "fit_latent_class_svi",
    "compare_latent_class_posterior",
    "relabel_latent_class_draws",
    "latent_class_log_likelihood_draws",
    "LATENT_CLASS_GUIDES",
]

#: Guides of :func:`fit_latent_class_svi`: mean field, or full covariance.
LATENT_CLASS_GUIDES = ("normal", "mvn")
# Chain starts fall back to this isotropic jitter sd when the EM covariance is singular.
_FALLBACK_JITTER_SD = 0.05


# --------------------------------------------------------------------------- #
# The EM start and the prior
# --------------------------------------------------------------------------- #


def _resolve_result(result_or_data: Any, n_classes: Any, shared: Any, fixed: Any, seed: Any) -> LatentClassResult:
    """The EM estimate to start from: the given result, or ``fit_latent_class`` on the given data."""
    if isinstance(result_or_data, LatentClassResult):
        if n_classes is not None and n_classes != result_or_data.n_classes:
            raise ValueError(
                f"n_classes={n_classes!r} but the result has {result_or_data.n_classes} classes; a result carries "
                "its own specification (leave n_classes, shared and fixed unset)."
            )
        if shared or fixed:
            raise ValueError(
                "shared/fixed are for fitting choice data; a result carries its own specification (leave them unset)."
            )
        return result_or_data
    if isinstance(result_or_data, ChoiceData):
        if n_classes is None:
            raise ValueError("given ChoiceData, n_classes is required (EM is fitted first to warm-start the sampler).")
        return fit_latent_class(result_or_data, n_classes, shared=shared, fixed=fixed, seed=seed)
    raise TypeError(
        "result_or_data must be a LatentClassResult (from smm.fit_latent_class) or ChoiceData (from "
        f"smm.choice_data), got {type(result_or_data).__name__}."
    )


def _prior_scale(value: Any, names: tuple[str, ...]) -> np.ndarray:
    """The prior sd per free parameter: a number, one per parameter, or ``{name: sd}`` (others the default)."""
    if isinstance(value, dict):
        unknown = [n for n in value if n not in names]
        if unknown:
            raise ValueError(f"prior_scale names unknown parameter(s) {unknown}; the parameters are {list(names)}.")
        value = [value.get(n, DEFAULT_PRIOR_SCALE) for n in names]
    scale = np.asarray(value, dtype=np.float64)
    if scale.ndim == 0:
        scale = np.full(len(names), float(scale))
    if scale.shape != (len(names),):
        raise ValueError(
            f"prior_scale must be a number, a dict or one value per parameter ({len(names)}), got shape {scale.shape}."
        )
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError("prior_scale must be finite and > 0.")
    return scale


def _start_covariance(result: LatentClassResult) -> np.ndarray | None:
    """The EM covariance when it is usable (finite, positive definite), else None."""
    cov = np.asarray(result.covariance, dtype=np.float64)
    if not np.all(np.isfinite(cov)):
        return None
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return cov


def _chain_starts(result: LatentClassResult, num_chains: int, jitter: float, key) -> np.ndarray:
    """(C, P) starts: the MLE plus ``jitter`` times a draw from N(0, covariance), one per chain.

    With ``jitter=1`` the starts are draws from the asymptotic normal of the
    MLE, roughly from the posterior: chains begin where they will sample,
    in the EM labelling, and different enough for R-hat to mean something.
    """
    z = np.asarray(result.z, dtype=np.float64)
    eps = np.asarray(jax.random.normal(key, (num_chains, z.shape[0])), dtype=np.float64)
    cov = _start_covariance(result)
    if cov is None:
        return z + jitter * _FALLBACK_JITTER_SD * eps
    return z + jitter * eps @ np.linalg.cholesky(cov).T


# --------------------------------------------------------------------------- #
# Derived quantities and relabelling
# --------------------------------------------------------------------------- #


@functools.partial(jax.jit, static_argnames="size")
def _derived(layout, pmap: ParameterMap, z, size: int):
    def one(zi):
        return (
            pmap.atoms(zi),
            jnp.mean(jnp.exp(pmap.log_class_probs(zi)), axis=0),
            pmap.unit_log_likelihoods(zi, layout),
        )

    return lax.map(one, z, batch_size=size)


def _derived_draws(layout, pmap: ParameterMap, z: np.ndarray):
    """``(coefficients, shares, log L_u)`` of every draw ``z`` (..., P), vectorised over draws."""
    batch = z.shape[:-1]
    flat = jnp.asarray(z.reshape(-1, z.shape[-1]))
    size = batch_size(flat.shape[0], layout.n_rows * pmap.n_classes)
    atoms, shares, ll = _derived(layout, pmap, flat, size)
    return tuple(np.asarray(a, dtype=np.float64).reshape(batch + a.shape[1:]) for a in (atoms, shares, ll))


def latent_class_log_likelihood_draws(result: LatentClassResult, z: Any) -> np.ndarray:
    """``log L_u`` of every unit for every draw of the free parameters.

    Parameters
    ----------
    result : LatentClassResult
        Gives the data and the specification.
    z : array (..., P)
        Draws of the free parameters (in the order of ``result.names``).

    Returns
    -------
    ndarray (..., U)
    """
    z = np.asarray(z, dtype=np.float64)
    if z.shape[-1:] != (result.n_params,):
        raise ValueError(f"z must have {result.n_params} values in its last axis, got shape {z.shape}.")
    return _derived_draws(result.data.layout, result.parameter_map, z)[2]


@jax.jit
def _atoms_and_membership(pmap: ParameterMap, z):
    # One compiled program rather than dozens of eager operations (seconds of dispatch on a CPU).
    return jax.vmap(pmap.atoms)(z), jax.vmap(pmap.membership)(z)


def _default_membership(pmap: ParameterMap) -> bool:
    """Whether membership is the default: every covariate free in classes ``2..K``, class 1 fixed at 0.

    Then any permutation of the classes is one of the parameters, after re-referencing to the new class 1
    (the class probabilities do not change when one vector is added to every class's scores).
    """
    C, K = np.shape(pmap.membership_index)
    expected = -np.ones((C, K), dtype=np.int64)
    expected[:, 1:] = pmap.n_coefficients + np.arange((K - 1) * C).reshape(K - 1, C).T
    return bool(np.array_equal(pmap.membership_index, expected) and not np.any(pmap.membership_fixed))


def _swap_is_symmetry(pmap: ParameterMap, a: int, b: int, membership: bool) -> bool:
    """Whether exchanging classes ``a`` and ``b`` maps the parameter space onto itself.

    It does when the fixed entries agree and the sets of places each free
    parameter occupies (utility entries, and membership entries unless the
    default membership is re-referenced) are permuted among themselves: a
    parameter tied between ``a`` and a third class has no partner in ``b``.
    """
    K = pmap.n_classes
    swap = np.arange(K)
    swap[[a, b]] = [b, a]
    index, fixed = pmap.index, pmap.fixed_values
    if not np.array_equal(index[a] < 0, index[b] < 0) or not np.array_equal(
        np.where(index[a] < 0, fixed[a], 0.0), np.where(index[b] < 0, fixed[b], 0.0)
    ):
        return False
    places: dict[int, set] = {}
    for k, j in zip(*np.nonzero(index >= 0)):
        places.setdefault(int(index[k, j]), set()).add(("u", int(k), int(j)))
    if not membership:
        m_index, m_fixed = pmap.membership_index, pmap.membership_fixed
        if not np.array_equal(m_index[:, a] < 0, m_index[:, b] < 0) or not np.array_equal(
            np.where(m_index[:, a] < 0, m_fixed[:, a], 0.0), np.where(m_index[:, b] < 0, m_fixed[:, b], 0.0)
        ):
            return False
        for c, k in zip(*np.nonzero(m_index >= 0)):
            places.setdefault(int(m_index[c, k]), set()).add(("m", int(c), int(k)))

    def move(place):  # ("u", class, column) or ("m", covariate, class)
        t, x, y = place
        return (t, int(swap[x]), y) if t == "u" else (t, x, int(swap[y]))

    sets = {frozenset(v) for v in places.values()}
    return {frozenset(move(q) for q in v) for v in places.values()} == sets


def _class_groups(pmap: ParameterMap) -> list[np.ndarray]:
    """Classes that may exchange labels (every exchange within a group maps the parameter space onto itself),
    groups of two or more."""
    membership = _default_membership(pmap)
    groups: list[list[int]] = []
    for k in range(pmap.n_classes):
        for g in groups:
            if _swap_is_symmetry(pmap, g[0], k, membership):
                g.append(k)
                break
        else:
            groups.append([k])
    return [np.asarray(g) for g in groups if len(g) > 1]


def relabel_latent_class_draws(pmap: ParameterMap, z: Any, reference_atoms: Any):
    """Match every draw's classes to a reference labelling, among classes that may swap.

    Parameters
    ----------
    pmap : ParameterMap
        The specification (``LatentClassResult.parameter_map``).
    z : array (..., P)
        Draws of the free parameters.
    reference_atoms : array (K, L)
        The labelling to match (the EM estimate's ``result.atoms``).

    Returns
    -------
    z : ndarray (..., P)
        The relabelled draws: class ``k`` of draw ``d`` is class ``perm[d, k]``
        of the original draw, its membership coefficients re-referenced to
        the new class 1 (the likelihood of every draw is unchanged).
    perm : ndarray of int64 (..., K)
        The permutation of each draw (the identity where no classes can swap).
    """
    z = np.asarray(z, dtype=np.float64)
    ref = np.asarray(reference_atoms, dtype=np.float64)
    K, L = pmap.index.shape
    if ref.shape != (K, L):
        raise ValueError(f"reference_atoms must have shape {(K, L)}, got {ref.shape}.")
    if z.shape[-1:] != (pmap.n_params,):
        raise ValueError(f"z must have {pmap.n_params} values in its last axis, got shape {z.shape}.")
    batch = z.shape[:-1]
    flat = jnp.asarray(z.reshape(-1, pmap.n_params))
    atoms, member = (np.asarray(a) for a in _atoms_and_membership(pmap, flat))  # (S, K, L), (S, C, K)
    perm = np.tile(np.arange(K, dtype=np.int64), (flat.shape[0], 1))
    for group in _class_groups(pmap):
        # Match on the coefficients that differ between the group's classes (shared and fixed ones are equal).
        cols = np.flatnonzero(np.any(pmap.index[group] != pmap.index[group[:1]], axis=0))
        if cols.size == 0:
            continue
        sub = atoms[:, group][:, :, cols]
        _, _, p = relabel_draws(np.zeros(sub.shape[:2]), sub, ref[group][:, cols])
        perm[:, group] = group[p]
    atoms = np.take_along_axis(atoms, perm[:, :, None], axis=1)
    member = np.take_along_axis(member, perm[:, None, :], axis=2)
    # Back to the free vector: each coefficient from one entry it occupies, membership relative to class 1.
    out = np.empty((flat.shape[0], pmap.n_params))
    free_k, free_j = np.nonzero(pmap.index >= 0)
    first = np.unique(pmap.index[free_k, free_j], return_index=True)[1]
    out[:, : pmap.n_coefficients] = atoms[:, free_k[first], free_j[first]]
    if _default_membership(pmap):
        gamma = member[:, :, 1:] - member[:, :, :1]  # (S, C, K-1)
        out[:, pmap.n_coefficients :] = np.swapaxes(gamma, 1, 2).reshape(flat.shape[0], -1)
    elif pmap.n_membership:  # the exchanges kept every membership place: read each parameter where it sits
        free_c, free_k = np.nonzero(pmap.membership_index >= 0)
        first = np.unique(pmap.membership_index[free_c, free_k], return_index=True)[1]
        out[:, pmap.n_coefficients :] = member[:, free_c[first], free_k[first]]
    return out.reshape(batch + (pmap.n_params,)), perm.reshape(batch + (K,))


# --------------------------------------------------------------------------- #
# The posterior DataTree
# --------------------------------------------------------------------------- #


def _inference_data(result: LatentClassResult, z: np.ndarray, *, relabel: bool, sample_stats: dict | None, attrs):
    """Relabel ``z`` (chain, draw, P), compute the derived quantities and the log-likelihood, build the DataTree."""
    import xarray as xr

    data, pmap = result.data, result.parameter_map
    K = pmap.n_classes
    perm = None
    if relabel and K > 1 and _class_groups(pmap):
        z, perm = relabel_latent_class_draws(pmap, z, result.atoms)
    coefficients, shares, ll = _derived_draws(data.layout, pmap, z)
    n_chain, n_draw = z.shape[:2]
    base = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    classes = {"class": np.arange(1, K + 1)}
    features = {"feature": list(data.feature_names)}
    params = {"parameter": list(pmap.names)}
    units = {"unit": np.asarray(data.units)}
    post_attrs = {"relabelled": int(perm is not None), "n_classes": K, "em_loglik": float(result.loglik)}
    post_attrs.update(attrs)
    posterior = xr.Dataset(
        {
            "z": (("chain", "draw", "parameter"), z),
            "coefficients": (("chain", "draw", "class", "feature"), coefficients),
            "shares": (("chain", "draw", "class"), shares),
        },
        coords={**base, **params, **classes, **features},
        attrs=post_attrs,
    )
    groups = {"posterior": posterior}
    stats = {k: (("chain", "draw"), np.asarray(v)) for k, v in dict(sample_stats or {}).items()}
    if perm is not None:
        stats["label_permutation"] = (("chain", "draw", "class"), perm)
    if stats:
        groups["sample_stats"] = xr.Dataset(stats, coords={**base, **classes})
    groups["log_likelihood"] = xr.Dataset({"obs": (("chain", "draw", "unit"), ll)}, coords={**base, **units})
    layout = data.layout
    row = np.arange(layout.n_rows)
    row_coords = {
        "row": row,
        "situation": ("row", np.asarray(data.situations)[np.asarray(layout.situation)]),
        "alternative": ("row", np.asarray(data.alternatives)),
    }
    counts = np.asarray(layout.counts, dtype=np.float64)
    if np.all(counts == np.round(counts)):
        counts = counts.astype(np.int64)
    groups["observed_data"] = xr.Dataset({"choices": (("row",), counts)}, coords=row_coords)
    em_coef = np.asarray(result.atoms, dtype=np.float64)
    groups["constant_data"] = xr.Dataset(
        {
            "features": (("row", "feature"), np.asarray(layout.features, dtype=np.float64)),
            "covariates": (("unit", "covariate"), np.asarray(data.covariates, dtype=np.float64)),
            "unit_weights": (("unit",), np.asarray(layout.unit_weights, dtype=np.float64)),
            "reference_z": (("parameter",), np.asarray(result.z, dtype=np.float64)),
            "reference_coefficients": (("class", "feature"), em_coef),
            "reference_shares": (("class",), np.asarray(result.weights, dtype=np.float64)),
        },
        coords={**row_coords, **units, "covariate": list(data.covariate_names), **params, **classes, **features},
    )
    return datatree_from_groups(groups)


# --------------------------------------------------------------------------- #
# NUTS
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=8)
def _sampler(settings: tuple):
    """The compiled NUTS program of a set of settings, kept across calls (:func:`~smm_ppl.inference.nuts.nuts_chains`).

    The layout, the specification and the prior are its data, so new data of
    the same shapes rerun the compiled program.  Returns ``run((layout, pmap,
    prior_scale), z0, inverse_mass, keys) -> (z, fields)``.
    """
    from numpyro.infer.util import potential_energy

    def potential(data, z):
        layout, pmap, prior_scale = data
        return potential_energy(latent_class_model, (layout, pmap), {"prior_scale": prior_scale}, {"z": z})

    return nuts_chains(potential, lambda data, z: z, dict(settings), "latent_class_nuts")


#: Declarative argument constraints of :func:`sample_latent_class`.
LATENT_CLASS_NUTS_CONSTRAINTS = dict(SAMPLER_CONSTRAINTS)


def sample_latent_class(
    result_or_data: LatentClassResult | ChoiceData,
    n_classes: int | None = None,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    num_chains: int = 2,
    num_warmup: int = 500,
    num_samples: int = 500,
    seed: Any = 0,
    jitter: float = 1.0,
    relabel: bool = True,
    prior_scale: Any = DEFAULT_PRIOR_SCALE,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: str | None = None,
    progress_bar: bool | None = None,
):
    """NUTS on the latent-class logit, every chain started at the EM estimate.

    Parameters
    ----------
    result_or_data : LatentClassResult or ChoiceData
        The EM fit to start from (:func:`smm_ppl.fit_latent_class`), or
        choice data, fitted first with ``n_classes``, ``shared``, ``fixed``
        and ``seed``.
    n_classes : int, optional
        Required with ChoiceData.
    shared, fixed :
        The specification, as in :func:`smm_ppl.fit_latent_class` (ChoiceData only).
    num_chains, num_warmup, num_samples : int
    seed : int or jax.random key
    jitter : float, default 1.0
        Chain ``c`` starts at ``z_hat + jitter * chol(cov) eps_c``, ``cov`` the
        EM covariance: with 1, a draw from the MLE's asymptotic normal; 0
        starts every chain at the MLE.  Where the covariance is singular, an
        isotropic jitter of sd ``0.05 * jitter``.
    relabel : bool, default True
        Match every draw to the EM labelling among classes with the same
        specification (see the module notes); the permutations go to
        ``sample_stats["label_permutation"]``.
    prior_scale : float, array (P,) or dict, default 10
        Prior sd of the free parameters (see :mod:`smm_ppl.models.latent_class`):
        one for all, one per parameter, or ``{name: sd}`` (the others 10).
    target_accept_prob, max_tree_depth, dense_mass :
        NUTS settings.  The EM covariance (its diagonal unless ``dense_mass``)
        is the first inverse mass matrix of the warmup.
    chain_method : {"parallel", "vectorized", "sequential"}, optional
        Default: "parallel" when JAX has ``num_chains`` devices, else "vectorized".
    progress_bar : bool, optional
        Default: on when standard error is a terminal.

    Returns
    -------
    xarray.DataTree
        See the module notes: posterior ``z``, ``coefficients``, ``shares``;
        sample_stats; log_likelihood ``obs`` (one value per unit: per person
        in a panel); observed_data; constant_data.  ``posterior.attrs``
        records the sampling time (seconds, compilation included).
    """
    o = validate_params(
        LATENT_CLASS_NUTS_CONSTRAINTS,
        dict(
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            jitter=jitter,
            relabel=relabel,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
            chain_method=chain_method,
            progress_bar=progress_bar,
        ),
    )
    key = check_key(seed)
    key_jitter, key_mcmc = jax.random.split(key)
    result = _resolve_result(result_or_data, n_classes, shared, fixed, seed)
    pmap, layout = result.parameter_map, result.data.layout
    scale = _prior_scale(prior_scale, pmap.names)
    num_chains = o["num_chains"]
    method = o["chain_method"]
    if method is None:
        method = "parallel" if num_chains > 1 and jax.local_device_count() >= num_chains else "vectorized"
    starts = _chain_starts(result, num_chains, o["jitter"], key_jitter)
    cov = _start_covariance(result)
    if cov is None:
        cov = np.eye(pmap.n_params)
    inverse_mass = cov if o["dense_mass"] else np.diag(cov).copy()
    settings = dict(
        num_warmup=o["num_warmup"],
        num_samples=o["num_samples"],
        target_accept_prob=o["target_accept_prob"],
        max_tree_depth=o["max_tree_depth"],
        dense_mass=o["dense_mass"],
        chain_method=method,
    )
    run = _sampler(tuple(sorted(settings.items())))
    say = Progress(o["progress_bar"], "sample_latent_class")
    say(f"{num_chains} chain(s) x ({o['num_warmup']} warmup + {o['num_samples']}) draws, {method}")
    t0 = time.perf_counter()
    keys = jax.random.split(key_mcmc, num_chains)
    # The EM covariance as the first mass matrix: the warmup's first window then starts well scaled.
    z, fields = jax.block_until_ready(
        run((layout, pmap, jnp.asarray(scale)), jnp.asarray(starts), jnp.asarray(inverse_mass), keys)
    )
    elapsed = time.perf_counter() - t0
    say(f"sampled in {elapsed:.1f} s")
    stats = sample_stats(fields)
    attrs = {
        "inference_library": "numpyro",
        "inference": "nuts",
        "init": "em",
        "chain_method": method,
        "jitter": o["jitter"],
        "num_warmup": o["num_warmup"],
        "sampling_time": elapsed,
    }
    return _inference_data(
        result, np.asarray(z, dtype=np.float64), relabel=o["relabel"], sample_stats=stats, attrs=attrs
    )


# --------------------------------------------------------------------------- #
# SVI
# --------------------------------------------------------------------------- #


@functools.lru_cache(maxsize=8)
def _svi_program(settings: tuple):
    """The compiled SVI program of a set of settings, kept across calls.

    Guide set-up, every Adam step (one ``lax.scan``) and the draws from the
    fitted guide in one jitted function: NumPyro's ``SVI.run`` would set the
    guide up op by op outside ``jit`` (seconds of dispatch on a small model)
    and recompile for every new guide object.  The guide is built inside the
    traced function, so each compilation has its own.  Returns ``run(layout,
    pmap, prior_scale, init_params, learning_rates, key) -> (draws (num_draws,
    P), losses (num_steps,))``.
    """
    import numpyro
    from numpyro import handlers
    from numpyro.infer import SVI, Trace_ELBO, init_to_feasible
    from numpyro.infer.autoguide import AutoMultivariateNormal, AutoNormal

    o = dict(settings)
    num_steps = o["num_steps"]

    def run(layout, pmap, prior_scale, init_params, learning_rates, key):
        # The learning rates are arguments, not settings: other rates reuse the compiled program.
        lr, final_lr = learning_rates[0], learning_rates[1]
        decay = (final_lr / lr) ** (1.0 / max(1, num_steps - 1))

        def schedule(i):
            return lr * decay**i

        # init_params overrides the guide's location and scales; init_to_feasible only fixes their shapes.
        auto = AutoNormal if o["guide"] == "normal" else AutoMultivariateNormal
        guide = auto(latent_class_model, init_loc_fn=init_to_feasible)
        svi = SVI(latent_class_model, guide, numpyro.optim.Adam(schedule), Trace_ELBO(num_particles=o["num_particles"]))
        key_init, key_draw = jax.random.split(key)
        # A name the guide does not have would be ignored silently, and the guide start far from the EM estimate.
        tr = handlers.trace(handlers.seed(guide, key_init)).get_trace(layout, pmap, prior_scale=prior_scale)
        unknown = set(init_params) - {k for k, v in tr.items() if v["type"] == "param"}
        if unknown:
            raise RuntimeError(f"the {auto.__name__} guide has no parameters {sorted(unknown)} to start at EM.")
        state = svi.init(key_init, layout, pmap, init_params=init_params, prior_scale=prior_scale)

        def step(state, _):
            return svi.stable_update(state, layout, pmap, prior_scale=prior_scale)

        state, losses = lax.scan(step, state, None, length=num_steps)
        draws = guide.sample_posterior(key_draw, svi.get_params(state), sample_shape=(o["num_draws"],))
        return draws["z"], losses

    return jit_program(run, name="latent_class_svi")


#: Declarative argument constraints of :func:`fit_latent_class_svi`.
LATENT_CLASS_SVI_CONSTRAINTS = {**OPTIMISER_CONSTRAINTS, "guide": Options(LATENT_CLASS_GUIDES)}


def fit_latent_class_svi(
    result_or_data: LatentClassResult | ChoiceData,
    n_classes: int | None = None,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    guide: str = "normal",
    num_steps: int = 1000,
    learning_rate: float = 0.01,
    final_learning_rate: float | None = None,
    num_draws: int = 1000,
    num_particles: int = 1,
    seed: Any = 0,
    relabel: bool = True,
    prior_scale: Any = DEFAULT_PRIOR_SCALE,
    progress_bar: bool | None = None,
):
    """Variational inference on the latent-class logit, the guide started at the EM estimate.

    The guide begins at the Laplace approximation of the EM fit: its location
    at the MLE and its scales at the standard errors (``"normal"``) or its
    covariance at the inverse observed information (``"mvn"``), so Adam only
    refines it (the prior's pull, the skewness a Gaussian guide can absorb).

    Parameters
    ----------
    result_or_data, n_classes, shared, fixed :
        As in :func:`sample_latent_class`.
    guide : {"normal", "mvn"}, default "normal"
        ``AutoNormal`` (mean field) or ``AutoMultivariateNormal`` (full covariance).
    num_steps : int, default 1000
    learning_rate : float, default 0.01
        Initial Adam step size, decaying exponentially to ``final_learning_rate``
        (default ``learning_rate / 100``) so that the last steps move the
        guide by much less than a posterior sd.
    num_draws : int, default 1000
        Draws from the fitted guide in the DataTree (one chain).
    num_particles : int, default 1
        Monte Carlo draws per ELBO gradient.
    seed, relabel, prior_scale, progress_bar :
        As in :func:`sample_latent_class`.

    Returns
    -------
    xarray.DataTree
        As :func:`sample_latent_class` (one chain, no sample_stats unless
        relabelled); ``posterior.attrs`` holds ``final_loss`` (the negative
        ELBO averaged over the last tenth of the steps) and ``initial_loss``.
    """
    if not isinstance(guide, str):
        raise TypeError(f"guide must be one of {list(LATENT_CLASS_GUIDES)}, got {type(guide).__name__}.")
    o = validate_params(
        LATENT_CLASS_SVI_CONSTRAINTS,
        dict(
            guide=guide.lower(),
            num_steps=num_steps,
            learning_rate=learning_rate,
            final_learning_rate=final_learning_rate,
            num_draws=num_draws,
            num_particles=num_particles,
            relabel=relabel,
            progress_bar=progress_bar,
        ),
    )
    key = check_key(seed)
    result = _resolve_result(result_or_data, n_classes, shared, fixed, seed)
    pmap, layout = result.parameter_map, result.data.layout
    scale = jnp.asarray(_prior_scale(prior_scale, pmap.names))
    z_hat = jnp.asarray(result.z, dtype=jnp.float64)
    cov = _start_covariance(result)
    if cov is None:
        cov = np.eye(pmap.n_params) * _FALLBACK_JITTER_SD**2
    if o["guide"] == "normal":
        init_params = {"z_auto_loc": z_hat, "z_auto_scale": jnp.sqrt(jnp.asarray(np.diag(cov)))}
    else:
        init_params = {"auto_loc": z_hat, "auto_scale_tril": jnp.asarray(np.linalg.cholesky(cov))}
    lr = o["learning_rate"]
    final_lr = lr / 100.0 if o["final_learning_rate"] is None else o["final_learning_rate"]
    settings = dict(
        guide=o["guide"], num_steps=o["num_steps"], num_draws=o["num_draws"], num_particles=o["num_particles"]
    )
    run = _svi_program(tuple(sorted(settings.items())))
    say = Progress(o["progress_bar"], "fit_latent_class_svi")
    say(f"{o['guide']} guide, {o['num_steps']} Adam steps from the EM estimate")
    t0 = time.perf_counter()
    draws, losses = jax.block_until_ready(run(layout, pmap, scale, init_params, jnp.asarray([lr, final_lr]), key))
    elapsed = time.perf_counter() - t0
    say(f"fitted in {elapsed:.1f} s")
    losses = np.asarray(losses, dtype=np.float64)
    z = np.asarray(draws, dtype=np.float64)[None]
    tail = max(1, losses.shape[0] // 10)
    attrs = {
        "inference_library": "numpyro",
        "inference": f"svi-{o['guide']}",
        "init": "em",
        "num_steps": o["num_steps"],
        "initial_loss": float(losses[0]),
        "final_loss": float(np.mean(losses[-tail:])),
        "sampling_time": elapsed,
    }
    return _inference_data(result, z, relabel=o["relabel"], sample_stats=None, attrs=attrs)


# --------------------------------------------------------------------------- #
# EM against the posterior
# --------------------------------------------------------------------------- #


def compare_latent_class_posterior(
    idata: Any, result: LatentClassResult, *, hdi_prob: float = 0.94, robust: bool = False
):
    """One row per parameter and class share: the EM estimate against the posterior.

    Parameters
    ----------
    idata : xarray.DataTree
        From :func:`sample_latent_class` or :func:`fit_latent_class_svi` (relabelled to
        the EM labelling, so rows compare like with like).
    result : LatentClassResult
        The EM fit.
    hdi_prob : float, default 0.94
    robust : bool, default False
        Compare with the robust (sandwich) standard errors instead of the classical ones.

    Returns
    -------
    pandas.DataFrame
        Index: the parameter names, then ``"share[k]"``; columns
        ``em_estimate``, ``em_se``, ``post_mean``, ``post_sd``,
        ``hdi_low``, ``hdi_high``, ``z`` (= (em_estimate - post_mean) /
        post_sd), ``se_ratio`` (= em_se / post_sd) and ``inside_hdi``, as
        :func:`smm_ppl.compare_point_to_posterior`.
    """
    if not isinstance(result, LatentClassResult):
        raise TypeError(f"result must be a LatentClassResult, got {type(result).__name__}.")
    post = check_datatree(idata).posterior
    if "z" not in post.data_vars or "shares" not in post.data_vars:
        raise TypeError("idata must be a DataTree from sample_latent_class or fit_latent_class_svi.")
    names = [str(n) for n in post["parameter"].values]
    if names != list(result.names):
        raise ValueError(f"idata has parameters {names}, the result {list(result.names)}: not the same model.")
    if isinstance(hdi_prob, bool) or not isinstance(hdi_prob, (int, float)) or not 0.0 < float(hdi_prob) < 1.0:
        raise ValueError(f"hdi_prob must be strictly between 0 and 1, got {hdi_prob!r}.")
    column = "robust_std_err" if robust else "std_err"
    K = result.n_classes
    shares = result.shares if K > 1 else result.shares.iloc[:0]  # one class: its share is 1, not a parameter
    draws = np.concatenate(
        [post["z"].values.reshape(-1, result.n_params), post["shares"].values.reshape(-1, K)[:, : len(shares)]],
        axis=1,
    )
    est = np.concatenate([result.params["estimate"].to_numpy(), shares["estimate"].to_numpy()])
    se = np.concatenate([result.params[column].to_numpy(), shares[column].to_numpy()])
    return point_posterior_table(draws, est, se, list(result.names) + list(shares.index), float(hdi_prob))
