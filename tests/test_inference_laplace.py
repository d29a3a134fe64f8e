"""smm.laplace: the Gaussian at a MAP fit's mode, as a DataTree like NUTS's."""

import warnings

import numpy as np
import pytest

import smm_ppl as smm

PRIOR = smm.Prior()


@pytest.fixture(scope="module")
def well_posed():
    X = smm.simulate_features(0, 300, 3)
    truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5, 0.3], [-0.8, 0.6, -0.2]]))
    n = smm.simulate_counts(1, X, truth, 20_000)
    return X, n, smm.fit_em(X, n, 2, prior=PRIOR)


def _moments(idata, var):
    post = idata.posterior[var]
    return post.mean(("chain", "draw")).values, post.std(("chain", "draw")).values


def test_the_laplace_posterior_agrees_with_nuts_on_a_well_posed_problem(well_posed):
    """Within 0.1 posterior sd in the means and 15 % in the sds: NUTS's Monte Carlo error with two
    chains of 1,000 draws is about 0.03 sd in a mean and 2 % in an sd, and at N = 20,000 the posterior's
    departure from the Gaussian (its skewness, O(1 / sqrt(N))) is smaller still."""
    X, n, mode = well_posed
    lap = smm.laplace(mode, num_draws=4000, seed=0)
    nuts = smm.sample_nuts(X, n, 2, init=mode, prior=PRIOR, num_chains=2, num_warmup=500, num_samples=1000,
                           seed=1, progress_bar=False)  # fmt: skip
    for var in ("weights", "atoms"):
        lm, ls = _moments(lap, var)
        nm, ns = _moments(nuts, var)
        assert np.max(np.abs(lm - nm) / ns) < 0.1, var
        assert np.max(np.abs(ls / ns - 1.0)) < 0.15, var


def test_its_spread_is_the_standard_errors_at_the_mode(well_posed):
    """The draws' sds are the fit's standard errors (the same information, prior included): within
    the Monte Carlo error of an sd from 4,000 draws (about 1.1 %), with room for the softmax's curvature."""
    _, _, mode = well_posed
    lap = smm.laplace(mode, num_draws=4000, seed=0)
    _, sd_w = _moments(lap, "weights")
    _, sd_a = _moments(lap, "atoms")
    np.testing.assert_allclose(sd_a, mode.standard_errors.atoms, rtol=0.05)
    np.testing.assert_allclose(sd_w, mode.standard_errors.weights, rtol=0.05)


def test_it_has_nuts_groups_and_its_log_likelihood_is_the_models(well_posed):
    X, n, mode = well_posed
    lap = smm.laplace(mode, num_draws=50, seed=3)
    assert {"posterior", "log_likelihood", "observed_data"} <= set(lap.children)
    assert lap.posterior.attrs["inference"] == "laplace" and lap.posterior.attrs["atoms_scale"] == PRIOR.atoms_scale
    # The pointwise values, weighted by the counts, are the package's log-likelihood at each draw.
    ll = lap.log_likelihood["counts"].values[0]  # (draw, observed item)
    items = np.flatnonzero(n > 0)
    for d in (0, 17, 49):
        params = smm.SMMParams(lap.posterior["weights"].values[0, d], lap.posterior["atoms"].values[0, d])
        assert ll[d] @ n[items] == pytest.approx(smm.log_likelihood(X, n, params), rel=1e-12)
    assert np.isfinite(smm.loo(lap).elpd)
    again = smm.laplace(mode, num_draws=50, seed=3)
    np.testing.assert_array_equal(again.posterior["atoms"].values, lap.posterior["atoms"].values)


def test_a_maximum_likelihood_fit_warns_and_bad_input_is_refused(well_posed):
    X, n, _ = well_posed
    mle = smm.fit_em(X, n, 2)
    with pytest.warns(UserWarning, match="maximum likelihood estimate"):
        smm.laplace(mle, num_draws=10)
    with pytest.raises(ValueError, match="result must be an EMResult"):
        smm.laplace(mle.params)
    with pytest.raises(ValueError, match="num_draws"):
        smm.laplace(mle, num_draws=0)
    with pytest.raises(TypeError, match="relabel"):
        smm.laplace(mle, num_draws=10, relabel="yes")
    with pytest.raises(TypeError, match="seed"):
        smm.laplace(mle, num_draws=10, seed="a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin = mle._replace(params=smm.SMMParams(mle.params.weights, np.repeat(mle.params.atoms[:1], 2, axis=0)))
        with pytest.raises(ValueError, match="not positive definite"):
            smm.laplace(twin, num_draws=10)
