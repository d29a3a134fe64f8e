"""Property-based tests (hypothesis) of the model's invariants."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpyro.infer.util import log_density

import smm_ppl as smm
from smm_ppl.models import softmax_mixture

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, max_k=4):
    # A few fixed shapes: every new shape is a new XLA compilation.
    p = draw(st.sampled_from([12, 40]))
    L = draw(st.sampled_from([1, 3]))
    K = draw(st.sampled_from([1, 2, max_k]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(p, L)) * draw(st.floats(0.1, 5.0))
    weights = rng.dirichlet(np.ones(K))
    atoms = rng.normal(size=(K, L)) * draw(st.floats(0.0, 20.0))
    counts = rng.integers(0, 5, size=p)
    counts[rng.integers(p)] += 1
    return X, counts, smm.SMMParams(weights, atoms)


@SETTINGS
@given(problems(), st.lists(st.floats(-100, 100), min_size=4, max_size=4))
def test_shift_of_features_is_invariant(problem, shift):
    X, counts, params = problem
    shift = np.asarray(shift[: X.shape[1]])
    a = smm.log_likelihood(X, counts, params)
    b = smm.log_likelihood(X + shift, counts, params)
    # Shifting by s changes every logit of class k by the same constant s.theta_k; round-off grows with it.
    tol = 1e-9 * (1 + abs(a)) + 1e-12 * np.abs(shift).max() * np.abs(params.atoms).max() * counts.sum()
    assert abs(a - b) <= tol


@SETTINGS
@given(problems(), st.randoms(use_true_random=False))
def test_permutation_of_classes_is_invariant(problem, rnd):
    X, counts, params = problem
    perm = list(range(params.n_components))
    rnd.shuffle(perm)
    permuted = smm.SMMParams(params.weights[perm], params.atoms[perm])
    assert smm.log_likelihood(X, counts, permuted) == pytest.approx(
        smm.log_likelihood(X, counts, params), rel=1e-12, abs=1e-12
    )


@settings(max_examples=10, deadline=None)
@given(problems(), st.integers(1, 10_000), st.integers(0, 1000))
def test_simulated_counts_sum_to_n_obs(problem, n_obs, seed):
    X, _, params = problem
    counts = smm.simulate_counts(seed, X, params, n_obs)
    assert counts.sum() == n_obs and (counts >= 0).all()


@settings(max_examples=10, deadline=None)
@given(problems())
def test_model_log_density_is_finite_on_valid_inputs(problem):
    X, counts, params = problem
    values = {"weights": jnp.asarray(params.weights), "atoms": jnp.asarray(params.atoms)}
    logp, _ = log_density(softmax_mixture, (X, counts), {"n_components": params.n_components}, values)
    assert np.isfinite(float(logp))
    assert np.isfinite(smm.log_likelihood(X, counts, params))
