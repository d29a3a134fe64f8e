"""Counts over items, the first data layout: its fast E-step against its log-space fallback and the
exact likelihood (smm_ppl.layouts.items)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import em
from smm_ppl.data.prepared import prepare
from smm_ppl.layouts import ItemCounts, Layout, class_log_posteriors, item_counts

COV4 = np.array([[1.0, 0.4, 0.0, 0.0], [0.4, 2.0, 0.3, 0.0], [0.0, 0.3, 0.5, 0.0], [0.0, 0.0, 0.0, 1.5]])
POOR = smm.SMMParams(
    np.array([0.9, 0.05, 0.05]),
    np.array([[2.5, 2.5, -2.5, 2.0], [-2.0, 2.0, 2.5, -2.5], [0.0, -3.0, 0.0, 2.0]]),
)


@pytest.fixture(scope="module")
def problem():
    L = 4
    X = smm.simulate_features(0, 2000, L, cov=COV4, mean=np.ones(L))
    truth = smm.SMMParams(
        np.array([0.5, 0.3, 0.2]),
        np.array([[1.0, 0.0, -0.5, 0.3], [-0.7, 0.5, 0.4, -0.2], [0.2, -0.6, 0.8, 0.6]]),
    )
    n = smm.simulate_counts(2, X, truth, 100_000)
    return X, n, truth


def test_item_counts_is_a_layout(problem):
    X, n, _ = problem
    layout = item_counts(X, n)
    assert isinstance(layout, ItemCounts) and isinstance(layout, Layout)
    assert layout.n_rows == layout.n_units == 2000 and layout.n_features == 4 and layout.n_obs == 100_000
    np.testing.assert_array_equal(layout.observed_units(), np.flatnonzero(n))


def test_exact_log_space_methods_agree_with_a_direct_computation(problem):
    X, n, truth = problem
    layout = item_counts(X, n)
    logits = X @ truth.atoms.T
    log_sigma = logits - np.log(np.exp(logits - logits.max(0)).sum(0)) - logits.max(0)
    log_pi = np.log(np.exp(log_sigma) @ truth.weights)
    w, a = jnp.asarray(truth.weights), jnp.asarray(truth.atoms)
    np.testing.assert_allclose(layout.log_component_probs(a), log_sigma.T, rtol=1e-12)
    np.testing.assert_allclose(layout.log_mixture_probs(w, a), log_pi, rtol=1e-12)
    assert float(layout.log_likelihood(w, a)) == pytest.approx(float(n @ log_pi), rel=1e-12)
    gamma = np.exp(log_sigma) * truth.weights / np.exp(log_pi)[:, None]
    np.testing.assert_allclose(np.exp(class_log_posteriors(layout, w, a)), gamma, rtol=1e-10)
    # the EM statistics give the same log-likelihood, per observation
    stats = layout.statistics(w, a @ layout.features_t)
    assert float(stats.ll) * n.sum() == pytest.approx(float(n @ log_pi), rel=1e-12)


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("start", ["poor", "truth"])
def test_linear_and_log_space_e_steps_agree(problem, start):
    """The one-exponential E-step (linear-space pi) and the log-space fallback give the same state."""
    import jax.numpy as jnp

    X, n, truth = problem
    params = POOR if start == "poor" else truth
    prep = prepare(X, n)
    wh, data = prep.whitening, prep.white
    weights = jnp.asarray(params.weights)
    logits = jnp.asarray(wh.to_whitened(params.atoms)) @ data.features_t
    fast = data.statistics(weights, logits, exact=False)
    slow = data.statistics(weights, logits, exact=True)
    assert not bool(data.statistics(weights, logits).exact)  # the fast path is the one taken here
    assert float(fast.ll) == pytest.approx(float(slow.ll), rel=1e-12)
    assert _rel(fast.log_pi, slow.log_pi) <= 1e-12
    # And the responsibilities built on either: the gradient step's residual
    # (through the product it feeds), the weights' sums, the Newton operand.
    state = em.em_init(data, weights, jnp.asarray(wh.to_whitened(params.atoms)))
    s_fast = state._replace(stats=fast)
    s_slow = state._replace(stats=slow)
    a_fast, r_fast = data.weights_and_residual(weights, state.logits, fast, exact=False)
    a_slow, r_slow = data.weights_and_residual(weights, state.logits, slow, exact=True)
    assert _rel(a_fast, a_slow) <= 1e-12
    # the gradient (a difference of two means)
    assert _rel(r_fast @ data.features, r_slow @ data.features) <= 1e-11
    rows_fast = data.responsibility_rows(weights, state.logits, fast, exact=False)
    rows_slow = data.responsibility_rows(weights, state.logits, slow, exact=True)
    assert _rel(rows_fast, rows_slow) <= 1e-12
    # Whole iterations: the flag carried in the state picks the path.
    for m_step in ("gradient", "newton"):
        u_fast, _ = em.em_update(data, s_fast, m_step=m_step)
        u_slow, _ = em.em_update(data, s_slow, m_step=m_step)
        assert _rel(u_fast.weights, u_slow.weights) <= 1e-12
        assert _rel(u_fast.atoms, u_slow.atoms) <= 1e-12
        assert float(u_fast.ll) == pytest.approx(float(u_slow.ll), rel=1e-12)


# --------------------------------------------------------------------------- #
# Padding to a shape bucket
# --------------------------------------------------------------------------- #


def test_rows_bucket_holds_the_data_and_shares_round_sizes():
    from smm_ppl.layouts import rows_bucket

    sizes = np.unique(np.r_[np.arange(1, 3000), np.geomspace(3000, 3e7, 400).astype(int)])
    buckets = np.array([rows_bucket(s) for s in sizes])
    assert np.all(buckets >= sizes) and np.all(np.diff(buckets) >= 0)
    large = sizes > 49_152
    assert np.all(buckets[large] <= 1.125 * sizes[large])  # at most 1/8 padding where iterations dominate
    assert np.all(buckets[~large] <= 2 * np.maximum(sizes[~large], 48))
    assert len(np.unique(buckets[~large])) <= 10  # few programs for all small data sets
    assert rows_bucket(1000) == rows_bucket(1200) and rows_bucket(2000) == rows_bucket(3000)
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(ValueError, match="n_rows must be a positive int"):
            rows_bucket(bad)
    # Wide features: fine buckets from 6,144 rows on (each iteration costs milliseconds there).
    wide = np.array([rows_bucket(s, 384) for s in sizes])
    assert np.all(wide >= sizes) and np.all(np.diff(wide) >= 0)
    assert np.all(wide[sizes > 6_144] <= 1.125 * sizes[sizes > 6_144])
    assert rows_bucket(30_522, 384) == 30_720 and rows_bucket(30_522, 16) == 49_152
    assert rows_bucket(1000, 384) == rows_bucket(1200, 384)


@pytest.mark.parametrize("exact", [False, True])
def test_padded_rows_carry_no_mass(problem, exact):
    """Padding changes no likelihood, statistic, responsibility or EM step on the real rows."""
    X, n, truth = problem
    prep = prepare(X, n)
    data = prep.white
    padded = data.padded(2600)
    assert padded.n_rows == 2600 and padded.n_obs == data.n_obs and int(np.sum(padded.valid)) == 2000
    w = jnp.asarray(truth.weights)
    beta = jnp.asarray(prep.whitening.to_whitened(POOR.atoms))
    # The padded program sums the same 2000 terms in another grouping: a sum of p terms of one sign
    # may then differ by p * eps relative (4.4e-13 here; most differences measured are 0 or 1 ulp).
    p_eps = data.n_rows * np.finfo(np.float64).eps
    assert float(padded.log_likelihood(w, beta)) == pytest.approx(float(data.log_likelihood(w, beta)), rel=p_eps)
    # log pi_j: the normalisers (sums over the rows) carry that error, absolute, into |log pi_j| > 1.
    np.testing.assert_allclose(padded.log_mixture_probs(w, beta)[:2000], data.log_mixture_probs(w, beta), rtol=p_eps)
    np.testing.assert_allclose(
        np.exp(padded.log_component_probs(beta))[:, 2000:], 0.0, atol=0.0
    )  # exactly no mass in padding
    s_pad = padded.statistics(w, beta @ padded.features_t, exact=exact)
    s_dat = data.statistics(w, beta @ data.features_t, exact=exact)
    assert float(s_pad.ll) == pytest.approx(float(s_dat.ll), rel=p_eps)
    a_pad, r_pad = padded.weights_and_residual(w, beta @ padded.features_t, s_pad, exact=exact)
    a_dat, r_dat = data.weights_and_residual(w, beta @ data.features_t, s_dat, exact=exact)
    assert np.all(np.isfinite(r_pad)) and np.all(np.asarray(r_pad)[:, 2000:] == 0.0)
    assert _rel(a_pad, a_dat) <= p_eps
    # The gradient sums terms of both signs: p * eps times its cancellation, sum|terms| / |sum| <= 8 here.
    assert _rel(r_pad @ padded.features, r_dat @ data.features) <= 8 * p_eps
    for m_step in ("gradient", "newton"):
        u_pad, _ = em.em_update(padded, em.em_init(padded, w, beta), m_step=m_step)
        u_dat, _ = em.em_update(data, em.em_init(data, w, beta), m_step=m_step)
        # The Newton step solves H d = g: the gradient's error (8 p eps) grows by cond(H) <= 40 here,
        # so 1e3 p eps = 4.4e-10.  Measured from this poor start: 1.7e-13, and 9.8e-13 between two
        # orders of the same rows, against the 1e-12 this bound was.
        assert _rel(u_pad.atoms, u_dat.atoms) <= 1e3 * p_eps and _rel(u_pad.weights, u_dat.weights) <= 1e-12


def test_padding_to_fewer_rows_is_refused(problem):
    X, n, _ = problem
    with pytest.raises(ValueError, match="smaller than the 2000 rows"):
        item_counts(X, n).padded(1999)


def test_as_data_validates_into_an_item_counts_layout():
    """The one validation of counts over items: arrays become an ItemCounts holding the integers exactly; an
    ItemCounts passes through; counts beside one, or counts of the wrong length, are refused by name."""
    X = smm.simulate_features(0, 30, 2)
    n = np.arange(30) % 4
    data = smm.as_data(X, n)
    assert isinstance(data, ItemCounts) and data.n_items == 30 and data.n_obs == int(n.sum())
    np.testing.assert_array_equal(data.counts, n)
    np.testing.assert_allclose(data.frequencies, n / n.sum(), rtol=1e-15)
    assert smm.as_data(data, None) is data
    with pytest.raises(ValueError, match="counts must be None when features is already an ItemCounts"):
        smm.as_data(data, n)
    with pytest.raises(ValueError, match="counts has 29 entries but features has 30 items"):
        smm.as_data(X, n[:29])
