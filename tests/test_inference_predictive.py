"""Predictive draws (smm_ppl.inference.predictive): exact multinomial counts and choices, batched, as ArviZ groups."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import smm_ppl as smm
from smm_ppl.inference.predictive import (
    INVERSE_CDF_FACTOR,
    choice_draws,
    item_count_draws,
    prior_draws,
)


@pytest.fixture(scope="module")
def design():
    X = smm.simulate_features(0, 25, 2)
    truth = smm.SMMParams(np.array([0.3, 0.7]), np.array([[1.0, -0.5], [-0.8, 0.6]]))
    return X, truth


def _pi(X, params):
    return np.exp(np.asarray(smm.log_mixture_probs(X, params)))


@pytest.mark.parametrize("n_obs", [60, 25 * INVERSE_CDF_FACTOR * 4], ids=["inverse-cdf", "binomial-chain"])
def test_item_counts_are_multinomial_draws_of_the_mixture(design, n_obs):
    """Both samplers: every draw sums to N, the mean is N pi and the variance N pi (1 - pi) (4,000 draws)."""
    X, truth = design
    S = 4000
    w = np.repeat(truth.weights[None], S, 0)
    a = np.repeat(truth.atoms[None], S, 0)
    c = item_count_draws(X, w, a, 3, n_obs=n_obs)
    assert c.shape == (S, 25) and c.dtype == np.int64
    assert np.all(c.sum(axis=1) == n_obs)
    pi = _pi(X, truth)
    se = np.sqrt(n_obs * pi * (1 - pi) / S)
    assert np.all(np.abs(c.mean(0) - n_obs * pi) < 5 * se + 1e-9)
    big = pi > 0.02
    ratio = c.var(0)[big] / (n_obs * pi * (1 - pi))[big]
    assert np.all(np.abs(ratio - 1) < 0.15)


def test_item_counts_do_not_depend_on_the_batch_size(design):
    X, truth = design
    w, a = prior_draws(None, 2, 2, 11, 0)
    full = item_count_draws(X, w, a, 5, n_obs=40)
    assert np.array_equal(full, item_count_draws(X, w, a, 5, n_obs=40, batch_size=3))
    assert np.array_equal(full.reshape(11, 25), item_count_draws(X, w[None], a[None], 5, n_obs=40)[0])
    assert not np.array_equal(full, item_count_draws(X, w, a, 6, n_obs=40))


def test_prior_draws_are_the_models_prior():
    prior = smm.Prior(weights_concentration=2.0, atoms_scale=1.5)
    w, a = prior_draws(prior, 3, 2, 20000, 0)
    assert np.allclose(w.sum(-1), 1.0)
    assert np.allclose(w.mean(0), 1 / 3, atol=0.01)
    # Dirichlet(2, 2, 2): Var w_k = a_k (a0 - a_k) / (a0^2 (a0 + 1)) = 2 * 4 / (36 * 7)
    assert np.allclose(w.var(0), 8 / 252, rtol=0.05)
    assert np.allclose(a.std(axis=0), 1.5, rtol=0.03)
    _, ordered = prior_draws(prior, 3, 2, 500, 0, ordered=True)
    assert np.all(np.diff(ordered[..., 0], axis=-1) >= 0)


def test_sample_prior_predictive_groups(design):
    X, truth = design
    n = smm.simulate_counts(1, X, truth, 200)
    dt = smm.sample_prior_predictive(X, n, 2, num_draws=30, seed=0)
    assert isinstance(dt, xr.DataTree)
    assert set(dt.children) == {"prior", "prior_predictive", "observed_data", "constant_data"}
    assert dt["prior"]["atoms"].shape == (1, 30, 2, 2)
    counts = dt["prior_predictive"]["counts"].values
    assert counts.shape == (1, 30, 25) and np.all(counts.sum(-1) == 200)
    assert np.array_equal(dt["observed_data"]["counts"].values, n)
    assert dt["prior"].attrs["atoms_scale"] == 3.0
    again = smm.sample_prior_predictive(X, n, 2, num_draws=30, seed=0)
    assert np.array_equal(again["prior_predictive"]["counts"].values, counts)
    # Without counts: n_obs is required.
    dt = smm.sample_prior_predictive(X, n_components=2, n_obs=50, num_draws=5, seed=1)
    assert "observed_data" not in dt.children and np.all(dt["prior_predictive"]["counts"].values.sum(-1) == 50)
    with pytest.raises(ValueError, match="n_obs"):
        smm.sample_prior_predictive(X, n_components=2, num_draws=5)


@pytest.fixture(scope="module")
def laplace_result(design):
    X, truth = design
    n = smm.simulate_counts(2, X, truth, 300)
    mode = smm.fit_em(X, n, 2, prior=smm.Prior(), seed=0)
    return X, n, smm.laplace(mode, num_draws=80, seed=0)


def _as_tree(idata):
    """A copy of a result (a DataTree): posterior_predictive adds its group in place."""
    assert isinstance(idata, xr.DataTree)
    return idata.copy()


def test_posterior_predictive_adds_counts_from_every_draw(laplace_result):
    X, n, lap = laplace_result
    dt = smm.posterior_predictive(_as_tree(lap), seed=1)
    pp = dt["posterior_predictive"]["counts"]
    assert pp.dims == ("chain", "draw", "item") and pp.shape == (1, 80, 25)
    assert np.all(pp.values.sum(-1) == n.sum())
    # The same from the data passed explicitly, and the same seed gives the same draws.
    again = smm.posterior_predictive(_as_tree(lap), (X, n), seed=1)
    assert np.array_equal(again["posterior_predictive"]["counts"].values, pp.values)
    thin = smm.posterior_predictive(_as_tree(lap), seed=1, num_draws=20)
    assert thin["posterior"]["atoms"].shape[1] == thin["posterior_predictive"]["counts"].shape[1] == 20


def test_arviz_predictive_checks_run_on_the_result(laplace_result):
    import arviz_stats as azs

    X, n, lap = laplace_result
    dt = smm.posterior_predictive(_as_tree(lap), seed=1)
    pit = azs.loo_pit(smm.loo_pit_data(dt))["counts"].values
    assert pit.shape == (25,) and np.all((pit >= 0) & (pit <= 1))


def test_loo_pit_data_is_the_binomial_count_likelihood(laplace_result):
    from scipy import stats

    X, n, lap = laplace_result
    dt = smm.posterior_predictive(_as_tree(lap), seed=1)
    ll = smm.loo_pit_data(dt)["log_likelihood"]["counts"].values
    post = dt["posterior"]
    params = smm.SMMParams(post["weights"].values[0, 7], post["atoms"].values[0, 7])
    expected = stats.binom.logpmf(n, n.sum(), _pi(X, params))
    assert np.allclose(ll[0, 7], expected, atol=1e-8)
    with pytest.raises(ValueError, match="posterior_predictive"):
        smm.loo_pit_data(_fresh(lap))


def _fresh(lap):
    return _as_tree(lap)


def test_choice_draws_keep_each_situations_total():
    """A panel layout: one class per unit; a huge coefficient makes each situation's choice its argmax."""
    from smm_ppl.layouts import choice_situations

    rng = np.random.default_rng(0)
    S, J = 12, 3
    x = rng.normal(size=(S * J, 1))
    situation = np.repeat(np.arange(S), J)
    counts = np.zeros(S * J)
    counts[::J] = 2  # two choices per situation
    unit = np.repeat(np.arange(4), 3)
    layout = choice_situations(x, counts, situation, unit)
    atoms = np.array([[[1e4], [-1e4]]])  # class 0 picks the largest x, class 1 the smallest
    only_class0 = np.log(np.array([[[1.0 - 1e-12, 1e-12]] * 4]))
    draws = choice_draws(layout, only_class0, atoms, 0)
    assert draws.shape == (1, S * J)
    per = draws[0].reshape(S, J)
    assert np.all(per.sum(1) == 2)
    assert np.all(per[np.arange(S), x.reshape(S, J).argmax(1)] == 2)
    # Mixed classes: every unit's situations follow one class.
    mixed = np.log(np.full((200, 4, 2), 0.5))
    many = choice_draws(layout, mixed, np.repeat(atoms, 200, 0), 1).reshape(200, S, J)
    follows0 = many[:, np.arange(S), x.reshape(S, J).argmax(1)] == 2
    by_unit = follows0.reshape(200, 4, 3)
    assert np.all(by_unit.all(-1) | (~by_unit).all(-1))
    assert 0.35 < follows0.mean() < 0.65


def test_the_samplers_add_the_group_on_request(laplace_result, design):
    X, n, _ = laplace_result
    mode = smm.fit_em(X, n, 2, prior=smm.Prior(), seed=0)
    lap = smm.laplace(mode, 30, seed=0, posterior_predictive=True)
    assert lap["posterior_predictive"]["counts"].shape == (1, 30, 25)
    svi = smm.fit_svi(X, n, 2, init=mode, num_steps=30, num_draws=10, posterior_predictive=True, progress_bar=False)
    assert np.all(svi.idata["posterior_predictive"]["counts"].values.sum(-1) == n.sum())
    assert "posterior_predictive" not in _as_tree(smm.laplace(mode, 5, seed=0)).children
    with pytest.raises(TypeError, match="posterior_predictive"):
        smm.laplace(mode, 5, posterior_predictive="yes")


def test_posterior_predictive_of_a_latent_class_posterior():
    """Choices replicated per draw of z: every situation keeps its number of choices; LOO-PIT runs per row."""
    import arviz_stats as azs
    from _choice_problems import simulate_panel

    from smm_ppl.choice import latent_class_log_likelihood_draws

    frame, _ = simulate_panel(0, [[1.0, -1.0], [-1.0, 1.0]], n_persons=40, n_situations=3)
    data = smm.choice_data(
        frame, situation="situation", alternative="alternative", choice="chosen", features=["x1", "x2"], person="person"
    )
    res = smm.fit_latent_class(data, 2, seed=0)
    z = res.z + 0.05 * np.random.default_rng(0).normal(size=(1, 100, res.n_params))
    ll = latent_class_log_likelihood_draws(res, z)
    groups = {
        "posterior": xr.Dataset({"z": (("chain", "draw", "parameter"), z)}),
        "observed_data": xr.Dataset({"choices": (("row",), np.asarray(data.layout.counts, dtype=np.int64))}),
    }
    groups["log_likelihood"] = xr.Dataset({"obs": (("chain", "draw", "unit"), np.asarray(ll))})
    dt = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    with pytest.raises(TypeError, match="LatentClassResult"):
        smm.posterior_predictive(dt)
    dt = smm.posterior_predictive(dt, res, seed=0)
    rep = dt["posterior_predictive"]["choices"].values
    assert rep.shape == (1, 100, data.layout.n_rows)
    situation = np.asarray(data.layout.situation)
    per_situation = np.stack([np.bincount(situation, weights=r) for r in rep[0]])
    assert np.all(per_situation == 1)
    pit = azs.loo_pit(smm.loo_pit_data(dt, res))["choices"].values
    assert pit.shape == (data.layout.n_rows,) and np.all((pit >= 0) & (pit <= 1))
