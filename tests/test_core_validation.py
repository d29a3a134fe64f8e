"""Every bad input of issue 2 is rejected with a message naming the argument and the problem."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.core.validation import check_counts, check_features, check_key, check_n_components, check_params


@pytest.fixture
def X():
    return smm.simulate_features(0, 20, 3)


@pytest.fixture
def params():
    return smm.SMMParams(np.array([0.5, 0.5]), np.zeros((2, 3)))


def test_valid_inputs_pass_through(X):
    out = check_features(X)
    assert out.dtype == np.float64 and out.shape == (20, 3)
    n = check_counts(np.arange(20.0), 20)
    assert n.dtype == np.int64 and n.sum() == 190


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (np.zeros(5), ValueError, r"features must be 2-D.*reshape\(-1, 1\)"),
        (np.zeros((2, 2, 2)), ValueError, "features must be 2-D"),
        (np.ones((1, 2)), ValueError, "at least 2 items"),
        (np.zeros((5, 0)), ValueError, "at least 1 feature"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "features must hold real numbers"),
        (np.ones((3, 2), dtype=bool), TypeError, "boolean"),
        ("abc", TypeError, "features must be an array"),
        (None, TypeError, "features is None"),
    ],
)
def test_bad_feature_shapes_and_types(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_features(bad)


def test_nan_and_inf_features_rejected(X):
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"features contains 1 NaN or infinite.*row 4, column 1"):
        check_features(bad)
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        check_features(bad)


def test_constant_column_rejected(X):
    bad = np.column_stack([X, np.full(X.shape[0], 2.5)])
    with pytest.raises(ValueError, match=r"column\(s\) \[3\] are constant.*unidentifiable"):
        check_features(bad)


def test_collinear_columns_rejected(X):
    bad = np.column_stack([X, 2 * X[:, 0] - X[:, 1] + 1.0])
    with pytest.raises(ValueError, match="linearly dependent"):
        check_features(bad)


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (-np.ones(20), ValueError, "counts must be non-negative"),
        (np.full(20, 0.5), ValueError, "counts must be whole numbers.*fractional"),
        (np.zeros(20), ValueError, "counts are all zero"),
        (np.ones(19), ValueError, "counts has 19 entries but features has 20"),
        (np.ones((20, 1)), ValueError, "counts must be 1-D"),
        (np.array([np.nan] * 20), ValueError, "counts contains NaN"),
        (np.ones(20, dtype=bool), TypeError, "counts has boolean dtype"),
    ],
)
def test_bad_counts(bad, exc, match):
    with pytest.raises(exc, match=match):
        check_counts(bad, 20)


@pytest.mark.parametrize(
    "k, exc, match",
    [
        (0, ValueError, "n_components must be an integer >= 1"),
        (-2, ValueError, "n_components must be an integer >= 1"),
        (2.0, TypeError, "n_components must be an integer, got the float"),
        ("2", TypeError, "n_components must be an integer"),
        (True, TypeError, "n_components must be an integer"),
        (21, ValueError, r"n_components=21 exceeds the number of items \(20\)"),
    ],
)
def test_bad_n_components(k, exc, match):
    with pytest.raises(exc, match=match):
        check_n_components(k, 20)


def test_numpy_integer_n_components_accepted():
    assert check_n_components(np.int32(3), 20) == 3


def test_bad_params(params):
    with pytest.raises(ValueError, match="params.weights must sum to 1"):
        check_params(smm.SMMParams(np.array([0.5, 0.6]), np.zeros((2, 3))), 3)
    with pytest.raises(ValueError, match="params.weights must be non-negative"):
        check_params(smm.SMMParams(np.array([1.5, -0.5]), np.zeros((2, 3))), 3)
    with pytest.raises(ValueError, match=r"params.atoms has 2 columns but features has 3"):
        check_params(smm.SMMParams(np.array([0.5, 0.5]), np.zeros((2, 2))), 3)
    with pytest.raises(ValueError, match=r"params.atoms must be 2-D of shape \(K, n_features\)"):
        check_params(smm.SMMParams(np.array([0.5, 0.5]), np.zeros((3, 3))), 3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_params(smm.SMMParams(np.array([0.5, 0.5]), np.full((2, 3), np.nan)), 3)
    with pytest.raises(TypeError, match="params must be an SMMParams"):
        check_params({"weights": 1}, 3)
    assert check_params(params, 3).weights.dtype == np.float64


def test_bad_seed():
    with pytest.raises(TypeError, match="seed must be an int or a jax.random key"):
        check_key(1.5)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        check_key(-1)


def test_public_entry_points_validate(X, params):
    counts = np.ones(20, dtype=int)
    with pytest.raises(ValueError, match="counts has 5 entries"):
        smm.log_likelihood(X, np.ones(5), params)
    with pytest.raises(ValueError, match="features contains"):
        smm.log_likelihood(np.full((20, 3), np.nan), counts, params)
    with pytest.raises(ValueError, match="params.atoms has 3 columns but features has 2"):
        smm.simulate_counts(0, X[:, :2], params, 10)
    with pytest.raises(ValueError, match="n_obs must be an integer >= 1"):
        smm.simulate_counts(0, X, params, 0)
    with pytest.raises(ValueError, match=r"cov must have shape"):
        smm.simulate_features(0, 10, 3, cov=np.eye(2))
    with pytest.raises(ValueError, match="positive definite"):
        smm.simulate_features(0, 10, 2, cov=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"draws must be item indices in \[0, 20\)"):
        smm.counts_from_draws([0, 3, 20], 20)


def test_fit_em_constraint_table_covers_its_arguments_and_names_them_in_errors(small_problem):
    import inspect

    from smm_ppl.core.validation import validate_params
    from smm_ppl.em import PARAMETER_CONSTRAINTS

    args = set(inspect.signature(smm.fit_em).parameters)
    assert set(PARAMETER_CONSTRAINTS) <= args
    assert args - set(PARAMETER_CONSTRAINTS) == {"features", "counts", "n_components", "init", "seed"}
    with pytest.raises(KeyError):
        validate_params(PARAMETER_CONSTRAINTS, {"unknown": 1})
    X, n, _ = small_problem
    for kwargs, exc, word in [
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"m_step": "lbfgs"}, ValueError, "m_step"),
        ({"step_size": 0.0}, ValueError, "step_size"),
        ({"acceleration": "anderson"}, ValueError, "acceleration"),
        ({"n_starts": 2.5}, TypeError, "n_starts"),
        ({"compute_standard_errors": "yes"}, TypeError, "compute_standard_errors"),
    ]:
        with pytest.raises(exc, match=word):
            smm.fit_em(X, n, 2, **kwargs)
