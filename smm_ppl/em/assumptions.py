"""Whether the latent-moment warm starts' assumptions hold for a fit: the check behind ``EMResult.assumptions``.

The Hermite-moment starts (``mom``, ``tensor``, ``subspace``) rest on a
Gaussian design and diffuse classes: their error grows like
``sqrt(exp(|beta|^2) / p)``, about ``1 / sqrt(effective items)`` per class.
Real designs (embeddings, attributes of alternatives) are rarely Gaussian,
and real classes are often concentrated on a few hundred items.  This
module measures both at the estimate, so that a fit can say when those
starts were out of their depth.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..data.prepared import Prepared
from ..warmstart.design import GaussianityCheck
from ..warmstart.report import effective_items

__all__ = ["MomentAssumptions", "check_moment_assumptions", "MIN_EFFECTIVE_ITEMS", "MOMENT_STARTS"]

#: Below this many effective items a class is too concentrated for the moment approximations.
MIN_EFFECTIVE_ITEMS = 50.0
#: The starts that rest on the latent moments.
MOMENT_STARTS = ("mom", "tensor", "subspace")


class MomentAssumptions(NamedTuple):
    """The moment starts' assumptions, checked at a fit's estimate.

    Attributes
    ----------
    effective_items : ndarray (K,)
        ``1 / sum_j sigma_j(theta_k)^2``: the number of items each class
        effectively spreads over.
    gaussianity : GaussianityCheck
        Marginal skewness and excess kurtosis of the whitened design.
    hold : bool
        The design looks Gaussian and every class with weight spreads over
        at least :data:`MIN_EFFECTIVE_ITEMS` items.
    reasons : tuple of str
        What failed, in words (empty when ``hold``).
    """

    effective_items: np.ndarray
    gaussianity: GaussianityCheck
    hold: bool
    reasons: tuple

    def __str__(self) -> str:
        eff = ", ".join(f"{e:.0f}" for e in self.effective_items)
        verdict = "hold" if self.hold else "fail: " + "; ".join(self.reasons)
        return f"moment-start assumptions {verdict} (effective items per class: {eff})"


def check_moment_assumptions(
    prepared: Prepared, weights: np.ndarray, atoms_white: np.ndarray
) -> MomentAssumptions | None:
    """The check at whitened ``(weights, atoms)``; ``None`` for layouts without counts over one set of items."""
    white = prepared.white
    if not getattr(white, "supports_moments", False):
        return None
    # On the padded rows EM ran on: the program compiled for the shape bucket serves every size in it.
    layout = prepared.em_layout
    eff = np.asarray(effective_items(layout.features, np.asarray(atoms_white), layout.valid), dtype=np.float64)
    gauss = prepared.gaussianity
    reasons = []
    if not gauss.ok:
        reasons.append(
            f"the whitened design is far from Gaussian (max |skewness| {gauss.skewness:.2f}, "
            f"max |excess kurtosis| {gauss.excess_kurtosis:.2f})"
        )
    alive = np.asarray(weights) > 1e-6
    thin = np.flatnonzero(alive & (eff < MIN_EFFECTIVE_ITEMS))
    if thin.size:
        reasons.append(
            f"class(es) {thin.tolist()} concentrate on fewer than {MIN_EFFECTIVE_ITEMS:.0f} effective items "
            f"({', '.join(f'{eff[k]:.0f}' for k in thin)})"
        )
    return MomentAssumptions(eff, gauss, not reasons, tuple(reasons))
