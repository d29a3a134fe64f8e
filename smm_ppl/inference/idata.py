"""From posterior draws to the posterior ``DataTree``: the pointwise log-likelihood through the layout.

Label switching
---------------
With ``relabel=True`` (the samplers' default) every draw is matched to the
reference labelling (the warm start, or ``reference``) by a Hungarian
assignment on the atoms before anything is summarised; the per-draw
permutations are kept in ``idata.sample_stats["label_permutation"]`` and
:func:`smm_ppl.diagnostics.raw_posterior` returns the raw draws.

``arviz_base.from_numpyro`` would compute the log-likelihood one draw at a
time; here it is one ``jax.vmap`` over draws of the layout's ``log pi``
(chunked to bound memory), one value per unit with observations.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ..core.params import SMMParams
from ..core.programs import batch_size, jit_program
from ..diagnostics import build_inference_data, relabel_draws
from ..layouts import Layout, bucketed, item_counts

__all__ = ["unit_log_likelihood_draws", "log_likelihood_draws", "inference_data", "reference_from_draws"]


@jit_program
def _log_pi_batch(layout, weights, atoms):
    return jax.vmap(layout.log_mixture_probs)(weights, atoms)


def unit_log_likelihood_draws(
    layout: Layout, weights: Any, atoms: Any, units: Any = None, *, chunk: int | None = None
) -> np.ndarray:
    """``log pi(unit)`` for every draw (one observation of each unit), vectorised over draws.

    Parameters
    ----------
    layout : Layout
    weights : (..., K) draws
    atoms : (..., K, L) draws
    units : int array (m,), optional
        Units to return; default the units with observations.
    chunk : int, optional
        Draws per vectorised batch.

    Returns
    -------
    ndarray of shape (..., m)
    """
    w = np.asarray(weights)
    a = np.asarray(atoms)
    batch = w.shape[:-1]
    K = w.shape[-1]
    w2 = w.reshape(-1, K)
    a2 = a.reshape((-1,) + a.shape[-2:])
    idx = np.asarray(layout.observed_units() if units is None else units)
    # Every unit of the bucketed layout, selected on the host: one compiled
    # program per shape bucket, whichever units are observed.
    padded = bucketed(layout)
    if chunk is None:
        chunk = batch_size(w2.shape[0], padded.n_rows * K)
    out = [
        np.asarray(_log_pi_batch(padded, w2[s : s + chunk], a2[s : s + chunk]))[:, idx]
        for s in range(0, w2.shape[0], chunk)
    ]
    return np.concatenate(out, axis=0).reshape(batch + (idx.shape[0],))


def log_likelihood_draws(features: Any, weights: Any, atoms: Any, items: Any, *, chunk: int | None = None):
    """``log pi_j`` of the given items for every draw (counts over items; see :func:`unit_log_likelihood_draws`).

    Returns
    -------
    ndarray of shape (..., len(items))
    """
    layout = item_counts(features, np.zeros(np.shape(features)[0]))
    return unit_log_likelihood_draws(layout, weights, atoms, items, chunk=chunk)


def reference_from_draws(weights: np.ndarray, atoms: np.ndarray) -> SMMParams:
    """A labelling when there is no warm start: chain 0's mean, refined once on all draws."""
    ref = atoms[0].mean(axis=0)
    for _ in range(2):
        _, a_rel, _ = relabel_draws(weights, atoms, ref)
        ref = a_rel.reshape((-1,) + ref.shape).mean(axis=0)
    w_rel, _, _ = relabel_draws(weights, atoms, ref)
    w_mean = w_rel.reshape(-1, ref.shape[0]).mean(axis=0)
    return SMMParams(w_mean / w_mean.sum(), ref)


def inference_data(layout: Layout, weights, atoms, *, relabel: bool, reference: SMMParams, sample_stats, attrs):
    """Relabel, compute the pointwise log-likelihood with ``vmap``, build the DataTree."""
    weights = np.asarray(weights, dtype=np.float64)
    atoms = np.asarray(atoms, dtype=np.float64)
    units = layout.observed_units()
    # The mixture is permutation invariant, so the raw draws give the same log pi.
    ll = unit_log_likelihood_draws(layout, weights, atoms, units)
    perm = None
    if relabel:
        weights, atoms, perm = relabel_draws(weights, atoms, reference.atoms)
    return build_inference_data(
        weights,
        atoms,
        features=np.asarray(layout.features),
        counts=layout.unit_counts().astype(np.int64),
        log_likelihood=ll,
        observed_items=units,
        reference=reference,
        permutation=perm,
        sample_stats=sample_stats,
        attrs=attrs,
    )
