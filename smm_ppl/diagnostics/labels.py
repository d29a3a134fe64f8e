"""How ambiguous the relabelling of a mixture's draws was: which classes switched, and how close they are.

Relabelling to the EM estimate (:func:`smm_ppl.relabel_draws`) is exact
when the classes are well separated: every draw is matched to the same
permutation and nothing changes.  When two classes are close (closer than a
few posterior sds) draws switch them back and forth, the matching is
ambiguous, and the relabelled posterior of each averages the two; an empty
class (more classes than the data support) has draws spread over its prior
and is matched to anything.  :func:`label_switching` measures both per pair
of classes and warns, so that such a posterior is reported, not summarised.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

__all__ = ["label_switching", "LabelSwitchingWarning", "SWITCHED_SHARE", "SEPARATION", "SWITCHED_SEPARATION"]

#: A pair is flagged when its atoms are closer than this many posterior sds ...
SEPARATION = 2.0
#: ... or when more than this share of the draws had it swapped while it is closer than ...
SWITCHED_SHARE = 0.05
#: ... this many: far apart, a swap (a chain started in another order) is undone exactly by the matching.
SWITCHED_SEPARATION = 5.0


class LabelSwitchingWarning(UserWarning):
    """Two classes switched labels in the draws, or are too close for the relabelling to tell them apart."""


def label_switching(idata: Any, *, warn: bool = True, stacklevel: int = 2):
    """Per pair of classes: the share of draws with them swapped and their separation in posterior sds.

    Parameters
    ----------
    idata : DataTree
        A softmax-mixture result of :func:`smm_ppl.sample_nuts`,
        ``fit_svi(...).idata`` or :func:`smm_ppl.laplace`.
    warn : bool, default True
        Issue a :class:`LabelSwitchingWarning` naming the flagged pairs
        (:func:`smm_ppl.sample_nuts` does, after relabelling).
    stacklevel : int, default 2
        Of the warning.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``(k, l)``: ``switched_share`` (the share of
        draws in which the relabelling swapped ``k`` and ``l`` against the
        permutation most draws share; NaN when the draws were not relabelled), ``distance``
        (between the posterior mean atoms), ``separation`` (``distance``
        over ``sqrt(sd_k^2 + sd_l^2)``, the atoms' posterior sds along the
        line between them), ``weights`` (the two posterior mean weights)
        and ``ambiguous`` (``separation < 2``, or ``switched_share > 0.05``
        with ``separation < 5``: classes far apart are matched exactly
        however often they swapped).
        ``attrs["relabelled_share"]``: the share of draws the relabelling
        permuted at all.
    """
    import pandas as pd

    post = idata.posterior
    w = np.asarray(post["weights"].values, dtype=np.float64)
    a = np.asarray(post["atoms"].values, dtype=np.float64)
    K = w.shape[-1]
    flat_a = a.reshape((-1,) + a.shape[-2:])
    mean_a = flat_a.mean(0)
    mean_w = w.reshape(-1, K).mean(0)
    stats = getattr(idata, "sample_stats", None)
    perm = modal = None
    if stats is not None and "label_permutation" in stats:
        perm = np.asarray(stats["label_permutation"].values).reshape(-1, K)
        # Switching is departing from the permutation most draws share (a chain started in another order
        # than the reference is permuted throughout, and that is no switching).
        rows_, counts = np.unique(perm, axis=0, return_counts=True)
        modal = rows_[np.argmax(counts)]
    rows = []
    for k, l in itertools.combinations(range(K), 2):
        diff = mean_a[l] - mean_a[k]
        dist = float(np.linalg.norm(diff))
        direction = diff / dist if dist > 0 else np.eye(a.shape[-1])[0]
        sd = np.sqrt(np.var(flat_a[:, k] @ direction) + np.var(flat_a[:, l] @ direction))
        switched = (
            float(np.mean((perm[:, k] == modal[l]) | (perm[:, l] == modal[k]))) if perm is not None else float("nan")
        )
        separation = dist / sd if sd > 0 else float("inf")
        rows.append(
            {
                "pair": f"{k}-{l}",
                "switched_share": switched,
                "distance": dist,
                "separation": float(separation),
                "weights": f"{mean_w[k]:.3f}, {mean_w[l]:.3f}",
                "ambiguous": bool(
                    separation < SEPARATION or (switched > SWITCHED_SHARE and separation < SWITCHED_SEPARATION)
                ),
            }
        )
    table = pd.DataFrame(rows).set_index("pair") if rows else pd.DataFrame()
    table.attrs["relabelled_share"] = (
        float(np.mean(np.any(perm != np.arange(K), axis=1))) if perm is not None else float("nan")
    )
    if warn and rows and table["ambiguous"].any():
        flagged = table[table["ambiguous"]]
        what = "; ".join(
            f"classes {pair.replace('-', ' and ')}: {r.switched_share:.0%} of the draws swapped, "
            f"{r.separation:.1f} posterior sds apart (weights {r.weights})"
            for pair, r in flagged.iterrows()
        )
        warnings.warn(
            f"label switching: {what}. The relabelled draws of these classes mix both labels (their posterior "
            "summaries average them). Check smm.rhat(idata, raw=True), compare with fewer classes "
            "(a class near its prior is an empty one), or report the classes together.",
            LabelSwitchingWarning,
            stacklevel=stacklevel,
        )
    return table
