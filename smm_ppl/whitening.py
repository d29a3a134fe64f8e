"""The one whitening of the package (SPEC section 2).

Coordinates: ``xt_j = Sigma_hat^{-1/2} (x_j - xbar)`` and ``beta_k =
Sigma_hat^{1/2} theta_k``.  Because ``x_j . theta_k`` and ``xt_j . beta_k``
differ by a constant over the rows of any softmax, the likelihood is the same
in both coordinate systems.  EM, the observed information and the warm starts
all work in the whitened one and map back with :meth:`Whitening.to_original`.

The covariance is normalised by the number of rows (not ``rows - 1``) so that
the whitened rows satisfy ``mean_j xt_j xt_j^T = I`` exactly: the Hermite
moment identities are then exact at zero tilt.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["Whitening", "fit_whitening", "row_moments", "row_blocks", "pooled_moments"]

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
