"""Validation of ``(features, counts)`` into an :class:`SMMData` (NumPy, float64 / int64).

The methods reach data through a layout (:mod:`smm_ppl.layouts`);
:func:`smm_ppl.layouts.as_layout` builds one from the validated arrays here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..core.validation import check_counts, check_draws, check_features

__all__ = ["SMMData", "as_data", "counts_from_draws"]


class SMMData(NamedTuple):
    """Validated data: ``features`` (p, L) float64 and ``counts`` (p,) int64."""

    features: np.ndarray
    counts: np.ndarray

    @property
    def n_items(self) -> int:
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def n_obs(self) -> int:
        return int(self.counts.sum())

    @property
    def observed_items(self) -> np.ndarray:
        """Indices of the items with ``n_j > 0``."""
        return np.flatnonzero(self.counts)

    @property
    def frequencies(self) -> np.ndarray:
        """Empirical frequencies ``w = n / N``."""
        return self.counts / self.counts.sum()


def as_data(features: Any, counts: Any, *, check_rank: bool = True, keep_float32: bool = False) -> SMMData:
    """Validate ``features`` and ``counts`` together and return an :class:`SMMData` (``keep_float32``: see
    :func:`~smm_ppl.core.validation.check_features`)."""
    if isinstance(features, SMMData):
        return features
    x = check_features(features, check_rank=check_rank, keep_float32=keep_float32)
    n = check_counts(counts, x.shape[0])
    return SMMData(x, n)


def counts_from_draws(draws: Any, n_items: int) -> np.ndarray:
    """Reduce raw draws (item indices, one per observation) to a count vector.

    Parameters
    ----------
    draws : array of int, shape (N,)
        The chosen item of each observation, in ``[0, n_items)``.
    n_items : int
        Number of items ``p``.

    Returns
    -------
    counts : ndarray of int64, shape (n_items,)
    """
    from ..core.validation import check_positive_int

    n_items = check_positive_int(n_items, "n_items")
    d = check_draws(draws, n_items)
    return np.bincount(d, minlength=n_items).astype(np.int64)
