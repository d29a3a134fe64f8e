"""The Gaussian-design check behind the latent-moment warm starts (SPEC sections 2 and 9).

The whitening itself is :mod:`smm_ppl.whitening`.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..validation import check_features
from ..whitening import row_blocks

__all__ = ["GaussianityCheck", "check_gaussian_design", "warn_if_not_gaussian"]


class GaussianityCheck(NamedTuple):
    """Largest marginal departures of the whitened features from a standard normal."""

    skewness: float
    excess_kurtosis: float
    ok: bool


# A Gaussian design is the working assumption; moderate departures only bias a
# warm start that EM then corrects, so the thresholds flag gross departures
# (a uniform feature, excess kurtosis -1.2, or a binary one, -2, is flagged).
_SKEW_TOL = 0.5
_KURT_TOL = 0.8
_N_RANDOM_DIRECTIONS = 8


def check_gaussian_design(xt: np.ndarray) -> GaussianityCheck:
    """Marginal skewness and excess kurtosis of the whitened features.

    Checked along every whitened coordinate and along a fixed set of random
    directions (non-Gaussianity hidden in a rotation shows up there).  The
    tolerance adds three sampling standard errors (``sqrt(6/p)`` and
    ``sqrt(24/p)``) to fixed thresholds so that small designs do not raise
    false alarms.
    """
    # Any design works (whitened or not: skewness and kurtosis are scale-free).
    xt = check_features(xt, "xt", check_rank=False, keep_float32=True)
    p, L = xt.shape
    rng = np.random.default_rng(20240611)  # fixed: the check must be deterministic
    extra = rng.standard_normal((L, _N_RANDOM_DIRECTIONS))
    extra /= np.linalg.norm(extra, axis=0, keepdims=True)
    directions = np.concatenate([np.eye(L), extra], axis=1)
    # Central moments 2-4 of every projection, by row blocks (no full-size temporaries).
    mean = np.zeros(directions.shape[1])
    for rows in row_blocks(p):
        mean += (xt[rows].astype(np.float64) @ directions).sum(axis=0)
    mean /= p
    powers = np.zeros((3, directions.shape[1]))
    for rows in row_blocks(p):
        c = xt[rows].astype(np.float64) @ directions - mean
        c2 = c * c
        powers += [c2.sum(axis=0), (c2 * c).sum(axis=0), (c2 * c2).sum(axis=0)]
    m2, m3, m4 = powers / p
    var = np.where(m2 > 0, m2, 1.0)
    skew = float(np.max(np.abs(m3 / var**1.5)))
    kurt = float(np.max(np.abs(m4 / var**2 - 3.0)))
    ok = skew <= _SKEW_TOL + 3 * np.sqrt(6.0 / p) and kurt <= _KURT_TOL + 3 * np.sqrt(24.0 / p)
    return GaussianityCheck(skew, kurt, bool(ok))


def warn_if_not_gaussian(check: GaussianityCheck, method: str, stacklevel: int = 3) -> None:
    """Emit a ``UserWarning`` (never an error) when the design is far from Gaussian."""
    if check.ok:
        return
    warnings.warn(
        f"{method}: the whitened features look far from Gaussian (max |skewness| = {check.skewness:.2f}, "
        f"max |excess kurtosis| = {check.excess_kurtosis:.2f}). The latent-moment warm starts "
        "(estimate_subspace, mom_init, tensor_init, subspace_random_inits) rely on a Gaussian design "
        "and may land far from the truth; refine with EM from several starts "
        "(fit_em(..., n_starts=...)) and check the log-likelihood.",
        UserWarning,
        stacklevel=stacklevel,
    )
