"""The one whitening (smm_ppl.data.whitening) and the prepared data built on it."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.data.prepared import Prepared, prepare
from smm_ppl.data.whitening import fit_whitening


def test_whitened_rows_are_centred_with_identity_covariance_and_atoms_map_back():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    X = rng.standard_normal((500, 3)) @ A + np.array([2.0, -1.0, 0.5])
    wh = fit_whitening(X)
    xt = wh.whiten(X)
    np.testing.assert_allclose(xt.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(xt.T @ xt / len(xt), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(wh.root @ wh.inv_root, np.eye(3), atol=1e-10)
    theta = rng.standard_normal((2, 3))
    np.testing.assert_allclose(wh.to_original(wh.to_whitened(theta)), theta, atol=1e-12)
    # x . theta and xt . beta differ by a constant per class: the softmax is the same
    diff = X @ theta.T - xt @ wh.to_whitened(theta).T
    np.testing.assert_allclose(diff - diff[0], 0.0, atol=1e-9)


def test_likelihood_is_the_same_in_both_coordinates(small_problem):
    X, n, params = small_problem
    prep = prepare(X, n)
    white = smm.SMMParams(params.weights, prep.whitening.to_whitened(params.atoms))
    assert smm.log_likelihood(prep.white, None, white) == pytest.approx(smm.log_likelihood(X, n, params), rel=1e-12)


def test_prepare_validates_once_and_passes_prepared_data_through(small_problem):
    X, n, _ = small_problem
    prep = prepare(X, n)
    assert isinstance(prep, Prepared) and prepare(prep) is prep
    assert prep.layout.n_obs == int(n.sum())
    with pytest.raises(ValueError, match="counts"):
        prepare(X, n[:-1])
    with pytest.raises(ValueError, match="counts must be None"):
        prepare(prep.layout, n)
