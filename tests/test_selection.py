"""Choosing K: BIC/AIC from EM and count-weighted LOO from NUTS, best first."""

import warnings

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.selection import n_free_parameters

TRUTH = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5], [-1.0, 0.8]]))


@pytest.fixture(scope="module")
def data():
    X = smm.simulate_features(20, 200, 2)
    n = smm.simulate_counts(21, X, TRUTH, 10_000)
    return X, n


def test_bic_aic_rank_true_k_first(data):
    X, n = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an over-fitted K may collapse a class
        table, fits = smm.compare_components(X, n, [1, 2, 3], method="bic", return_fits=True)
    assert table.index[0] == 2
    assert list(table["rank"]) == [0, 1, 2]
    assert (np.diff(table["bic"].values) > 0).all()  # best first
    for k in (1, 2, 3):
        ll = fits[k].log_likelihood
        q = (k - 1) + 2 * k
        assert table.loc[k, "n_params"] == q == n_free_parameters(k, 2)
        assert table.loc[k, "bic"] == pytest.approx(-2 * ll + q * np.log(n.sum()))
        assert table.loc[k, "aic"] == pytest.approx(-2 * ll + 2 * q)
    assert table["delta"].iloc[0] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an over-fitted K may collapse a class
        aic = smm.compare_components(X, n, [1, 2], method="aic")
    assert aic.index[0] == 2 and aic["aic"].is_monotonic_increasing


@pytest.mark.slow  # two EM fits and two NUTS compilations: about a minute on 2 cores
def test_loo_ranks_true_k_first(data):
    X, n = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an over-fitted K may collapse a class
        table = smm.compare_components(
            X, n, [1, 2], method="loo", nuts_kwargs=dict(num_chains=2, num_warmup=150, num_samples=150)
        )
    assert list(table.index) == [2, 1]
    assert list(table.columns[:8]) == ["rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "warning"]
    assert table["elpd_diff"].iloc[1] > 5 * table["dse"].iloc[1]  # decisively worse, in units of its se
    assert table["weight"].iloc[0] > 0.99
    # elpd counts all N observations: it is close to the maximised log-likelihood.
    assert abs(table.loc[2, "elpd_loo"] - table.loc[2, "log_likelihood"]) < 20
    assert 2 < table.loc[2, "p_loo"] < 10


@pytest.mark.parametrize(
    "ks, kwargs, exc, match",
    [
        ([], {}, ValueError, "empty"),
        ([0, 1], {}, ValueError, r"ks\[0\]"),
        ([2, 2], {}, ValueError, "repeated"),
        ([1.5], {}, TypeError, "integer"),
        ("12", {}, TypeError, "list"),
        (5, {}, TypeError, "list"),
        ([1, 500], {}, ValueError, "exceeds"),
        ([1, 2], dict(method="dic"), ValueError, "method"),
        ([1, 2], dict(method="loo", nuts_kwargs=dict(init="mom")), ValueError, "init"),
        ([1, 2], dict(em_kwargs=dict(seed=1)), ValueError, "seed"),
        ([1, 2], dict(em_kwargs=[1]), TypeError, "em_kwargs"),
    ],
)
def test_compare_components_validates(data, ks, kwargs, exc, match):
    X, n = data
    with pytest.raises(exc, match=match):
        smm.compare_components(X, n, ks, **kwargs)
