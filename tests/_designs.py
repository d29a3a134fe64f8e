"""Simulated designs shared by the warm-start tests."""

import numpy as np

import smm_ppl as smm
from smm_ppl.warmstart._whiten import fit_whitening


def whitened_design(seed, p, L, K, radius):
    """Non-identity covariance, non-zero mean; orthogonal whitened atoms of norm ``radius``.

    Returns ``(features, truth, beta, whitening)`` with ``beta`` the (K, L) atoms in whitened units.
    """
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((L, L)) / np.sqrt(L)
    cov = A @ A.T + 0.5 * np.eye(L)
    X = smm.simulate_features(seed, p, L, cov=cov, mean=rng.standard_normal(L))
    beta = radius * np.linalg.qr(rng.standard_normal((L, K)))[0].T
    weights = rng.dirichlet(np.full(K, 10.0))
    wh = fit_whitening(X)
    return X, smm.SMMParams(weights, beta @ wh.inv_root), beta, wh
