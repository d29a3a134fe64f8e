"""NUTS from warm starts (smm_ppl.inference.nuts): convergence, relabelling, Bernstein-von Mises, validation."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D

from _inference_problems import TRUTH, em_fit, k2_problem, nuts_from_em, swap_labels


@pytest.fixture(scope="module")
def k2():
    return k2_problem()


@pytest.fixture(scope="module")
def nuts_em(k2):
    return nuts_from_em(k2)


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
    assert nuts_em.posterior.attrs["init"] == "em"


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
    assert loo.elpd == pytest.approx(loglik.mean(), abs=20)
    assert 2 < loo.p < 10  # five free parameters


def test_chains_in_swapped_labellings_need_relabelling(k2):
    """Chains started in different permutations: raw R-hat is large, relabelled R-hat is fine."""
    X, n, em = k2
    P, Q = em.params, swap_labels(em.params)
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


def test_posterior_sd_matches_em_standard_errors_at_large_n():
    """Bernstein-von Mises: at N = 1e5 posterior sd and observed-information SEs agree within 15 %."""
    X = smm.simulate_features(10, 300, 2)
    n = smm.simulate_counts(11, X, TRUTH, 100_000)
    em = em_fit(X, n)
    assert em.standard_errors is not None
    idata = smm.sample_nuts(X, n, 2, init=em, num_chains=2, num_warmup=300, num_samples=500, seed=4)
    table = smm.compare_point_to_posterior(idata, em)
    ratio = table["se_ratio"].values
    assert np.all(np.abs(ratio - 1) < 0.15), table
    assert (table["z"].abs() < 1).all(), table  # EM estimate and posterior mean coincide to a fraction of an sd


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
        (dict(prior={"atoms_scale": 3.0}), TypeError, "prior must be None or an smm_ppl.Prior"),
        (dict(prior=smm.Prior(atoms_scale=0.0)), ValueError, "prior.atoms_scale"),
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


# --------------------------------------------------------------------------- #
# One compiled sampler per shape bucket; chain methods
# --------------------------------------------------------------------------- #


def test_chain_methods_give_the_same_draws(k2):
    """Chains vectorised or one after the other: the same keys give the same draws."""
    X, n, em = k2
    kw = dict(init=em, num_chains=2, num_warmup=60, num_samples=40, seed=3, progress_bar=False)
    vec = smm.sample_nuts(X, n, 2, chain_method="vectorized", **kw)
    seq = smm.sample_nuts(X, n, 2, chain_method="sequential", **kw)
    # Two programs (batched and one-chain): the same arithmetic in another order, so the chains
    # agree up to round-off that the warmup's trajectories amplify.  Measured: 3e-7 posterior sd,
    # and 5e-7 sd from a one-ulp change of the start; other keys: at least 0.5 sd on every draw.
    # So the bound is a fraction of the posterior sd (1e-3), not of the values (rtol=1e-8 held
    # with a margin of 1.6 on one CPU).
    a_vec, a_seq = vec.posterior["atoms"].values, seq.posterior["atoms"].values
    sd = a_vec.std(axis=(0, 1))
    assert np.max(np.abs(a_seq - a_vec) / sd) < 1e-3


def test_new_data_of_the_same_bucket_reuse_the_sampler(k2):
    """Data of another size in the row bucket rerun the compiled sampler and give their own posterior."""
    X, n, em = k2
    kw = dict(num_chains=2, num_warmup=100, num_samples=100, seed=1, progress_bar=False)
    smm.sample_nuts(X, n, 2, init=em, **kw)
    programs = smm.compiled_programs()["nuts"]
    X2 = smm.simulate_features(5, 250, 2)
    n2 = smm.simulate_counts(6, X2, TRUTH, 20_000)
    em2 = smm.fit_em(X2, n2, 2, seed=0)
    post = smm.sample_nuts(X2, n2, 2, init=em2, **kw)
    assert smm.compiled_programs()["nuts"] == programs  # nothing compiled
    aligned = smm.align_params(em2.params, TRUTH)
    mean = smm.align_params(
        smm.SMMParams(
            post.posterior["weights"].mean(("chain", "draw")).values,
            post.posterior["atoms"].mean(("chain", "draw")).values,
        ),
        TRUTH,
    )
    np.testing.assert_allclose(mean.atoms, aligned.atoms, atol=0.15)
    assert post.log_likelihood["counts"].shape[-1] == int((n2 > 0).sum())


PARALLEL = """
import json
import numpyro
numpyro.set_host_device_count(2)
import numpy as np
import smm_ppl as smm
truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5], [-1.0, 0.8]]))
X = smm.simulate_features(0, 100, 2)
n = smm.simulate_counts(1, X, truth, 5000)
kw = dict(init=truth, num_chains=2, num_warmup=40, num_samples=30, seed=3, progress_bar=False)
a = smm.sample_nuts(X, n, 2, chain_method="parallel", **kw)
b = smm.sample_nuts(X, n, 2, chain_method="vectorized", **kw)
print(json.dumps({"diff": float(np.max(np.abs(a.posterior["atoms"].values - b.posterior["atoms"].values))),
                  "method": a.posterior.attrs["chain_method"]}))
"""


@pytest.mark.integration
def test_parallel_chains_on_two_host_devices_match_vectorised_chains():
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PARALLEL], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["method"] == "parallel" and res["diff"] < 1e-8
