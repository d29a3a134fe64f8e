import numpy as np
import pytest

import smm_ppl as smm


def test_match_components_recovers_a_permutation():
    rng = np.random.default_rng(0)
    atoms = rng.normal(size=(5, 3))
    perm = np.array([3, 0, 4, 1, 2])
    shuffled = atoms[perm]
    found = smm.match_components(shuffled, atoms)
    np.testing.assert_array_equal(shuffled[found], atoms)


def test_parameter_error_is_zero_up_to_permutation_and_positive_otherwise():
    truth = smm.SMMParams(np.array([0.2, 0.3, 0.5]), np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]]))
    perm = np.array([2, 0, 1])
    err = smm.parameter_error(smm.SMMParams(truth.weights[perm], truth.atoms[perm]), truth)
    assert err == {"atoms": 0.0, "weights": 0.0}
    moved = smm.SMMParams(truth.weights, truth.atoms + np.array([[0.1, 0.0], [0, 0], [0, 0]]))
    assert smm.parameter_error(moved, truth)["atoms"] == pytest.approx(0.1)


def test_params_dict_round_trip():
    p = smm.SMMParams(np.array([0.4, 0.6]), np.arange(6.0).reshape(2, 3))
    q = smm.SMMParams.from_dict(p.to_dict())
    np.testing.assert_array_equal(q.weights, p.weights)
    np.testing.assert_array_equal(q.atoms, p.atoms)
    assert q.n_components == 2 and q.n_features == 3
