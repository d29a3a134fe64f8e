"""SVI from warm starts (smm_ppl.inference.svi)."""

import numpy as np
import pytest

import smm_ppl as smm

from _inference_problems import TRUTH, k2_problem


@pytest.fixture(scope="module")
def k2():
    return k2_problem()


# ---------------------------------------------------------------------------
# SVI
# ---------------------------------------------------------------------------


def test_svi_delta_is_the_map(k2):
    X, n, em = k2
    start = smm.SMMParams(em.params.weights, em.params.atoms + 0.1)  # many SEs away
    svi = smm.fit_svi(X, n, 2, init=start, guide="delta", num_steps=1500, seed=0)
    se = em.standard_errors
    # Flat-ish prior and N = 20000: the MAP is the MLE to a small fraction of a standard error.
    assert np.all(np.abs(svi.params.atoms - em.params.atoms) < 0.1 * se.atoms)
    assert np.all(np.abs(svi.params.weights - em.params.weights) < 0.1 * se.weights)
    assert svi.losses.shape == (1500,) and svi.losses[-1] < svi.losses[0]
    assert svi.idata.posterior["atoms"].shape == (1, 1000, 2, 2)


@pytest.mark.parametrize("guide, low, high", [("normal", 0.9, 2.5), ("mvn", 0.8, 1.3)])
def test_svi_normal_guides_match_em(k2, guide, low, high):
    X, n, em = k2
    svi = smm.fit_svi(X, n, 2, init=em, guide=guide, num_steps=1500, seed=0)
    table = smm.compare_point_to_posterior(svi.idata, em)
    # The guide's mean sits on the EM estimate ...
    assert (table["z"].abs() < 0.5).all(), table
    # ... its sd is the SE (mvn) or smaller (mean field ignores correlations: conditional variances).
    assert table["se_ratio"].between(low, high).all(), table
    np.testing.assert_allclose(svi.params.atoms, em.params.atoms, atol=float(np.max(em.standard_errors.atoms)))
    assert "counts" in svi.idata.log_likelihood
    assert np.isfinite(smm.loo(svi.idata).elpd)


def test_svi_ordered_reports_the_init_labelling():
    """The ordered guide sorts classes by atoms[:, 0]; results come back in the init's labelling."""
    X = smm.simulate_features(0, 100, 2)
    n = smm.simulate_counts(1, X, TRUTH, 5000)
    assert TRUTH.atoms[0, 0] > TRUTH.atoms[1, 0]  # the truth's labelling is not the ordered one
    svi = smm.fit_svi(X, n, 2, init=TRUTH, guide="normal", ordered=True, num_steps=300, num_draws=50, seed=0)
    assert smm.parameter_error(svi.params, TRUTH)["atoms"] < 0.15
    np.testing.assert_allclose(svi.params.atoms, TRUTH.atoms, atol=0.15)
    post_mean = svi.idata.posterior["atoms"].mean(("chain", "draw")).values
    np.testing.assert_allclose(post_mean, TRUTH.atoms, atol=0.15)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(guide="laplace"), ValueError, "guide"),
        (dict(guide=1), TypeError, "guide"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(learning_rate=0.0), ValueError, "learning_rate"),
        (dict(num_draws=0), ValueError, "num_draws"),
        (dict(init_scale=-1.0), ValueError, "init_scale"),
        (dict(prior=(1.0, 3.0)), TypeError, "prior must be None or an smm_ppl.Prior"),
        (dict(prior=smm.Prior(weights_concentration=float("nan"))), ValueError, "prior.weights_concentration"),
        (dict(init=None), ValueError, "warm start"),
        (dict(init=[1, 2, 3]), TypeError, "init must be"),
    ],
)
def test_fit_svi_validates(k2, kwargs, exc, match):
    X, n, _ = k2
    kwargs = {"init": TRUTH, **kwargs}
    with pytest.raises(exc, match=match):
        smm.fit_svi(X, n, 2, **kwargs)


def test_svi_result_follows_the_em_result_convention(k2):
    """``init`` names where the start came from, ``init_params`` holds it (as in EMResult)."""
    X, n, em = k2
    svi = smm.fit_svi(X, n, 2, init=em, guide="delta", num_steps=20, num_draws=5, seed=0)
    assert svi.init == "em" and svi.idata.posterior.attrs["init"] == "em"
    np.testing.assert_array_equal(svi.init_params.atoms, em.params.atoms)
    by_name = smm.fit_svi(X, n, 2, init="auto", guide="delta", num_steps=20, num_draws=5, seed=0)
    assert by_name.init == "auto"
    # A start name means the posterior mode of the prior SVI fits (the default Prior), up to the labels.
    mode = smm.fit_em(X, n, 2, init="auto", prior=smm.Prior(), seed=0)
    aligned = smm.align_params(by_name.init_params, mode.params)
    np.testing.assert_allclose(aligned.atoms, mode.params.atoms, atol=1e-6)
    assert np.max(np.abs(mode.params.atoms - em.params.atoms)) > 1e-6  # the mode is not the MLE


def test_svi_loop_is_numpyros_svi_and_new_data_of_the_bucket_compile_nothing(k2):
    """The compiled loop gives NumPyro's ``SVI.run`` (stable updates, the decaying Adam schedule) loss
    for loss; then other data of the same row bucket, another start and another step count in the bucket rerun it."""
    import functools

    import jax
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO, init_to_value
    from numpyro.infer.autoguide import AutoNormal

    from smm_ppl.inference.init import site_values
    from smm_ppl.layouts import as_layout, bucketed

    X, n, em = k2
    steps, lr = 60, 0.02
    ours = smm.fit_svi(X, n, 2, init=em, guide="normal", num_steps=steps, learning_rate=lr, num_draws=10, seed=3)
    model = functools.partial(
        smm.models.mixture_model, n_components=2, ordered=False, weights_concentration=1.0, atoms_scale=3.0,
        units="all",
    )  # fmt: skip
    data = bucketed(as_layout(X, n))
    guide = AutoNormal(
        model, init_loc_fn=init_to_value(values=site_values(em.params.weights, em.params.atoms, False)),
        init_scale=min(0.1, 1.0 / np.sqrt(n.sum())),
    )  # fmt: skip
    decay = (1 / 100) ** (1.0 / (steps - 1))
    svi = SVI(model, guide, numpyro.optim.Adam(lambda i: lr * decay**i), Trace_ELBO())
    key_svi = jax.random.split(jax.random.PRNGKey(3), 3)[1]
    theirs = svi.run(key_svi, steps, data, progress_bar=False, stable_update=True)
    np.testing.assert_allclose(ours.losses, np.asarray(theirs.losses), rtol=1e-9)

    compiled = smm.compiled_programs()["svi"]
    X2 = smm.simulate_features(8, X.shape[0] + 40, 2)
    n2 = smm.simulate_counts(9, X2, TRUTH, 20_000)
    assert bucketed(as_layout(X2, n2)).n_rows == data.n_rows  # the same bucket
    again = smm.fit_svi(X2, n2, 2, init=TRUTH, guide="normal", num_steps=steps + 3, num_draws=10, seed=4)
    assert smm.compiled_programs()["svi"] == compiled  # nothing compiled
    assert again.losses.shape == (steps + 3,) and np.all(np.isfinite(again.losses))
    assert smm.parameter_error(smm.align_params(again.params, TRUTH), TRUTH)["atoms"] < 0.2
