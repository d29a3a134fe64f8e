"""A likelihood with no maximum: the class whose atom runs off to infinity, diagnosed at the estimate.

On real designs (a vocabulary, a choice set) a class can concentrate on a
face of the items' convex hull: along the direction ``d`` that separates
those items from the rest, the likelihood rises towards a finite supremum as
the atom grows, so the maximum likelihood estimate is at infinity.  EM then
either creeps along ``d`` until ``max_iter`` or stops where the gains fall
below the tolerance, with an atom of arbitrary length either way.

The test is the likelihood along the atom's own ray: at a maximum, doubling
a long whitened atom ``beta_k`` (its logits' spread doubles) costs many
log-likelihood units; on a runaway it costs nothing or gains.  It runs only
for atoms longer than :data:`RUNAWAY_NORM` (whitened units), one
log-likelihood evaluation each.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..likelihood import layout_log_likelihood
from ..params import WEIGHT_FLOOR

__all__ = ["Runaway", "runaway_classes", "runaway_message", "RUNAWAY_NORM", "FLAT"]

#: Whitened atoms shorter than this are not examined: their class spreads its mass over many items.
RUNAWAY_NORM = 8.0
#: Doubling the atom changes the log-likelihood by less than this (or raises it): no maximum along the ray.
FLAT = 0.5
#: Items named in the warning.
TOP_ITEMS = 5


class Runaway(NamedTuple):
    """A class whose atom runs off (see the module docstring)."""

    component: int
    norm: float  # |theta_k| in original units
    whitened_norm: float
    gain: float  # log-likelihood at the doubled atom minus at the estimate
    items: np.ndarray | None  # the rows the class puts most of its mass on (counts over items only)
    shares: np.ndarray | None  # their probabilities in the class
    effective_items: float | None  # exp(entropy) of the class's softmax


def runaway_classes(prepared: Any, weights: np.ndarray, beta: np.ndarray) -> list[Runaway]:
    """The classes of a maximum likelihood estimate (whitened ``beta``) along whose atom the likelihood does not fall."""
    weights = np.asarray(weights, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    norms = np.linalg.norm(beta, axis=1)
    long = np.flatnonzero((weights >= WEIGHT_FLOOR) & (norms > RUNAWAY_NORM))
    if not long.size:
        return []
    layout = prepared.em_layout
    ll = layout_log_likelihood(layout, weights, beta)
    found = []
    for k in long:
        doubled = beta.copy()
        doubled[k] *= 2.0
        gain = layout_log_likelihood(layout, weights, doubled) - ll
        if not gain > -FLAT:
            continue
        items = shares = eff = None
        if getattr(prepared.white, "supports_moments", False):
            log_p = np.asarray(prepared.white.log_component_probs(beta[k : k + 1]))[0]
            p = np.exp(log_p - log_p.max())
            p /= p.sum()
            order = np.argsort(-p, kind="stable")[:TOP_ITEMS]
            items, shares = order, p[order]
            nz = p[p > 0]
            eff = float(np.exp(-np.sum(nz * np.log(nz))))
        theta = prepared.whitening.to_original(beta[k])
        found.append(Runaway(int(k), float(np.linalg.norm(theta)), float(norms[k]), float(gain), items, shares, eff))
    return found


def runaway_message(runaways: list[Runaway]) -> str:
    """The warning: which class, how far it ran, where its mass went, and the remedy."""
    parts = []
    for r in runaways:
        where = ""
        if r.items is not None:
            listed = ", ".join(f"{i} ({s:.1%})" for i, s in zip(r.items.tolist(), r.shares.tolist()))
            where = f"; it puts its mass on items {listed}, {r.effective_items:.1f} effective items"
        parts.append(
            f"class {r.component}'s atom reached norm {r.norm:.3g} (whitened {r.whitened_norm:.3g}) and doubling it "
            f"changes the log-likelihood by {r.gain:+.3g}{where}"
        )
    return (
        "The likelihood has no maximum at finite parameters: "
        + "; ".join(parts)
        + ". The class keeps gaining by moving its last mass off the items without counts, so this estimate is "
        "where EM stopped, not a maximum (stop_reason='no_maximum'). Fit the posterior mode instead, "
        "fit_em(..., prior=smm.Prior()), which is finite and is what sample_nuts explores."
    )
