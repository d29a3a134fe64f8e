"""Data layouts: the only code that knows how observations are arranged.

See :mod:`smm_ppl.layouts._base` for the protocol and
:mod:`smm_ppl.layouts.items` for counts over one set of items (the paper's
SMM).  :func:`as_layout` validates user input into a layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jax.sharding import Mesh

from ._base import Layout, Statistics, class_log_posteriors, rows_bucket, total_weight
from .choices import ChoiceSituations, ChoiceStatistics, choice_situations
from .items import ItemCounts, ItemStatistics, item_counts
from .placement import ROWS_AXIS, mesh_of, row_mesh, spans_processes

__all__ = [
    "Layout",
    "Statistics",
    "class_log_posteriors",
    "rows_bucket",
    "total_weight",
    "ItemCounts",
    "ItemStatistics",
    "item_counts",
    "ChoiceSituations",
    "ChoiceStatistics",
    "choice_situations",
    "as_layout",
    "bucketed",
    "padded_rows",
    "ROWS_AXIS",
    "row_mesh",
    "mesh_of",
]


def as_layout(features: Any, counts: Any = None, dtype: Any = None) -> Layout:
    """A validated layout: a :class:`Layout` as it is, else ``(features, counts)`` as :class:`ItemCounts`.

    Raises the validation errors of :func:`smm_ppl.as_data` (naming the
    argument and what to do).  ``dtype``: the precision the data will be
    used in; ``"float32"`` keeps float32 features as they are (no float64
    copy), anything else becomes float64.
    """
    if isinstance(features, Layout):
        if counts is not None:
            raise ValueError(
                "counts must be None when features is a data layout (the layout carries its observations)."
            )
        return features
    from ..data.arrays import as_data

    data = as_data(features, counts, keep_float32=dtype is not None and np.dtype(dtype) == np.float32)
    return item_counts(data.features, data.counts)


def bucketed(layout: Layout, mesh: Mesh | None = None) -> Layout:
    """``layout`` padded to its shape bucket (:func:`rows_bucket`) where the layout can pad, else itself.

    What every compiled program runs on, so that data of another size in the
    same bucket reuse it.  ``mesh`` (see :mod:`~smm_ppl.layouts.placement`):
    the rows split over its devices, the bucket rounded up to a multiple of
    their number.
    """
    pad = getattr(layout, "padded", None)
    if pad is None:
        if mesh is not None:
            raise ValueError(
                f"devices: the rows of a {type(layout).__name__} layout cannot be split over devices (only counts "
                "over one set of items can). Leave devices=None."
            )
        return layout
    if spans_processes(mesh):
        raise ValueError(
            "devices: this mesh spans several processes, where each process holds its own items; only fit_em "
            "(through smm_ppl.prepare) takes process-local data. Use a mesh of this process's devices here."
        )
    return pad(padded_rows(layout, mesh), mesh)


def padded_rows(layout: Layout, mesh: Mesh | None = None) -> int | None:
    """The rows :func:`bucketed` pads ``layout`` to (a multiple of the mesh's devices), or None if it cannot pad."""
    if getattr(layout, "padded", None) is None:
        return None
    rows = rows_bucket(layout.n_rows, layout.n_features)
    return rows if mesh is None else -(-rows // mesh.size) * mesh.size
