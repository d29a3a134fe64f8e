"""Running the EM map (smm_ppl.em.driver, smm_ppl.em.squarem): stopping rule, variants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import smm_ppl as smm

from _em_problems import MULTI, POOR, fit_quiet

# --------------------------------------------------------------------------- #
# Stopping rule
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("init", ["user", "random"])
def test_tol_zero_runs_exactly_max_iter(problem, init):
    X, n, truth = problem
    start = truth if init == "user" else "random"
    with warnings.catch_warnings():
        warnings.simplefilter("error", smm.ConvergenceWarning)  # tol = 0 asked for it: no warning
        res = smm.fit_em(X, n, 3, init=start, tol=0.0, compute_standard_errors=False, **MULTI)
    assert res.n_iter == 40
    assert res.trace.shape == (41,)
    assert not res.converged and res.stop_reason == "max_iter"


def test_max_iter_shorter_than_the_short_runs(problem):
    X, n, _ = problem
    res = fit_quiet(X, n, 3, init="random", n_starts=4, short_iter=5, max_iter=3, tol=0.0)
    assert res.n_iter == 3 and res.trace.shape == (4,)


def test_converges_from_the_truth_with_the_default_tolerance(problem):
    X, n, truth = problem
    res = smm.fit_em(X, n, 3, init=truth, compute_standard_errors=False)
    assert res.converged and res.stop_reason == "tol"
    assert res.n_iter < 200
    assert res.init == "user"
    np.testing.assert_allclose(res.init_params.atoms, truth.atoms)


def test_non_converged_fit_warns(problem):
    X, n, _ = problem
    with pytest.warns(smm.ConvergenceWarning, match="did not converge"):
        res = smm.fit_em(X, n, 3, init=POOR, max_iter=40, tol=1e-12, acceleration="none", compute_standard_errors=False)
    assert not res.converged and res.stop_reason == "max_iter"
    assert issubclass(smm.ConvergenceWarning, UserWarning)


@pytest.mark.parametrize("m_step", ["gradient", "newton"])
def test_variants_reach_the_same_maximum(problem, m_step):
    X, n, truth = problem
    ref = fit_quiet(X, n, 3, init=truth, m_step="newton", acceleration="squarem", tol=1e-13)
    res = fit_quiet(X, n, 3, init=truth, m_step=m_step, acceleration="none", tol=1e-12, max_iter=3000)
    assert res.converged
    aligned = smm.align_params(res.params, ref.params)
    np.testing.assert_allclose(aligned.atoms, ref.params.atoms, atol=2e-4)
    np.testing.assert_allclose(aligned.weights, ref.params.weights, atol=2e-5)
    # SQUAREM needs far fewer iterations than the plain map.
    assert ref.n_iter < res.n_iter


# --------------------------------------------------------------------------- #
# One compiled program per shape bucket
# --------------------------------------------------------------------------- #


def test_another_size_starts_or_counts_in_the_bucket_reuse_the_compiled_programs(problem):
    """Other p in the same row bucket, other N, counts, numbers of starts and max_iter: no new program."""
    from smm_ppl.layouts import rows_bucket

    X, n, truth = problem
    assert rows_bucket(1700) == rows_bucket(2000)
    n_other = smm.simulate_counts(7, X[:1700], truth, 30_000)
    fit_quiet(X, n, 3, init="random", n_starts=4, compute_standard_errors=True)
    programs = smm.compiled_programs()
    assert programs["em"] >= 1 and programs["information"] >= 1
    for kwargs in (dict(init="random", n_starts=7, max_iter=1500), dict(init=truth), dict(init="random", seed=3)):
        res = fit_quiet(X[:1700], n_other, 3, compute_standard_errors=True, **kwargs)
        assert np.isfinite(res.log_likelihood) and np.all(np.isfinite(res.standard_errors.atoms))
    assert smm.compiled_programs() == programs


def test_the_single_start_runner_is_the_fit_without_starts(problem):
    """em.run (one start) and fit_em from the same start give the same trace."""
    import jax.numpy as jnp

    from smm_ppl.data.prepared import prepare

    X, n, truth = problem
    prep = prepare(X, n)
    out = smm.em.run(
        prep.em_layout,
        jnp.asarray(POOR.weights),
        jnp.asarray(prep.whitening.to_whitened(POOR.atoms)),
        0.0,
        25,
        1.0,
        algorithm=smm.em.em_algorithm("gradient", "squarem"),
    )
    res = fit_quiet(X, n, 3, init=POOR, max_iter=25, tol=0.0, acceleration="squarem")
    assert out.n_iter == res.n_iter == 25
    np.testing.assert_allclose(np.asarray(out.trace) * res.n_obs, res.trace, rtol=1e-13)


def test_every_start_to_convergence_is_each_start_run_alone(problem):
    """run_starts(halving=False), the choice model's schedule, on the mixture: each start runs under the
    stopping rule as em.run runs it alone, and the best of them wins."""
    from smm_ppl.data.prepared import prepare

    X, n, truth = problem
    prep = prepare(X, n)
    algorithm = smm.em.em_algorithm("gradient", "squarem")
    weights = np.stack([truth.weights, POOR.weights])
    atoms = np.stack([prep.whitening.to_whitened(a) for a in (truth.atoms, POOR.atoms)])
    tol, max_iter = 1e-8, 300
    out = smm.em.run_starts(
        prep.em_layout, (weights, atoms), tol=tol, max_iter=max_iter, step_size=1.0, short_iter=5,
        algorithm=algorithm, halving=False,
    )  # fmt: skip
    for i in range(2):
        alone = smm.em.run(prep.em_layout, weights[i], atoms[i], tol, max_iter, 1.0, algorithm=algorithm)
        assert out.iterations[i] == alone.n_iter and out.starts_converged[i] == bool(alone.converged)
        np.testing.assert_allclose(out.ll_short[i], alone.trace[-1], rtol=1e-13)
    assert out.starts_converged.all() and out.converged
    assert out.best == int(np.argmax(out.ll_short))
    np.testing.assert_allclose(out.trace[-1], out.ll_short[out.best], rtol=0)
    assert out.n_iter == out.iterations[out.best] == out.trace.size - 1


@pytest.mark.parametrize("acceleration", ["lbfgs", "squarem"])
def test_batched_short_runs_are_the_starts_run_one_after_the_other(problem, acceleration):
    """run_starts(batch=8), the vmapped short runs of large designs, against batch=0 (one start at a time):
    the same starts selected, each start's values after the short runs equal, and the same estimate.  The
    batched matrix products may sum in another order (round-off of 1e-16 that the contracting short runs do
    not amplify): the short runs agree to 1e-10 of the log-likelihood, the estimates to the stopping rule."""
    from smm_ppl.data.prepared import prepare

    X, n, truth = problem
    prep = prepare(X, n)
    algorithm = smm.em.em_algorithm("gradient", acceleration)
    rng = np.random.default_rng(3)
    weights = np.full((11, 3), 1.0 / 3)  # 11 starts: two batches of 8, the second padded
    atoms = prep.whitening.to_whitened(truth.atoms) + rng.normal(0.0, 1.0, (11, 3, X.shape[1]))
    kw = dict(tol=1e-10, max_iter=400, step_size=1.0, short_iter=5, algorithm=algorithm)
    one = smm.em.run_starts(prep.em_layout, (weights, atoms), batch=0, **kw)
    batched = smm.em.run_starts(prep.em_layout, (weights, atoms), batch=8, **kw)
    assert batched.outcomes == one.outcomes and batched.best == one.best
    np.testing.assert_allclose(batched.ll_start, one.ll_start, rtol=1e-10)
    np.testing.assert_allclose(batched.ll_short, one.ll_short, rtol=1e-10)
    assert batched.converged and one.converged
    # Both stopped under the rule at the same maximum: each within tol of its value (relative) and within
    # sqrt(tol) of its parameters (relative to the largest atom), so twice that apart at most.
    tol = kw["tol"]
    np.testing.assert_allclose(batched.trace[-1], one.trace[-1], rtol=2 * tol)
    size = max(1.0, np.abs(one.params[1]).max())
    np.testing.assert_allclose(batched.params[1], one.params[1], atol=2 * np.sqrt(tol) * size)
