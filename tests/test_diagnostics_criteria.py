"""Count-weighted LOO, WAIC and compare equal ArviZ on the expanded observations (smm_ppl.diagnostics.criteria)."""

import warnings

import numpy as np
import pytest
import xarray as xr

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.diagnostics._arviz import arviz_stats

from _posterior import expanded_idata, fake_posterior, small_design

azs = arviz_stats()


@pytest.fixture(scope="module")
def small():
    return small_design()


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return func(*args, **kwargs)


def test_weighted_loo_equals_loo_on_expanded_observations(small):
    X, n, truth = small
    idata, _, _ = fake_posterior(0, X, n, truth)
    mine = D.loo(idata, pointwise=True)
    ref = _quiet(azs.loo, expanded_idata(idata, n), pointwise=True)
    per_item = _quiet(azs.loo, idata, pointwise=True, var_name="counts")
    items = idata.log_likelihood["item"].values
    assert isinstance(mine, azs.ELPDData) and mine.kind == "loo" and mine.scale == "log"
    assert mine.n_data_points == n.sum() == ref.n_data_points
    assert mine.n_samples == ref.n_samples == 400
    for field in ("elpd", "se", "p"):
        assert mine[field] == pytest.approx(ref[field], rel=1e-10, abs=1e-10), field
    np.testing.assert_allclose(mine.elpd_i.values, ref.elpd_i.values, rtol=1e-10)
    # One Pareto k per observed item: the k of each of its n_j identical columns.
    assert mine.pareto_k.shape == (items.size,) == (mine.n_items,)
    np.testing.assert_allclose(np.repeat(mine.pareto_k.values, n[items]), ref.pareto_k.values, rtol=1e-10)
    assert mine.good_k == ref.good_k and mine.warning == ref.warning
    np.testing.assert_allclose(mine.elpd_item, per_item.elpd_i.values, rtol=1e-12)
    assert float(np.sum(n[items] * mine.elpd_item)) == pytest.approx(mine.elpd, rel=1e-12)
    # Plain LOO on the items counts each item once: a different (wrong-unit) number.
    assert abs(per_item.elpd - mine.elpd) > 100
    # Without pointwise: the same totals, no O(N) vector.
    lean = D.loo(idata)
    assert lean.elpd == mine.elpd and lean.elpd_i is None and lean.pareto_k is None


def test_weighted_waic_equals_waic_on_expanded_observations(small):
    X, n, truth = small
    idata, _, _ = fake_posterior(1, X, n, truth)
    mine = D.waic(idata, pointwise=True)
    # WAIC of ArviZ 0.x by hand on the expanded log-likelihood: lppd_i - var_s(log p_i), se = sqrt(N var).
    expanded = expanded_idata(idata, n)
    ll = expanded.log_likelihood["obs"].values.reshape(-1, int(n.sum()))
    lppd = np.log(np.mean(np.exp(ll), axis=0))
    waic_i = lppd - ll.var(axis=0)
    assert mine.kind == "waic" and mine.n_data_points == n.sum()
    assert mine.elpd == pytest.approx(waic_i.sum(), rel=1e-10)
    assert mine.p == pytest.approx(ll.var(axis=0).sum(), rel=1e-10)
    assert mine.se == pytest.approx(np.sqrt(waic_i.size * waic_i.var()), rel=1e-10)
    np.testing.assert_allclose(mine.elpd_i.values, waic_i, rtol=1e-10)
    # The per-unit path (one column per observation) gives the same numbers.
    per_unit = D.waic(expanded, pointwise=True)
    for field in ("elpd", "se", "p"):
        assert per_unit[field] == pytest.approx(mine[field], rel=1e-10), field
    assert D.waic(idata).elpd == pytest.approx(mine.elpd)
    # A posterior this tight: WAIC and PSIS-LOO agree closely.
    assert mine.elpd == pytest.approx(D.loo(idata).elpd, abs=0.1)
    str(D.waic(idata))  # ArviZ's printing


def test_compare_matches_arviz_compare_on_expanded(small):
    X, n, truth = small
    good, _, _ = fake_posterior(0, X, n, truth)
    wrong = smm.SMMParams(np.array([0.5, 0.5]), np.array([[0.8, -0.2], [-0.7, 0.4]]))
    bad, _, _ = fake_posterior(1, X, n, wrong)
    table = D.compare({"good": good, "bad": bad})
    ref = _quiet(azs.compare, {"good": expanded_idata(good, n), "bad": expanded_idata(bad, n)})
    # arviz_stats.compare itself accepts the count-weighted ELPDData.
    direct = _quiet(azs.compare, {"good": D.loo(good, pointwise=True), "bad": D.loo(bad, pointwise=True)})
    assert list(table.index) == list(ref.index) == list(direct.index) == ["good", "bad"]
    assert list(table.columns) == ["rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning"]
    for mine, col in [("elpd_loo", "elpd"), ("p_loo", "p"), *((c, c) for c in ("elpd_diff", "weight", "se", "dse"))]:
        np.testing.assert_allclose(table[mine].to_numpy(float), ref[col].to_numpy(float), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(direct[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-6, atol=1e-8)
    assert table.loc["bad", "elpd_diff"] > 3 * table.loc["bad", "dse"] > 0


def test_compare_by_waic(small):
    X, n, truth = small
    a, _, _ = fake_posterior(0, X, n, truth)
    b, _, _ = fake_posterior(2, X, n, truth, sd=0.1)
    table = D.compare({"a": a, "b": b}, ic="waic")
    assert list(table.columns[:3]) == ["rank", "elpd_waic", "p_waic"]
    # The same as comparing the WAIC of the expanded observations, and as passing the ELPDData.
    ref = D.compare({"a": expanded_idata(a, n), "b": expanded_idata(b, n)}, ic="waic")
    given = D.compare({"a": D.waic(a, pointwise=True), "b": D.waic(b, pointwise=True)}, ic="waic")
    for other in (ref, given):
        assert list(other.index) == list(table.index)
        np.testing.assert_allclose(other["elpd_waic"], table["elpd_waic"], rtol=1e-10)
        np.testing.assert_allclose(other["dse"], table["dse"], rtol=1e-8, atol=1e-10)


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
    with pytest.raises(ValueError, match="'waic' result"):
        D.compare({"a": D.waic(a, pointwise=True), "b": a}, ic="loo")


def test_loo_rejects_what_is_not_a_datatree():
    with pytest.raises(TypeError, match="DataTree"):
        D.loo(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="posterior group"):
        D.loo(xr.DataTree())
    # A result of ArviZ 0.x gets the conversion.
    legacy = type("InferenceData", (), {"posterior": None})()
    with pytest.raises(TypeError, match=r"ArviZ 0\.x InferenceData.*arviz_base\.convert_to_datatree\(idata\)"):
        D.waic(legacy)
