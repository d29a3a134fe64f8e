"""Passes over the rows of a feature matrix by blocks, and the rows' mean and covariance.

Layer 1 (basics): the input checks (:mod:`smm_ppl.core.validation`) and the
whitening (:mod:`smm_ppl.data.whitening`) both make these passes; the whitening
re-exports them under their historical names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BLOCK_ROWS", "row_blocks", "row_moments", "pooled_moments"]

#: Rows per block of the passes over the features: float64 temporaries of a few MiB, whatever p.
BLOCK_ROWS = 1 << 15


def row_blocks(n_rows: int, block: int = BLOCK_ROWS):
    """Slices of at most ``block`` consecutive rows covering ``range(n_rows)``."""
    return (slice(i, min(i + block, n_rows)) for i in range(0, n_rows, block))


def row_moments(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (L,), covariance (L, L))`` of the rows, normalised by the number of rows.

    Two passes over row blocks, accumulated in float64: no float64 copy of
    the features is made (a float32 matrix of 10^7 rows stays as it is), and
    the covariance is formed from centred rows (no cancellation).
    """
    x = np.asarray(features)
    R, L = x.shape
    total = np.zeros(L)
    for rows in row_blocks(R):
        total += x[rows].sum(axis=0, dtype=np.float64)
    mean = total / R
    cov = np.zeros((L, L))
    for rows in row_blocks(R):
        c = x[rows].astype(np.float64) - mean
        cov += c.T @ c
    return mean, cov / R


def pooled_moments(n_rows: np.ndarray, means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the union of row sets from theirs (``(S,)``, ``(S, L)``, ``(S, L, L)``)."""
    n_rows = np.asarray(n_rows, dtype=np.float64)
    total = n_rows.sum()
    mean = n_rows @ means / total
    spread = means - mean
    cov = (np.einsum("s,sij->ij", n_rows, covs) + np.einsum("s,si,sj->ij", n_rows, spread, spread)) / total
    return mean, cov
