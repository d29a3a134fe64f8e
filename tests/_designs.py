"""Simulated designs and a reference EM shared by the warm-start tests."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import smm_ppl as smm
from smm_ppl.data.likelihood import log_component_probs_jax, log_responsibilities_jax
from smm_ppl.data.whitening import fit_whitening


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


def design_with_counts(seed, p, L, K, n_obs, radius=1.3):
    """:func:`whitened_design` plus simulated counts: ``(features, counts, truth, whitening)``."""
    X, truth, _, wh = whitened_design(seed, p, L, K, radius)
    return X, smm.simulate_counts(seed + 2, X, truth, n_obs), truth, wh


@partial(jax.jit, static_argnames=("n_iter",))
def _em_whitened(xt, w, weights, beta, n_iter):
    """The paper's first-order EM (docs/math.md#m-step) in whitened coordinates, step size 1.

    Written independently of smm_ppl.em so that the warm-start tests do not depend on it.
    """

    def step(_, state):
        a, b = state
        log_g, _ = log_responsibilities_jax(xt, a, b)
        g = jnp.exp(log_g) * w[:, None]
        a_new = jnp.clip(g.sum(0), 1e-12)
        sig = jnp.exp(log_component_probs_jax(xt, b))
        return a_new / a_new.sum(), b + (xt.T @ (g / a_new - sig)).T

    return jax.lax.fori_loop(0, n_iter, step, (weights, beta))


def local_em(X, n, params, n_iter=300):
    """``n_iter`` iterations of the paper's EM from ``params`` (original coordinates in and out)."""
    wh = fit_whitening(X)
    a, b = _em_whitened(
        jnp.asarray(wh.whiten(X)),
        jnp.asarray(n / n.sum()),
        jnp.asarray(params.weights),
        jnp.asarray(wh.to_whitened(params.atoms)),
        n_iter,
    )
    return smm.SMMParams(np.asarray(a), wh.to_original(np.asarray(b)))


def whitened_error(est, truth, wh):
    """:func:`smm_ppl.parameter_error` with atoms in whitened units."""
    return smm.parameter_error(
        smm.SMMParams(est.weights, est.atoms @ wh.root), smm.SMMParams(truth.weights, truth.atoms @ wh.root)
    )
