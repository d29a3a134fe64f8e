"""The start registry (smm_ppl.em.starts): one vocabulary of names, applicability, determinism."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.cli import build_parser
from smm_ppl.core.validation import check_key
from smm_ppl.data.prepared import prepare
from smm_ppl.em import INIT_NAMES, START_METHODS, StartMethod, build_starts, register_start
from smm_ppl.em.starts import always_applies


def test_every_registered_start_is_a_valid_init_everywhere(capsys):
    """``smm fit --init`` takes every registered name, in the registry's order, and no other."""
    assert INIT_NAMES[0] == "auto" and set(INIT_NAMES[1:]) == set(START_METHODS)
    parser = build_parser()
    for name in INIT_NAMES:
        assert parser.parse_args(["fit", "data.npz", "-K", "2", "--init", name]).init == name
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["fit", "data.npz", "-K", "2", "--init", "no-such-start"])
    assert refused.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as helped:
        parser.parse_args(["fit", "--help"])
    assert helped.value.code == 0
    assert "--init {" + ",".join(INIT_NAMES) + "}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["mom", "tensor", "subspace", "random"])
def test_each_start_gives_finite_batches_deterministically(small_problem, name):
    X, n, _ = small_problem
    prep = prepare(X, n)
    a = build_starts(name, prep, 2, check_key(3), 5)
    b = build_starts(name, prep, 2, check_key(3), 5)
    S = 5 if START_METHODS[name].batched else 1
    assert a.params.weights.shape == (S, 2) and a.params.atoms.shape == (S, 2, 3)
    assert np.all(np.isfinite(a.params.atoms)) and np.allclose(a.params.weights.sum(axis=1), 1.0)
    np.testing.assert_array_equal(a.params.atoms, b.params.atoms)
    assert len(a.names) == S


def test_moment_starts_declare_that_they_do_not_apply_when_k_exceeds_l(small_problem):
    X, n, _ = small_problem
    prep = prepare(X, n)
    auto = build_starts("auto", prep, 4, check_key(0), 3)
    assert {f["name"] for f in auto.failed if f["skipped"]} == {"tensor", "subspace"}
    assert {name.split("[")[0] for name in auto.names} == {"random", "split", "clusters"}
    with pytest.raises(ValueError, match="does not apply"):
        build_starts("tensor", prep, 4, check_key(0), 3)


def test_unknown_names_and_bad_user_starts_are_rejected(small_problem):
    X, n, params = small_problem
    with pytest.raises(ValueError, match="unknown name 'kmeans'"):
        smm.fit_em(X, n, 2, init="kmeans")
    with pytest.raises(ValueError, match="components"):
        smm.fit_em(X, n, 3, init=params)
    with pytest.raises(TypeError, match="init must be one of"):
        smm.fit_em(X, n, 2, init=42)


def test_a_registered_start_is_used_by_fit_em(small_problem, monkeypatch):
    """A new start is one registration: fit_em accepts its name and runs from it."""
    X, n, params = small_problem
    registry = dict(START_METHODS)
    monkeypatch.setattr("smm_ppl.em.starts.START_METHODS", registry)
    monkeypatch.setattr("smm_ppl.em.starts.INIT_NAMES", ("auto", *registry, "truth"))

    def make(prepared, K, key, n_starts):
        return smm.SMMParams(params.weights[None], params.atoms[None])

    register_start(StartMethod("truth", make, always_applies, False, lambda K: False, 9))
    res = smm.fit_em(X, n, 2, init="truth", compute_standard_errors=False)
    assert res.init == "truth"
    np.testing.assert_allclose(res.init_params.atoms, params.atoms)
    oracle = smm.fit_em(X, n, 2, init=params, compute_standard_errors=False)
    assert res.log_likelihood == pytest.approx(oracle.log_likelihood, rel=1e-12)
