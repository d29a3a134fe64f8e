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

from ..choice.bayes import derived_draws, exchangeable_classes, relabel_latent_class_draws
from ..core.params import SMMParams
from ..core.programs import batch_size, jit_program
from ..diagnostics import assemble_inference_data, build_inference_data, relabel_draws
from ..layouts import Layout, bucketed, item_counts

__all__ = [
    "unit_log_likelihood_draws",
    "log_likelihood_draws",
    "inference_data",
    "latent_class_inference_data",
    "reference_from_draws",
]


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


def latent_class_inference_data(result, z, *, relabel: bool, sample_stats, attrs):
    """The latent-class logit's posterior ``DataTree`` from draws ``z`` (chain, draw, P) of its free parameters.

    Relabels ``z`` to the EM labelling among classes that may exchange labels
    (:func:`smm_ppl.choice.relabel_latent_class_draws`), computes every draw's
    coefficients, class shares and ``log L_u`` of every unit, and hands them to
    :func:`smm_ppl.diagnostics.assemble_inference_data`:

    ``posterior``
        ``z`` (chain, draw, parameter), coordinate ``parameter`` = the names
        (``"time[2]"``, ``"membership[2]:const"``, ...); ``coefficients``
        (chain, draw, class, feature), fixed ones included; ``shares`` (chain,
        draw, class), the mean prior class probability over units.  Classes are
        numbered ``1 .. K`` as in the names.
    ``sample_stats`` (NUTS)
        The sampler's statistics, and ``label_permutation`` (chain, draw, class)
        when the draws were relabelled.
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
    """
    data, pmap = result.data, result.parameter_map
    z = np.asarray(z, dtype=np.float64)
    perm = None
    if relabel and exchangeable_classes(pmap):
        z, perm = relabel_latent_class_draws(pmap, z, result.atoms)
    coefficients, shares, ll = derived_draws(data.layout, pmap, z)
    layout = data.layout
    counts = np.asarray(layout.counts, dtype=np.float64)
    if np.all(counts == np.round(counts)):
        counts = counts.astype(np.int64)
    coords = {
        "chain": np.arange(z.shape[0]),
        "draw": np.arange(z.shape[1]),
        "parameter": list(pmap.names),
        "class": np.arange(1, pmap.n_components + 1),
        "feature": list(data.feature_names),
        "unit": np.asarray(data.units),
        "covariate": list(data.covariate_names),
        "row": np.arange(layout.n_rows),
        "situation": ("row", np.asarray(data.situations)[np.asarray(layout.situation)]),
        "alternative": ("row", np.asarray(data.alternatives)),
    }
    groups = {
        "posterior": {
            "z": (("chain", "draw", "parameter"), z),
            "coefficients": (("chain", "draw", "class", "feature"), coefficients),
            "shares": (("chain", "draw", "class"), shares),
        },
        "log_likelihood": {"obs": (("chain", "draw", "unit"), ll)},
        "observed_data": {"choices": (("row",), counts)},
        "constant_data": {
            "features": (("row", "feature"), np.asarray(layout.features, dtype=np.float64)),
            "covariates": (("unit", "covariate"), np.asarray(data.covariates, dtype=np.float64)),
            "unit_weights": (("unit",), np.asarray(layout.unit_weights, dtype=np.float64)),
            "reference_z": (("parameter",), np.asarray(result.z, dtype=np.float64)),
            "reference_coefficients": (("class", "feature"), np.asarray(result.atoms, dtype=np.float64)),
            "reference_shares": (("class",), np.asarray(result.weights, dtype=np.float64)),
        },
    }
    attrs = {"n_components": pmap.n_components, "em_log_likelihood": float(result.log_likelihood), **dict(attrs)}
    return assemble_inference_data(
        groups, coords, permutation=perm, class_dim="class", sample_stats=sample_stats, attrs=attrs
    )
