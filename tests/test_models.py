"""The NumPyro model: log density = log_likelihood + log prior; pointwise log-likelihood per item."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive
from numpyro.infer import log_likelihood as numpyro_log_likelihood
from numpyro.infer.util import log_density
from scipy import stats

import smm_ppl as smm
from smm_ppl.models import DEFAULT_ATOMS_SCALE, softmax_mixture


def prior_log_density(params, concentration, scale):
    return stats.dirichlet.logpdf(params.weights, np.full(len(params.weights), concentration)) + np.sum(
        stats.norm.logpdf(params.atoms, 0.0, scale)
    )


@pytest.mark.parametrize("concentration, scale", [(1.0, DEFAULT_ATOMS_SCALE), (2.5, 0.7)])
def test_log_density_is_log_likelihood_plus_log_prior(small_problem, concentration, scale):
    X, counts, params = small_problem
    counts = counts.copy()
    counts[:50] = 0  # zero-count items are outside the plate but inside every softmax
    values = {"weights": jnp.asarray(params.weights), "atoms": jnp.asarray(params.atoms)}
    logp, _ = log_density(
        softmax_mixture,
        (X, counts),
        dict(n_components=2, weights_concentration=concentration, atoms_scale=scale),
        values,
    )
    expected = smm.log_likelihood(X, counts, params) + prior_log_density(params, concentration, scale)
    assert float(logp) == pytest.approx(expected, rel=1e-11)


def test_pointwise_log_likelihood_is_one_value_per_observed_item(small_problem):
    X, counts, params = small_problem
    counts = counts.copy()
    counts[::3] = 0
    observed = np.flatnonzero(counts)
    samples = {"weights": jnp.asarray(params.weights)[None], "atoms": jnp.asarray(params.atoms)[None]}
    ll = numpyro_log_likelihood(softmax_mixture, samples, X, counts, n_components=2)["counts"]
    assert ll.shape == (1, observed.size)
    log_pi = smm.log_mixture_probs(X, params)
    np.testing.assert_allclose(np.asarray(ll[0]), log_pi[observed], rtol=1e-12)
    assert float(np.sum(counts[observed] * np.asarray(ll[0]))) == pytest.approx(
        smm.log_likelihood(X, counts, params), rel=1e-12
    )


def test_prior_predictive_simulates_counts_of_size_n_obs(small_problem):
    X, _, _ = small_problem
    pred = Predictive(softmax_mixture, num_samples=5)(jax.random.PRNGKey(0), X, n_components=3, n_obs=123)
    assert pred["counts"].shape == (5, X.shape[0])
    np.testing.assert_array_equal(np.asarray(pred["counts"]).sum(axis=1), 123)
    assert pred["weights"].shape == (5, 3) and pred["atoms"].shape == (5, 3, X.shape[1])
    with pytest.raises(ValueError, match="n_obs is required"):
        Predictive(softmax_mixture, num_samples=1)(jax.random.PRNGKey(0), X, n_components=3)


def test_ordered_variant_density_matches_on_the_ordered_cone(small_problem):
    X, counts, params = small_problem
    order = np.argsort(params.atoms[:, 0])
    ordered = smm.SMMParams(params.weights[order], params.atoms[order])
    kwargs = dict(n_components=2, ordered=True)
    values = {
        "weights": jnp.asarray(ordered.weights),
        "atoms_first": jnp.asarray(ordered.atoms[:, 0]),
        "atoms_rest": jnp.asarray(ordered.atoms[:, 1:]),
    }
    logp, trace = log_density(softmax_mixture, (X, counts), kwargs, values)
    expected = smm.log_likelihood(X, counts, ordered) + prior_log_density(ordered, 1.0, DEFAULT_ATOMS_SCALE)
    assert float(logp) == pytest.approx(expected, rel=1e-11)
    np.testing.assert_allclose(np.asarray(trace["atoms"]["value"]), ordered.atoms)


def test_all_units_mode_has_the_same_log_density_and_rejects_unknown_modes(small_problem):
    from numpyro.infer.util import log_density

    from smm_ppl.layouts import bucketed, item_counts
    from smm_ppl.models import mixture_model

    X, counts, params = small_problem
    layout = item_counts(X, counts)
    values = {"weights": params.weights, "atoms": params.atoms}
    kw = dict(n_components=2)
    observed, _ = log_density(mixture_model, (layout,), kw, values)
    padded, _ = log_density(mixture_model, (bucketed(layout),), {**kw, "units": "all"}, values)
    assert float(padded) == pytest.approx(float(observed), rel=1e-12)
    with pytest.raises(ValueError, match="units must be 'observed' or 'all'"):
        log_density(mixture_model, (layout,), {**kw, "units": "some"}, values)
