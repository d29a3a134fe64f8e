"""Diagnostics on synthetic draws: relabelling, InferenceData layout, count-weighted LOO/WAIC,
point-vs-posterior tables and plots.  No sampler runs here, so these are fast."""

import itertools
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.inference import log_likelihood_draws

az = D._az()


def _fake_posterior(seed, X, counts, center, n_chain=2, n_draw=200, sd=0.05):
    """Draws scattered around ``center`` and the InferenceData built from them."""
    rng = np.random.default_rng(seed)
    K, L = center.atoms.shape
    a = center.atoms + sd * rng.standard_normal((n_chain, n_draw, K, L))
    logits = np.log(center.weights) + sd * rng.standard_normal((n_chain, n_draw, K))
    w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    items = np.flatnonzero(counts)
    ll = log_likelihood_draws(X, w, a, items)
    idata = D.build_inference_data(
        w, a, features=X, counts=counts, log_likelihood=ll, observed_items=items, reference=center
    )
    return idata, w, a


@pytest.fixture(scope="module")
def small():
    truth = smm.SMMParams(np.array([0.3, 0.7]), np.array([[1.0, -0.5], [-1.0, 0.8]]))
    X = smm.simulate_features(3, 40, 2)
    n = smm.simulate_counts(4, X, truth, 300)
    return X, n, truth


def _expanded_idata(idata, counts):
    """The same posterior with one log-likelihood column per observation."""
    import xarray as xr

    items = idata.log_likelihood["item"].values
    rep = np.repeat(np.arange(items.size), counts[items])
    ll = idata.log_likelihood["counts"].values[:, :, rep]
    ds = xr.Dataset({"obs": (("chain", "draw", "observation"), ll)})
    return az.InferenceData(posterior=idata.posterior, log_likelihood=ds)


# ---------------------------------------------------------------------------
# relabelling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("K", [3, 7])  # 3: enumeration of permutations; 7: Hungarian loop
def test_relabel_draws_recovers_applied_permutations(K):
    rng = np.random.default_rng(0)
    L = 2
    ref = 3.0 * rng.standard_normal((K, L))
    S = 50
    true_a = ref + 0.05 * rng.standard_normal((S, K, L))
    true_w = rng.dirichlet(np.ones(K), size=S)
    perms = np.array([rng.permutation(K) for _ in range(S)])
    a_perm = np.take_along_axis(true_a, perms[..., None], axis=1)
    w_perm = np.take_along_axis(true_w, perms, axis=1)
    w_out, a_out, perm = D.relabel_draws(w_perm, a_perm, ref)
    np.testing.assert_array_equal(a_out, true_a)
    np.testing.assert_array_equal(w_out, true_w)
    # Same convention as match_components: out[k] = in[perm[k]].
    for s in range(S):
        np.testing.assert_array_equal(perm[s], smm.match_components(a_perm[s], ref))


def test_relabel_draws_minimises_total_distance():
    rng = np.random.default_rng(1)
    K, L = 4, 3
    ref = rng.standard_normal((K, L))
    a = rng.standard_normal((30, K, L))  # far from ref: a non-trivial assignment problem
    w = rng.dirichlet(np.ones(K), size=30)
    _, a_out, _ = D.relabel_draws(w, a, ref)
    for s in range(30):
        best = min(
            np.linalg.norm(a[s][list(p)] - ref, axis=1).sum() for p in itertools.permutations(range(K))
        )
        assert np.linalg.norm(a_out[s] - ref, axis=1).sum() == pytest.approx(best, rel=1e-12)


def test_relabel_draws_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must agree"):
        D.relabel_draws(np.ones((5, 2)) / 2, np.zeros((5, 3, 2)), np.zeros((3, 2)))


def test_raw_posterior_undoes_relabelling(small):
    X, n, truth = small
    idata, w, a = _fake_posterior(0, X, n, truth)
    rng = np.random.default_rng(2)
    perms = np.array([[rng.permutation(2) for _ in range(w.shape[1])] for _ in range(w.shape[0])])
    w_raw = np.take_along_axis(w, perms, axis=-1)
    a_raw = np.take_along_axis(a, perms[..., None], axis=-2)
    w_rel, a_rel, perm = D.relabel_draws(w_raw, a_raw, truth.atoms)
    items = np.flatnonzero(n)
    idata = D.build_inference_data(
        w_rel, a_rel, features=X, counts=n, log_likelihood=log_likelihood_draws(X, w_raw, a_raw, items),
        observed_items=items, reference=truth, permutation=perm,
    )
    raw = D.raw_posterior(idata)
    np.testing.assert_array_equal(raw["weights"].values, w_raw)
    np.testing.assert_array_equal(raw["atoms"].values, a_raw)
    # Relabelled draws are the originals (the fake posterior is tight around the reference).
    np.testing.assert_array_equal(idata.posterior["atoms"].values, a)
    assert idata.posterior.attrs["relabelled"] == 1


# ---------------------------------------------------------------------------
# InferenceData layout
# ---------------------------------------------------------------------------


def test_inference_data_layout(small, tmp_path):
    X, n, truth = small
    idata, w, a = _fake_posterior(0, X, n, truth, n_chain=3, n_draw=40)
    post = idata.posterior
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["atoms"].dims == ("chain", "draw", "component", "feature")
    items = np.flatnonzero(n)
    ll = idata.log_likelihood["counts"]
    assert ll.dims == ("chain", "draw", "item") and ll.shape == (3, 40, items.size)
    np.testing.assert_array_equal(ll["item"].values, items)
    # Pointwise values are log pi_j of the draw.
    expected = smm.log_mixture_probs(X, smm.SMMParams(w[1, 7], a[1, 7]))[items]
    np.testing.assert_allclose(ll.values[1, 7], expected, rtol=1e-12)
    np.testing.assert_array_equal(idata.observed_data["counts"].values, n)
    np.testing.assert_array_equal(idata.constant_data["features"].values, X)
    np.testing.assert_array_equal(idata.constant_data["reference_atoms"].values, truth.atoms)
    # Round trip through netCDF (h5netcdf).
    path = tmp_path / "idata.nc"
    idata.to_netcdf(str(path), engine="h5netcdf")
    back = az.from_netcdf(str(path), engine="h5netcdf")
    np.testing.assert_allclose(back.posterior["atoms"].values, a)


# ---------------------------------------------------------------------------
# count-weighted LOO / WAIC
# ---------------------------------------------------------------------------


def test_weighted_loo_equals_loo_on_expanded_observations(small):
    X, n, truth = small
    idata, _, _ = _fake_posterior(0, X, n, truth)
    mine = D.loo(idata, pointwise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.loo(_expanded_idata(idata, n), pointwise=True)
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
    idata, _, _ = _fake_posterior(1, X, n, truth)
    mine = D.waic(idata, pointwise=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.waic(_expanded_idata(idata, n), pointwise=True)
    for field in ("elpd_waic", "se", "p_waic"):
        assert mine[field] == pytest.approx(ref[field], rel=1e-10, abs=1e-10), field
    assert D.waic(idata)["elpd_waic"] == pytest.approx(mine["elpd_waic"])
    str(D.waic(idata))  # prints (ArviZ's own non-pointwise WAIC cannot)


def test_compare_matches_az_compare_on_expanded(small):
    X, n, truth = small
    good, _, _ = _fake_posterior(0, X, n, truth)
    wrong = smm.SMMParams(np.array([0.5, 0.5]), np.array([[0.8, -0.2], [-0.7, 0.4]]))
    bad, _, _ = _fake_posterior(1, X, n, wrong)
    table = D.compare({"good": good, "bad": bad})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = az.compare({"good": _expanded_idata(good, n), "bad": _expanded_idata(bad, n)})
        # az.compare itself accepts the count-weighted ELPDData.
        direct = az.compare({"good": D.loo(good, pointwise=True), "bad": D.loo(bad, pointwise=True)})
    assert list(table.index) == list(ref.index) == ["good", "bad"]
    for col in ("elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse"):
        np.testing.assert_allclose(table[col].values.astype(float), ref[col].values.astype(float), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(direct[col].values.astype(float), ref[col].values.astype(float), rtol=1e-6, atol=1e-8)


def test_compare_rejects_different_data(small):
    X, n, truth = small
    a, _, _ = _fake_posterior(0, X, n, truth)
    n2 = smm.simulate_counts(9, X, truth, 500)
    b, _, _ = _fake_posterior(0, X, n2, truth)
    with pytest.raises(ValueError, match="same number of observations"):
        D.compare({"a": a, "b": b})
    with pytest.raises(ValueError, match="at least two"):
        D.compare({"a": a})
    with pytest.raises(ValueError, match="ic must be"):
        D.compare({"a": a, "b": a}, ic="bic")


def test_loo_rejects_non_idata():
    with pytest.raises(TypeError, match="InferenceData"):
        D.loo(np.zeros((2, 3)))


# ---------------------------------------------------------------------------
# point estimate vs posterior
# ---------------------------------------------------------------------------


class _FakeEM:
    def __init__(self, params, se):
        self.params = params
        self.standard_errors = se


def test_compare_point_to_posterior_table(small):
    X, n, truth = small
    idata, w, a = _fake_posterior(0, X, n, truth, sd=0.05)
    se = smm.SMMParams(np.array([0.01, 0.01]), np.full((2, 2), 0.05))
    table = smm.compare_point_to_posterior(idata, _FakeEM(truth, se))
    assert list(table.index) == ["weights[0]", "weights[1]", "atoms[0,0]", "atoms[0,1]", "atoms[1,0]", "atoms[1,1]"]
    assert list(table.columns) == [
        "em_estimate", "em_se", "post_mean", "post_sd", "hdi_low", "hdi_high", "z", "se_ratio", "inside_hdi"
    ]
    flat = a.reshape(-1, 2, 2)
    assert table.loc["atoms[1,0]", "post_mean"] == pytest.approx(flat[:, 1, 0].mean())
    assert table.loc["atoms[1,0]", "post_sd"] == pytest.approx(flat[:, 1, 0].std(ddof=1))
    np.testing.assert_allclose(table["z"], (table["em_estimate"] - table["post_mean"]) / table["post_sd"])
    assert table["em_se"].tolist() == [0.01, 0.01, 0.05, 0.05, 0.05, 0.05]
    assert table["inside_hdi"].all()
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
    idata, _, _ = _fake_posterior(0, X, n, truth, n_draw=20)
    with pytest.raises(ValueError, match="hdi_prob"):
        smm.compare_point_to_posterior(idata, truth, hdi_prob=1.5)
    with pytest.raises(TypeError, match="SMMParams or an EM result"):
        smm.compare_point_to_posterior(idata, "em")
    with pytest.raises(ValueError, match="components"):
        smm.compare_point_to_posterior(idata, smm.SMMParams(np.ones(3) / 3, np.zeros((3, 2))))
    with pytest.raises(TypeError, match="InferenceData"):
        smm.compare_point_to_posterior({"weights": 1}, truth)


def test_plots_return_axes(small):
    import matplotlib.pyplot as plt

    X, n, truth = small
    idata, _, _ = _fake_posterior(0, X, n, truth, n_draw=100)
    other, _, _ = _fake_posterior(1, X, n, truth, n_draw=100, sd=0.1)
    axes = smm.plot_posterior_vs_point(idata, truth)
    assert np.asarray(axes).size == 6  # one panel per scalar
    plt.close("all")
    se = smm.SMMParams(np.array([0.01, 0.01]), np.full((2, 2), 0.05))
    axes = smm.plot_forest_comparison({"NUTS": idata, "SVI": other}, _FakeEM(truth, se))
    labels = [t.get_text() for t in np.asarray(axes).ravel()[0].get_legend().get_texts()]
    assert sorted(labels) == ["EM", "NUTS", "SVI"]
    plt.close("all")
    with pytest.raises(ValueError, match="non-empty"):
        smm.plot_forest_comparison({}, truth)
