"""Hermite latent moments and whitening (docs/math.md#latent-moments, docs/math.md#whitening)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss, hermeval

import smm_ppl as smm
from smm_ppl.core import programs
from smm_ppl.data.likelihood import log_likelihood_jax, log_mixture_probs_jax
from smm_ppl.data.whitening import fit_whitening
from smm_ppl.warmstart import directional_moments, latent_moments
from smm_ppl.warmstart.design import check_gaussian_design
from smm_ppl.warmstart.moments import (
    directional_moments_jax,
    first_moment_jax,
    hermite_jax,
    mixed_moments_jax,
    second_moment_jax,
    third_moment_contraction_jax,
    third_moment_eval_jax,
    third_moment_tensor_jax,
)

from _designs import whitened_design


def _design(seed, p, L, K, radius=1.2):
    return whitened_design(seed, p, L, K, radius)


@pytest.fixture(scope="module")
def big_design():
    X, truth, beta, wh = _design(0, 100_000, 4, 2)
    xt = jnp.asarray(wh.whiten(X))
    # N = infinity: the exact choice probabilities, so only the design approximation remains.
    pi = jnp.exp(log_mixture_probs_jax(jnp.asarray(X), jnp.asarray(truth.weights), jnp.asarray(truth.atoms)))
    n = smm.simulate_counts(7, X, truth, 1_000_000)
    return X, truth, beta, wh, xt, pi, n


def test_hermite_matches_numpy_and_shift_identity():
    s = jnp.linspace(-3, 3, 13)
    h = np.asarray(hermite_jax(s, 7))
    for r in range(8):
        np.testing.assert_allclose(h[r], hermeval(np.asarray(s), np.eye(8)[r]), rtol=1e-12, atol=1e-9)
    # E He_r(Z + a) = a^r for Z ~ N(0, 1), exactly by Gauss-Hermite quadrature.
    nodes, gw = hermegauss(20)
    gw = gw / gw.sum()
    for a in (-1.3, 0.0, 0.7):
        hh = np.asarray(hermite_jax(jnp.asarray(nodes + a), 7))
        np.testing.assert_allclose(hh @ gw, a ** np.arange(8), atol=1e-9)


def test_whitening_coordinates_and_likelihood_invariance(big_design):
    X, truth, beta, wh, xt, _, n = big_design
    xt = np.asarray(xt)
    np.testing.assert_allclose(xt.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(xt.T @ xt / xt.shape[0], np.eye(4), atol=1e-10)
    np.testing.assert_allclose(wh.to_original(wh.to_whitened(truth.atoms)), truth.atoms, atol=1e-12)
    ll_orig = float(
        log_likelihood_jax(jnp.asarray(X), jnp.asarray(n), jnp.asarray(truth.weights), jnp.asarray(truth.atoms))
    )
    ll_white = float(
        log_likelihood_jax(
            jnp.asarray(xt), jnp.asarray(n), jnp.asarray(truth.weights), jnp.asarray(wh.to_whitened(truth.atoms))
        )
    )
    assert ll_orig == pytest.approx(ll_white, rel=1e-10)


def test_latent_moments_match_population_values(big_design):
    X, truth, beta, wh, xt, pi, _ = big_design
    a = truth.weights
    m1 = np.asarray(first_moment_jax(xt, pi))
    m2 = np.asarray(second_moment_jax(xt, pi))
    np.testing.assert_allclose(m1, a @ beta, atol=0.02)
    np.testing.assert_allclose(m2, (beta.T * a) @ beta, atol=0.03)

    rng = np.random.default_rng(1)
    v = rng.standard_normal(4)
    v /= np.linalg.norm(v)
    u = rng.standard_normal(4)
    u -= (u @ v) * v
    u /= np.linalg.norm(u)
    t = beta @ v
    m, _ = directional_moments_jax(xt, pi, jnp.asarray(v)[None], 4)
    pop = np.array([np.sum(a * t**r) for r in range(5)])
    # Higher orders weigh the tilted tails more, so their design error is larger.
    np.testing.assert_allclose(np.asarray(m[0])[:4], pop[:4], atol=0.06)
    assert abs(float(m[0, 4]) - pop[4]) < 0.3

    g = np.asarray(mixed_moments_jax(xt, pi, jnp.asarray(v)[None], jnp.asarray(u)[None, None], 3))[0, :, 0]
    pop_mixed = np.array([np.sum(a * t**r * (beta @ u)) for r in range(4)])
    np.testing.assert_allclose(g[:3], pop_mixed[:3], atol=0.05)
    assert abs(g[3] - pop_mixed[3]) < 0.2

    c = np.asarray(third_moment_contraction_jax(xt, pi, jnp.asarray(u)))
    np.testing.assert_allclose(c, np.einsum("k,k,ka,kb->ab", a, beta @ u, beta, beta), atol=0.1)
    e3 = np.asarray(third_moment_eval_jax(xt, pi, jnp.asarray(np.stack([v, u, 2 * u]))))
    np.testing.assert_allclose(e3[:2], [np.sum(a * t**3), np.sum(a * (beta @ u) ** 3)], atol=0.1)
    # Homogeneous of degree 3 in the (non-unit) direction, Hermite correction included.
    assert e3[2] == pytest.approx(8 * e3[1], rel=1e-10)


def test_public_latent_moments_with_counts(big_design):
    X, truth, beta, wh, _, _, n = big_design
    lm = latent_moments(X, n)
    np.testing.assert_allclose(lm.first, truth.weights @ beta, atol=0.03)
    np.testing.assert_allclose(lm.second, (beta.T * truth.weights) @ beta, atol=0.04)
    v = np.array([1.0, 0.0, 0.0, 0.0])
    # directional_moments takes the direction in whitened coordinates and normalises it.
    m = directional_moments(X, n, 3 * v, 3)
    t = beta @ v
    np.testing.assert_allclose(m, [np.sum(truth.weights * t**r) for r in range(4)], atol=0.06)


def test_moment_error_shrinks_with_p():
    """The design approximation error falls as p grows (docs/math.md#latent-moments: like sqrt(exp|beta|^2 / p))."""
    errs = []
    for p in (2_000, 100_000):
        X, truth, beta, wh = _design(5, p, 3, 2)
        xt = jnp.asarray(wh.whiten(X))
        pi = jnp.exp(log_mixture_probs_jax(jnp.asarray(X), jnp.asarray(truth.weights), jnp.asarray(truth.atoms)))
        m2 = np.asarray(second_moment_jax(xt, pi))
        errs.append(np.abs(m2 - (beta.T * truth.weights) @ beta).max())
    assert errs[1] < 0.5 * errs[0]


def test_contraction_agrees_with_full_tensor():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.standard_normal((500, 3)) + 0.3)
    w = jnp.asarray(rng.dirichlet(np.ones(500)))
    u = rng.standard_normal(3)
    T = np.asarray(third_moment_tensor_jax(z, w))
    np.testing.assert_allclose(
        np.einsum("abc,c->ab", T, u), np.asarray(third_moment_contraction_jax(z, w, jnp.asarray(u))), atol=1e-12
    )
    np.testing.assert_allclose(
        np.einsum("abc,a,b,c->", T, u, u, u), float(third_moment_eval_jax(z, w, jnp.asarray(u)[None])[0]), atol=1e-12
    )
    # The Hermite tensor is symmetric.
    np.testing.assert_allclose(T, np.transpose(T, (1, 0, 2)), atol=1e-13)
    np.testing.assert_allclose(T, np.transpose(T, (2, 1, 0)), atol=1e-13)


def test_moments_in_batches_equal_the_numpy_oracle(monkeypatch):
    """Directions (and tensor coordinates) in batches give the moments of the plain sums."""
    rng = np.random.default_rng(5)
    p, d, D, M, order = 40, 3, 5, 2, 4
    xt = rng.standard_normal((p, d))
    w = rng.dirichlet(np.ones(p))
    dirs = rng.standard_normal((D, d))
    others = rng.standard_normal((D, M, d))
    h = np.stack([hermeval(xt @ dirs.T, np.eye(order + 1)[r]) for r in range(order + 1)])  # (order+1, p, D)
    oracle = (np.einsum("j,rjd->dr", w, h), np.einsum("j,rjd->dr", w, h * h))
    oracle_mixed = np.einsum("j,rjd,jdm->drm", w, h, np.einsum("jl,dml->jdm", xt, others))
    oracle_tensor = np.einsum("j,ja,jb,jc->abc", w, xt, xt, xt) - sum(
        np.einsum(sub, xt.T @ w, np.eye(d)) for sub in ("a,bc->abc", "b,ac->abc", "c,ab->abc")
    )
    # Batches of 2 of the 5 directions: two full batches and a remainder.
    monkeypatch.setattr(programs, "BATCH_NUMBERS", 2 * 2 * (order + 1) * p)
    assert programs.batch_size(D, 2 * (order + 1) * p) == 2
    assert programs.batch_size(D, p * (order + 1 + M)) == 2
    # Fresh jits: the stored ones may already hold a program traced with the default batch size.
    moments = jax.jit(directional_moments_jax.fn, static_argnames="order")(xt, w, dirs, order)
    mixed = jax.jit(mixed_moments_jax.fn, static_argnames="order")(xt, w, dirs, others, order)
    tensor = jax.jit(third_moment_tensor_jax.fn)(xt, w)
    for got, want in zip(moments, oracle):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(mixed), oracle_mixed, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(tensor), oracle_tensor, rtol=1e-12, atol=1e-14)


def test_gaussian_check_flags_non_gaussian_designs():
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((20_000, 4))
    assert check_gaussian_design(fit_whitening(gauss).whiten(gauss)).ok
    uniform = rng.uniform(size=(20_000, 4))
    chk = check_gaussian_design(fit_whitening(uniform).whiten(uniform))
    assert not chk.ok and chk.excess_kurtosis > 1.0
    skewed = rng.exponential(size=(20_000, 4))
    assert not check_gaussian_design(fit_whitening(skewed).whiten(skewed)).ok


def test_input_errors():
    X = np.random.default_rng(0).standard_normal((50, 3))
    n = np.ones(50, dtype=int)
    with pytest.raises(ValueError, match="direction"):
        directional_moments(X, n, np.zeros(3), 3)
    with pytest.raises(ValueError, match="direction"):
        directional_moments(X, n, np.ones(2), 3)
    with pytest.raises(TypeError, match="order"):
        directional_moments(X, n, np.ones(3), 2.5)
    with pytest.raises(ValueError, match="counts"):
        latent_moments(X, np.ones(49, dtype=int))
    with pytest.raises(ValueError, match="features"):
        latent_moments(np.c_[X, np.ones(50)], n)
