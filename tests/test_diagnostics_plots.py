"""Plots (smm_ppl.diagnostics.plots)."""

import matplotlib

matplotlib.use("Agg")


import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.diagnostics._arviz import arviz

from _posterior import FakeEM, fake_posterior, small_design

az = arviz()


@pytest.fixture(scope="module")
def small():
    return small_design()


def test_plots_return_axes(small):
    import matplotlib.pyplot as plt

    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth, n_draw=100)
    other, _, _ = fake_posterior(1, X, n, truth, n_draw=100, sd=0.1)
    axes = smm.plot_posterior_vs_point(idata, truth)
    assert np.asarray(axes).size == 6  # one panel per scalar
    plt.close("all")
    se = smm.SMMParams(np.array([0.01, 0.01]), np.full((2, 2), 0.05))
    axes = smm.plot_forest_comparison({"NUTS": idata, "SVI": other}, FakeEM(truth, se))
    labels = [t.get_text() for t in np.asarray(axes).ravel()[0].get_legend().get_texts()]
    assert sorted(labels) == ["EM", "NUTS", "SVI"]
    plt.close("all")
    with pytest.raises(ValueError, match="non-empty"):
        smm.plot_forest_comparison({}, truth)
