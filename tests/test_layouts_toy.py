"""A second layout, added by one module (tests/toy_layout.py): the EM kernel, the observed
information and the NumPyro model fit it unchanged."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy.optimize import minimize

import smm_ppl as smm
from smm_ppl.layouts import Layout
from smm_ppl.models import mixture_model

from toy_layout import grouped_items, simulate_grouped

TRUTH = smm.SMMParams(np.array([0.35, 0.65]), np.array([[1.2, -0.4, 0.3], [-0.6, 0.8, -0.5]]))


@pytest.fixture(scope="module")
def grouped():
    X = smm.simulate_features(3, 600, 3, mean=[0.5, -0.2, 0.1])
    groups = np.repeat(np.arange(3), 200)
    counts = simulate_grouped(4, X, groups, TRUTH, 15_000)
    return X, groups, counts


def _fit(layout, **kw):
    kw.setdefault("tol", 1e-12)
    return smm.fit_em(layout, None, 2, **kw)


def test_the_toy_layout_is_a_layout(grouped):
    X, groups, counts = grouped
    assert isinstance(grouped_items(X, counts, groups), Layout)


def test_one_group_is_the_smm_of_counts(grouped):
    """With one group the toy layout is counts over items: same likelihood, same EM path."""
    X, _, _ = grouped
    n = smm.simulate_counts(5, X, TRUTH, 10_000)
    toy = grouped_items(X, n, np.zeros(len(n)))
    start = smm.SMMParams(np.array([0.5, 0.5]), np.array([[0.5, 0.0, 0.0], [-0.5, 0.2, 0.1]]))
    assert smm.log_likelihood(toy, None, start) == pytest.approx(smm.log_likelihood(X, n, start), rel=1e-12)
    for m_step in ("gradient", "newton"):
        kw = dict(init=start, tol=0.0, m_step=m_step, compute_standard_errors=False)
        # 5 iterations: still climbing (log L gains >= 0.1 per iteration), where the two paths agree
        # to round-off (measured: 5e-14 at most).
        a = smm.fit_em(X, n, 2, max_iter=5, **kw)
        b = smm.fit_em(toy, None, 2, max_iter=5, **kw)
        np.testing.assert_allclose(b.params.atoms, a.params.atoms, atol=1e-8)
        a = smm.fit_em(X, n, 2, max_iter=25, **kw)
        b = smm.fit_em(toy, None, 2, max_iter=25, **kw)
        np.testing.assert_allclose(b.trace, a.trace, rtol=1e-10)
        # 25 iterations run past convergence (gradient M-step: ~15, Newton: ~8).  From there a step
        # is accepted if it lowers log L by at most the safeguard's slack (em.kernel.SLACK, relative),
        # so the iterates wander where log L is that flat and end at points apart by amplified
        # round-off (measured: 1e-8, as between two row orders of the same counts), which atol=1e-8
        # did not bound on every CPU.  Bound: a point within delta = 25 * SLACK * |log L| of the
        # maximum lies within sqrt(2 delta) standard errors of it (quadratic approximation), and two
        # such points within twice that (here 0.0035 standard errors).
        se = smm.standard_errors(X, n, a.params).atoms
        delta = 25 * smm.em.kernel.SLACK * abs(a.log_likelihood)
        assert np.all(np.abs(b.params.atoms - a.params.atoms) <= 2 * np.sqrt(2 * delta) * se)


def test_em_fits_the_grouped_layout_like_a_direct_maximisation(grouped):
    """EM (auto start: the moment starts say they do not apply) reaches the maximum that BFGS finds."""
    X, groups, counts = grouped
    layout = grouped_items(X, counts, groups)
    res = _fit(layout, init="auto", seed=0)
    assert res.converged
    skipped = {row["name"] for row in res.starts if row["error"] and "does not apply" in row["error"]}
    assert {"mom", "tensor", "subspace"} <= skipped
    assert res.init.startswith("random[")
    assert np.all(np.diff(res.trace) >= -1e-9 * np.abs(res.trace[:-1]))

    def negll(z):
        w = np.exp(np.r_[0.0, z[0]])
        w = w / w.sum()
        return -float(layout.log_likelihood(jnp.asarray(w), jnp.asarray(z[1:].reshape(2, 3))))

    aligned = smm.align_params(res.params, TRUTH)
    z0 = np.r_[np.log(TRUTH.weights[1] / TRUTH.weights[0]), TRUTH.atoms.ravel()]
    direct = minimize(negll, z0, method="BFGS", options={"gtol": 1e-8})
    assert res.log_likelihood == pytest.approx(-direct.fun, abs=1e-5)
    np.testing.assert_allclose(aligned.atoms, direct.x[1:].reshape(2, 3), atol=2e-3)
    err = smm.parameter_error(res.params, TRUTH)
    assert err["atoms"] < 0.15 and err["weights"] < 0.03, err


def test_standard_errors_on_the_grouped_layout_match_the_direct_hessian(grouped):
    X, groups, counts = grouped
    layout = grouped_items(X, counts, groups)
    res = _fit(layout, init=TRUTH)
    se = smm.standard_errors(layout, None, res.params)
    assert np.all(np.isfinite(se.atoms)) and np.all(se.atoms > 0)
    np.testing.assert_allclose(se.atoms, res.standard_errors.atoms, rtol=1e-6)
    # The atoms' block against a finite-difference Hessian of the layout's likelihood at fixed weights is
    # not the full covariance, so compare the full one: the inverse observed information in (eta, theta).
    info = smm.observed_information(layout, None, res.params)
    cov = np.linalg.inv(info)
    np.testing.assert_allclose(np.sqrt(np.diag(cov))[1:], se.atoms.ravel(), rtol=1e-6)


def test_the_numpyro_model_runs_on_the_grouped_layout(grouped):
    """Log density = the layout's log-likelihood + the log prior; one pointwise value per observed unit."""
    import numpyro.distributions as dist
    from numpyro.infer import log_likelihood as pointwise

    X, groups, counts = grouped
    layout = grouped_items(X, counts, groups)
    values = {"weights": jnp.asarray(TRUTH.weights), "atoms": jnp.asarray(TRUTH.atoms)}
    lp, _ = log_density(mixture_model, (layout,), {"n_components": 2}, values)
    prior = (
        dist.Dirichlet(jnp.ones(2)).log_prob(values["weights"]) + dist.Normal(0.0, 3.0).log_prob(values["atoms"]).sum()
    )
    ll = smm.log_likelihood(layout, None, TRUTH)
    assert float(lp) == pytest.approx(ll + float(prior), rel=1e-11)
    draws = {k: v[None] for k, v in values.items()}
    per_unit = pointwise(mixture_model, draws, layout, n_components=2)["counts"][0]
    assert per_unit.shape == (np.count_nonzero(counts),)
    assert float(jnp.sum(per_unit * counts[counts > 0])) == pytest.approx(ll, rel=1e-11)


def test_nuts_and_count_weighted_loo_run_on_the_grouped_layout(grouped):
    """The samplers and LOO take the layout as it is: pointwise values per unit, weighted by its counts."""
    X, groups, counts = grouped
    layout = grouped_items(X, counts, groups)
    res = _fit(layout, init=TRUTH)
    idata = smm.sample_nuts(layout, None, 2, init=res, num_chains=1, num_warmup=150, num_samples=150, seed=0)
    ll = idata.log_likelihood["counts"].values[0]
    assert ll.shape == (150, np.count_nonzero(counts))
    w, a = idata.posterior["weights"].values[0, 7], idata.posterior["atoms"].values[0, 7]
    np.testing.assert_allclose(ll[7] @ counts[counts > 0], smm.log_likelihood(layout, None, smm.SMMParams(w, a)))
    loo = smm.loo(idata)
    assert loo["n_data_points"] == counts.sum()
    assert loo.elpd == pytest.approx(res.log_likelihood, abs=15)
    table = smm.compare_point_to_posterior(idata, res)
    assert (table["z"].abs() < 4).all(), table
