"""The choice-situation layout: its likelihood against a NumPy oracle and the SMM, its EM fast path
against automatic differentiation, and fit_em on it against fit_latent_class."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _choice_problems import oracle_unit_loglik, simulate_panel

import smm_ppl as smm
from smm_ppl.layouts import ChoiceSituations, Layout, choice_situations, total_weight

ATOMS = np.array([[1.2, -0.8], [-0.9, 1.0]])


@pytest.fixture(scope="module")
def panel():
    frame, _ = simulate_panel(3, ATOMS, n_persons=40, n_situations=4, n_alternatives=4, unavailable=0.3)
    data = smm.choice_data(
        frame,
        situation="situation",
        alternative="alternative",
        choice="chosen",
        features=["x1", "x2"],
        availability="available",
        person="person",
    )
    return frame, data


def test_the_choice_layout_is_a_layout(panel):
    _, data = panel
    assert isinstance(data.layout, Layout)
    assert isinstance(data.layout, ChoiceSituations)
    assert data.layout.n_units == 40 and data.layout.n_situations == 160
    assert data.layout.supports_moments is False


def test_unit_log_likelihood_matches_the_oracle(panel):
    frame, data = panel
    weights = np.array([0.3, 0.7])
    ours = np.asarray(data.layout.log_mixture_probs(jnp.asarray(weights), jnp.asarray(ATOMS)))
    oracle = oracle_unit_loglik(frame, ["x1", "x2"], ATOMS, np.log(np.tile(weights, (40, 1))))
    np.testing.assert_allclose(ours, oracle, rtol=1e-12, atol=1e-10)
    total = float(data.layout.log_likelihood(jnp.asarray(weights), jnp.asarray(ATOMS)))
    assert total == pytest.approx(oracle.sum(), rel=1e-12)


def test_one_situation_type_is_the_smm_of_counts():
    """docs/math.md#choice-situations-and-panels: every situation offering all items, one choice each, is the SMM of the counts."""
    rng = np.random.default_rng(0)
    p, L = 7, 2
    X = rng.normal(size=(p, L))
    counts = rng.integers(0, 5, size=p)
    n = int(counts.sum())
    chosen = np.repeat(np.arange(p), counts)
    features = np.tile(X, (n, 1))
    row_counts = np.zeros(n * p)
    row_counts[np.arange(n) * p + chosen] = 1
    layout = choice_situations(features, row_counts, np.repeat(np.arange(n), p))
    params = smm.SMMParams(np.array([0.4, 0.6]), ATOMS)
    ours = float(layout.log_likelihood(jnp.asarray(params.weights), jnp.asarray(params.atoms)))
    assert ours == pytest.approx(smm.log_likelihood(X, counts, params), rel=1e-12)


def test_em_fast_path_matches_automatic_differentiation(panel):
    """The residual gives the observed gradient (Fisher), the Newton system the M-step objective's Hessian."""
    _, data = panel
    layout = data.layout
    weights = jnp.array([0.45, 0.55])
    atoms = jnp.asarray(ATOMS) + 0.2
    X = jnp.asarray(layout.features)
    logits = atoms @ layout.features_t
    stats = layout.statistics(weights, logits)
    total = float(layout.log_likelihood(weights, atoms))
    assert float(stats.ll) * total_weight(layout) == pytest.approx(total, rel=1e-12)

    alpha_raw, residual = layout.weights_and_residual(weights, logits, stats)
    grad = jax.grad(lambda a: layout.log_likelihood(weights, a))(atoms) / total_weight(layout)
    np.testing.assert_allclose(alpha_raw[:, None] * (residual @ X), grad, rtol=1e-9, atol=1e-12)
    h = jnp.exp(stats.log_joint - stats.log_pi)  # (K, U)
    np.testing.assert_allclose(alpha_raw, jnp.mean(h, axis=1), rtol=1e-12)

    alpha_raw2, grad_k, hess = layout.newton_system(weights, logits, stats)

    def q(a, k):  # class k's M-step objective per unit weight, at the current responsibilities
        lcp = layout.log_component_probs(a)[k]
        return jnp.sum(h[k] * lcp) / layout.n_units / alpha_raw[k]

    for k in range(2):
        np.testing.assert_allclose(grad_k[k], jax.grad(q)(atoms, k)[k], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(-hess[k], jax.hessian(q)(atoms, k)[k, :, k, :], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(alpha_raw2, alpha_raw, rtol=1e-12)


def test_fit_em_on_the_layout_equals_fit_latent_class(panel):
    """Two estimators, one likelihood: the SMM EM kernel on the layout and the latent-class fit."""
    frame, _ = simulate_panel(5, ATOMS, n_persons=150, n_situations=5)
    data = smm.choice_data(
        frame, situation="situation", alternative="alternative", choice="chosen", features=["x1", "x2"], person="person"
    )
    lc = smm.fit_latent_class(data, 2, n_starts=3)
    # One start away from the optimum: the kernel's own iterations must reach it.
    start = smm.SMMParams(np.array([0.5, 0.5]), lc.atoms + np.array([[0.3, -0.2], [-0.2, 0.3]]))
    em = smm.fit_em(data.layout, None, 2, init=start)
    assert em.log_likelihood == pytest.approx(lc.log_likelihood, abs=1e-6)
    order = smm.match_components(em.params.atoms, lc.atoms)
    np.testing.assert_allclose(em.params.atoms[order], lc.atoms, atol=1e-4)
    np.testing.assert_allclose(em.params.weights[order], lc.weights, atol=1e-5)
    np.testing.assert_allclose(em.standard_errors.weights[order], lc.weights_table["std_err"], rtol=1e-3)
