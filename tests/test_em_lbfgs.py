"""The quasi-Newton acceleration (smm_ppl/em/lbfgs.py): monotone, the MNL optimum at K = 1, concentrated classes."""

import numpy as np
import pytest
import scipy.optimize
import scipy.special

import smm_ppl as smm

from _em_problems import POOR, fit_quiet, max_relative_decrease


def _concentrated_problem(seed=7, scale=5.0, K=3, p=2000, L=8):
    """A Gaussian design with long atoms (classes on a few dozen items): EM's gradient step crawls there."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((p, L))
    atoms = rng.standard_normal((K, L))
    atoms *= scale / np.linalg.norm(atoms, axis=1, keepdims=True)
    truth = smm.SMMParams(np.array([0.2, 0.3, 0.5])[:K] / np.array([0.2, 0.3, 0.5])[:K].sum(), atoms)
    return X, smm.simulate_counts(1, X, truth, 50_000), truth


def test_the_trace_is_monotone_from_a_poor_start(problem):
    X, n, _ = problem
    res = fit_quiet(X, n, 3, init=POOR, max_iter=200, tol=0.0, acceleration="lbfgs")
    assert res.n_iter == 200
    assert max_relative_decrease(res.trace) <= 1e-9
    assert res.trace[-1] > res.trace[0]


def test_one_class_is_the_multinomial_logit_optimum_in_about_as_many_iterations_as_scipy():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 12)) @ rng.standard_normal((12, 12))  # correlated features
    theta = rng.standard_normal(12) * 0.3
    n = smm.simulate_counts(4, X, smm.SMMParams(np.ones(1), theta[None]), 40_000)

    def negll(b):
        z = X @ b
        log_sigma = z - scipy.special.logsumexp(z)
        sigma = np.exp(log_sigma)
        return -(n @ log_sigma), -(X.T @ (n - n.sum() * sigma))

    tight = dict(gtol=1e-12, ftol=1e-16, maxiter=10_000)
    ref = scipy.optimize.minimize(negll, np.zeros(12), jac=True, method="L-BFGS-B", options=tight)
    res = fit_quiet(X, n, 1, init=smm.SMMParams(np.ones(1), np.zeros((1, 12))), acceleration="lbfgs")
    assert res.converged
    assert res.log_likelihood >= -ref.fun - 1e-6
    np.testing.assert_allclose(res.params.atoms[0], ref.x, atol=1e-4 * np.abs(ref.x).max())
    assert res.n_iter <= ref.nit  # measured: 17 against SciPy's 120 (whitened coordinates help)


def test_concentrated_classes_converge_where_squarem_does_not():
    X, n, truth = _concentrated_problem()
    quasi = fit_quiet(X, n, 3, init=truth, acceleration="lbfgs", max_iter=600)
    squarem = fit_quiet(X, n, 3, init=truth, acceleration="squarem", max_iter=600)
    assert quasi.converged and not squarem.converged
    assert quasi.log_likelihood >= squarem.log_likelihood - 1e-6


def test_newton_m_step_does_not_combine_with_lbfgs(small_problem):
    X, n, _ = small_problem
    with pytest.raises(ValueError, match="m_step='newton'"):
        smm.fit_em(X, n, 2, m_step="newton", acceleration="lbfgs")
