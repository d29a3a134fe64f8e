"""Observed information and standard errors (docs/math.md#standard-errors)."""

from __future__ import annotations

import numpy as np
import pytest

import smm_ppl as smm

COV = [[1.0, 0.3], [0.3, 0.7]]
TRUTH = smm.SMMParams(np.array([0.6, 0.4]), np.array([[1.0, -0.5], [-0.8, 0.9]]))


@pytest.fixture(scope="module")
def design():
    return smm.simulate_features(0, 400, 2, cov=COV, mean=[0.5, -0.2])


def _flat(p: smm.SMMParams) -> np.ndarray:
    return np.concatenate([np.ravel(p.weights), np.ravel(p.atoms)])


def test_standard_errors_match_the_monte_carlo_spread(design):
    """SEs from the observed information agree with the spread of EM estimates over replications."""
    X = design
    estimates, ses = [], []
    for rep in range(60):
        n = smm.simulate_counts(1000 + rep, X, TRUTH, 50_000)
        res = smm.fit_em(X, n, 2, init=TRUTH, m_step="newton")
        assert res.converged
        aligned = smm.align_params(res.params, TRUTH)
        estimates.append(_flat(aligned))
        ses.append(_flat(res.standard_errors))
    estimates, ses = np.array(estimates), np.array(ses)
    spread = estimates.std(axis=0, ddof=1)
    typical_se = np.sqrt(np.mean(ses**2, axis=0))
    ratio = spread / typical_se
    # 60 replications: the sample sd has a relative error of about 9%, so a
    # correct SE gives ratios in ~[0.8, 1.2]; a wrong scale (e.g. a missing
    # delta method or a factor sqrt(2)) falls outside.
    assert 0.8 <= np.median(ratio) <= 1.25, ratio
    assert np.all((ratio > 0.65) & (ratio < 1.5)), ratio


def _log_likelihood_z(X, n, z, K, L):
    eta = np.append(z[: K - 1], 0.0)
    weights = np.exp(eta - eta.max())
    weights /= weights.sum()
    return smm.log_likelihood(X, n, smm.SMMParams(weights, z[K - 1 :].reshape(K, L)))


def test_observed_information_matches_finite_differences(design):
    X = design
    n = smm.simulate_counts(3, X, TRUTH, 5000)
    K, L = 2, 2
    info = smm.observed_information(X, n, TRUTH)
    assert info.shape == (K - 1 + K * L,) * 2
    np.testing.assert_allclose(info, info.T, atol=1e-8 * np.abs(info).max())
    z0 = np.concatenate([[np.log(TRUTH.weights[0] / TRUTH.weights[1])], TRUTH.atoms.ravel()])
    d, h = z0.size, 1e-4
    fd = np.empty((d, d))
    for i in range(d):
        for j in range(d):
            ei, ej = np.eye(d)[i] * h, np.eye(d)[j] * h
            fd[i, j] = (
                _log_likelihood_z(X, n, z0 + ei + ej, K, L)
                - _log_likelihood_z(X, n, z0 + ei - ej, K, L)
                - _log_likelihood_z(X, n, z0 - ei + ej, K, L)
                + _log_likelihood_z(X, n, z0 - ei - ej, K, L)
            ) / (4 * h * h)
    np.testing.assert_allclose(info, -fd, rtol=1e-4, atol=1e-4 * np.abs(info).max())


def test_covariance_and_standard_errors_agree(design):
    X = design
    n = smm.simulate_counts(4, X, TRUTH, 20_000)
    est = smm.fit_em(X, n, 2, init=TRUTH, compute_standard_errors=False).params
    cov = smm.parameter_covariance(X, n, est)
    se = smm.standard_errors(X, n, est)
    assert cov.shape == (2 + 4, 2 + 4)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), _flat(se), rtol=1e-10)
    # The weights sum to one: their covariance block has zero row sums.
    np.testing.assert_allclose(cov[:2, :].sum(axis=0), 0.0, atol=1e-12)
    assert se.weights[0] == pytest.approx(se.weights[1])
    # Inverse of the information (original parametrisation) gives the same atom block.
    inv = np.linalg.inv(smm.observed_information(X, n, est))
    np.testing.assert_allclose(cov[2:, 2:], inv[1:, 1:], rtol=1e-6)


def test_singular_information_gives_nan_and_warns(design):
    X = design
    n = smm.simulate_counts(5, X, TRUTH, 5000)
    twins = smm.SMMParams(np.array([0.5, 0.5]), np.array([[0.3, 0.1], [0.3, 0.1]]))  # identical atoms
    with pytest.warns(UserWarning, match="singular"):
        se = smm.standard_errors(X, n, twins)
    assert np.all(np.isnan(se.weights)) and np.all(np.isnan(se.atoms))
    with pytest.warns(UserWarning, match="singular"):
        cov = smm.parameter_covariance(X, n, twins)
    assert np.all(np.isnan(cov))


def test_invalid_inputs(design):
    X = design
    n = smm.simulate_counts(5, X, TRUTH, 5000)
    with pytest.raises(ValueError, match="strictly positive"):
        smm.observed_information(X, n, smm.SMMParams(np.array([1.0, 0.0]), TRUTH.atoms))
    with pytest.raises(ValueError, match="columns"):
        smm.standard_errors(X, n, smm.SMMParams(TRUTH.weights, np.zeros((2, 3))))
    with pytest.raises(ValueError, match="counts"):
        smm.standard_errors(X, n[:-1], TRUTH)


def test_parameter_covariance_is_the_delta_method_over_the_observed_information(design):
    """The closed-form delta method (reference: the heaviest class) against autodiff over the public information."""
    import jax
    import jax.numpy as jnp

    X, truth = design, TRUTH
    n = smm.simulate_counts(5, X, truth, 20_000)
    K = truth.atoms.shape[0]
    info = smm.observed_information(X, n, truth)  # (eta_1..eta_{K-1}, theta), class K the reference

    def g(z):
        weights = jax.nn.softmax(jnp.concatenate([z[: K - 1], jnp.zeros(1)]))
        return jnp.concatenate([weights, z[K - 1 :]])

    logw = np.log(truth.weights)
    J = np.asarray(jax.jacfwd(g)(jnp.asarray(np.concatenate([logw[:-1] - logw[-1], truth.atoms.ravel()]))))
    expected = J @ np.linalg.inv(info) @ J.T
    np.testing.assert_allclose(smm.parameter_covariance(X, n, truth), expected, rtol=1e-7, atol=1e-12)


def test_information_in_batches_of_one_direction_equals_batches_of_eight(design, monkeypatch):
    """At large p the Hessian directions run one at a time (to bound memory): the same information."""
    import jax

    from smm_ppl.core import programs
    from smm_ppl.data.prepared import prepare
    from smm_ppl.em import stderr

    n = smm.simulate_counts(4, design, TRUTH, 5000)
    prepared = prepare(design, n)
    K, L = 2, 2
    z = np.concatenate([[0.3], TRUTH.atoms.ravel()])
    fresh = jax.jit(stderr._information.fn, static_argnames=("K", "L"))
    eight = np.asarray(fresh(z, prepared.em_layout, 0, K=K, L=L))
    monkeypatch.setattr(programs, "BATCH_NUMBERS", 1)
    fresh = jax.jit(stderr._information.fn, static_argnames=("K", "L"))
    one = np.asarray(fresh(z, prepared.em_layout, 0, K=K, L=L))
    np.testing.assert_allclose(one, eight, rtol=1e-12, atol=1e-12 * np.abs(eight).max())
    assert np.linalg.eigvalsh(eight).max() > 0  # the information of a non-degenerate fit is not zero
