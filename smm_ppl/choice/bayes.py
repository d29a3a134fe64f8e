"""What the Bayesian latent-class logit needs of the choice model: its EM start, prior scales by name,
chain starts, the quantities derived from every draw, and the relabelling (docs/math.md#bayesian-model,
docs/math.md#choice-situations-and-panels).

The samplers are the package's one NUTS sampler and one SVI program
(:func:`smm_ppl.sample_latent_class` in :mod:`smm_ppl.inference.nuts`,
:func:`smm_ppl.fit_latent_class_svi` in :mod:`smm_ppl.inference.svi`) on the
model program :func:`smm_ppl.models.latent_class.latent_class_model`, and their
``DataTree`` is built by :func:`smm_ppl.diagnostics.assemble_inference_data`;
this module holds what is specific to the choice model.

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
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core.params import relabel_draws
from ..core.programs import batch_size
from .api import LatentClassResult, fit_latent_class
from .data import ChoiceData
from .spec import ParameterMap

__all__ = [
    "resolve_result",
    "prior_scales",
    "start_covariance",
    "chain_starts",
    "derived_draws",
    "latent_class_log_likelihood_draws",
    "relabel_latent_class_draws",
    "exchangeable_classes",
    "DEFAULT_PRIOR_SCALE",
    "FALLBACK_JITTER_SD",
]

#: The prior standard deviation of every free parameter (coefficients and membership) of the Bayesian model.
DEFAULT_PRIOR_SCALE = 10.0
#: Chain starts fall back to this isotropic jitter sd when the EM covariance is singular.
FALLBACK_JITTER_SD = 0.05


# --------------------------------------------------------------------------- #
# The EM start and the prior
# --------------------------------------------------------------------------- #


def resolve_result(result_or_data: Any, n_components: Any, shared: Any, fixed: Any, seed: Any) -> LatentClassResult:
    """The EM estimate to start from: the given result, or ``fit_latent_class`` on the given data."""
    if isinstance(result_or_data, LatentClassResult):
        if n_components is not None and n_components != result_or_data.n_components:
            raise ValueError(
                f"n_components={n_components!r} but the result has {result_or_data.n_components} classes; a result carries "
                "its own specification (leave n_components, shared and fixed unset)."
            )
        if shared or fixed:
            raise ValueError(
                "shared/fixed are for fitting choice data; a result carries its own specification (leave them unset)."
            )
        return result_or_data
    if isinstance(result_or_data, ChoiceData):
        if n_components is None:
            raise ValueError(
                "given ChoiceData, n_components is required (EM is fitted first to warm-start the sampler)."
            )
        return fit_latent_class(result_or_data, n_components, shared=shared, fixed=fixed, seed=seed)
    raise TypeError(
        "result_or_data must be a LatentClassResult (from smm.fit_latent_class) or ChoiceData (from "
        f"smm.choice_data), got {type(result_or_data).__name__}."
    )


def prior_scales(value: Any, names: tuple[str, ...]) -> np.ndarray:
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


def start_covariance(result: LatentClassResult) -> np.ndarray | None:
    """The EM covariance when it is usable (finite, positive definite), else None."""
    cov = np.asarray(result.covariance, dtype=np.float64)
    if not np.all(np.isfinite(cov)):
        return None
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return None
    return cov


def chain_starts(result: LatentClassResult, num_chains: int, jitter: float, key) -> np.ndarray:
    """(C, P) starts: the MLE plus ``jitter`` times a draw from N(0, covariance), one per chain.

    With ``jitter=1`` the starts are draws from the asymptotic normal of the
    MLE, roughly from the posterior: chains begin where they will sample,
    in the EM labelling, and different enough for R-hat to mean something.
    """
    z = np.asarray(result.z, dtype=np.float64)
    eps = np.asarray(jax.random.normal(key, (num_chains, z.shape[0])), dtype=np.float64)
    cov = start_covariance(result)
    if cov is None:
        return z + jitter * FALLBACK_JITTER_SD * eps
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


def derived_draws(layout, pmap: ParameterMap, z: np.ndarray):
    """``(coefficients, shares, log L_u)`` of every draw ``z`` (..., P), vectorised over draws."""
    batch = z.shape[:-1]
    flat = jnp.asarray(z.reshape(-1, z.shape[-1]))
    size = batch_size(flat.shape[0], layout.n_rows * pmap.n_components)
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
    return derived_draws(result.data.layout, result.parameter_map, z)[2]


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
    K = pmap.n_components
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


def exchangeable_classes(pmap: ParameterMap) -> bool:
    """Whether any two classes may exchange labels (then draws are relabelled)."""
    return pmap.n_components > 1 and bool(_class_groups(pmap))


def _class_groups(pmap: ParameterMap) -> list[np.ndarray]:
    """Classes that may exchange labels (every exchange within a group maps the parameter space onto itself),
    groups of two or more."""
    membership = _default_membership(pmap)
    groups: list[list[int]] = []
    for k in range(pmap.n_components):
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
