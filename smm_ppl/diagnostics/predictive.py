"""The predictive groups of ArviZ (``prior``, ``prior_predictive``, ``posterior_predictive``) on smm_ppl's results.

:mod:`smm_ppl.inference.predictive` draws the arrays; here they become
groups of an ``xarray.DataTree`` (ArviZ 1), so that ArviZ's predictive
checks (``arviz_plots.plot_ppc_dist``, ``plot_ppc_pit``, ``plot_ppc_tstat``,
``plot_loo_pit``) read them as they read any other model's.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["add_groups", "predictive_tree", "thin_draws"]


def _dataset(variables: Mapping[str, tuple], coords: Mapping[str, Any], attrs: Mapping[str, Any] | None = None):
    import xarray as xr

    used = {d for dims, _ in variables.values() for d in dims}
    own = {k: v for k, v in coords.items() if k in used}
    for dims, values in variables.values():
        for d, n in zip(dims, np.shape(values)):
            if d not in own and d in ("chain", "draw"):
                own[d] = np.arange(n)
    return xr.Dataset(
        {k: (dims, np.asarray(v)) for k, (dims, v) in variables.items()}, coords=own, attrs=dict(attrs or {})
    )


def predictive_tree(groups: Mapping[str, Mapping[str, tuple]], coords: Mapping[str, Any], attrs=None):
    """A ``DataTree`` of the given groups (``{group: {variable: (dims, values)}}``); ``attrs`` on the sampled groups."""
    import xarray as xr

    tree = {
        f"/{name}": _dataset(variables, coords, attrs if name in ("prior", "prior_predictive") else None)
        for name, variables in groups.items()
    }
    return xr.DataTree.from_dict(tree)


def add_groups(idata: Any, groups: Mapping[str, Mapping[str, tuple]], coords: Mapping[str, Any]):
    """Add (or replace) groups of the ``DataTree`` ``idata`` in place and return it."""
    import xarray as xr

    if not isinstance(idata, xr.DataTree):
        raise TypeError(
            f"idata must be an xarray.DataTree (the package's results are; convert others with "
            f"arviz_base.convert_to_datatree), got {type(idata).__name__}."
        )
    for name, variables in groups.items():
        idata[name] = xr.DataTree(_dataset(variables, coords))
    return idata


def thin_draws(idata: Any, num_draws: int):
    """``idata`` with ``num_draws`` evenly spaced draws per chain in every group that has a ``draw`` dimension."""
    n = int(idata.posterior.sizes["draw"])
    if num_draws >= n:
        return idata
    keep = np.unique(np.linspace(0, n - 1, num_draws).round().astype(int))
    return idata.isel(draw=keep)
