"""Prepared data: a validated layout with its whitening, computed once per fit.

Every method that works in whitened coordinates (EM, the warm starts, the
observed information) takes a :class:`Prepared`; ``fit_em(init="auto")``
validates and whitens once and hands the same object to every start.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from ..core.rows import pooled_moments, row_moments
from ..layouts import ItemCounts, Layout, as_layout, bucketed, mesh_of, padded_rows, row_mesh, rows_bucket, total_weight
from ..layouts.placement import process_gather, spans_processes
from .whitening import GaussianityCheck, Whitening, check_gaussian_design, fit_whitening

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """A layout, its whitening and the layout on the whitened features.

    Attributes
    ----------
    layout : Layout
        As the user gave it (original coordinates).
    whitening : Whitening
    white : Layout
        The same observations on the whitened, centred feature rows.
    em_layout : Layout
        ``white`` padded to its shape bucket (:func:`~smm_ppl.layouts.rows_bucket`)
        where the layout can pad: what the compiled programs (EM, the observed
        information) run on, so that data of another size in the same bucket
        reuses them.  Split over the devices of a mesh when one was asked for
        (:attr:`mesh`).
    total_weight : float
        ``sum_u n_u`` over all the data (every process's, when each holds its
        own items): the factor from the mean log-likelihood to the total.
    """

    layout: Layout
    whitening: Whitening
    white: Layout
    em_layout: Layout | None = None
    total_weight: float | None = None

    def __post_init__(self):
        if self.em_layout is None:
            object.__setattr__(self, "em_layout", bucketed(self.white))
        if self.total_weight is None:
            object.__setattr__(self, "total_weight", total_weight(self.layout))

    @property
    def process_local(self) -> bool:
        """Whether this process holds only its own items (a mesh over several processes)."""
        return spans_processes(self.mesh)

    @property
    def n_features(self) -> int:
        return self.layout.n_features

    @property
    def mesh(self) -> Mesh | None:
        """The mesh :attr:`em_layout`'s rows are split over, or ``None`` (one device)."""
        return mesh_of(self.em_layout.features)

    @cached_property
    def gaussianity(self) -> GaussianityCheck:
        """Marginal skewness and kurtosis of the whitened rows (the moment starts' assumption)."""
        return check_gaussian_design(self.white.features)


def prepare(features: Any, counts: Any = None, devices: Any = None, dtype: Any = None) -> Prepared:
    """Validate (see :func:`smm_ppl.layouts.as_layout`) and whiten; a :class:`Prepared` passes through.

    ``devices`` (see :func:`smm_ppl.layouts.row_mesh`): split the EM layout's
    rows over these devices; ``None`` keeps one device.  A :class:`Prepared`
    placed otherwise is an error.  ``dtype``: the precision of the whitened
    rows (``"float32"`` halves their memory; the whitening itself is always
    computed in float64); ``None``: float64.
    """
    mesh = row_mesh(devices)
    if isinstance(features, Prepared):
        if devices is not None and features.mesh != (mesh if mesh.size > 1 else None):
            raise ValueError(
                "devices differs from the placement of the prepared data passed as features; prepare it again "
                "with these devices, or leave devices=None."
            )
        if dtype is not None and features.em_layout.features.dtype != np.dtype(dtype):
            raise ValueError("dtype differs from the precision of the prepared data passed as features.")
        return features
    layout = as_layout(features, counts, dtype)
    if spans_processes(mesh):
        return _prepare_process_local(layout, mesh, dtype)
    whitening = fit_whitening(layout.features)
    dtype = dtype or np.float64
    rows = padded_rows(layout, mesh)
    if rows is None:
        white = layout.with_features(whitening.whiten(layout.features, dtype))
        return Prepared(layout, whitening, white, bucketed(white, mesh))
    # Whitened straight into the padded rows, and the unpadded layout views them: one copy.
    buffer = whitening.whiten(layout.features, dtype, n_rows=rows)
    white = layout.with_features(buffer[: layout.n_rows])
    em = white.padded(rows, mesh, buffer=buffer)
    if mesh is None:
        white = layout.with_features(np.asarray(em.features)[: layout.n_rows])  # a view on CPU
    return Prepared(layout, whitening, white, em)


def _prepare_process_local(layout: Layout, mesh: Mesh, dtype: Any) -> Prepared:
    """:func:`prepare` when each process holds its own items (a mesh over several processes).

    The whitening pools every process's mean and covariance; the frequencies
    divide by the total count of all processes; every process pads its rows
    to the same share of the global arrays.  ``layout`` and ``white`` stay
    this process's rows.
    """
    if not isinstance(layout, ItemCounts):
        raise ValueError(f"devices: a {type(layout).__name__} layout cannot be split over processes.")
    mean, cov = row_moments(layout.features)
    L = layout.n_features
    local = np.concatenate([[layout.n_rows, float(np.sum(layout.counts))], mean, cov.ravel()])
    table = process_gather(local)
    rows, totals = table[:, 0], table[:, 1]
    whitening = fit_whitening(None, pooled_moments(rows, table[:, 2 : 2 + L], table[:, 2 + L :].reshape(-1, L, L)))
    layout = layout._replace(frequencies=np.asarray(layout.counts, dtype=np.float64) / totals.sum())
    white = layout.with_features(whitening.whiten(layout.features, dtype or np.float64))
    share = rows_bucket(int(rows.max()), L)
    n_local = sum(1 for d in mesh.devices.flat if d.process_index == jax.process_index())
    share = -(-share // n_local) * n_local
    return Prepared(layout, whitening, white, white.padded(share, mesh), float(totals.sum()))
