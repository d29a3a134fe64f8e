"""Centring, whitening and the Gaussian-design check shared by every warm start.

Coordinates (SPEC section 2): ``xt_j = Sigma_hat^{-1/2} (x_j - xbar)`` and
``beta_k = Sigma_hat^{1/2} theta_k``.  Because ``x_j . theta_k`` and
``xt_j . beta_k`` differ by a constant over items, the softmax (hence the
likelihood) is the same in both coordinate systems; warm starts work in the
whitened one and map back with :func:`atoms_to_original`.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

__all__ = [
    "Whitening",
    "fit_whitening",
    "whiten_features",
    "atoms_to_original",
    "atoms_to_whitened",
    "GaussianityCheck",
    "check_gaussian_design",
    "warn_if_not_gaussian",
]


class Whitening(NamedTuple):
    """The affine map to whitened, centred coordinates.

    Attributes
    ----------
    mean : ndarray (L,)
        ``xbar``, the unweighted mean of the rows of ``features``.
    root : ndarray (L, L)
        Symmetric ``Sigma_hat^{1/2}``.
    inv_root : ndarray (L, L)
        Symmetric ``Sigma_hat^{-1/2}``.
    cov_eigenvalues : ndarray (L,)
        Eigenvalues of ``Sigma_hat`` (ascending).
    """

    mean: np.ndarray
    root: np.ndarray
    inv_root: np.ndarray
    cov_eigenvalues: np.ndarray


def fit_whitening(features: np.ndarray) -> Whitening:
    """Sample mean and covariance of the rows of ``features`` and the symmetric square roots.

    The covariance is normalised by ``p`` (not ``p - 1``) so that the whitened
    features satisfy ``mean_j xt_j xt_j^T = I`` exactly; the Hermite moment
    identities of SPEC section 2 are then exact at zero weights tilt.
    ``features`` must already have passed :func:`smm_ppl.validation.check_features`
    (full column rank), so the covariance is positive definite.
    """
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    eigval, eigvec = np.linalg.eigh(cov)
    # check_features guarantees full rank; the floor only guards against round-off.
    eigval = np.maximum(eigval, eigval[-1] * 1e-14)
    root = (eigvec * np.sqrt(eigval)) @ eigvec.T
    inv_root = (eigvec / np.sqrt(eigval)) @ eigvec.T
    return Whitening(mean, root, inv_root, eigval)


def whiten_features(features: np.ndarray, whitening: Whitening) -> np.ndarray:
    """``xt = (x - xbar) Sigma_hat^{-1/2}``, shape ``(p, L)``."""
    return (np.asarray(features, dtype=np.float64) - whitening.mean) @ whitening.inv_root


def atoms_to_original(beta: np.ndarray, whitening: Whitening) -> np.ndarray:
    """Whitened atoms ``beta`` (..., K, L) -> original ``theta = Sigma_hat^{-1/2} beta`` row-wise."""
    return np.asarray(beta, dtype=np.float64) @ whitening.inv_root


def atoms_to_whitened(theta: np.ndarray, whitening: Whitening) -> np.ndarray:
    """Original atoms ``theta`` (..., K, L) -> whitened ``beta = Sigma_hat^{1/2} theta`` row-wise."""
    return np.asarray(theta, dtype=np.float64) @ whitening.root


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
    xt = np.asarray(xt, dtype=np.float64)
    p, L = xt.shape
    rng = np.random.default_rng(20240611)  # fixed: the check must be deterministic
    extra = rng.standard_normal((L, _N_RANDOM_DIRECTIONS))
    extra /= np.linalg.norm(extra, axis=0, keepdims=True)
    proj = np.concatenate([xt, xt @ extra], axis=1)
    proj = proj - proj.mean(axis=0)
    sd = proj.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    s = proj / sd
    s2 = s * s
    skew = float(np.max(np.abs(np.mean(s2 * s, axis=0))))
    kurt = float(np.max(np.abs(np.mean(s2 * s2, axis=0) - 3.0)))
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
