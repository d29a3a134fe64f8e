"""Count-weighted LOO, WAIC and compare equal ArviZ on the expanded observations (smm_ppl.diagnostics.criteria)."""

import warnings

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.diagnostics._arviz import arviz

from _posterior import expanded_idata, fake_posterior, small_design

az = arviz()


@pytest.fixture(scope="module")
def small():
    return small_design()


def test_weighted_loo_equals_loo_on_expanded_observations(small):
    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth)
    mine = D.loo(idata, pointwise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.loo(expanded_idata(idata, n), pointwise=True)
        per_item = az.loo(idata, pointwise=True)
    assert mine["n_data_points"] == n.sum() == ref["n_data_points"]
    for field in ("elpd_loo", "se", "p_loo"):
        assert mine[field] == pytest.approx(ref[field], rel=1e-10, abs=1e-10), field
    np.testing.assert_allclose(mine["loo_i"].values, ref["loo_i"].values, rtol=1e-10)
    # Plain az.loo on the items counts each item once: a different (wrong-unit) number.
    assert abs(per_item["elpd_loo"] - mine["elpd_loo"]) > 100
    assert mine["pareto_k"].shape == (np.count_nonzero(n),)


def test_weighted_waic_equals_waic_on_expanded_observations(small):
    X, n, truth = small
    idata, _, _ = fake_posterior(1, X, n, truth)
    mine = D.waic(idata, pointwise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.waic(expanded_idata(idata, n), pointwise=True)
    for field in ("elpd_waic", "se", "p_waic"):
        assert mine[field] == pytest.approx(ref[field], rel=1e-10, abs=1e-10), field
    assert D.waic(idata)["elpd_waic"] == pytest.approx(mine["elpd_waic"])
    str(D.waic(idata))  # prints (ArviZ's own non-pointwise WAIC cannot)


def test_compare_matches_az_compare_on_expanded(small):
    X, n, truth = small
    good, _, _ = fake_posterior(0, X, n, truth)
    wrong = smm.SMMParams(np.array([0.5, 0.5]), np.array([[0.8, -0.2], [-0.7, 0.4]]))
    bad, _, _ = fake_posterior(1, X, n, wrong)
    table = D.compare({"good": good, "bad": bad})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.compare({"good": expanded_idata(good, n), "bad": expanded_idata(bad, n)})
        # az.compare itself accepts the count-weighted ELPDData.
        direct = az.compare({"good": D.loo(good, pointwise=True), "bad": D.loo(bad, pointwise=True)})
    assert list(table.index) == list(ref.index) == ["good", "bad"]
    for col in ("elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse"):
        np.testing.assert_allclose(table[col].values.astype(float), ref[col].values.astype(float), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(
            direct[col].values.astype(float), ref[col].values.astype(float), rtol=1e-6, atol=1e-8
        )


def test_compare_rejects_different_data(small):
    X, n, truth = small
    a, _, _ = fake_posterior(0, X, n, truth)
    n2 = smm.simulate_counts(9, X, truth, 500)
    b, _, _ = fake_posterior(0, X, n2, truth)
    with pytest.raises(ValueError, match="same number of observations"):
        D.compare({"a": a, "b": b})
    with pytest.raises(ValueError, match="at least two"):
        D.compare({"a": a})
    with pytest.raises(ValueError, match="ic must be"):
        D.compare({"a": a, "b": a}, ic="bic")


def test_loo_rejects_non_idata():
    with pytest.raises(TypeError, match="InferenceData"):
        D.loo(np.zeros((2, 3)))
