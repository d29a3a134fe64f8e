"""The EM estimate against the posterior (smm_ppl.diagnostics.comparison)."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.diagnostics._arviz import arviz_stats

from _posterior import FakeEM, fake_posterior, small_design


@pytest.fixture(scope="module")
def small():
    return small_design()


def test_compare_point_to_posterior_table(small):
    X, n, truth = small
    idata, w, a = fake_posterior(0, X, n, truth, sd=0.05)
    se = smm.SMMParams(np.array([0.01, 0.01]), np.full((2, 2), 0.05))
    table = smm.compare_point_to_posterior(idata, FakeEM(truth, se))
    assert list(table.index) == ["weights[0]", "weights[1]", "atoms[0,0]", "atoms[0,1]", "atoms[1,0]", "atoms[1,1]"]
    assert list(table.columns) == [
        "em_estimate",
        "em_se",
        "post_mean",
        "post_sd",
        "hdi_low",
        "hdi_high",
        "z",
        "se_ratio",
        "inside_hdi",
    ]
    flat = a.reshape(-1, 2, 2)
    assert table.loc["atoms[1,0]", "post_mean"] == pytest.approx(flat[:, 1, 0].mean())
    assert table.loc["atoms[1,0]", "post_sd"] == pytest.approx(flat[:, 1, 0].std(ddof=1))
    np.testing.assert_allclose(table["z"], (table["em_estimate"] - table["post_mean"]) / table["post_sd"])
    assert table["em_se"].tolist() == [0.01, 0.01, 0.05, 0.05, 0.05, 0.05]
    assert table["inside_hdi"].all()
    # The 94 % HDI of ArviZ, scalar by scalar.
    hdi = arviz_stats().hdi(flat[:, 1, 0], prob=0.94)
    assert (table.loc["atoms[1,0]", "hdi_low"], table.loc["atoms[1,0]", "hdi_high"]) == tuple(hdi)
    assert (table["hdi_low"] < table["post_mean"]).all() and (table["post_mean"] < table["hdi_high"]).all()

    # A point far away is flagged; a permuted point is matched back (with its SEs).
    far = smm.SMMParams(np.array([0.6, 0.4]), truth.atoms + np.array([[1.0, 1.0], [-1.0, -1.0]]))
    assert not smm.compare_point_to_posterior(idata, far)["inside_hdi"].any()
    perm_point = smm.SMMParams(truth.weights[::-1], truth.atoms[::-1])
    perm_se = smm.SMMParams(np.array([0.01, 0.02]), np.array([[0.1, 0.1], [0.2, 0.2]]))
    t2 = smm.compare_point_to_posterior(idata, perm_point, perm_se)
    np.testing.assert_allclose(t2["em_estimate"], table["em_estimate"])
    assert t2.loc["atoms[0,0]", "em_se"] == 0.2 and t2.loc["weights[0]", "em_se"] == 0.02
    # Without SEs the column is NaN.
    assert smm.compare_point_to_posterior(idata, truth)["em_se"].isna().all()


def test_compare_point_to_posterior_validates(small):
    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth, n_draw=20)
    with pytest.raises(ValueError, match="hdi_prob"):
        smm.compare_point_to_posterior(idata, truth, hdi_prob=1.5)
    with pytest.raises(TypeError, match="SMMParams or an EM result"):
        smm.compare_point_to_posterior(idata, "em")
    with pytest.raises(ValueError, match="components"):
        smm.compare_point_to_posterior(idata, smm.SMMParams(np.ones(3) / 3, np.zeros((3, 2))))
    with pytest.raises(TypeError, match="DataTree"):
        smm.compare_point_to_posterior({"weights": 1}, truth)
