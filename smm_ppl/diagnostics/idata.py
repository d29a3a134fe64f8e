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

from typing import Any, Mapping

import numpy as np

from ..core.params import SMMParams, relabel_draws
from ._arviz import arviz_base, check_datatree, check_idata, check_smm_idata, has_group, model_variables

__all__ = [
    "relabel_draws",
    "datatree_from_groups",
    "assemble_inference_data",
    "build_inference_data",
    "raw_posterior",
    "posterior_mean_params",
    "save_inference_data",
    "load_inference_data",
]


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


def assemble_inference_data(
    groups: Mapping[str, Mapping[str, tuple]],
    coords: Mapping[str, Any],
    *,
    permutation: Any = None,
    class_dim: str = "component",
    sample_stats: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    group_coords: Mapping[str, Mapping[str, Any]] | None = None,
):
    """The posterior ``DataTree`` of any model: the one builder every sampler of the package hands its draws to.

    Parameters
    ----------
    groups : mapping of group name -> {variable: (dims, array)}
        ``posterior``, ``log_likelihood``, ``observed_data``, ``constant_data``
        (ArviZ's group names); the posterior's and the log-likelihood's
        leading dims are ``("chain", "draw")``.
    coords : mapping
        Coordinates (``{name: values}`` or ``{name: (dim, values)}``); each
        group gets those of the dims its variables use.
    permutation : array of int (chain, draw, K), optional
        Per-draw relabelling permutation, stored as
        ``sample_stats["label_permutation"]`` over ``class_dim``; the
        posterior's ``attrs["relabelled"]`` says whether there is one.
    class_dim : str, default "component"
        The dim of the classes.
    sample_stats : mapping of name -> array (chain, draw), optional
    attrs : mapping, optional
        Extra attributes for the ``posterior`` group (numbers or strings).
    group_coords : mapping of group name -> coordinates, optional
        Coordinates of one group that differ from ``coords`` (the observed
        items of ``log_likelihood`` among all items, say).

    Returns
    -------
    xarray.DataTree
    """
    import xarray as xr

    def dataset(name: str, variables: Mapping[str, tuple], group_attrs=None):
        dims = {d for var_dims, _ in variables.values() for d in var_dims}
        own = {**coords, **dict((group_coords or {}).get(name, {}))}
        kept = {c: v for c, v in own.items() if (v[0] if isinstance(v, tuple) else c) in dims}
        return xr.Dataset(dict(variables), coords=kept, attrs=group_attrs or {})

    post_attrs = {"relabelled": int(permutation is not None), **dict(attrs or {})}
    out = {"posterior": dataset("posterior", groups["posterior"], post_attrs)}
    stats = {k: (("chain", "draw"), np.asarray(v)) for k, v in dict(sample_stats or {}).items()}
    if permutation is not None:
        stats["label_permutation"] = (("chain", "draw", class_dim), np.asarray(permutation, dtype=np.int64))
    if stats:
        out["sample_stats"] = dataset("sample_stats", stats)
    out.update({name: dataset(name, variables) for name, variables in groups.items() if name != "posterior"})
    return datatree_from_groups(out)


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
    """The softmax mixture's posterior ``DataTree`` (:func:`assemble_inference_data`) from arrays with a
    leading (chain, draw) shape.

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
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    n = np.asarray(counts, dtype=np.int64)
    n_chain, n_draw, K = w.shape
    coords = {
        "chain": np.arange(n_chain),
        "draw": np.arange(n_draw),
        "component": np.arange(K),
        "feature": np.arange(a.shape[-1]),
        "item": np.arange(n.shape[0]),
    }
    const = {"features": (("item", "feature"), np.asarray(features, dtype=np.float64))}
    if reference is not None:
        const["reference_weights"] = (("component",), np.asarray(reference.weights, dtype=np.float64))
        const["reference_atoms"] = (("component", "feature"), np.asarray(reference.atoms, dtype=np.float64))
    groups = {
        "posterior": {
            "weights": (("chain", "draw", "component"), w),
            "atoms": (("chain", "draw", "component", "feature"), a),
        },
        "log_likelihood": {
            "counts": (("chain", "draw", "item"), np.asarray(log_likelihood, dtype=np.float64)),
        },
        "observed_data": {"counts": (("item",), n)},
        "constant_data": const,
    }
    observed = {"item": np.asarray(observed_items, dtype=np.int64)}
    return assemble_inference_data(
        groups,
        coords,
        permutation=permutation,
        sample_stats=sample_stats,
        attrs=attrs,
        group_coords={"log_likelihood": observed},
    )


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
