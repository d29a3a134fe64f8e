"""subspace_random_inits: random starts in the latent subspace (docs/math.md#random-starts-in-the-subspace)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.data.likelihood import log_likelihood_jax

from _designs import whitened_design


def _design(seed, p, L, K, n_obs, radius=1.3):
    X, truth, _, wh = whitened_design(seed, p, L, K, radius)
    return X, smm.simulate_counts(seed + 2, X, truth, n_obs), truth, wh


@pytest.fixture(scope="module")
def problem():
    return _design(0, 10_000, 10, 3, 500_000)


def test_shapes_span_and_determinism(problem):
    X, n, truth, wh = problem
    P0 = smm.subspace_random_inits(X, n, 3, 16, seed=1)
    assert isinstance(P0, smm.SMMParams)
    assert P0.weights.shape == (16, 3) and P0.atoms.shape == (16, 3, 10)
    assert P0.atoms.dtype == np.float64
    np.testing.assert_allclose(P0.weights, 1 / 3)
    # Whitened atoms lie in the estimated subspace span(U).
    U = smm.estimate_subspace(X, n, 3)
    beta = P0.atoms @ wh.root
    resid = beta - (beta @ U) @ U.T
    assert np.abs(resid).max() < 1e-8
    # Their scale follows M2: the mean squared norm is about trace(M2 restricted) = sum of top eigenvalues.
    _, diag = smm.estimate_subspace(X, n, 3, return_diagnostics=True)
    msq = np.mean(np.sum(beta**2, axis=-1))
    assert 0.4 * diag.subspace_eigenvalues[:3].sum() < msq < 2.5 * diag.subspace_eigenvalues[:3].sum()
    np.testing.assert_array_equal(P0.atoms, smm.subspace_random_inits(X, n, 3, 16, seed=1).atoms)
    assert not np.allclose(P0.atoms, smm.subspace_random_inits(X, n, 3, 16, seed=2).atoms)


def test_subspace_starts_beat_random_starts_in_full_space(problem):
    X, n, truth, wh = problem
    P0, diag = smm.subspace_random_inits(X, n, 3, 32, seed=0, return_diagnostics=True)
    ll_sub = diag.candidate_log_likelihoods
    assert ll_sub.shape == (32,) and diag.best_index == int(np.argmax(ll_sub))
    # Same per-atom squared norm, but isotropic in R^L instead of inside the subspace.
    rng = np.random.default_rng(0)
    scale = np.sqrt(np.mean(np.sum((P0.atoms @ wh.root) ** 2, axis=-1)) / 10)
    full = (scale * rng.standard_normal((32, 3, 10))) @ wh.inv_root
    ll_full = np.asarray(
        jax.vmap(log_likelihood_jax, in_axes=(None, None, None, 0))(
            jnp.asarray(X), jnp.asarray(n), jnp.full(3, 1 / 3), jnp.asarray(full)
        )
    )
    assert np.median(ll_sub) > np.median(ll_full)
    assert ll_sub.max() > ll_full.max()
    assert diag.effective_items.shape == (32, 3)
    # The recorded log-likelihoods are those of the returned starts.
    best = smm.SMMParams(P0.weights[diag.best_index], P0.atoms[diag.best_index])
    assert diag.log_likelihood == pytest.approx(smm.log_likelihood(X, n, best), rel=1e-9)


def test_errors(problem):
    X, n, truth, wh = problem
    with pytest.raises(ValueError, match="init='random'"):
        smm.subspace_random_inits(X, n, 11, 4)
    with pytest.raises(ValueError, match="n_starts"):
        smm.subspace_random_inits(X, n, 3, 0)
    with pytest.raises(TypeError, match="n_starts"):
        smm.subspace_random_inits(X, n, 3, 2.0)
    with pytest.raises(TypeError, match="seed"):
        smm.subspace_random_inits(X, n, 3, 4, seed=None)
    with pytest.raises(TypeError, match="return_diagnostics"):
        smm.subspace_random_inits(X, n, 3, 4, return_diagnostics=None)
