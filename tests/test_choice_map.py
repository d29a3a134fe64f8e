"""The posterior mode of the latent-class logit (``fit_latent_class(prior=...)``), and the diagnosis of a
maximum likelihood fit that has no maximum (a parameter running off)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _choice_problems import simulate_panel
from scipy import optimize

import smm_ppl as smm

ATOMS = np.array([[1.5, -1.0], [-1.0, 0.8]])
FEATURES = ["x1", "x2"]


def _data(frame, features=FEATURES):
    return smm.choice_data(
        frame, situation="situation", alternative="alternative", choice="chosen", features=features, person="person"
    )


@pytest.fixture(scope="module")
def panel():
    frame, _ = simulate_panel(3, ATOMS, n_persons=150, n_situations=5)
    return _data(frame)


@pytest.fixture(scope="module")
def separated():
    """Class 2's persons always choose alternative 1: its constant's likelihood rises forever."""
    frame, classes = simulate_panel(4, ATOMS, n_persons=150, n_situations=5)
    frame["asc1"] = (frame["alternative"] == 1).astype(float)
    stubborn = frame["person"].isin([f"p{i}" for i in np.flatnonzero(classes == 1)])
    frame.loc[stubborn, "chosen"] = (frame.loc[stubborn, "alternative"] == 1).astype(int)
    return _data(frame, FEATURES + ["asc1"])


def _log_posterior(data, result, scale):
    """The log posterior from the public log-likelihood and the Normal density written here (an oracle)."""
    names = list(result.names)

    def f(z):
        ll = smm.latent_class_log_likelihood(data, result.model, dict(zip(names, z)))
        return ll + float(np.sum(-0.5 * (np.asarray(z) / scale) ** 2 - np.log(scale * np.sqrt(2 * np.pi))))

    return f


def test_the_mode_maximises_the_log_posterior(panel):
    scale = 0.7  # strong enough to pull the estimate away from the MLE
    res = smm.fit_latent_class(panel, 2, prior=smm.Prior(atoms_scale=scale))
    assert res.is_map and res.converged and res.stop_reason == "tol"
    f = _log_posterior(panel, res, scale)
    assert res.log_posterior == pytest.approx(f(res.z), abs=1e-8 * abs(res.log_posterior))
    # SciPy from a perturbed estimate finds nothing better (its gain below the Newton decrement's tolerance).
    start = res.z + 0.05 * np.random.default_rng(0).standard_normal(res.n_params)
    opt = optimize.minimize(lambda z: -f(z), start, method="BFGS", options={"gtol": 1e-7})
    assert -opt.fun <= res.log_posterior + 1e-6
    assert np.max(np.abs(opt.x - res.z) / np.sqrt(np.diag(res.covariance))) < 1e-2
    # The prior shrinks: the mode's coefficients are shorter than the MLE's.
    mle = smm.fit_latent_class(panel, 2)
    assert np.linalg.norm(res.atoms) < np.linalg.norm(mle.atoms)
    assert res.log_posterior > mle.log_likelihood + float(
        np.sum(-0.5 * (mle.z / scale) ** 2 - np.log(scale * np.sqrt(2 * np.pi)))
    )


def test_a_weak_prior_gives_the_mle_within_its_standard_errors(panel):
    mle = smm.fit_latent_class(panel, 2)
    weak = smm.fit_latent_class(panel, 2, prior=smm.Prior(atoms_scale=1e3))
    assert not mle.is_map and mle.log_posterior is None
    se = np.sqrt(np.diag(mle.covariance))
    assert np.all(np.abs(weak.z - mle.z) < 0.01 * se)
    # The standard errors at the mode add the prior's curvature: a little smaller, never larger.
    assert np.all(np.sqrt(np.diag(weak.covariance)) <= se * (1 + 1e-9))
    assert np.allclose(np.sqrt(np.diag(weak.covariance)), se, rtol=1e-3)


def test_a_runaway_constant_is_diagnosed_and_the_mode_is_finite(separated):
    with pytest.warns(smm.ConvergenceWarning, match="no maximum") as caught:
        mle = smm.fit_latent_class(separated, 2)
    assert mle.stop_reason == "no_maximum" and not mle.converged
    message = " ".join(str(w.message) for w in caught if "no maximum" in str(w.message))
    k = int(np.argmax(np.abs(mle.coefficients.loc["asc1"].to_numpy()))) + 1
    assert f"'asc1[{k}]'" in message and "prior=smm.Prior" in message
    assert abs(mle.coefficients.loc["asc1", k]) > 10
    with warnings.catch_warnings():
        warnings.simplefilter("error", smm.ConvergenceWarning)
        res = smm.fit_latent_class(separated, 2, prior=smm.Prior(atoms_scale=3.0))
    assert res.converged and res.stop_reason == "tol"
    assert abs(res.coefficients.loc["asc1", k]) < abs(mle.coefficients.loc["asc1", k])
    assert np.all(np.isfinite(np.sqrt(np.diag(res.covariance))))


def test_a_prior_the_choice_model_cannot_use_is_refused(panel):
    with pytest.raises(ValueError, match="weights_concentration"):
        smm.fit_latent_class(panel, 2, prior=smm.Prior(weights_concentration=2.0))
    with pytest.raises(TypeError, match="prior"):
        smm.fit_latent_class(panel, 2, prior=3.0)
