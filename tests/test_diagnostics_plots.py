"""Plots (smm_ppl.diagnostics.plots)."""

import matplotlib

matplotlib.use("Agg")


import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.diagnostics._arviz import arviz_plots

from _posterior import FakeEM, fake_posterior, small_design


@pytest.fixture(scope="module")
def small():
    return small_design()


def _axes(pc):
    """The matplotlib axes of a PlotCollection, one per panel."""
    return {ax for var in pc.viz["plot"].data_vars.values() for ax in np.ravel(var.values)}


def test_plots_return_plot_collections(small):
    import matplotlib.pyplot as plt

    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth, n_draw=100)
    other, _, _ = fake_posterior(1, X, n, truth, n_draw=100, sd=0.1)
    pc = smm.plot_posterior_vs_point(idata, smm.SMMParams(truth.weights[::-1], truth.atoms[::-1]))
    assert isinstance(pc, arviz_plots().PlotCollection)
    assert len(_axes(pc)) == 6  # one panel per scalar
    # The reference line of each panel is the point's value, matched to the posterior's labelling.
    lines = pc.viz["ref_line"]
    assert float(np.ravel(lines["atoms"].sel(component=1, feature=0).values)[0].get_xdata()[0]) == truth.atoms[1, 0]
    # The posterior mean is drawn where it is (arviz-plots would round it to two significant digits).
    dot = pc.viz["point_estimate"]["atoms"].sel(component=1, feature=0).item().get_offsets()[0, 0]
    assert dot == pytest.approx(float(idata.posterior["atoms"].sel(component=1, feature=0).mean()), rel=1e-12)
    plt.close("all")
    se = smm.SMMParams(np.array([0.01, 0.01]), np.full((2, 2), 0.05))
    pc = smm.plot_forest_comparison({"NUTS": idata, "SVI": other}, FakeEM(truth, se))
    legend = pc.viz["legend"]["model"].item()
    assert sorted(t.get_text() for t in legend.get_texts()) == ["EM", "NUTS", "SVI"]
    # Every model has its intervals, the EM's pseudo-posterior (one chain of other length) included.
    twig = pc.viz["twig"]["atoms"]
    assert np.isfinite(np.concatenate([line.get_xdata() for line in np.ravel(twig.values)])).all()
    plt.close("all")
    with pytest.raises(ValueError, match="non-empty"):
        smm.plot_forest_comparison({}, truth)


def test_plot_trace_has_a_density_and_a_trace_per_variable(small):
    import matplotlib.pyplot as plt

    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth, n_draw=50)
    pc = smm.plot_trace(idata)
    assert list(pc.viz["plot"].data_vars) == ["weights", "atoms"]
    assert len(_axes(pc)) == 4  # (weights, atoms) x (density, trace)
    assert len(_axes(smm.plot_trace(idata, raw=True, compact=False))) == 2 * (2 + 4)  # a row per scalar
    assert len(_axes(smm.plot_trace(idata, var_names="weights"))) == 2
    plt.close("all")
