"""Convergence diagnostics (smm_ppl.diagnostics.convergence): R-hat sees label switching only before
relabelling; ESS, summaries and HDIs of the relabelled draws."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.diagnostics._arviz import arviz_stats

from _posterior import fake_posterior, small_design

azs = arviz_stats()


@pytest.fixture(scope="module")
def switched():
    """Two chains around the truth, the second in the swapped labelling, relabelled to the truth."""
    X, n, truth = small_design()
    _, w, a = fake_posterior(0, X, n, truth, n_chain=2, n_draw=300)
    w[1], a[1] = w[1][:, ::-1], a[1][:, ::-1]
    items = np.flatnonzero(n)
    ll = smm.inference.log_likelihood_draws(X, w, a, items)
    w_rel, a_rel, perm = D.relabel_draws(w, a, truth.atoms)
    idata = D.build_inference_data(
        w_rel, a_rel, features=X, counts=n, log_likelihood=ll, observed_items=items, reference=truth, permutation=perm
    )
    return idata, truth


def test_rhat_is_near_one_after_relabelling_and_large_before(switched):
    idata, _ = switched
    assert D.rhat(idata)["max"] < 1.01
    assert D.rhat(idata, raw=True)["max"] > 1.5


def test_rhat_and_ess_are_arviz_stats_on_the_parameters(switched):
    idata, _ = switched
    post = idata.posterior.to_dataset()
    r, e = D.rhat(idata), D.ess(idata)
    for name in ("weights", "atoms"):
        np.testing.assert_array_equal(r[name], azs.rhat(post[name]).values)
        np.testing.assert_array_equal(e[name], azs.ess(post[name]).values)
    assert r["max"] == max(r["weights"].max(), r["atoms"].max())
    # The tail ESS is that of the 5 % and 95 % quantiles (ArviZ 0.x's, Vehtari et al. 2021), not of
    # ArviZ 1's default tails (those of its 89 % interval).
    tail = D.ess(idata, method="tail")["atoms"]
    q05 = azs.ess(post["atoms"], method="quantile", prob=0.05).values
    q95 = azs.ess(post["atoms"], method="quantile", prob=0.95).values
    np.testing.assert_allclose(tail, np.minimum(q05, q95), rtol=1e-12)
    assert not np.allclose(tail, azs.ess(post["atoms"], method="tail").values)
    np.testing.assert_allclose(D.ess(idata, method="tail", prob=0.89)["atoms"], azs.ess(post["atoms"], method="tail"))


def test_ess_summary_and_hdi_of_the_relabelled_draws(switched):
    idata, truth = switched
    e = D.ess(idata)
    assert e["atoms"].shape == truth.atoms.shape and e["min"] > 100
    table = D.summary(idata, round_to="none")
    assert len(table) == truth.weights.size + truth.atoms.size
    assert list(table.columns) == [
        "mean",
        "sd",
        "hdi94_lb",
        "hdi94_ub",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "mcse_mean",
        "mcse_sd",
    ]
    h = D.hdi(idata, hdi_prob=0.9)["atoms"]
    assert h.dims == ("component", "feature", "ci_bound")
    assert np.all((h.values[..., 0] < truth.atoms) & (truth.atoms < h.values[..., 1]))
    # The summary's interval is the HDI (arviz-stats 0.8 would give the ETI under that name) and its
    # diagnostics are those of rhat and ess.
    h94 = D.hdi(idata)["atoms"].values.reshape(-1, 2)
    np.testing.assert_allclose(
        table.loc[[f"atoms[{k}, {l}]" for k in range(2) for l in range(2)], ["hdi94_lb", "hdi94_ub"]], h94
    )
    eti = azs.eti(idata.posterior.to_dataset()["atoms"], prob=0.94).values.reshape(-1, 2)
    assert not np.allclose(h94, eti)
    np.testing.assert_allclose(table["ess_bulk"].iloc[2:], e["atoms"].ravel())
    np.testing.assert_allclose(table["ess_tail"].iloc[2:], D.ess(idata, method="tail")["atoms"].ravel())
    np.testing.assert_allclose(table["r_hat"].iloc[2:], D.rhat(idata)["atoms"].ravel())
    # ArviZ 1's rounding and keywords pass through.
    assert D.summary(idata).equals(table.round(3))
    assert list(D.summary(idata, kind="stats", ci_kind="eti", ci_prob=0.5).columns) == [
        "mean",
        "sd",
        "eti50_lb",
        "eti50_ub",
    ]
    with pytest.raises(ValueError, match="hdi_prob"):
        D.hdi(idata, hdi_prob=1.2)
