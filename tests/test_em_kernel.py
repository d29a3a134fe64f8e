"""The EM map (smm_ppl.em.kernel): a pure, safeguarded, monotone update on the layout."""

from __future__ import annotations

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import em
from smm_ppl.data.prepared import prepare

from _em_problems import POOR, fit_quiet, max_relative_decrease


def test_em_update_is_a_pure_safeguarded_map(problem):
    """The init/update pair on its own: the log-likelihood does not fall."""
    import jax
    import jax.numpy as jnp

    X, n, _ = problem
    prep = prepare(X, n)
    wh, data = prep.whitening, prep.white
    state = em.em_init(data, jnp.asarray(POOR.weights), jnp.asarray(wh.to_whitened(POOR.atoms)))
    update = jax.jit(lambda s: em.em_update(data, s, 3.0, m_step="gradient"))
    lls = [float(state.ll)]
    for _ in range(5):
        state, info = update(state)
        lls.append(float(state.ll))
        assert 0 <= int(info.halvings) <= em.kernel.MAX_HALVINGS + 1
    assert max_relative_decrease(np.array(lls)) <= 1e-9
    assert lls[-1] > lls[0]
    assert float(jnp.sum(state.weights)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("acceleration", ["none", "squarem"])
def test_extreme_logits_fall_back_to_log_space(acceleration):
    """Atoms hundreds of whitened units long: some observed items' pi underflow in linear space."""
    import jax.numpy as jnp

    L, K = 4, 3
    X = smm.simulate_features(0, 2000, L)
    n = smm.simulate_counts(2, X, smm.simulate_params(1, K, L), 50_000)
    assert np.any(n == 0)  # unobserved items too (their pi may underflow: no NaN from them)
    atoms = np.random.default_rng(5).standard_normal((K, L))
    start = smm.SMMParams(np.full(K, 1.0 / K), 200.0 * atoms / np.linalg.norm(atoms, axis=1, keepdims=True))
    prep = prepare(X, n)
    wh, data = prep.whitening, prep.white
    state = em.em_init(data, jnp.asarray(start.weights), jnp.asarray(wh.to_whitened(start.atoms)))
    assert bool(state.stats.exact)  # the fallback is exercised
    assert not np.isfinite(float(data.statistics(state.weights, state.logits, exact=False).ll))
    assert np.isfinite(float(state.ll))
    assert float(state.ll) * n.sum() == pytest.approx(smm.log_likelihood(X, n, start), rel=1e-12)

    res = fit_quiet(X, n, K, init=start, acceleration=acceleration, max_iter=60, tol=0.0)
    assert np.all(np.isfinite(res.params.atoms)) and np.all(np.isfinite(res.params.weights))
    assert np.all(np.isfinite(res.trace))
    assert max_relative_decrease(res.trace) <= 1e-9
    assert res.trace[-1] > 0.5 * res.trace[0]  # it climbed far out of the start


@pytest.mark.parametrize("prior", [None, smm.Prior(weights_concentration=3.0, atoms_scale=0.5)])
def test_decrement_is_half_the_gradient_in_ems_metric(problem, prior):
    """``decrement`` equals ``1/2 g^T H^{-1} g`` from autodiff's gradient of the objective and EM's curvature."""
    import jax
    import jax.numpy as jnp

    X, n, _ = problem
    prep = prepare(X, n)
    layout, N = prep.em_layout, float(n.sum())
    penalty = None if prior is None else prior.penalty(prep.whitening, N)
    weights, atoms = jnp.asarray(POOR.weights), jnp.asarray(prep.whitening.to_whitened(POOR.atoms))

    def objective(w, b):
        return layout.log_likelihood(w, b) / N + smm.core.prior.penalty_log_density(penalty, w, b)

    g_w, g_b = jax.grad(objective, argnums=(0, 1))(weights, atoms)
    e = 0.0 if penalty is None else float(penalty.weights_exponent)
    a = np.asarray(weights * g_w) - e  # alpha_raw: d ll / d log w_k
    P = np.zeros((atoms.shape[1],) * 2) if penalty is None else np.asarray(penalty.precision)
    g_b = np.asarray(g_b)
    atoms_part = sum(g_b[k] @ np.linalg.solve(a[k] * np.eye(len(P)) + P, g_b[k]) for k in range(len(a)))
    w, g_w = np.asarray(weights), np.asarray(g_w)
    weights_part = np.sum(w * (g_w - np.sum(w * g_w)) ** 2)
    expected = 0.5 * (atoms_part + weights_part)
    assert expected > 0
    assert float(em.kernel.decrement(layout, weights, atoms, penalty)) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("prior", [None, smm.Prior()])
def test_converged_means_the_gradient_rule_held(problem, prior):
    """A fit that reports ``converged`` stopped where the decrement is below ``tol * |objective|``."""
    X, n, _ = problem
    tol = 1e-10
    res = fit_quiet(X, n, 3, init=POOR, tol=tol, prior=prior)
    assert res.converged and res.stop_reason == "tol"
    prep = res.data
    N = float(n.sum())
    penalty = None if prior is None else prior.penalty(prep.whitening, N)
    atoms = prep.whitening.to_whitened(res.params.atoms)
    value = float(em.kernel.decrement(prep.em_layout, res.params.weights, atoms, penalty))
    objective = res.log_likelihood if prior is None else res.log_posterior
    assert 0 <= value < tol * abs(objective) / N
