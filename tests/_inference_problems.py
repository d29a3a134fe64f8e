"""Fixtures and helpers shared by the inference tests (p = 300 items, L = 2, K = 2: NUTS cost depends
on p, not on N, so large N is cheap)."""

import numpy as np

import smm_ppl as smm

TRUTH = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5], [-1.0, 0.8]]))


def em_fit(X, n, K=2):
    return smm.fit_em(X, n, K, seed=0)


def k2_problem():
    X = smm.simulate_features(0, 300, 2)
    n = smm.simulate_counts(1, X, TRUTH, 20_000)
    return X, n, em_fit(X, n)


def nuts_from_em(k2):
    X, n, em = k2
    return smm.sample_nuts(X, n, 2, init=em, num_chains=4, num_warmup=300, num_samples=500, seed=0)


def swap_labels(p):
    return smm.SMMParams(np.asarray(p.weights)[::-1].copy(), np.asarray(p.atoms)[::-1].copy())
