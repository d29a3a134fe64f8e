"""Relabelled draws and the ``DataTree`` that every smm_ppl sampler builds.

Every ArviZ call of the package lives in :mod:`smm_ppl.diagnostics`: the samplers in
:mod:`smm_ppl.inference` hand plain arrays to :func:`build_inference_data`, and
everything that summarises a posterior is here.  The results are what ArviZ 1 uses
(``arviz-base``, ``arviz-stats``, ``arviz-plots``): an ``xarray.DataTree`` whose
children are the groups below.  ArviZ is imported lazily (it takes about a second
to import), so ``import smm_ppl`` stays fast.

Layout of the ``DataTree`` built here
-------------------------------------
``posterior``
    ``weights`` (chain, draw, component) and ``atoms`` (chain, draw, component,
    feature), relabelled to the reference labelling when ``relabel`` was on
    (``posterior.attrs["relabelled"] == 1``).
``sample_stats``
    the sampler's statistics (``diverging``, ``lp``, ``energy``, ``n_steps``,
    ``acceptance_rate``, ``step_size``, ``tree_depth``) and ``label_permutation``
    (chain, draw, component): draw ``(c, d)`` had its class ``label_permutation[c, d, k]``
    renamed ``k``.  :func:`raw_posterior` undoes the relabelling, so the raw
    draws stay available without storing them twice.
``log_likelihood``
    ``counts`` (chain, draw, item): ``log pi_j`` of the observed items
    (coordinate ``item`` = their indices), i.e. the log-likelihood of *one* draw
    of item ``j``.  Plain ``arviz_stats.loo`` on it counts each item once; the
    count-weighted :func:`loo` / :func:`waic` count every observation.
``observed_data``
    ``counts`` (item) for all items.
``constant_data``
    ``features`` (item, feature), ``reference_weights`` and ``reference_atoms``
    (the labelling the draws were matched to).
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..core.params import SMMParams
from ._arviz import arviz_base, check_datatree, check_idata, check_smm_idata, has_group, model_variables

__all__ = [
    "relabel_draws",
    "datatree_from_groups",
    "build_inference_data",
    "raw_posterior",
    "posterior_mean_params",
    "save_inference_data",
    "load_inference_data",
]


# Enumerating all K! permutations vectorises the matching over draws; beyond
# this K the factorial loses to a loop of Hungarian assignments.
_MAX_K_ENUMERATE = 6


def relabel_draws(weights: Any, atoms: Any, reference_atoms: Any):
    """Match every draw's classes to a reference labelling (Hungarian on the atoms).

    Parameters
    ----------
    weights : array of shape (..., K)
        Draws of the mixing weights (any leading batch shape, e.g. (chain, draw)).
    atoms : array of shape (..., K, L)
        Draws of the atoms, same leading shape.
    reference_atoms : array of shape (K, L)
        The reference labelling (usually the warm start / EM estimate).

    Returns
    -------
    weights, atoms : ndarray
        Relabelled draws: ``atoms_out[..., k, :] = atoms[..., perm[..., k], :]``.
    perm : ndarray of int64, shape (..., K)
        The permutation applied to each draw; the same convention as
        :func:`smm_ppl.match_components` (minimum total Euclidean distance).
    """
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    ref = np.asarray(reference_atoms, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] != ref.shape or w.shape != a.shape[:-1]:
        raise ValueError(
            f"relabel_draws: weights (..., K), atoms (..., K, L) and reference_atoms (K, L) must agree, got "
            f"{w.shape}, {a.shape} and {ref.shape}."
        )
    batch = w.shape[:-1]
    K = ref.shape[0]
    flat_a = a.reshape((-1,) + ref.shape)
    # dist[s, r, e]: distance from reference class r to the draw's class e.
    dist = np.linalg.norm(ref[None, :, None, :] - flat_a[:, None, :, :], axis=-1)
    if K <= _MAX_K_ENUMERATE:
        perms = np.array(list(itertools.permutations(range(K))), dtype=np.int64)  # (K!, K)
        cost = dist[:, np.arange(K)[None, :], perms].sum(axis=-1)  # (S, K!)
        perm = perms[np.argmin(cost, axis=1)]
    else:
        perm = np.empty((flat_a.shape[0], K), dtype=np.int64)
        for s in range(flat_a.shape[0]):
            rows, cols = linear_sum_assignment(dist[s])
            perm[s, rows] = cols
    perm = perm.reshape(batch + (K,))
    w_out = np.take_along_axis(w, perm, axis=-1)
    a_out = np.take_along_axis(a, perm[..., None], axis=-2)
    return w_out, a_out, perm


def _unpermute(values: np.ndarray, perm: np.ndarray, axis_from_end: int) -> np.ndarray:
    """Inverse of ``take_along_axis(values, perm)`` on the component axis."""
    inv = np.argsort(perm, axis=-1)
    idx = inv if axis_from_end == 1 else inv[..., None]
    return np.take_along_axis(values, idx, axis=-axis_from_end)


def datatree_from_groups(groups: Mapping[str, Any]):
    """The ``xarray.DataTree`` of ArviZ 1 with the given groups.

    Parameters
    ----------
    groups : mapping of group name -> xarray.Dataset
        ``posterior``, ``sample_stats``, ``log_likelihood``, ... (ArviZ's group names).

    Returns
    -------
    xarray.DataTree
        One child per group; every group carries ArviZ's creation attributes
        (``created_at``, ``creation_library``, ...) under its own, as
        ``arviz_base.from_dict`` writes them.
    """
    import xarray as xr

    make_attrs = arviz_base().make_attrs
    return xr.DataTree.from_dict({name: ds.assign_attrs(make_attrs(ds.attrs)) for name, ds in groups.items()})


def build_inference_data(
    weights: Any,
    atoms: Any,
    *,
    features: Any,
    counts: Any,
    log_likelihood: Any,
    observed_items: Any,
    reference: SMMParams | None = None,
    permutation: Any = None,
    sample_stats: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
):
    """Assemble the posterior ``DataTree`` from arrays with a leading (chain, draw) shape.

    Parameters
    ----------
    weights : array (chain, draw, K)
    atoms : array (chain, draw, K, L)
    features : array (p, L)
    counts : array (p,)
    log_likelihood : array (chain, draw, n_observed_items)
        ``log pi_j`` of the observed items, in the order of ``observed_items``.
    observed_items : array of int (n_observed_items,)
    reference : SMMParams, optional
        The labelling the draws were matched to (stored in ``constant_data``).
    permutation : array of int (chain, draw, K), optional
        Per-draw relabelling permutation (stored in ``sample_stats``).
    sample_stats : mapping of name -> array (chain, draw), optional
    attrs : mapping, optional
        Extra attributes for the ``posterior`` group (numbers or strings).

    Returns
    -------
    xarray.DataTree
        The groups of the module's docstring.
    """
    import xarray as xr

    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    ll = np.asarray(log_likelihood, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64)
    n = np.asarray(counts, dtype=np.int64)
    items = np.asarray(observed_items, dtype=np.int64)
    n_chain, n_draw, K = w.shape
    L = a.shape[-1]
    base = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    comp = {"component": np.arange(K)}
    feat = {"feature": np.arange(L)}

    post_attrs = {"relabelled": int(permutation is not None)}
    post_attrs.update(dict(attrs or {}))
    posterior = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), w),
            "atoms": (("chain", "draw", "component", "feature"), a),
        },
        coords={**base, **comp, **feat},
        attrs=post_attrs,
    )
    groups = {"posterior": posterior}

    stats = {k: (("chain", "draw"), np.asarray(v)) for k, v in dict(sample_stats or {}).items()}
    if permutation is not None:
        stats["label_permutation"] = (("chain", "draw", "component"), np.asarray(permutation, dtype=np.int64))
    if stats:
        groups["sample_stats"] = xr.Dataset(stats, coords={**base, **comp})

    groups["log_likelihood"] = xr.Dataset({"counts": (("chain", "draw", "item"), ll)}, coords={**base, "item": items})
    groups["observed_data"] = xr.Dataset({"counts": (("item",), n)}, coords={"item": np.arange(n.shape[0])})
    const = {"features": (("item", "feature"), x)}
    if reference is not None:
        const["reference_weights"] = (("component",), np.asarray(reference.weights, dtype=np.float64))
        const["reference_atoms"] = (("component", "feature"), np.asarray(reference.atoms, dtype=np.float64))
    groups["constant_data"] = xr.Dataset(const, coords={"item": np.arange(n.shape[0]), **comp, **feat})
    return datatree_from_groups(groups)


def raw_posterior(idata: Any):
    """The posterior draws in the sampler's own labelling (relabelling undone).

    Returns an ``xarray.Dataset`` with ``weights`` and ``atoms`` of the same shape
    as ``idata.posterior``.  When the draws were not relabelled, a copy of the
    posterior.
    """
    if model_variables(check_idata(idata)) != ["weights", "atoms"]:
        raise ValueError(
            "raw_posterior undoes the SMM's relabelling (weights and atoms); a latent-class posterior keeps "
            "its permutation in sample_stats['label_permutation']."
        )
    post = idata.posterior.to_dataset()[["weights", "atoms"]].copy(deep=True)
    has_perm = has_group(idata, "sample_stats") and "label_permutation" in idata.sample_stats.data_vars
    if not has_perm:
        return post
    perm = idata.sample_stats["label_permutation"].values
    post["weights"].values = _unpermute(post["weights"].values, perm, 1)
    post["atoms"].values = _unpermute(post["atoms"].values, perm, 2)
    post.attrs["relabelled"] = 0
    return post


def posterior_mean_params(idata: Any) -> SMMParams:
    """Posterior means of ``weights`` and ``atoms`` as :class:`SMMParams` (of the relabelled draws)."""
    post = check_smm_idata(idata).posterior
    w = post["weights"].mean(("chain", "draw")).values
    return SMMParams(np.asarray(w / w.sum()), np.asarray(post["atoms"].mean(("chain", "draw")).values))


def save_inference_data(idata: Any, path: Any):
    """Write a posterior ``DataTree`` to netCDF (one netCDF group per group, through h5netcdf); returns the path."""
    from pathlib import Path

    data = check_datatree(idata)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data.to_netcdf(str(p), engine="h5netcdf")
    return p


def load_inference_data(path: Any):
    """Read a ``DataTree`` written by :func:`save_inference_data` into memory.

    Files that ArviZ 0.x wrote (``InferenceData.to_netcdf``) have the same layout and load the same.
    """
    from pathlib import Path

    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such file: {p}")
    return xr.load_datatree(str(p), engine="h5netcdf")
