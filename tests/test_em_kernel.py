"""The EM map (smm_ppl.em.kernel): a pure, safeguarded, monotone update on the layout."""

from __future__ import annotations

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import em
from smm_ppl.prepared import prepare

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
