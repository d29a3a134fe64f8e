"""fit_em (smm_ppl.em.api): monotone traces, starts, determinism, collapsed classes, validation."""

from __future__ import annotations

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import em
from smm_ppl.data.whitening import fit_whitening

from _em_problems import MULTI, POOR, fit_quiet, max_relative_decrease

# --------------------------------------------------------------------------- #
# Monotonicity
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("acceleration", ["none", "squarem"])
@pytest.mark.parametrize("m_step", ["gradient", "newton"])
@pytest.mark.parametrize("step_size", [1.0, 3.0])
def test_trace_is_monotone_from_a_poor_start(problem, m_step, acceleration, step_size):
    # step_size = 3 overshoots: without the safeguard these traces drop by O(1)
    # relative (checked when the safeguard was written), so the test can fail.
    X, n, _ = problem
    res = fit_quiet(
        X, n, 3, init=POOR, m_step=m_step, acceleration=acceleration, step_size=step_size, max_iter=40, tol=0.0
    )
    assert np.all(np.isfinite(res.trace))
    assert max_relative_decrease(res.trace) <= 1e-9
    assert res.trace[-1] > res.trace[0] + 1.0  # and it did climb


def test_trace_is_monotone_for_multistart_random(problem):
    X, n, _ = problem
    res = fit_quiet(X, n, 3, init="random", seed=3, tol=0.0, step_size=3.0, **MULTI)
    assert max_relative_decrease(res.trace) <= 1e-9
    assert res.trace.shape == (41,)


def test_trace_starts_at_the_initial_log_likelihood(problem):
    X, n, _ = problem
    res = fit_quiet(X, n, 3, init=POOR, max_iter=40, tol=0.0)
    assert res.trace[0] == pytest.approx(smm.log_likelihood(X, n, POOR), rel=1e-12)
    assert res.log_likelihood == pytest.approx(smm.log_likelihood(X, n, res.params), rel=1e-10)
    assert res.log_likelihood == res.trace[-1]


# --------------------------------------------------------------------------- #
# Inits, determinism, collapsed classes
# --------------------------------------------------------------------------- #


def test_same_seed_same_result(problem):
    X, n, _ = problem
    kw = dict(init="random", **MULTI)
    a = fit_quiet(X, n, 3, seed=11, **kw)
    b = fit_quiet(X, n, 3, seed=11, **kw)
    c = fit_quiet(X, n, 3, seed=12, **kw)
    np.testing.assert_array_equal(a.params.atoms, b.params.atoms)
    np.testing.assert_array_equal(a.trace, b.trace)
    assert a.init == b.init
    assert [s["log_likelihood_start"] for s in a.starts] == [s["log_likelihood_start"] for s in b.starts]
    assert [s["log_likelihood_start"] for s in a.starts] != [s["log_likelihood_start"] for s in c.starts]


def test_random_multistart_records_the_winner(problem):
    X, n, truth = problem
    res = fit_quiet(X, n, 3, init="random", seed=0, **MULTI)
    assert res.init.startswith("random[")
    names = [s["name"] for s in res.starts]
    assert names == [f"random[{i}]" for i in range(4)]
    best = int(np.argmax([s["log_likelihood_short"] for s in res.starts]))
    assert res.init == names[best]
    assert res.init_params.atoms.shape == (3, 4)
    assert res.init_params.weights == pytest.approx(np.full(3, 1 / 3))


def test_batch_of_user_starts(problem):
    X, n, truth = problem
    batch = smm.SMMParams(
        np.stack([POOR.weights, truth.weights, POOR.weights, truth.weights]),
        np.stack([POOR.atoms, truth.atoms, -POOR.atoms, truth.atoms + 0.1]),
    )
    res = fit_quiet(X, n, 3, init=batch, short_iter=5)
    assert [s["name"] for s in res.starts] == [f"user[{i}]" for i in range(4)]
    assert res.init in ("user[1]", "user[3]")
    assert smm.parameter_error(res.params, truth)["atoms"] < 0.2


def test_fit_em_accepts_an_em_result_as_init(problem):
    X, n, truth = problem
    first = fit_quiet(X, n, 3, init=truth)
    again = fit_quiet(X, n, 3, init=first)
    assert again.init == "user"
    assert again.n_iter <= 3
    np.testing.assert_allclose(again.params.atoms, first.params.atoms, atol=1e-4)


def test_zero_weight_class_gives_no_nan(problem):
    X, n, truth = problem
    start = smm.SMMParams(np.array([0.6, 0.4, 0.0]), truth.atoms)
    with pytest.warns(UserWarning, match="collapsed"):
        res = smm.fit_em(X, n, 3, init=start, max_iter=40, tol=0.0)
    assert np.all(np.isfinite(res.params.atoms)) and np.all(np.isfinite(res.params.weights))
    assert np.all(np.isfinite(res.trace))
    assert res.collapsed == (2,)
    assert res.params.weights[2] < em.WEIGHT_FLOOR
    np.testing.assert_allclose(res.params.atoms[2], truth.atoms[2], atol=1e-12)  # frozen
    assert np.all(np.isnan(res.standard_errors.weights))
    assert max_relative_decrease(res.trace) <= 1e-9


def test_standard_errors_in_the_result(problem):
    X, n, truth = problem
    res = smm.fit_em(X, n, 3, init=truth)
    se = res.standard_errors
    assert se.weights.shape == (3,) and se.atoms.shape == (3, 4)
    assert np.all(se.atoms > 0) and np.all(se.weights > 0)
    direct = smm.standard_errors(X, n, res.params)
    np.testing.assert_allclose(se.atoms, direct.atoms, rtol=1e-6)
    np.testing.assert_allclose(se.weights, direct.weights, rtol=1e-6)


def test_k_equal_one(problem):
    X, n, _ = problem
    res = smm.fit_em(X, n, 1, init=smm.SMMParams(np.ones(1), np.zeros((1, 4))))
    assert res.converged
    assert res.params.weights == pytest.approx([1.0])
    assert np.all(res.standard_errors.atoms > 0)
    assert res.standard_errors.weights == pytest.approx([0.0])


# --------------------------------------------------------------------------- #
# Warm starts
# --------------------------------------------------------------------------- #


def test_auto_records_its_starts(problem):
    X, n, truth = problem
    res = fit_quiet(X, n, 3, n_starts=4, seed=1)
    names = [s["name"] for s in res.starts]
    assert "mom" in names and "tensor" in names
    assert sum(name.startswith("subspace[") for name in names) == 4
    assert res.init in names
    assert res.converged
    assert smm.parameter_error(res.params, truth)["atoms"] < 0.2


@pytest.mark.parametrize("name", ["mom", "tensor", "subspace"])
def test_named_warm_starts(problem, name):
    X, n, truth = problem
    res = fit_quiet(X, n, 3, init=name, seed=0, **MULTI)
    assert res.init == name or res.init.startswith(f"{name}[")
    assert np.isfinite(res.log_likelihood)


def test_auto_survives_a_failing_warm_start(problem, monkeypatch):
    from smm_ppl import warmstart

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(warmstart, "tensor_init", broken)
    X, n, _ = problem
    with pytest.warns(UserWarning, match="tensor"):
        res = fit_quiet(X, n, 3, n_starts=5)  # mom + 5 subspace: same batch shape as the test above
    failed = [s for s in res.starts if s["error"]]
    assert [s["name"] for s in failed] == ["tensor"] and "boom" in failed[0]["error"]
    assert res.init != "tensor"


def test_auto_with_more_components_than_features_uses_random_and_data_starts():
    X = smm.simulate_features(5, 500, 2, cov=[[1.0, 0.3], [0.3, 0.6]])
    truth = smm.simulate_params(6, 3, 2, atoms_scale=1.0, min_separation=1.0)
    n = smm.simulate_counts(7, X, truth, 20_000)
    res = fit_quiet(X, n, 3, **MULTI)
    ran = {s["name"].split("[")[0] for s in res.starts if s["error"] is None}
    assert ran == {"random", "split", "clusters"}
    assert any(s["error"] and "K=3 > L=2" in s["error"] for s in res.starts)
    oracle = fit_quiet(X, n, 3, init=truth)
    assert res.log_likelihood >= oracle.log_likelihood - 0.5


# The oracle comparison of the acceptance criteria: from init="auto" the error
# is within a few per cent of that of EM started at the truth.
_ORACLE_CASES = {
    2: dict(weights=[0.65, 0.35], n_obs=200_000),
    3: dict(weights=[0.5, 0.3, 0.2], n_obs=300_000),
    4: dict(weights=[0.4, 0.3, 0.2, 0.1], n_obs=500_000),
    5: dict(weights=[0.3, 0.25, 0.2, 0.15, 0.1], n_obs=1_000_000),
}


def _oracle_problem(K: int):
    L = 5
    rng = np.random.default_rng(100 + K)
    A = rng.normal(size=(L, L))
    cov = A @ A.T / L + 0.5 * np.eye(L)  # non-identity, condition number ~10
    X = smm.simulate_features(10 + K, 4000, L, cov=cov, mean=rng.normal(size=L))
    # Atoms well separated in whitened coordinates (|beta| ~ 1.2), mapped back.
    wh = fit_whitening(X)
    beta = smm.simulate_params(20 + K, K, L, atoms_scale=0.6, min_separation=1.0).atoms
    truth = smm.SMMParams(np.array(_ORACLE_CASES[K]["weights"]), wh.to_original(beta))
    n = smm.simulate_counts(30 + K, X, truth, _ORACLE_CASES[K]["n_obs"])
    return X, n, truth


@pytest.mark.parametrize("K", [2, 3, pytest.param(4, marks=pytest.mark.slow), pytest.param(5, marks=pytest.mark.slow)])
def test_auto_reaches_the_oracle_error(K):
    X, n, truth = _oracle_problem(K)
    oracle = fit_quiet(X, n, K, init=truth, tol=1e-12)
    auto = fit_quiet(X, n, K, init="auto", seed=0, tol=1e-12)
    assert oracle.converged and auto.converged
    e_oracle = smm.parameter_error(oracle.params, truth)
    e_auto = smm.parameter_error(auto.params, truth)
    assert e_auto["atoms"] <= 1.03 * e_oracle["atoms"] + 1e-4, (e_auto, e_oracle, auto.init)
    assert e_auto["weights"] <= 1.03 * e_oracle["weights"] + 1e-5, (e_auto, e_oracle, auto.init)
    assert auto.log_likelihood >= oracle.log_likelihood - 1e-6 * abs(oracle.log_likelihood)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(max_iter=2.5), TypeError, "max_iter"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(tol=float("nan")), ValueError, "tol"),
        (dict(tol="small"), TypeError, "tol"),
        (dict(m_step="bfgs"), ValueError, "m_step"),
        (dict(step_size=0.0), ValueError, "step_size"),
        (dict(step_size=-1.0), ValueError, "step_size"),
        (dict(n_starts=0), ValueError, "n_starts"),
        (dict(n_starts=2.0), TypeError, "n_starts"),
        (dict(short_iter=0), ValueError, "short_iter"),
        (dict(acceleration="anderson"), ValueError, "acceleration"),
        (dict(init="kmeans"), ValueError, "unknown name 'kmeans'"),
        (dict(init=3), TypeError, "init must be one of"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed="a"), TypeError, "seed"),
        (dict(compute_standard_errors="yes"), TypeError, "compute_standard_errors"),
        (dict(progress_bar="yes"), TypeError, "progress_bar"),
        (dict(dtype="float16"), ValueError, "dtype"),
        (dict(devices=0), ValueError, "devices=0"),
    ],
)
def test_invalid_arguments(problem, kwargs, exc, match):
    X, n, _ = problem
    with pytest.raises(exc, match=match):
        smm.fit_em(X, n, 3, **kwargs)


def test_invalid_init_params(problem):
    X, n, truth = problem
    with pytest.raises(ValueError, match="n_components=2"):
        smm.fit_em(X, n, 2, init=truth)
    with pytest.raises(ValueError, match="columns"):
        smm.fit_em(X, n, 3, init=smm.SMMParams(truth.weights, truth.atoms[:, :3]))
    with pytest.raises(ValueError, match="sum to 1"):
        smm.fit_em(X, n, 3, init=smm.SMMParams(np.array([0.5, 0.5, 0.5]), truth.atoms))
    with pytest.raises(ValueError, match="NaN"):
        smm.fit_em(X, n, 3, init=smm.SMMParams(truth.weights, np.full((3, 4), np.nan)))
    with pytest.raises(ValueError, match="same S"):
        smm.fit_em(X, n, 3, init=smm.SMMParams(np.ones((2, 3)) / 3, np.zeros((3, 3, 4))))


def test_invalid_data_and_components(problem):
    X, n, _ = problem
    with pytest.raises(ValueError, match="n_components"):
        smm.fit_em(X, n, 0)
    with pytest.raises(ValueError, match="counts"):
        smm.fit_em(X, n[:-1], 2)
    with pytest.raises(ValueError, match="constant"):
        smm.fit_em(np.column_stack([X, np.ones(len(X))]), n, 2)


def test_subspace_inits_need_k_at_most_l():
    X = smm.simulate_features(5, 200, 2)
    n = np.ones(200, dtype=int)
    with pytest.raises(ValueError, match="n_components <= n_features"):
        smm.fit_em(X, n, 3, init="tensor")


def test_progress_lines_say_what_runs_and_when_it_compiles(problem, capsys):
    X, n, truth = problem
    # 7 items and plain EM with max_iter=3: a program no other test compiles.
    kw = dict(init=truth, max_iter=3, tol=0.0, acceleration="none", compute_standard_errors=False)
    smm.fit_em(X[:7], n[:7], 3, progress_bar=True, **kw)
    first = capsys.readouterr().err
    assert "building the starts" in first and "the winner to convergence" in first
    assert "compiling EM for this shape bucket first" in first
    smm.fit_em(X[:9], n[:9], 3, progress_bar=True, **kw)  # the same bucket: nothing to compile
    second = capsys.readouterr().err
    assert "the winner to convergence" in second and "compiling" not in second
    smm.fit_em(X, n, 3, init=truth, max_iter=5, tol=0.0, progress_bar=True)
    assert "standard errors" in capsys.readouterr().err
    smm.fit_em(X, n, 3, init=truth, max_iter=5, tol=0.0, progress_bar=False)
    assert capsys.readouterr().err == ""


def test_a_long_atom_where_the_likelihood_has_a_maximum_is_not_called_a_runaway(small_problem):
    """An atom made long by hand (a class on a handful of items) on a design whose maximum is finite:
    after two iterations EM stopped at max_iter, and the likelihood falls along the atom's way out, so
    the fit says max_iter, not no_maximum (tests/test_em_map.py has the designs without a maximum)."""
    X, n, truth = small_problem
    long = truth.atoms.copy()
    long[1] *= 40.0 / np.linalg.norm(long[1])
    kw = dict(max_iter=2, compute_standard_errors=False)
    with pytest.warns(smm.ConvergenceWarning, match="did not converge in max_iter=2") as record:
        res = smm.fit_em(X, n, 2, init=smm.SMMParams(truth.weights, long), **kw)
    assert res.stop_reason == "max_iter" and not res.converged
    assert all("no maximum" not in str(r.message) for r in record)


@pytest.mark.parametrize("acceleration", ["lbfgs", "squarem"])
def test_float32_fit_costs_little_accuracy(problem, acceleration):
    """dtype="float32": the same optimum as float64, to a small fraction of a standard error."""
    X, n, truth = problem
    ref = fit_quiet(X, n, 3, init=truth, acceleration=acceleration)
    low = fit_quiet(X, n, 3, init=truth, acceleration=acceleration, dtype="float32")
    assert low.converged
    # The trace is monotone up to the float32 slack of the safeguard.
    assert max_relative_decrease(low.trace) <= em.kernel.slack(np.float32)
    # The reported log-likelihood is evaluated in float64 at the float32 estimate (on the
    # float32-rounded whitened features, hence not to the last digit).
    assert low.log_likelihood == pytest.approx(smm.log_likelihood(X, n, low.params), rel=1e-10)
    # The float32 fit's log-likelihood terms are float32, each to 2**-24 relative and all of one
    # sign, so its objective is known to delta = 2**-24 |log L| (0.044 here): it cannot tell apart
    # estimates whose log-likelihoods differ by less.  In the quadratic approximation at the maximum
    # such estimates lie within sqrt(2 delta) standard errors of it (0.30 here), each coordinate, and
    # their log-likelihood gap is at most delta.  Measured: up to 0.077 SE and a gap of 0.006 (XLA
    # without FMA), a gap of 0.008 on one AVX2 EPYC.  (Bounds that ignore float32's resolution test
    # the CPU's rounding: 1e-8 relative on the gap held on one CPU and missed by 6 % on another, and
    # 0.05 SE missed without FMA.)
    delta = 2.0**-24 * abs(ref.log_likelihood)
    se = smm.standard_errors(X, n, ref.params).atoms
    in_se = np.abs(low.params.atoms - ref.params.atoms) / se
    assert in_se.max() <= np.sqrt(2 * delta), in_se.max()
    assert abs(low.log_likelihood - ref.log_likelihood) <= delta
    np.testing.assert_allclose(smm.standard_errors(X, n, low.params).atoms, se, rtol=1e-2)
