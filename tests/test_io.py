import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.io import load_array, load_data, load_params, save_params


@pytest.fixture
def data():
    X = smm.simulate_features(0, 30, 2)
    n = np.arange(30) % 4
    return X, n


def test_npz_with_features_and_counts(tmp_path, data):
    X, n = data
    np.savez(tmp_path / "d.npz", features=X, counts=n)
    d = load_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(d.features, X)
    np.testing.assert_array_equal(d.counts, n)


def test_csv_with_header_and_npy(tmp_path, data):
    X, n = data
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", header="a,b", comments="")
    np.save(tmp_path / "n.npy", n)
    d = load_data(tmp_path / "X.csv", counts=tmp_path / "n.npy")
    np.testing.assert_allclose(d.features, X, rtol=1e-15)
    np.testing.assert_array_equal(d.counts, n)


def test_draws_reduce_to_counts(tmp_path, data):
    X, n = data
    draws = np.repeat(np.arange(30), n)
    np.savetxt(tmp_path / "draws.csv", draws, fmt="%d")
    np.save(tmp_path / "X.npy", X)
    d = load_data(tmp_path / "X.npy", draws=tmp_path / "draws.csv")
    np.testing.assert_array_equal(d.counts, n)


def test_bad_files_are_clear_errors(tmp_path, data):
    X, n = data
    with pytest.raises(FileNotFoundError, match="features: no such file"):
        load_data(tmp_path / "missing.npy", counts=tmp_path / "n.npy")
    (tmp_path / "x.txt").write_text("1,2")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        load_array(tmp_path / "x.txt")
    (tmp_path / "bad.csv").write_text("a,b\n1,x\n")
    with pytest.raises(ValueError, match="not a CSV of numbers"):
        load_array(tmp_path / "bad.csv")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "short.npy", n[:10])
    with pytest.raises(ValueError, match="counts has 10 entries but features has 30"):
        load_data(tmp_path / "X.npy", counts=tmp_path / "short.npy")
    np.savez(tmp_path / "nocounts.npz", features=X)
    with pytest.raises(ValueError, match="no 'counts' or 'draws'"):
        load_data(tmp_path / "nocounts.npz")


def test_params_json_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(3))
    params = smm.SMMParams(w, rng.normal(size=(3, 4)))
    se = smm.SMMParams(np.abs(rng.normal(size=3)), np.abs(rng.normal(size=(3, 4))))
    path = save_params(tmp_path / "fit.json", params, se, log_likelihood=-12.5, n_iter=np.int64(7))
    p2, se2, meta = load_params(path)
    np.testing.assert_array_equal(p2.weights, params.weights)
    np.testing.assert_array_equal(p2.atoms, params.atoms)
    np.testing.assert_array_equal(se2.atoms, se.atoms)
    assert meta == {"log_likelihood": -12.5, "n_iter": 7}
