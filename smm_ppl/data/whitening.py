"""The one whitening of the package (docs/math.md#whitening).

Coordinates: ``xt_j = Sigma_hat^{-1/2} (x_j - xbar)`` and ``beta_k =
Sigma_hat^{1/2} theta_k``.  Because ``x_j . theta_k`` and ``xt_j . beta_k``
differ by a constant over the rows of any softmax, the likelihood is the same
in both coordinate systems.  EM, the observed information and the warm starts
all work in the whitened one and map back with :meth:`Whitening.to_original`.

The covariance is normalised by the number of rows (not ``rows - 1``) so that
the whitened rows satisfy ``mean_j xt_j xt_j^T = I`` exactly: the Hermite
moment identities are then exact at zero tilt.

The Gaussian-design check of the whitened rows (:func:`check_gaussian_design`,
docs/math.md#moment-assumptions) lives here too: :class:`smm_ppl.data.prepared.Prepared`
computes it once per fit for the latent-moment warm starts
(:mod:`smm_ppl.warmstart.design`, which re-exports it).  The passes over row
blocks and the rows' moments are :mod:`smm_ppl.core.rows` (layer 1), re-exported.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..core.rows import BLOCK_ROWS as BLOCK_ROWS
from ..core.rows import pooled_moments, row_blocks, row_moments
from ..core.validation import check_features

__all__ = [
    "Whitening",
    "fit_whitening",
    "row_moments",
    "row_blocks",
    "pooled_moments",
    "GaussianityCheck",
    "check_gaussian_design",
]

#: Eigenvalues of the feature covariance below this fraction of the largest are
#: raised to it.  Validation rejects rank-deficient features, so the floor only
#: guards round-off.
EIGENVALUE_FLOOR = 1e-14


class Whitening(NamedTuple):
    """The affine map to whitened, centred coordinates.

    Attributes
    ----------
    mean : ndarray (L,)
        ``xbar``, the unweighted mean of the feature rows.
    root : ndarray (L, L)
        Symmetric ``Sigma_hat^{1/2}``.
    inv_root : ndarray (L, L)
        Symmetric ``Sigma_hat^{-1/2}``.
    cov_eigenvalues : ndarray (L,)
        Eigenvalues of ``Sigma_hat`` (ascending, floored).
    """

    mean: np.ndarray
    root: np.ndarray
    inv_root: np.ndarray
    cov_eigenvalues: np.ndarray

    def whiten(self, features: Any, dtype: Any = np.float64, n_rows: int | None = None) -> np.ndarray:
        """``xt = (x - xbar) Sigma_hat^{-1/2}`` row-wise, computed in float64 and stored in ``dtype``.

        By row blocks: the only full-size array made is the result.
        ``n_rows``: the result has that many rows, zeros after the data's (a
        layout's padding, made in place).
        """
        x = np.asarray(features)
        out = np.empty(x.shape, dtype=dtype) if n_rows is None else np.zeros((n_rows, x.shape[1]), dtype=dtype)
        for rows in row_blocks(x.shape[0]):
            out[rows] = (x[rows].astype(np.float64) - self.mean) @ self.inv_root
        return out

    def to_whitened(self, atoms: Any) -> np.ndarray:
        """Original atoms ``theta`` (..., K, L) -> ``beta = Sigma_hat^{1/2} theta`` row-wise."""
        return np.asarray(atoms, dtype=np.float64) @ self.root

    def to_original(self, atoms: Any) -> np.ndarray:
        """Whitened atoms ``beta`` (..., K, L) -> ``theta = Sigma_hat^{-1/2} beta`` row-wise."""
        return np.asarray(atoms, dtype=np.float64) @ self.inv_root


def fit_whitening(features: Any, moments: tuple[np.ndarray, np.ndarray] | None = None) -> Whitening:
    """Mean, covariance and its symmetric square roots of the rows of ``features`` (R, L).

    ``moments``: the ``(mean, covariance)`` to use instead of the rows' own
    (rows spread over several processes: :func:`pooled_moments`).
    """
    mean, cov = row_moments(features) if moments is None else moments
    eigval, eigvec = np.linalg.eigh(cov)
    eigval = np.maximum(eigval, max(eigval[-1], 1e-300) * EIGENVALUE_FLOOR)
    root = (eigvec * np.sqrt(eigval)) @ eigvec.T
    inv_root = (eigvec / np.sqrt(eigval)) @ eigvec.T
    return Whitening(mean, root, inv_root, eigval)


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
