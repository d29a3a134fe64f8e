"""log_likelihood: agreement with a direct computation, invariances, extreme logits."""

import numpy as np
import pytest
from scipy.special import logsumexp

import smm_ppl as smm


def direct_log_likelihood(X, counts, params):
    logits = X @ np.asarray(params.atoms).T  # (p, K)
    log_sigma = logits - logsumexp(logits, axis=0)
    log_pi = logsumexp(log_sigma + np.log(params.weights), axis=1)
    return float(np.sum(counts * log_pi))


def test_matches_direct_numpy_computation(small_problem):
    X, counts, params = small_problem
    assert smm.log_likelihood(X, counts, params) == pytest.approx(direct_log_likelihood(X, counts, params), rel=1e-12)


def test_shift_of_features_leaves_likelihood_unchanged(small_problem):
    X, counts, params = small_problem
    shift = np.array([3.0, -7.0, 0.5])
    assert smm.log_likelihood(X + shift, counts, params) == pytest.approx(
        smm.log_likelihood(X, counts, params), rel=1e-11
    )


def test_permuting_classes_leaves_likelihood_unchanged(small_problem):
    X, counts, params = small_problem
    perm = np.array([1, 0])
    permuted = smm.SMMParams(params.weights[perm], params.atoms[perm])
    assert smm.log_likelihood(X, counts, permuted) == pytest.approx(smm.log_likelihood(X, counts, params), rel=1e-13)


def test_pointwise_log_probs_summed_with_counts_equal_total(small_problem):
    X, counts, params = small_problem
    log_pi = smm.log_mixture_probs(X, params)
    assert log_pi.shape == (X.shape[0],)
    assert np.exp(logsumexp(log_pi)) == pytest.approx(1.0, abs=1e-12)
    assert np.sum(counts * log_pi) == pytest.approx(smm.log_likelihood(X, counts, params), rel=1e-12)


def test_huge_logits_stay_finite():
    X = smm.simulate_features(3, 200, 2)
    params = smm.SMMParams(np.array([0.5, 0.5]), np.array([[80.0, 0.0], [0.0, -60.0]]))
    counts = np.zeros(200, dtype=int)
    counts[np.argmax(X[:, 0])] = 7  # the item class 0 picks almost surely
    ll = smm.log_likelihood(X, counts, params)
    assert np.isfinite(ll)
    assert ll == pytest.approx(7 * np.log(0.5), abs=1e-6)


def test_zero_weight_class_and_zero_counts_give_finite_value(small_problem):
    X, counts, params = small_problem
    degenerate = smm.SMMParams(np.array([1.0, 0.0]), params.atoms)
    ll = smm.log_likelihood(X, counts, degenerate)
    single = smm.SMMParams(np.array([1.0]), params.atoms[:1])
    assert np.isfinite(ll) and ll == pytest.approx(smm.log_likelihood(X, counts, single), rel=1e-12)


def test_counts_from_draws_is_a_bincount():
    draws = np.array([0, 2, 2, 5, 0, 2])
    n = smm.counts_from_draws(draws, 6)
    np.testing.assert_array_equal(n, [2, 0, 3, 0, 0, 1])
