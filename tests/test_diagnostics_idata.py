"""Relabelled draws and the layout of the posterior DataTree (smm_ppl.diagnostics.idata)."""

import itertools

import numpy as np
import pytest
import xarray as xr

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.inference import log_likelihood_draws

from _posterior import fake_posterior, small_design


@pytest.fixture(scope="module")
def small():
    return small_design()


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
        best = min(np.linalg.norm(a[s][list(p)] - ref, axis=1).sum() for p in itertools.permutations(range(K)))
        assert np.linalg.norm(a_out[s] - ref, axis=1).sum() == pytest.approx(best, rel=1e-12)


def test_relabel_draws_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must agree"):
        D.relabel_draws(np.ones((5, 2)) / 2, np.zeros((5, 3, 2)), np.zeros((3, 2)))


def test_raw_posterior_undoes_relabelling(small):
    X, n, truth = small
    idata, w, a = fake_posterior(0, X, n, truth)
    rng = np.random.default_rng(2)
    perms = np.array([[rng.permutation(2) for _ in range(w.shape[1])] for _ in range(w.shape[0])])
    w_raw = np.take_along_axis(w, perms, axis=-1)
    a_raw = np.take_along_axis(a, perms[..., None], axis=-2)
    w_rel, a_rel, perm = D.relabel_draws(w_raw, a_raw, truth.atoms)
    items = np.flatnonzero(n)
    idata = D.build_inference_data(
        w_rel,
        a_rel,
        features=X,
        counts=n,
        log_likelihood=log_likelihood_draws(X, w_raw, a_raw, items),
        observed_items=items,
        reference=truth,
        permutation=perm,
    )
    raw = D.raw_posterior(idata)
    np.testing.assert_array_equal(raw["weights"].values, w_raw)
    np.testing.assert_array_equal(raw["atoms"].values, a_raw)
    # Relabelled draws are the originals (the fake posterior is tight around the reference).
    np.testing.assert_array_equal(idata.posterior["atoms"].values, a)
    assert idata.posterior.attrs["relabelled"] == 1


def test_inference_data_layout(small, tmp_path):
    X, n, truth = small
    idata, w, a = fake_posterior(0, X, n, truth, n_chain=3, n_draw=40)
    # ArviZ 1's result: a DataTree whose children are the groups, each with ArviZ's creation attributes.
    assert isinstance(idata, xr.DataTree)
    assert set(idata.children) == {"posterior", "log_likelihood", "observed_data", "constant_data"}
    assert all(idata[g].attrs["creation_library"] == "ArviZ" for g in idata.children)
    assert idata.posterior.attrs["relabelled"] == 0
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
    # Round trip through netCDF (h5netcdf): the same tree, attributes included, read into memory.
    path = D.save_inference_data(idata, tmp_path / "sub" / "idata.nc")
    back = D.load_inference_data(path)
    assert isinstance(back, xr.DataTree) and set(back.children) == set(idata.children)
    xr.testing.assert_identical(back.posterior.to_dataset(), idata.posterior.to_dataset())
    xr.testing.assert_identical(back.log_likelihood.to_dataset(), idata.log_likelihood.to_dataset())
    assert smm.loo(back).elpd == pytest.approx(smm.loo(idata).elpd, rel=1e-12)
    with pytest.raises(FileNotFoundError):
        D.load_inference_data(tmp_path / "missing.nc")


def test_datatree_from_groups_keeps_the_groups_and_their_attributes():
    post = xr.Dataset({"z": (("chain", "draw"), np.zeros((1, 3)))}, attrs={"inference": "test"})
    tree = D.datatree_from_groups({"posterior": post, "observed_data": xr.Dataset({"y": ("obs", [1, 2])})})
    assert list(tree.children) == ["posterior", "observed_data"]
    assert tree.posterior.attrs["inference"] == "test" and "created_at" in tree.posterior.attrs
    xr.testing.assert_equal(tree.posterior.to_dataset(), post)
    assert "created_at" not in post.attrs  # the input is not modified


def test_check_datatree_names_the_conversion_of_an_arviz_0_result():
    legacy = type("InferenceData", (), {})()
    with pytest.raises(TypeError, match=r"ArviZ 0\.x InferenceData.*convert_to_datatree"):
        D.check_datatree(legacy)
    with pytest.raises(TypeError, match="xarray.DataTree with a posterior group"):
        D.check_datatree({"posterior": {}})
    with pytest.raises(TypeError, match="DataTree"):
        D.save_inference_data(legacy, "never.nc")
