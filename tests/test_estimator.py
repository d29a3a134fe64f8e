"""The scikit-learn-style SoftmaxMixture estimator."""

from __future__ import annotations

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.estimator import NotFittedError

TRUTH = smm.SMMParams(np.array([0.7, 0.3]), np.array([[1.0, -0.5, 0.2], [-0.8, 0.7, -0.4]]))


@pytest.fixture(scope="module")
def data():
    X = smm.simulate_features(0, 800, 3, cov=np.diag([1.0, 2.0, 0.5]), mean=[1.0, 0.0, -1.0])
    n = smm.simulate_counts(1, X, TRUTH, 50_000)
    return X, n


@pytest.fixture(scope="module")
def fitted(data):
    X, n = data
    return smm.SoftmaxMixture(n_components=2, init=TRUTH).fit(X, n)


def test_fit_returns_self_and_sets_attributes(data, fitted):
    X, n = data
    model = fitted
    assert isinstance(model, smm.SoftmaxMixture)
    assert model.weights_.shape == (2,) and model.atoms_.shape == (2, 3)
    assert model.converged_ and model.n_iter_ >= 1
    assert model.n_features_in_ == 3 and model.n_obs_ == 50_000
    assert model.init_ == "user"
    assert model.standard_errors_.atoms.shape == (2, 3)
    assert isinstance(model.result_, smm.EMResult)
    assert model.log_likelihood_ == pytest.approx(smm.log_likelihood(X, n, model.params_), rel=1e-10)
    # Same as the functional interface.
    res = smm.fit_em(X, n, 2, init=TRUTH, compute_standard_errors=False)
    # To the stopping rule's precision (sqrt(tol) relative): a stored program and a
    # freshly traced one may differ in round-off, and so stop one iteration apart.
    np.testing.assert_allclose(model.atoms_, res.params.atoms, rtol=1e-5)


def test_predictions(data, fitted):
    X, _ = data
    gamma = fitted.predict_proba(X)
    assert gamma.shape == (800, 2)
    np.testing.assert_allclose(gamma.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.predict(X), gamma.argmax(axis=1))
    pi = fitted.choice_probabilities(X)
    assert pi.shape == (800,) and pi.sum() == pytest.approx(1.0)
    # Responsibilities are alpha_k sigma_jk / pi_j.
    logits = X @ fitted.atoms_.T
    sigma = np.exp(logits - logits.max(axis=0))
    sigma /= sigma.sum(axis=0)
    np.testing.assert_allclose(gamma, fitted.weights_ * sigma / pi[:, None], rtol=1e-10)


def test_scores_and_information_criteria(data, fitted):
    X, n = data
    ll = smm.log_likelihood(X, n, fitted.params_)
    d = (2 - 1) + 2 * 3
    assert fitted.n_parameters() == d
    assert fitted.score(X, n) == pytest.approx(ll / n.sum())
    assert fitted.bic(X, n) == pytest.approx(-2 * ll + d * np.log(n.sum()))
    assert fitted.aic(X, n) == pytest.approx(-2 * ll + 2 * d)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::smm_ppl.ConvergenceWarning")  # K = 3 > truth: a flat likelihood
def test_bic_prefers_the_true_number_of_components(data):
    X, n = data
    bics = {
        K: smm.SoftmaxMixture(n_components=K, init="random", n_starts=4, seed=0, compute_standard_errors=False)
        .fit(X, n)
        .bic(X, n)
        for K in (1, 2, 3)
    }
    assert min(bics, key=bics.get) == 2, bics


def test_not_fitted():
    model = smm.SoftmaxMixture(2)
    for call in (
        lambda: model.predict_proba(np.eye(3)),
        lambda: model.bic(np.eye(3), [1, 1, 1]),
        lambda: model.n_parameters(),
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


def test_sklearn_conventions():
    model = smm.SoftmaxMixture(n_components=3, tol=1e-6)
    params = model.get_params()
    assert params["n_components"] == 3 and params["tol"] == 1e-6 and params["init"] == "auto"
    assert model.set_params(max_iter=50) is model and model.max_iter == 50
    with pytest.raises(ValueError, match="invalid parameter 'bogus'"):
        model.set_params(bogus=1)
    clone = smm.SoftmaxMixture(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert "n_components=3" in repr(model) and "max_iter=50" in repr(model)
    assert not hasattr(model, "weights_")  # __init__ stores hyper-parameters only


def test_fit_validates(data):
    X, n = data
    with pytest.raises(ValueError, match="n_components"):
        smm.SoftmaxMixture(n_components=0).fit(X, n)
    with pytest.raises(ValueError, match="m_step"):
        smm.SoftmaxMixture(m_step="em").fit(X, n)
    with pytest.raises(ValueError, match="counts"):
        smm.SoftmaxMixture().fit(X, n[:10])


def test_wrong_feature_count_after_fit(fitted):
    with pytest.raises(ValueError, match="fitted with 3"):
        fitted.predict_proba(np.random.default_rng(0).normal(size=(10, 2)))
    with pytest.raises(ValueError, match="fitted with 3"):
        fitted.score(np.random.default_rng(0).normal(size=(10, 2)), np.ones(10, dtype=int))
