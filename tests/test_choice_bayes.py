"""Bayesian latent-class logit (smm_ppl.choice.bayes, smm_ppl.models.latent_class): model, NUTS, SVI, relabelling."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from _choice_problems import simulate_panel
from numpyro.infer import log_likelihood as numpyro_log_likelihood
from numpyro.infer.util import log_density
from scipy import stats

import smm_ppl as smm
from smm_ppl.choice import LatentClassSpec, parameter_map, relabel_latent_class_draws
from smm_ppl.choice.bayes import _class_groups
from smm_ppl.choice.spec import model_map
from smm_ppl.models.latent_class import DEFAULT_PRIOR_SCALE, latent_class_model

BETA = np.array([[1.5, -1.0, 0.5], [-1.0, 1.0, 1.5]])
SHARES = np.array([0.4, 0.6])
FEATURES = ["x1", "x2", "x3"]


def _simulate(seed: int, n_persons: int = 120, n_situations: int = 6, n_alternatives: int = 3) -> pd.DataFrame:
    """A long-format panel: each person's class drawn once, then multinomial-logit choices."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(len(SHARES), size=n_persons, p=SHARES)
    x = rng.normal(size=(n_persons, n_situations, n_alternatives, BETA.shape[1]))
    u = np.einsum("psal,pl->psa", x, BETA[cls])
    p = np.exp(u - u.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    chosen = (rng.random((n_persons, n_situations, 1)) > np.cumsum(p, -1)).sum(-1)
    person, sit, alt = np.meshgrid(
        np.arange(n_persons), np.arange(n_situations), np.arange(n_alternatives), indexing="ij"
    )
    frame = pd.DataFrame(
        {
            "person": 100 + person.ravel(),  # ids that are not positions
            "sit": (person * n_situations + sit).ravel(),
            "alt": alt.ravel(),
            "chosen": (alt == chosen[..., None]).ravel().astype(int),
        }
    )
    for j, f in enumerate(FEATURES):
        frame[f] = x[..., j].ravel()
    return frame


@pytest.fixture(scope="module")
def frame():
    return _simulate(0)


@pytest.fixture(scope="module")
def data(frame):
    return smm.choice_data(
        frame, situation="sit", alternative="alt", choice="chosen", features=FEATURES, person="person"
    )


@pytest.fixture(scope="module")
def em(data):
    # Default starts: the ChoiceData paths of the samplers refit with the same compiled program.
    return smm.fit_latent_class(data, 2, seed=0)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def test_model_log_density_is_loglik_plus_log_prior(em, data):
    pmap, layout = em.parameter_map, data.layout
    for z in (em.z, em.z + np.linspace(-0.3, 0.3, em.n_params)):
        lp, _ = log_density(latent_class_model, (layout, pmap), {}, {"z": jnp.asarray(z)})
        log_likelihood = float(np.sum(pmap.unit_log_likelihoods(jnp.asarray(z), layout)))
        prior = stats.norm.logpdf(z, 0.0, DEFAULT_PRIOR_SCALE).sum()
        assert float(lp) == pytest.approx(log_likelihood + prior, rel=1e-12)
    # At the MLE the likelihood part is EM's log-likelihood, computed elsewhere.
    lp, _ = log_density(latent_class_model, (layout, pmap), {"prior_scale": 2.0}, {"z": jnp.asarray(em.z)})
    assert float(lp) == pytest.approx(em.log_likelihood + stats.norm.logpdf(em.z, 0.0, 2.0).sum(), rel=1e-10)


def test_model_weights_units_and_gives_one_pointwise_value_per_unit(em, data):
    pmap, layout = em.parameter_map, data.layout
    z = jnp.asarray(em.z)
    w = np.ones(data.n_units)
    w[:3] = [0.0, 2.0, 0.5]
    weighted = layout._replace(unit_weights=w)
    ll_u = np.asarray(pmap.unit_log_likelihoods(z, layout))
    scale = np.full(em.n_params, 5.0)
    lp, _ = log_density(latent_class_model, (weighted, pmap), {"prior_scale": scale}, {"z": z})
    assert float(lp) == pytest.approx(np.sum(w * ll_u) + stats.norm.logpdf(em.z, 0.0, 5.0).sum(), rel=1e-12)
    draws = {"z": jnp.stack([z, z + 0.1])}
    pointwise = numpyro_log_likelihood(latent_class_model, draws, layout, pmap)["obs"]
    assert pointwise.shape == (2, data.n_units)
    np.testing.assert_allclose(pointwise[0], ll_u, rtol=1e-12)


def test_model_without_panel_has_one_unit_per_situation(frame):
    d = smm.choice_data(frame, situation="sit", alternative="alt", choice="chosen", features=FEATURES)
    pmap = parameter_map(LatentClassSpec(), d.feature_names, d.covariates, d.covariate_names, 2)
    z = jnp.asarray(pmap.pack(BETA, np.log(SHARES)[None]))
    pointwise = numpyro_log_likelihood(latent_class_model, {"z": z[None]}, d.layout, pmap)["obs"]
    assert pointwise.shape == (1, d.n_situations) == (1, frame["sit"].nunique())


# ---------------------------------------------------------------------------
# Relabelling
# ---------------------------------------------------------------------------


def _swap(pmap, z, order):
    """The free vector of ``z`` with its classes listed in ``order``."""
    atoms = np.asarray(pmap.atoms(jnp.asarray(z)))
    member = np.asarray(pmap.membership(jnp.asarray(z)))
    return pmap.pack(atoms[order], member[:, order])


def test_relabelling_undoes_a_label_swap_and_keeps_the_likelihood(em, data):
    pmap, layout = em.parameter_map, data.layout
    swapped = _swap(pmap, em.z, [1, 0])
    ll = np.asarray(pmap.unit_log_likelihoods(jnp.asarray(swapped), layout))
    np.testing.assert_allclose(ll, np.asarray(pmap.unit_log_likelihoods(jnp.asarray(em.z), layout)), rtol=1e-10)
    draws = np.stack([em.z, swapped, em.z + 0.01])[None]  # (chain, draw, P)
    z, perm = relabel_latent_class_draws(pmap, draws, em.atoms)
    assert perm.tolist() == [[[0, 1], [1, 0], [0, 1]]]
    np.testing.assert_allclose(z[0, 1], em.z, atol=1e-12)
    np.testing.assert_allclose(z[0, 2], em.z + 0.01, atol=1e-12)


def test_relabelling_permutes_only_classes_with_the_same_specification():
    names, cov_names = ("a", "b"), ("const", "age")
    rng = np.random.default_rng(1)
    covariates = np.column_stack([np.ones(5), rng.normal(size=5)])
    # Class 1 has "b" fixed to 0: only classes 2 and 3 can swap.
    pmap = parameter_map(LatentClassSpec(fixed={"b": {1: 0.0}}), names, covariates, cov_names, 3)
    ref = np.array([[2.0, 0.0], [-1.0, 1.0], [0.5, -2.0]])
    z0 = pmap.pack(ref, np.array([[0.0, 0.3, -0.2], [0.0, 0.5, 1.0]]))
    all_perms = np.stack([_swap(pmap, z0, o) for o in ([0, 1, 2], [0, 2, 1])])
    z, perm = relabel_latent_class_draws(pmap, all_perms, ref)
    assert perm.tolist() == [[0, 1, 2], [0, 2, 1]]
    np.testing.assert_allclose(z, np.stack([z0, z0]), atol=1e-12)
    # A draw swapping class 1 with another lies outside the parameter space of the spec: nothing to relabel.
    asym = parameter_map(LatentClassSpec(fixed={"b": {1: 0.0}}), names, covariates, cov_names, 2)
    zs = rng.normal(size=(4, asym.n_params))
    z, perm = relabel_latent_class_draws(asym, zs, ref[:2])
    assert (perm == [0, 1]).all()
    np.testing.assert_array_equal(z, zs)


# ---------------------------------------------------------------------------
# NUTS and SVI from the EM estimate
# ---------------------------------------------------------------------------


@pytest.mark.integration
def test_nuts_from_em_agrees_with_em_and_gives_per_person_pointwise_loglik(em, data):
    import arviz_stats as azs

    idata = smm.sample_latent_class(em, num_chains=2, num_warmup=300, num_samples=300, seed=0)
    post = idata.posterior
    assert post["z"].dims == ("chain", "draw", "parameter") and post["z"].shape == (2, 300, em.n_params)
    assert list(post["parameter"].values) == list(em.names)
    assert post["coefficients"].dims == ("chain", "draw", "class", "feature")
    assert list(post["feature"].values) == FEATURES and list(post["class"].values) == [1, 2]
    assert post["shares"].shape == (2, 300, 2)
    np.testing.assert_allclose(post["shares"].sum("class"), 1.0, rtol=1e-12)
    assert float(azs.rhat(idata, var_names=["z"])["z"].max()) < 1.05
    assert int(idata.sample_stats["diverging"].sum()) == 0
    assert "label_permutation" in idata.sample_stats  # a symmetric spec is relabelled
    table = smm.compare_latent_class_posterior(idata, em)
    assert list(table.index) == [*em.names, "weight[1]", "weight[2]"]
    # Posterior means within one posterior sd of the MLE (seen: at most 0.25 over data and chain seeds).
    assert (table["z"].abs() < 1).all(), table
    assert table["se_ratio"].between(0.6, 1.6).all(), table  # Bernstein-von Mises on 120 persons
    # One pointwise value per person, labelled by the person ids, equal to the likelihood at the draw.
    ll = idata.log_likelihood["obs"]
    assert ll.dims == ("chain", "draw", "unit") and ll.shape == (2, 300, 120)
    np.testing.assert_array_equal(ll["unit"].values, np.arange(100, 220))
    z = jnp.asarray(post["z"].values[1, 17])
    expected = em.parameter_map.unit_log_likelihoods(z, data.layout)
    np.testing.assert_allclose(ll.values[1, 17], expected, rtol=1e-10)
    np.testing.assert_allclose(post["coefficients"].values[1, 17], em.parameter_map.atoms(z), rtol=1e-12)
    loo = azs.loo(idata)
    assert loo.n_data_points == 120
    # elpd_loo = lppd - p_loo, and lppd is close to the maximised log-likelihood.
    assert loo.elpd == pytest.approx(em.log_likelihood - loo.p, abs=3)
    assert 4 < loo.p < 11  # seven free parameters

    # The package's diagnostics take this posterior as they take the SMM's.
    r = smm.rhat(idata)
    np.testing.assert_allclose(r["z"], azs.rhat(idata, var_names=["z"])["z"].values)
    assert r["max"] == pytest.approx(float(np.max(r["z"])))
    assert smm.ess(idata)["min"] == pytest.approx(float(azs.ess(idata, var_names=["z"])["z"].min()))
    assert list(smm.summary(idata).index) == [f"z[{n}]" for n in em.names]
    assert smm.loo(idata).elpd == pytest.approx(loo.elpd)
    # WAIC counts every person once, as LOO does.
    waic = smm.waic(idata, pointwise=True)
    assert waic.n_data_points == 120 and list(waic.elpd_i["unit"].values) == list(range(100, 220))
    assert waic.elpd == pytest.approx(loo.elpd, abs=1)
    assert smm.compare({"K=2": idata, "K=2 again": idata}).shape[0] == 2
    with pytest.raises(ValueError, match="latent-class posterior"):
        smm.compare_point_to_posterior(idata, em)


def test_svi_from_choice_data_is_near_em(em, data):
    svi = smm.fit_latent_class_svi(data, 2, num_steps=300, num_draws=800, seed=0)
    idata = svi.idata
    # The same kind of result as fit_svi's: the shares and coefficients at the guide's median, z by name.
    assert isinstance(svi, smm.SVIResult) and svi.init == "em"
    assert list(svi.z.index) == list(em.names) and svi.params.atoms.shape == em.atoms.shape
    np.testing.assert_allclose(svi.params.weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(svi.init_params.atoms, em.atoms, rtol=1e-6, atol=1e-8)
    assert idata.posterior["z"].shape == (1, 800, em.n_params)
    assert idata.posterior.attrs["inference"] == "svi-normal"
    assert idata.log_likelihood["obs"].shape == (1, 800, data.n_units)
    # The data were fitted by EM first, to the same estimate as the fixture's.
    np.testing.assert_allclose(idata.constant_data["reference_z"].values, em.z, rtol=1e-6, atol=1e-8)
    table = smm.compare_latent_class_posterior(idata, em)
    assert (table["z"].abs() < 1).all(), table
    assert table["se_ratio"].between(0.7, 1.4).all(), table
    # The comparison can fail: an estimate five standard errors off is flagged.
    off = dataclasses.replace(em, z=em.z + 5 * em.params["std_err"].to_numpy())
    assert (smm.compare_latent_class_posterior(idata, off)["z"].iloc[: em.n_params].abs() > 3).all()


@pytest.mark.integration
def test_svi_guide_starts_at_the_laplace_approximation(em):
    """With a vanishing learning rate, the guide's draws are the MLE's asymptotic normal; the full-covariance guide too."""
    for guide in ("normal", "mvn"):
        # The settings of the other SVI test but the learning rate: the same compiled program for "normal".
        idata = smm.fit_latent_class_svi(
            em, guide=guide, num_steps=300, learning_rate=1e-12, num_draws=800, seed=1
        ).idata
        table = smm.compare_latent_class_posterior(idata, em)
        assert (table["z"].abs() < 0.15).all(), table
        assert table["se_ratio"].between(0.9, 1.1).all(), table
    z = idata.posterior["z"].values[0]
    np.testing.assert_allclose(np.cov(z.T), em.covariance, atol=0.1 * np.abs(em.covariance).max())


def test_inputs_are_checked(em, data):
    with pytest.raises(TypeError, match="LatentClassResult"):
        smm.sample_latent_class(np.zeros(3))
    with pytest.raises(ValueError, match="n_components is required"):
        smm.sample_latent_class(data)
    with pytest.raises(ValueError, match="carries its own specification"):
        smm.fit_latent_class_svi(em, shared=["x1"])
    with pytest.raises(ValueError, match="prior_scale"):
        smm.sample_latent_class(em, prior_scale=[1.0, 2.0])
    with pytest.raises(ValueError, match="unknown parameter"):
        smm.fit_latent_class_svi(em, prior_scale={"x9[1]": 1.0})
    with pytest.raises(ValueError, match="guide"):
        smm.fit_latent_class_svi(em, guide="delta")
    with pytest.raises(ValueError, match="num_chains"):
        smm.sample_latent_class(em, num_chains=0)
    with pytest.raises(TypeError, match="DataTree"):
        smm.compare_latent_class_posterior(object(), em)


def test_relabelling_exchanges_only_classes_whose_exchange_is_a_symmetry_of_the_ties():
    """Classes 1 and 2 tie one coefficient and have their own other one: they may exchange labels; class 3,
    with its own of both, may not (the tied parameter has no partner there). Relabelled draws keep their
    log-likelihood; the partially tied 3-class model allows no exchange at all."""
    import jax.numpy as jnp

    frame, _ = simulate_panel(2, np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.5]]), n_persons=40, n_situations=3)
    data = smm.choice_data(
        frame, situation="situation", alternative="alternative", choice="chosen", features=["x1", "x2"],
        person="person",
    )  # fmt: skip
    model = smm.ChoiceModel(
        utilities={1: {"x1": "b1", "x2": "b2_1"}, 2: {"x1": "b1", "x2": "b2_2"}, 3: {"x1": "b1_3", "x2": "b2_3"}}
    )
    pmap = model_map(model, data.feature_names, data.covariates, data.covariate_names)
    assert [g.tolist() for g in _class_groups(pmap)] == [[0, 1]]
    z = np.random.default_rng(1).normal(size=(20, pmap.n_params))
    reference = np.asarray(pmap.atoms(jnp.asarray(z[0])))[[1, 0, 2]]  # classes 1 and 2 exchanged
    relabelled, perm = relabel_latent_class_draws(pmap, z, reference)
    assert perm[0].tolist() == [1, 0, 2] and set(map(tuple, perm.tolist())) <= {(0, 1, 2), (1, 0, 2)}
    before = [smm.latent_class_log_likelihood(data, model, v) for v in z[:6]]
    after = [smm.latent_class_log_likelihood(data, model, v) for v in relabelled[:6]]
    np.testing.assert_allclose(after, before, rtol=1e-12)
    # Classes 1 and 2 tie the constants, 2 and 3 the time, and class 1's time is fixed: no exchange at all.
    tied = smm.ChoiceModel(
        utilities={1: {"x1": "b1", "x2": "b2_1"}, 2: {"x1": "b1", "x2": "b2"}, 3: {"x1": "b1_3", "x2": "b2"}},
        fixed={"b2_1": 0.0},
    )
    assert _class_groups(model_map(tied, data.feature_names, data.covariates, data.covariate_names)) == []
