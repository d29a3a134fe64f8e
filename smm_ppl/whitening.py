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

__all__ = ["Whitening", "fit_whitening"]

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

    def whiten(self, features: Any) -> np.ndarray:
        """``xt = (x - xbar) Sigma_hat^{-1/2}`` row-wise."""
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.inv_root

    def to_whitened(self, atoms: Any) -> np.ndarray:
        """Original atoms ``theta`` (..., K, L) -> ``beta = Sigma_hat^{1/2} theta`` row-wise."""
        return np.asarray(atoms, dtype=np.float64) @ self.root

    def to_original(self, atoms: Any) -> np.ndarray:
        """Whitened atoms ``beta`` (..., K, L) -> ``theta = Sigma_hat^{-1/2} beta`` row-wise."""
        return np.asarray(atoms, dtype=np.float64) @ self.inv_root


def fit_whitening(features: Any) -> Whitening:
    """Mean, covariance and its symmetric square roots of the rows of ``features`` (R, L)."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    eigval, eigvec = np.linalg.eigh(cov)
    eigval = np.maximum(eigval, max(eigval[-1], 1e-300) * EIGENVALUE_FLOOR)
    root = (eigvec * np.sqrt(eigval)) @ eigvec.T
    inv_root = (eigvec / np.sqrt(eigval)) @ eigvec.T
    return Whitening(mean, root, inv_root, eigval)
