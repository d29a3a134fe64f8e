"""MAP-EM (fit_em(prior=...)): the posterior mode under the model's prior.

Checked against an oracle written here from the model's definition alone (the log posterior of
(weights, atoms) in plain jax.numpy over the raw features, maximised by SciPy's L-BFGS), on a
Gaussian design and on a design whose likelihood has no maximum (a class concentrated on one
vertex of the items' convex hull).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

import smm_ppl as smm
from smm_ppl.em.kernel import slack

from _em_problems import max_relative_decrease

K, L = 2, 3


@pytest.fixture(scope="module")
def gaussian():
    X = smm.simulate_features(3, 300, L, mean=[0.5, -0.2, 0.1])
    truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.6, 0.4], [-0.8, 0.5, -0.3]]))
    return X, smm.simulate_counts(4, X, truth, 4000), truth


def runaway_design(seed):
    """A class that wants all its mass on the item furthest along (1, 1, 0), whose nearest rivals
    along that direction have no counts: the likelihood rises forever as that class's atom grows."""
    X = smm.simulate_features(seed, 200, L)
    diffuse = smm.SMMParams(np.array([1.0]), np.array([[0.3, -0.2, 0.1]]))
    counts = smm.simulate_counts(seed + 1, X, diffuse, 3000)
    order = np.argsort(-(X[:, 0] + X[:, 1]))
    counts[order[1:15]] = 0
    counts[order[0]] += 600
    return X, counts, int(order[0])


@pytest.fixture(scope="module")
def runaway():
    return runaway_design(5)[:2]


def log_posterior(weights, atoms, X, counts, prior):
    """The model's log posterior density at (weights, atoms) from its definition (no package code)."""
    logits = X @ atoms.T  # (p, K)
    log_sigma = logits - jax.scipy.special.logsumexp(logits, axis=0)
    log_pi = jax.scipy.special.logsumexp(log_sigma + jnp.log(weights), axis=1)
    ll = jnp.sum(counts * log_pi)
    a0, s0 = prior.weights_concentration, prior.atoms_scale
    Kc, Lc = atoms.shape
    log_dirichlet = jax.scipy.special.gammaln(Kc * a0) - Kc * jax.scipy.special.gammaln(a0)
    log_dirichlet += (a0 - 1.0) * jnp.sum(jnp.log(weights))
    log_normal = -0.5 * jnp.sum(atoms**2) / s0**2 - atoms.size * (jnp.log(s0) + 0.5 * jnp.log(2 * jnp.pi))
    return ll + log_dirichlet + log_normal


def oracle_map(X, counts, prior, start: smm.SMMParams):
    """The simplex mode by SciPy's L-BFGS over (free logits, atoms); the weights' logits carry no
    Jacobian here, so the optimum is the mode of the density on the simplex, as fit_em's."""
    Kc, Lc = start.atoms.shape
    X, counts = jnp.asarray(X), jnp.asarray(counts, dtype=float)

    def unpack(z):
        eta = jnp.concatenate([z[: Kc - 1], jnp.zeros(1)])
        return jax.nn.softmax(eta), z[Kc - 1 :].reshape(Kc, Lc)

    f = jax.jit(jax.value_and_grad(lambda z: -log_posterior(*unpack(z), X, counts, prior)))
    logw = np.log(start.weights)
    z0 = np.concatenate([logw[:-1] - logw[-1], start.atoms.ravel()])
    out = minimize(lambda z: tuple(np.asarray(v, dtype=float) for v in f(z)), z0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 20_000, "ftol": 1e-15, "gtol": 1e-9})  # fmt: skip
    w, a = unpack(out.x)
    return smm.SMMParams(np.asarray(w), np.asarray(a)), -float(out.fun)


def fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smm.fit_em(*args, **kwargs)


@pytest.mark.parametrize(
    "variant",
    [dict(acceleration="lbfgs"), dict(acceleration="squarem"), dict(m_step="newton", acceleration="squarem")],
)
def test_map_em_reaches_the_oracles_mode_and_is_monotone_in_the_log_posterior(gaussian, variant):
    X, n, truth = gaussian
    prior = smm.Prior(weights_concentration=2.0, atoms_scale=0.5)  # strong enough to move the estimate
    res = fit(X, n, K, init="auto", prior=prior, **variant)
    oracle, lp_oracle = oracle_map(X, n, prior, res.params)
    assert res.converged and res.objective == "log_posterior" and res.is_map
    # The same mode: the oracle, started at it, gains less than the EM tolerance's share of the log posterior.
    assert res.log_posterior >= lp_oracle - 1e-6 * abs(lp_oracle)
    se = res.standard_errors.atoms
    assert np.max(np.abs(oracle.atoms - res.params.atoms) / se) < 0.01
    # The reported figures are the model's own, and the trace ends at them.
    lp = float(log_posterior(jnp.asarray(res.params.weights), jnp.asarray(res.params.atoms), X, n, prior))
    assert res.log_posterior == pytest.approx(lp, rel=1e-10)
    assert res.log_posterior == pytest.approx(res.log_likelihood + prior.log_density(*res.params), rel=1e-12)
    assert res.trace[-1] == pytest.approx(res.log_posterior, rel=1e-10)
    assert max_relative_decrease(res.trace) <= slack(np.float64)
    # The prior pulls the atoms towards 0: the mode is shorter than the maximum likelihood estimate.
    mle = fit(X, n, K, init=res.params)
    assert np.linalg.norm(res.params.atoms) < np.linalg.norm(mle.params.atoms)
    assert mle.log_likelihood >= res.log_likelihood


def test_a_weak_prior_gives_the_maximum_likelihood_estimate_within_its_standard_errors(gaussian):
    X, n, _ = gaussian
    mle = fit(X, n, K, init="auto")
    weak = fit(X, n, K, init="auto", prior=smm.Prior(weights_concentration=1.0, atoms_scale=100.0))
    aligned = smm.align_params(weak.params, mle.params)
    assert np.max(np.abs(aligned.atoms - mle.params.atoms) / mle.standard_errors.atoms) < 0.05
    assert np.max(np.abs(aligned.weights - mle.params.weights) / mle.standard_errors.weights) < 0.05
    assert mle.objective == "log_likelihood" and mle.log_posterior is None and not mle.is_map


def test_the_standard_errors_at_the_mode_add_the_priors_curvature(gaussian):
    """Equal to the inverse of minus the Hessian of the log posterior in (free logits, atoms), the
    Dirichlet density carrying the logits' Jacobian, mapped to the weights by the delta method."""
    X, n, _ = gaussian
    prior = smm.Prior(weights_concentration=3.0, atoms_scale=0.4)
    res = fit(X, n, K, init="auto", prior=prior)
    w, a = res.params
    ref = K - 1

    def lp_z(z):
        eta = jnp.concatenate([z[: K - 1], jnp.zeros(1)])
        weights = jax.nn.softmax(eta)
        jacobian = jnp.sum(jnp.log(weights))  # log |d alpha / d eta| on the K - 1 free logits
        return log_posterior(weights, z[K - 1 :].reshape(K, L), jnp.asarray(X), jnp.asarray(n, float), prior) + jacobian

    logw = np.log(w)
    z = np.concatenate([logw[:ref] - logw[ref], a.ravel()])
    cov_z = np.linalg.inv(-np.asarray(jax.hessian(lp_z)(jnp.asarray(z))))
    J = np.zeros((K + K * L, K - 1 + K * L))
    J[:K, : K - 1] = (np.diag(w) - np.outer(w, w))[:, :ref]
    J[K:, K - 1 :] = np.eye(K * L)
    sd = np.sqrt(np.diag(J @ cov_z @ J.T))
    np.testing.assert_allclose(res.standard_errors.weights, sd[:K], rtol=1e-6)
    np.testing.assert_allclose(res.standard_errors.atoms, sd[K:].reshape(K, L), rtol=1e-6)
    mle = fit(X, n, K, init=res.params)
    assert np.all(res.standard_errors.atoms < smm.align_params(mle.standard_errors, mle.params).atoms * 1.0 + 1e-12)


@pytest.mark.parametrize("seed", [5, 11])
def test_a_likelihood_without_a_maximum_is_diagnosed_not_reported_as_converged(seed):
    X, n, vertex = runaway_design(seed)
    with pytest.warns(smm.ConvergenceWarning, match="no maximum") as caught:
        mle = smm.fit_em(X, n, K, init="auto")
    assert mle.stop_reason == "no_maximum" and not mle.converged
    message = str(caught[0].message)
    k = int(np.argmax(np.linalg.norm(mle.params.atoms, axis=1)))
    assert f"class {k}'s atom" in message and f"items {vertex} (" in message and "prior=smm.Prior()" in message
    assert np.all(np.isnan(mle.standard_errors.atoms))
    # The same data with the prior: a mode, converged, with finite standard errors.
    res = fit(X, n, K, init="auto", prior=smm.Prior())
    assert res.converged and res.stop_reason == "tol"
    assert np.all(np.isfinite(res.standard_errors.atoms))


def test_a_well_posed_maximum_is_not_flagged(gaussian):
    X, n, _ = gaussian
    with warnings.catch_warnings():
        warnings.simplefilter("error", smm.ConvergenceWarning)
        mle = smm.fit_em(X, n, K, init="auto")
    assert mle.stop_reason == "tol" and mle.converged


def test_where_the_likelihood_has_no_maximum_the_posterior_mode_is_finite(runaway):
    X, n = runaway
    prior = smm.Prior()
    mle = fit(X, n, K, init="auto", max_iter=600)
    res = fit(X, n, K, init="auto", prior=prior)
    assert res.converged
    norms = np.linalg.norm(res.params.atoms, axis=1)
    assert np.all(norms < np.linalg.norm(mle.params.atoms, axis=1).max())
    assert np.all(np.isfinite(res.standard_errors.atoms))
    assert mle.stop_reason == "no_maximum"
    oracle, lp_oracle = oracle_map(X, n, prior, res.params)
    assert res.log_posterior >= lp_oracle - 1e-6 * abs(lp_oracle)
    # The MLE's log posterior under the same prior is lower: its runaway atom pays for its gains.
    assert prior.log_density(*mle.params) + mle.log_likelihood < res.log_posterior


def test_a_prior_without_a_mode_or_of_another_type_is_refused(gaussian):
    X, n, _ = gaussian
    with pytest.raises(ValueError, match="weights_concentration=0.5 < 1.*no mode"):
        smm.fit_em(X, n, K, prior=smm.Prior(weights_concentration=0.5))
    with pytest.raises(TypeError, match="prior must be None or an smm_ppl.Prior"):
        smm.fit_em(X, n, K, prior={"atoms_scale": 3.0})
    with pytest.raises(ValueError, match="prior.atoms_scale must be a finite positive number"):
        smm.fit_em(X, n, K, prior=smm.Prior(atoms_scale=-1.0))


def many_modes_design():
    """Heavy-tailed features (Student-t, 3 degrees of freedom), a diffuse class and a sharp one (its atom six
    times as long, on the items of the tails): under the prior the log posterior has many local modes, and
    every start run under the prior itself falls into one of them (docs/math.md#multiple-starts)."""
    rng = np.random.default_rng(1)
    X = rng.standard_t(3, (1500, 24))
    atoms = rng.standard_normal((2, 24))
    atoms *= (np.array([1.0, 6.0]) / np.linalg.norm(atoms, axis=1))[:, None]
    truth = smm.SMMParams(np.array([1 / 3, 2 / 3]), atoms / X.std(axis=0))
    return X, smm.simulate_counts(2, X, truth, 50_000), truth


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_follows_a_path_of_priors_into_the_oracles_mode(seed):
    """Started from the truth, MAP-EM reaches a mode that the starts run under the prior alone miss by
    thousands (the selection then picks the best of poor modes); taken along the path of priors first, a
    start reaches it."""
    X, n, truth = many_modes_design()
    prior = smm.Prior(1.0, 1.0)
    oracle = fit(X, n, 2, init=truth, prior=prior, compute_standard_errors=False)
    res = fit(X, n, 2, init="auto", seed=seed, prior=prior, compute_standard_errors=False)
    assert oracle.converged and res.converged
    assert res.log_posterior >= oracle.log_posterior - 1.0
    assert res.init.endswith("@annealed")
    assert max_relative_decrease(res.trace) <= slack(np.float64)
    assert {r["name"] for r in res.starts} >= {"split", "split@annealed"}


def test_a_gaussian_design_takes_no_path_of_priors():
    """Where the moment starts' assumptions hold, the landscape is benign: no candidate is annealed (the path
    would multiply a small fit's time), and the MAP still matches the one from the truth."""
    X = smm.simulate_features(0, n_items=800, n_features=3)
    truth = smm.SMMParams(np.array([0.4, 0.6]), np.array([[1.0, -0.5, 0.3], [-0.6, 0.7, -0.2]]))
    n = smm.simulate_counts(1, X, truth, 20_000)
    prior = smm.Prior()
    res = fit(X, n, 2, init="auto", seed=0, prior=prior, compute_standard_errors=False)
    oracle = fit(X, n, 2, init=truth, prior=prior, compute_standard_errors=False)
    assert not any(r["name"].endswith("@annealed") for r in res.starts)
    assert res.converged and res.log_posterior >= oracle.log_posterior - 1.0


def test_a_map_fit_gets_a_larger_default_budget(gaussian):
    """max_iter defaults to 2,000 for the MLE and to 5,000 with a prior (documented in fit_em): with
    tol=0 a fit runs exactly its budget, one start from the truth."""
    X, n, truth = gaussian
    kw = dict(init=truth, tol=0.0, compute_standard_errors=False)
    assert smm.fit_em(X, n, K, **kw).n_iter == 2000
    assert smm.fit_em(X, n, K, prior=smm.Prior(), **kw).n_iter == 5000
    assert smm.fit_em(X, n, K, prior=smm.Prior(), max_iter=30, **kw).n_iter == 30
