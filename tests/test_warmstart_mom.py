"""mom_init: the paper's method-of-moments warm start (docs/math.md#method-of-moments)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.core import programs
from smm_ppl.data.likelihood import log_likelihood_jax
from smm_ppl.warmstart import WarmStartDiagnostics
from smm_ppl.warmstart import mom as mom_module
from smm_ppl.warmstart.mom import gauss_quadrature, project_moments_batch

from _designs import design_with_counts as _design  # noqa: E402
from _designs import local_em  # noqa: E402
from _designs import whitened_error as _whitened_error  # noqa: E402


@pytest.mark.parametrize("K,seed", [(2, 0), (3, 4)])
def test_mom_lands_in_truth_basin(K, seed):
    X, n, truth, wh = _design(seed, 20_000, 8, K, 1_000_000)
    p0 = smm.mom_init(X, n, K, seed=0)
    assert p0.weights.shape == (K,) and p0.atoms.shape == (K, 8)
    assert p0.weights.dtype == np.float64 and p0.atoms.dtype == np.float64
    assert np.all(p0.weights > 0) and p0.weights.sum() == pytest.approx(1.0)
    err = _whitened_error(p0, truth, wh)
    separation = 1.3 * np.sqrt(2)
    if K == 2:
        assert err["atoms"] < 0.25 * separation and err["weights"] < 0.1
    # Better than random starts of the same scale in R^L.
    rng = np.random.default_rng(0)
    ll0 = smm.log_likelihood(X, n, p0)
    rand_atoms = (1.3 * rng.standard_normal((10, K, 8)) / np.sqrt(8)) @ wh.inv_root
    rand = jax.vmap(log_likelihood_jax, in_axes=(None, None, None, 0))(
        jnp.asarray(X), jnp.asarray(n), jnp.full(K, 1 / K), jnp.asarray(rand_atoms)
    )
    assert ll0 > float(jnp.max(rand))
    # EM from the warm start reaches the same fixed point as EM from the truth (the oracle).
    em_warm, em_oracle = local_em(X, n, p0), local_em(X, n, truth)
    assert smm.parameter_error(em_warm, em_oracle)["atoms"] < 0.02
    assert _whitened_error(em_warm, truth, wh)["atoms"] < 0.1


def test_same_seed_same_result_and_diagnostics():
    X, n, truth, wh = _design(1, 5_000, 4, 2, 200_000)
    p1, d1 = smm.mom_init(X, n, 2, seed=3, n_directions=6, return_diagnostics=True)
    p2 = smm.mom_init(X, n, 2, seed=3, n_directions=6)
    np.testing.assert_array_equal(p1.atoms, p2.atoms)
    np.testing.assert_array_equal(p1.weights, p2.weights)
    p3 = smm.mom_init(X, n, 2, seed=jax.random.PRNGKey(3), n_directions=6)
    np.testing.assert_array_equal(p1.atoms, p3.atoms)
    assert isinstance(d1, WarmStartDiagnostics) and d1.method == "mom"
    assert d1.n_candidates == 6 and d1.directions.shape == (6, 2)
    np.testing.assert_allclose(np.linalg.norm(d1.directions, axis=1), 1.0)
    assert d1.denoised.shape == (6,) and d1.denoised.dtype == bool
    assert np.all(d1.moment_change[~d1.denoised] == 0)
    assert d1.best_index == int(np.argmax(d1.candidate_log_likelihoods))
    # The recorded log-likelihood is that of the returned parameters.
    assert d1.log_likelihood == pytest.approx(smm.log_likelihood(X, n, p1), rel=1e-9)
    assert d1.effective_items.shape == (2,) and np.all(d1.effective_items > 100)
    assert isinstance(d1.denoising_changed_moments, bool)


def test_k1_uses_first_moment():
    X, n, truth, wh = _design(2, 20_000, 3, 1, 500_000)
    p0 = smm.mom_init(X, n, 1)
    assert p0.weights.tolist() == [1.0]
    assert _whitened_error(p0, truth, wh)["atoms"] < 0.1


def test_gauss_quadrature_exact_and_rejects_invalid_moments():
    t = np.array([-1.0, 0.3, 1.2])
    a = np.array([0.2, 0.5, 0.3])
    m = np.array([np.sum(a * t**r) for r in range(6)])
    tq, aq = gauss_quadrature(m, 3, bound=5.0)
    np.testing.assert_allclose(tq, t, atol=1e-8)
    np.testing.assert_allclose(aq, a, atol=1e-8)
    # An atom outside the bound (a runaway root) is rejected.
    assert gauss_quadrature(m, 3, bound=1.1) is None
    # A Hankel matrix that is not positive definite (variance below zero) is rejected.
    bad = m.copy()
    bad[2] = 0.01
    assert gauss_quadrature(bad, 3, bound=5.0) is None
    # Complex roots: the moments of no real 2-atom distribution.
    assert gauss_quadrature(np.array([1.0, 0.0, 1.0, 0.0]) + [0, 0, 0, 5.0], 2, bound=2.0) is None


def test_projection_returns_valid_distribution_close_to_moments():
    t = np.array([-0.8, 0.9])
    a = np.array([0.4, 0.6])
    m = np.array([np.sum(a * t**r) for r in range(4)])
    noisy = m + np.array([0.0, 0.0, -0.5, 3.0])  # infeasible: variance below zero
    assert gauss_quadrature(noisy, 2, bound=3.0) is None
    tt, aa, change = project_moments_batch(np.stack([m, noisy]), np.ones((2, 4)), 2, 3.0, 0.01)
    assert np.all(np.isfinite(tt)) and np.all(np.abs(tt) <= 3.0)
    assert np.all(aa >= 0.01 - 1e-12)
    np.testing.assert_allclose(aa.sum(axis=1), 1.0)
    # Feasible moments are reproduced (no change); infeasible ones are changed.
    np.testing.assert_allclose(tt[0], t, atol=1e-4)
    assert change[0] < 1e-6 and change[1] > 1e-3


def test_degenerate_data_give_finite_output():
    X, n, truth, wh = _design(3, 2_000, 4, 2, 1_000)
    one_item = np.zeros_like(n)
    one_item[5] = 1000
    for counts in (n, one_item, np.ones_like(n)):
        p0, d = smm.mom_init(X, counts, 2, return_diagnostics=True)
        assert np.all(np.isfinite(p0.atoms)) and np.all(np.isfinite(p0.weights))
        assert np.isfinite(d.log_likelihood)


def test_errors_name_fallbacks():
    X, n, truth, wh = _design(4, 2_000, 4, 2, 10_000)
    with pytest.raises(ValueError, match="init='random'"):
        smm.mom_init(X, n, 5)
    Xw = smm.simulate_features(0, 2_000, 10)
    n10 = smm.simulate_counts(0, Xw, smm.simulate_params(0, 9, 10, atoms_scale=0.3), 10_000)
    with pytest.raises(ValueError, match="tensor_init"):
        smm.mom_init(Xw, n10, 9)
    with pytest.raises(ValueError, match="n_directions"):
        smm.mom_init(X, n, 2, n_directions=0)
    with pytest.raises(TypeError, match="seed"):
        smm.mom_init(X, n, 2, seed="a")
    with pytest.raises(ValueError, match="seed"):
        smm.mom_init(X, n, 2, seed=-1)
    with pytest.raises(TypeError, match="return_diagnostics"):
        smm.mom_init(X, n, 2, return_diagnostics=1)
    with pytest.raises(ValueError, match="n_components"):
        smm.mom_init(X, n, 0)
    with pytest.raises(ValueError, match="counts"):
        smm.mom_init(X, n.astype(float) + 0.5, 2)


def test_candidates_scored_in_batches_equal_one_by_one(monkeypatch):
    """The candidate starts' log-likelihoods, scored in batches, are each candidate's own."""
    rng = np.random.default_rng(3)
    p, K, L, C = 60, 3, 2, 5
    z = jnp.asarray(rng.standard_normal((p, L)))
    counts = jnp.asarray(rng.poisson(3.0, p).astype(float))
    weights = rng.dirichlet(np.ones(K), C)
    atoms = rng.standard_normal((C, K, L))
    one_by_one = [float(log_likelihood_jax(z, counts, jnp.asarray(w), jnp.asarray(a))) for w, a in zip(weights, atoms)]
    # Batches of 2 of the 5 candidates: two full batches and a remainder.
    monkeypatch.setattr(programs, "BATCH_NUMBERS", 2 * 3 * p * K)
    assert programs.batch_size(C, 3 * p * K) == 2
    batched = jax.jit(mom_module._batched_ll.fn)(z, counts, jnp.asarray(weights), jnp.asarray(atoms), None)
    np.testing.assert_allclose(np.asarray(batched), one_by_one, rtol=1e-13)
