"""Data layouts: the only code that knows how observations are arranged.

See :mod:`smm_ppl.layouts._base` for the protocol and
:mod:`smm_ppl.layouts.items` for counts over one set of items (the paper's
SMM).  :func:`as_layout` validates user input into a layout.
"""

from __future__ import annotations

from typing import Any

from ._base import Layout, Statistics, class_log_posteriors, rows_bucket, total_weight
from .choices import ChoiceSituations, ChoiceStatistics, choice_situations
from .items import ItemCounts, ItemStatistics, item_counts

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
]


def as_layout(features: Any, counts: Any = None) -> Layout:
    """A validated layout: a :class:`Layout` as it is, else ``(features, counts)`` as :class:`ItemCounts`.

    Raises the validation errors of :func:`smm_ppl.as_data` (naming the
    argument and what to do).
    """
    if isinstance(features, Layout):
        if counts is not None:
            raise ValueError(
                "counts must be None when features is a data layout (the layout carries its observations)."
            )
        return features
    from ..data import as_data

    data = as_data(features, counts)
    return item_counts(data.features, data.counts)


def bucketed(layout: Layout) -> Layout:
    """``layout`` padded to its shape bucket (:func:`rows_bucket`) where the layout can pad, else itself.

    What every compiled program runs on, so that data of another size in the
    same bucket reuse it.
    """
    pad = getattr(layout, "padded", None)
    return layout if pad is None else pad(rows_bucket(layout.n_rows, layout.n_features))
