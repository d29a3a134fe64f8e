"""A likelihood with no maximum: the class whose atom runs off to infinity, diagnosed at the estimate.

On real designs (a vocabulary, a choice set) a class can concentrate on a
face of the items' convex hull: along the direction ``d`` that separates
those items from the rest, the likelihood rises towards a finite supremum as
the atom grows, so the maximum likelihood estimate is at infinity.  EM then
either creeps along ``d`` until ``max_iter`` or stops where the gains fall
below the tolerance, with an atom of arbitrary length either way.

The test follows the likelihood along the direction the class would run
off in.  For counts over items: the class's *support*, the fewest items
holding all but :data:`SUPPORT_TAIL` of its mass, and ``d``, the part of
``beta_k`` orthogonal to the support's (centred) span.  Along ``d`` every
item of the support moves by the same logit, so the class's distribution on
its support stays as it is and only the items outside gain or lose mass.  A
support that spans the whole feature space leaves ``d = 0``: no runaway (a
class on a face of the hull in general position has at most ``L`` items,
which span ``L - 1`` dimensions).  Otherwise the log-likelihood is
evaluated at ``beta_k + d`` and ``beta_k + 3 d``: at a maximum it falls; on
a runaway it rises along the ray (or stays flat within EM's rounding
allowance, where the class already sits on its face), so the supremum lies
beyond any finite point.  Supports of a few sizes are tried
(:data:`SUPPORT_TAILS`); other layouts use the atom's own ray.  Only atoms
longer than :data:`RUNAWAY_NORM` (whitened units) are examined.

That test needs the class to have reached its face.  On a real vocabulary
a class can instead slide off along a curved path for thousands of
iterations, each gaining a little less, with the likelihood falling along
every straight ray from the current point.  So EM also watches the trend as
it runs (:func:`running_off`, evaluated every :data:`RUNAWAY_WINDOW`
iterations by the driver's stopping test): a long atom whose norm grew in
each of the last :data:`RUNAWAY_WINDOWS` windows at a steady pace (each
window's growth within a factor :data:`RUNAWAY_STEADY` of the previous
one's) while the log-likelihood's gain per window shrank, but not the gain
per unit of growth (by at most :data:`RUNAWAY_SLOPE_DROP` a window).  EM
converging to a finite point shrinks the growths geometrically, at its rate
of convergence, and near the point the gains collapse first; an
accelerated jump (a growth many times the last) can overshoot and come
back, so none of these is evidence.  An atom that keeps its pace while the gains dwindle is buying
ever less likelihood with ever more length, and the fit stops there with
``stop_reason="no_maximum"``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ..core.params import WEIGHT_FLOOR
from ..data.likelihood import layout_log_likelihood
from .kernel import SLACK

__all__ = [
    "Runaway",
    "runaway_classes",
    "trend_runaways",
    "runaway_message",
    "running_off",
    "RUNAWAY_NORM",
    "RUNAWAY_WINDOW",
    "RUNAWAY_WINDOWS",
    "RUNAWAY_STEADY",
    "RUNAWAY_SLOPE_DROP",
]

#: Whitened atoms shorter than this are not examined: their class spreads its mass over many items.
RUNAWAY_NORM = 8.0
#: The support of a class: the fewest items holding all but this share of its mass (each tried in turn).
SUPPORT_TAILS = (1e-3, 1e-4, 1e-6, 1e-8)
#: Points on the runaway ray, in multiples of the direction (the atom's component off its support's span).
RAY_STEPS = (1.0, 3.0)
#: A support of more items than this many times ``L`` is taken to span the feature space (no SVD).
MAX_SUPPORT_PER_FEATURE = 4
#: Items named in the warning.
TOP_ITEMS = 5
#: Iterations between the trend's checkpoints (:func:`running_off`).
RUNAWAY_WINDOW = 100
#: Consecutive windows over which an atom must have grown.
RUNAWAY_WINDOWS = 3
#: The gain per unit of growth may fall by at most this factor from one window to the next.
RUNAWAY_SLOPE_DROP = 4.0
#: A steady pace: each window's growth within this factor of the previous one's.  EM converging to a finite
#: point at a rate faster than ``(1 / RUNAWAY_STEADY) ** (1 / RUNAWAY_WINDOW)`` per iteration (0.989) shrinks
#: the growths faster than that; a jump of an accelerated step grows them faster.
RUNAWAY_STEADY = 3.0


class Runaway(NamedTuple):
    """A class whose atom runs off (see the module docstring)."""

    component: int
    norm: float  # |theta_k| in original units
    whitened_norm: float
    evidence: str  # what was measured: the gain along the ray, or the trend of the norm and the gains
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
    slack = SLACK * abs(ll)  # EM's own rounding allowance
    items_layout = getattr(prepared.white, "supports_moments", False)
    features = np.asarray(prepared.white.features, dtype=np.float64) if items_layout else None
    found = []
    for k in long:
        p = None
        if items_layout:
            logits = features @ beta[k]
            p = np.exp(logits - logits.max())
            p /= p.sum()
            directions = [_runaway_direction(features, p, beta[k], tail) for tail in SUPPORT_TAILS]
        else:
            directions = [beta[k]]
        gain = None
        for direction in directions:
            if np.linalg.norm(direction) < 1.0:  # the support spans the features: nowhere to run off to
                continue
            gains = []
            for step in RAY_STEPS:
                moved = beta.copy()
                moved[k] = beta[k] + step * direction
                gains.append(layout_log_likelihood(layout, weights, moved) - ll)
            # Rising (or flat within rounding) all along the ray: the supremum lies beyond it.
            if gains[0] > -slack and all(later > earlier - slack for earlier, later in zip(gains, gains[1:])):
                gain = gains[-1]
                break
        if gain is None:
            continue
        evidence = f"the log-likelihood still rises (by {gain:+.3g}) as it moves further off"
        found.append(_runaway(prepared, beta, k, evidence, p))
    return found


def trend_runaways(prepared: Any, beta: np.ndarray, memory: Any, n_obs: float) -> list[Runaway]:
    """The classes that :func:`running_off` flagged as EM ran (``memory``: the driver's
    :class:`~smm_ppl.em.driver.MixtureMemory` at the stop, or None), described for the warning."""
    flagged = np.flatnonzero(np.asarray(getattr(memory, "running_off", []), dtype=bool))
    if not flagged.size:
        return []
    beta = np.asarray(beta, dtype=np.float64)
    norms = np.asarray(memory.norms, dtype=np.float64)
    gains = np.diff(np.asarray(memory.objectives, dtype=np.float64)) * n_obs
    found = []
    for k in flagged:
        path = " -> ".join(f"{r:.4g}" for r in norms[:, k])
        per = ", ".join(f"{g:+.3g}" for g in gains)
        evidence = (
            f"its whitened norm keeps growing ({path} over the last {RUNAWAY_WINDOWS * RUNAWAY_WINDOW} iterations) "
            f"while the log-likelihood's gains shrink ({per} per {RUNAWAY_WINDOW} iterations)"
        )
        found.append(_runaway(prepared, beta, int(k), evidence))
    return found


def _runaway(prepared: Any, beta: np.ndarray, k: int, evidence: str, probs: np.ndarray | None = None) -> Runaway:
    """A :class:`Runaway` for class ``k``, with the items it concentrates on where the layout has items."""
    items = shares = eff = None
    if probs is None and getattr(prepared.white, "supports_moments", False) and not prepared.process_local:
        logits = np.asarray(prepared.white.features, dtype=np.float64) @ beta[k]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
    if probs is not None:
        order = np.argsort(-probs, kind="stable")[:TOP_ITEMS]
        items, shares = order, probs[order]
        nz = probs[probs > 0]
        eff = float(np.exp(-np.sum(nz * np.log(nz))))
    theta = prepared.whitening.to_original(beta[k])
    return Runaway(int(k), float(np.linalg.norm(theta)), float(np.linalg.norm(beta[k])), evidence, items, shares, eff)


def running_off(norms, objectives, weights):
    """The classes whose atoms keep growing while the log-likelihood's gains shrink (jittable).

    ``norms`` (RUNAWAY_WINDOWS + 1, K): whitened atom norms at the last
    checkpoints, oldest first; ``objectives`` (RUNAWAY_WINDOWS + 1,): the
    log-likelihood there (NaN before a checkpoint was reached: no verdict).
    A class is flagged when its weight is above the floor, its atom is
    longer than :data:`RUNAWAY_NORM`, it grew in every window, each growth
    within a factor :data:`RUNAWAY_STEADY` of the one before, the
    log-likelihood's gain shrank from window to window, and the gain per
    unit of growth fell by at most :data:`RUNAWAY_SLOPE_DROP` a window.
    """
    growth = jnp.diff(norms, axis=0)
    gains = jnp.diff(objectives)
    pace = growth[1:] / jnp.where(growth[:-1] > 0, growth[:-1], 1.0)
    growing = jnp.all(growth > 0, axis=0) & jnp.all((pace >= 1.0 / RUNAWAY_STEADY) & (pace <= RUNAWAY_STEADY), axis=0)
    shrinking = jnp.all(gains[1:] < gains[:-1])
    # The gain bought per unit of growth: on a slide it falls slowly; converging, the gains collapse first.
    slope = gains[:, None] / jnp.where(growth > 0, growth, 1.0)
    bought = jnp.all(slope[1:] * RUNAWAY_SLOPE_DROP >= slope[:-1], axis=0)
    growing = growing & bought
    return (weights >= WEIGHT_FLOOR) & (norms[-1] > RUNAWAY_NORM) & growing & shrinking


def _runaway_direction(features: np.ndarray, probs: np.ndarray, atom: np.ndarray, tail: float) -> np.ndarray:
    """The part of ``atom`` orthogonal to the centred span of the class's support (0 when it spans everything).

    The support: the fewest items holding all but ``tail`` of the class's mass.
    """
    L = features.shape[1]
    order = np.argsort(-probs, kind="stable")
    m = int(np.searchsorted(np.cumsum(probs[order]), 1.0 - tail)) + 1
    if m > MAX_SUPPORT_PER_FEATURE * L:
        return np.zeros_like(atom)
    support = features[order[:m]]
    centred = support - support.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=True)
    rank = int(np.sum(sv > 1e-8 * max(float(sv.max(initial=0.0)), 1e-300))) if m > 1 else 0
    null = vt[rank:]
    return null.T @ (null @ atom)


def runaway_message(runaways: list[Runaway]) -> str:
    """The warning: which class, how far it ran, where its mass went, and the remedy."""
    parts = []
    for r in runaways:
        where = ""
        if r.items is not None:
            listed = ", ".join(f"{i} ({s:.1%})" for i, s in zip(r.items.tolist(), r.shares.tolist()))
            where = f"; it puts its mass on items {listed}, {r.effective_items:.1f} effective items"
        parts.append(
            f"class {r.component}'s atom reached norm {r.norm:.3g} (whitened {r.whitened_norm:.3g}) and "
            f"{r.evidence}{where}"
        )
    return (
        "The likelihood has no maximum at finite parameters: "
        + "; ".join(parts)
        + ". The class keeps gaining by moving its last mass off the items it does not favour, so this estimate "
        "is where EM stopped, not a maximum (stop_reason='no_maximum'). Fit the posterior mode instead, "
        "fit_em(..., prior=smm.Prior()), which is finite and is what sample_nuts explores."
    )
