import numpy as np
import pytest

import smm_ppl as smm


@pytest.fixture(scope="session")
def small_problem():
    """A small K = 2 problem: features (p, L) with a non-zero mean and non-identity covariance."""
    p, L = 300, 3
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 0.7]])
    X = smm.simulate_features(0, p, L, cov=cov, mean=[1.0, -0.5, 0.2])
    params = smm.SMMParams(np.array([0.35, 0.65]), np.array([[1.0, -0.5, 0.3], [-0.8, 0.6, -0.2]]))
    counts = smm.simulate_counts(1, X, params, 5000)
    return X, counts, params
