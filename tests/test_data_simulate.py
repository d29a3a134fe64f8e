"""Simulation: counts follow pi (chi-square), designs have the asked moments, seeds reproduce."""

import numpy as np
import pytest
from scipy import stats

import smm_ppl as smm


def test_simulated_counts_match_pi_chi_square():
    X = smm.simulate_features(10, 40, 2)
    params = smm.SMMParams(np.array([0.3, 0.7]), np.array([[1.0, 0.5], [-1.0, 0.2]]))
    n_obs = 200_000
    counts = smm.simulate_counts(11, X, params, n_obs)
    assert counts.sum() == n_obs and counts.dtype == np.int64
    expected = n_obs * np.exp(smm.log_mixture_probs(X, params))
    chi2 = np.sum((counts - expected) ** 2 / expected)
    pvalue = stats.chi2.sf(chi2, df=X.shape[0] - 1)
    assert pvalue > 1e-3, (chi2, pvalue)


def test_chi_square_detects_wrong_probabilities():
    # The same statistic must reject counts drawn from other parameters (the test above can fail).
    X = smm.simulate_features(10, 40, 2)
    params = smm.SMMParams(np.array([0.3, 0.7]), np.array([[1.0, 0.5], [-1.0, 0.2]]))
    other = smm.SMMParams(np.array([0.5, 0.5]), np.array([[1.0, 0.5], [-1.0, 0.2]]))
    counts = smm.simulate_counts(11, X, other, 200_000)
    expected = 200_000 * np.exp(smm.log_mixture_probs(X, params))
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=39) < 1e-6


def test_same_seed_same_counts_and_different_seed_differs():
    X = smm.simulate_features(0, 100, 3)
    params = smm.simulate_params(1, 3, 3, min_separation=1.0)
    a = smm.simulate_counts(5, X, params, 1000)
    b = smm.simulate_counts(5, X, params, 1000)
    c = smm.simulate_counts(6, X, params, 1000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(smm.simulate_features(0, 100, 3), X)


def test_features_have_requested_mean_and_covariance():
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    mean = np.array([1.0, -3.0])
    X = smm.simulate_features(7, 100_000, 2, cov=cov, mean=mean)
    np.testing.assert_allclose(X.mean(axis=0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(X.T), cov, atol=0.03)


def test_simulate_params_respects_separation_and_simplex():
    P = smm.simulate_params(3, 4, 5, atoms_scale=1.5, min_separation=1.0, weights_concentration=2.0)
    d = np.linalg.norm(P.atoms[:, None] - P.atoms[None], axis=-1)
    assert d[np.triu_indices(4, 1)].min() >= 1.0
    assert P.weights.sum() == pytest.approx(1.0) and (P.weights > 0).all()
    with pytest.raises(ValueError, match="min_separation"):
        smm.simulate_params(0, 5, 1, atoms_scale=0.01, min_separation=10.0)


def test_jax_key_and_int_seed_both_accepted():
    import jax

    X1 = smm.simulate_features(jax.random.PRNGKey(4), 10, 2)
    X2 = smm.simulate_features(4, 10, 2)
    np.testing.assert_array_equal(X1, X2)


def test_counts_are_the_multinomial_draw_over_the_items_and_sizes_in_a_bucket_share_a_program():
    """The draw over the padded rows gives exactly the counts of JAX's multinomial over the items'
    probabilities alone (the oracle); and 1,000 and 1,200 items (one row bucket) compile once."""
    import jax
    import jax.numpy as jnp

    params = smm.SMMParams(np.array([0.2, 0.5, 0.3]), np.array([[2.0, 0.5, -1.0], [-1.5, 1.0, 0.3], [0.1, -2.0, 1.2]]))
    programs = []
    for p in (1000, 1200):
        X = smm.simulate_features(p, p, 3)
        counts = smm.simulate_counts(7, X, params, 54_321)
        programs.append(smm.compiled_programs()["simulate"])
        pi = jnp.exp(jnp.asarray(smm.log_mixture_probs(X, params)))
        oracle = np.asarray(jax.random.multinomial(jax.random.PRNGKey(7), 54_321.0, pi / pi.sum())).round()
        assert np.abs(counts - oracle).sum() <= 2  # equal, up to the round-off fix of the total
        assert counts.sum() == 54_321
    assert programs[1] == programs[0]  # the second size compiled nothing
