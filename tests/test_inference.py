"""NUTS and SVI from warm starts (issue 5): convergence, relabelling, Bernstein-von Mises, validation.

Sizes are chosen for a 2-core CPU: p = 300 items, L = 2, K = 2; NUTS cost depends
on p, not on N, so large N is cheap.
"""

import warnings

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.inference import resolve_init

TRUTH = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5], [-1.0, 0.8]]))


def _em(X, n, K=2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warm starts still landing: EM says which it skipped
        return smm.fit_em(X, n, K, seed=0)


@pytest.fixture(scope="module")
def k2():
    X = smm.simulate_features(0, 300, 2)
    n = smm.simulate_counts(1, X, TRUTH, 20_000)
    return X, n, _em(X, n)


@pytest.fixture(scope="module")
def nuts_em(k2):
    X, n, em = k2
    return smm.sample_nuts(X, n, 2, init=em, num_chains=4, num_warmup=300, num_samples=500, seed=0)


def _swap(p):
    return smm.SMMParams(np.asarray(p.weights)[::-1].copy(), np.asarray(p.atoms)[::-1].copy())


# ---------------------------------------------------------------------------
# NUTS from the EM start
# ---------------------------------------------------------------------------


def test_nuts_from_em_converges_and_covers_truth(nuts_em, k2):
    X, n, em = k2
    assert D.rhat(nuts_em)["max"] < 1.01
    assert D.ess(nuts_em)["min"] > 300
    assert int(nuts_em.sample_stats["diverging"].sum()) == 0
    table = smm.compare_point_to_posterior(nuts_em, TRUTH, hdi_prob=0.99)
    assert table["inside_hdi"].all(), table
    # The posterior keeps the EM labelling: its mean is within a few sd of the EM estimate, class by class.
    em_table = smm.compare_point_to_posterior(nuts_em, em, align=False)
    assert (em_table["z"].abs() < 3).all(), em_table
    assert nuts_em.posterior.attrs["init"] == "em-result"


def test_nuts_inference_data_layout(nuts_em, k2):
    X, n, _ = k2
    post = nuts_em.posterior
    assert post["weights"].shape == (4, 500, 2) and post["weights"].dims == ("chain", "draw", "component")
    assert post["atoms"].shape == (4, 500, 2, 2) and post["atoms"].dims == ("chain", "draw", "component", "feature")
    items = np.flatnonzero(n)
    ll = nuts_em.log_likelihood["counts"]
    assert ll.shape == (4, 500, items.size)
    np.testing.assert_array_equal(ll["item"].values, items)
    w, a = post["weights"].values[2, 123], post["atoms"].values[2, 123]
    np.testing.assert_allclose(ll.values[2, 123], smm.log_mixture_probs(X, smm.SMMParams(w, a))[items], rtol=1e-10)
    for name in ("diverging", "lp", "energy", "n_steps", "acceptance_rate", "step_size", "label_permutation"):
        assert name in nuts_em.sample_stats, name
    # lp is the log joint density up to a constant: sum_j n_j log pi_j dominates it.
    loglik = (ll.values * n[items]).sum(-1)
    assert np.corrcoef(loglik.ravel(), nuts_em.sample_stats["lp"].values.ravel())[0, 1] > 0.9
    # The count-weighted LOO counts all N observations and is close to the log-likelihood.
    loo = smm.loo(nuts_em)
    assert loo["n_data_points"] == n.sum()
    assert loo["elpd_loo"] == pytest.approx(loglik.mean(), abs=20)
    assert 2 < loo["p_loo"] < 10  # five free parameters


def test_chains_in_swapped_labellings_need_relabelling(k2):
    """Chains started in different permutations: raw R-hat is large, relabelled R-hat is fine."""
    X, n, em = k2
    P, Q = em.params, _swap(em.params)
    starts = smm.SMMParams(
        np.stack([P.weights, Q.weights, P.weights, Q.weights]), np.stack([P.atoms, Q.atoms, P.atoms, Q.atoms])
    )
    idata = smm.sample_nuts(X, n, 2, init=starts, num_chains=4, num_warmup=200, num_samples=400, seed=1)
    assert D.rhat(idata, raw=True)["max"] > 1.5
    assert D.rhat(idata)["max"] < 1.01
    perm = idata.sample_stats["label_permutation"].values
    assert (perm[[0, 2]] == [0, 1]).all() and (perm[[1, 3]] == [1, 0]).all()
    # The raw draws are kept: chain 1 sits in the swapped labelling.
    raw = smm.raw_posterior(idata)
    np.testing.assert_array_equal(raw["atoms"].values[1], idata.posterior["atoms"].values[1][:, ::-1])


def test_ordered_variant_without_relabelling(k2):
    X, n, em = k2
    idata = smm.sample_nuts(
        X, n, 2, init=em, ordered=True, relabel=False, num_chains=2, num_warmup=150, num_samples=150, seed=2
    )
    a = idata.posterior["atoms"].values
    assert (a[:, :, 0, 0] < a[:, :, 1, 0]).all()  # the ordering constraint holds for every draw
    assert "label_permutation" not in idata.sample_stats
    assert idata.posterior.attrs["relabelled"] == 0
    np.testing.assert_array_equal(smm.raw_posterior(idata)["atoms"].values, a)
    # Well separated classes along feature 0: ordering and relabelling agree on the posterior.
    table = smm.compare_point_to_posterior(idata, TRUTH, hdi_prob=0.99)
    assert table["inside_hdi"].all(), table


def test_default_init_same_seed_same_draws(k2):
    X, n, _ = k2
    kw = dict(init=None, num_chains=2, num_warmup=30, num_samples=20)
    a = smm.sample_nuts(X, n, 2, seed=5, **kw)
    b = smm.sample_nuts(X, n, 2, seed=5, **kw)
    np.testing.assert_array_equal(a.posterior["atoms"].values, b.posterior["atoms"].values)
    assert a.posterior.attrs["init"] == "numpyro-default"
    # Without a warm start the reference labelling is derived from the draws themselves.
    assert "reference_atoms" in a.constant_data


@pytest.mark.parametrize("ordered", [False, True])
def test_chain_init_params_are_jittered_warm_start(k2, ordered):
    """Each chain starts at the warm start plus its own jitter, in unconstrained space."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import constrain_fn

    from smm_ppl.inference import _model_kwargs, chain_init_params
    from smm_ppl.models import softmax_mixture

    X, n, em = k2
    args = (jnp.asarray(X), jnp.asarray(n))
    kw = _model_kwargs(2, ordered, 1.0, 3.0)
    starts = smm.SMMParams(em.params.weights[None], em.params.atoms[None])
    exact = chain_init_params(starts, 3, 0.0, 0, model_args=args, model_kwargs=kw)
    jittered = chain_init_params(starts, 3, 0.05, 0, model_args=args, model_kwargs=kw)
    for name, value in exact.items():
        assert value.shape[0] == 3
        np.testing.assert_array_equal(value[0], value[1])  # jitter 0: one common start
        d = np.asarray(jittered[name] - value)
        assert 0 < np.abs(d).max() < 0.05 * 5  # small ...
        assert not np.allclose(d[0], d[1])  # ... and different per chain
    back = constrain_fn(softmax_mixture, args, kw, jax.tree_util.tree_map(lambda v: v[0], exact),
                        return_deterministic=True)
    atoms = np.asarray(back["atoms"])
    expected = em.params.atoms[np.argsort(em.params.atoms[:, 0])] if ordered else em.params.atoms
    np.testing.assert_allclose(atoms, expected, atol=1e-8)


def test_posterior_sd_matches_em_standard_errors_at_large_n():
    """Bernstein-von Mises: at N = 1e5 posterior sd and observed-information SEs agree within 15 %."""
    X = smm.simulate_features(10, 300, 2)
    n = smm.simulate_counts(11, X, TRUTH, 100_000)
    em = _em(X, n)
    assert em.standard_errors is not None
    idata = smm.sample_nuts(X, n, 2, init=em, num_chains=2, num_warmup=300, num_samples=500, seed=4)
    table = smm.compare_point_to_posterior(idata, em)
    ratio = table["se_ratio"].values
    assert np.all(np.abs(ratio - 1) < 0.15), table
    assert (table["z"].abs() < 1).all(), table  # EM estimate and posterior mean coincide to a fraction of an sd


# ---------------------------------------------------------------------------
# SVI
# ---------------------------------------------------------------------------


def test_svi_delta_is_the_map(k2):
    X, n, em = k2
    start = smm.SMMParams(em.params.weights, em.params.atoms + 0.1)  # many SEs away
    svi = smm.fit_svi(X, n, 2, init=start, guide="delta", num_steps=1500, seed=0)
    se = em.standard_errors
    # Flat-ish prior and N = 20000: the MAP is the MLE to a small fraction of a standard error.
    assert np.all(np.abs(svi.params.atoms - em.params.atoms) < 0.1 * se.atoms)
    assert np.all(np.abs(svi.params.weights - em.params.weights) < 0.1 * se.weights)
    assert svi.losses.shape == (1500,) and svi.losses[-1] < svi.losses[0]
    assert svi.idata.posterior["atoms"].shape == (1, 1000, 2, 2)


@pytest.mark.parametrize("guide, low, high", [("normal", 0.9, 2.5), ("mvn", 0.8, 1.3)])
def test_svi_normal_guides_match_em(k2, guide, low, high):
    X, n, em = k2
    svi = smm.fit_svi(X, n, 2, init=em, guide=guide, num_steps=1500, seed=0)
    table = smm.compare_point_to_posterior(svi.idata, em)
    # The guide's mean sits on the EM estimate ...
    assert (table["z"].abs() < 0.5).all(), table
    # ... its sd is the SE (mvn) or smaller (mean field ignores correlations: conditional variances).
    assert table["se_ratio"].between(low, high).all(), table
    np.testing.assert_allclose(svi.params.atoms, em.params.atoms, atol=float(np.max(em.standard_errors.atoms)))
    assert "counts" in svi.idata.log_likelihood
    assert np.isfinite(smm.loo(svi.idata)["elpd_loo"])


def test_svi_ordered_reports_the_init_labelling():
    """The ordered guide sorts classes by atoms[:, 0]; results come back in the init's labelling."""
    X = smm.simulate_features(0, 100, 2)
    n = smm.simulate_counts(1, X, TRUTH, 5000)
    assert TRUTH.atoms[0, 0] > TRUTH.atoms[1, 0]  # the truth's labelling is not the ordered one
    svi = smm.fit_svi(X, n, 2, init=TRUTH, guide="normal", ordered=True, num_steps=300, num_draws=50, seed=0)
    assert smm.parameter_error(svi.params, TRUTH)["atoms"] < 0.15
    np.testing.assert_allclose(svi.params.atoms, TRUTH.atoms, atol=0.15)
    post_mean = svi.idata.posterior["atoms"].mean(("chain", "draw")).values
    np.testing.assert_allclose(post_mean, TRUTH.atoms, atol=0.15)


# ---------------------------------------------------------------------------
# init handling and validation
# ---------------------------------------------------------------------------


def test_resolve_init_variants(k2):
    X, n, em = k2
    data = smm.as_data(X, n)
    p, se, desc = resolve_init(em, data, 2)
    assert desc == "em-result" and p.weights.shape == (1, 2)
    np.testing.assert_array_equal(se.atoms, em.standard_errors.atoms)
    p, se, desc = resolve_init(TRUTH, data, 2)
    assert desc == "params" and se is None
    np.testing.assert_array_equal(p.atoms[0], TRUTH.atoms)
    assert resolve_init(None, data, 2)[0] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, _, desc = resolve_init("auto", data, 2, seed=0)
    assert desc == "em-auto" and smm.parameter_error(smm.SMMParams(p.weights[0], p.atoms[0]), TRUTH)["atoms"] < 0.2


@pytest.mark.parametrize("name", ["mom", "tensor"])
def test_resolve_init_warm_start_names(k2, name):
    import smm_ppl.warmstart as ws

    if not hasattr(ws, f"{name}_init"):
        pytest.skip(f"smm_ppl.warmstart.{name}_init not available yet")
    X, n, _ = k2
    p, _, desc = resolve_init(name, smm.as_data(X, n), 2, seed=0)
    assert desc == name and p.atoms.shape == (1, 2, 2)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(num_chains=0), ValueError, "num_chains"),
        (dict(num_chains=2.0), TypeError, "num_chains"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(num_warmup=-1), ValueError, "num_warmup"),
        (dict(jitter=-0.1), ValueError, "jitter"),
        (dict(relabel="yes"), TypeError, "relabel"),
        (dict(ordered=1), TypeError, "ordered"),
        (dict(progress_bar="no"), TypeError, "progress_bar"),
        (dict(chain_method="threads"), ValueError, "chain_method"),
        (dict(target_accept_prob=1.0), ValueError, "target_accept_prob"),
        (dict(init=3.14), TypeError, "init must be"),
        (dict(init="kmeans"), ValueError, "init must be one of"),
        (dict(init=smm.SMMParams(np.ones(3) / 3, np.zeros((3, 2)))), ValueError, "components"),
        (dict(init=smm.SMMParams(np.array([0.5, 0.6]), np.zeros((2, 2)))), ValueError, "sum to 1"),
        (dict(init=smm.SMMParams(np.full((3, 2), 0.5), np.zeros((3, 2, 2))), num_chains=2), ValueError, "per-chain"),
        (dict(reference=smm.SMMParams(np.ones(3) / 3, np.zeros((3, 2)))), ValueError, "reference"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed="a"), TypeError, "seed"),
    ],
)
def test_sample_nuts_validates(k2, kwargs, exc, match):
    X, n, _ = k2
    kwargs = {"init": TRUTH, **kwargs}
    with pytest.raises(exc, match=match):
        smm.sample_nuts(X, n, 2, **kwargs)


def test_sample_nuts_validates_data():
    X = smm.simulate_features(0, 20, 2)
    with pytest.raises(ValueError, match="n_components"):
        smm.sample_nuts(X, np.ones(20, dtype=int), 0, init=TRUTH)
    with pytest.raises(ValueError, match="counts"):
        smm.sample_nuts(X, np.ones(19, dtype=int), 2, init=TRUTH)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(guide="laplace"), ValueError, "guide"),
        (dict(guide=1), TypeError, "guide"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(learning_rate=0.0), ValueError, "learning_rate"),
        (dict(num_draws=0), ValueError, "num_draws"),
        (dict(init_scale=-1.0), ValueError, "init_scale"),
        (dict(init=None), ValueError, "warm start"),
        (dict(init=[1, 2, 3]), TypeError, "init must be"),
    ],
)
def test_fit_svi_validates(k2, kwargs, exc, match):
    X, n, _ = k2
    kwargs = {"init": TRUTH, **kwargs}
    with pytest.raises(exc, match=match):
        smm.fit_svi(X, n, 2, **kwargs)
