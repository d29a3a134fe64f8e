"""estimate_subspace (docs/math.md#subspace)."""

import warnings

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.warmstart import WarmStartDiagnostics

from _designs import whitened_design


def _design(seed, p, L, K, n_obs, radius=1.2):
    X, truth, beta, wh = whitened_design(seed, p, L, K, radius)
    return X, smm.simulate_counts(seed + 1, X, truth, n_obs), truth, beta, wh


def _sin_angle(U, B):
    """Sine of the largest principal angle between span(U) and span(B)."""
    Q, _ = np.linalg.qr(B)
    s = np.linalg.svd(U.T @ Q, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - s.min() ** 2)))


def test_orthonormal_deterministic_and_close_to_truth():
    X, n, truth, beta, wh = _design(0, 20_000, 6, 3, 500_000)
    U = smm.estimate_subspace(X, n, 3)
    assert U.shape == (6, 3) and U.dtype == np.float64
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(U, smm.estimate_subspace(X, n, 3))
    assert _sin_angle(U, beta.T) < 0.15
    # The atoms (whitened) lie in the span: projecting keeps almost all of their norm.
    kept = np.linalg.norm(beta @ U, axis=1) / np.linalg.norm(beta, axis=1)
    assert kept.min() > 0.98


def test_original_coordinates_basis_spans_original_atoms():
    X, n, truth, beta, wh = _design(1, 20_000, 5, 2, 500_000)
    V = smm.estimate_subspace(X, n, 2, coordinates="original")
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-12)
    assert _sin_angle(V, truth.atoms.T) < 0.15
    # Not the same thing as the whitened basis when the covariance is not the identity.
    U = smm.estimate_subspace(X, n, 2)
    assert _sin_angle(U, V) > 1e-3


def test_angle_to_truth_shrinks_as_p_and_n_grow():
    sizes = [(1_000, 10_000), (6_000, 100_000), (36_000, 1_000_000)]
    angles = []
    for p, N in sizes:
        a = []
        for s in (0, 1):
            X, n, _, beta, _ = _design(s, p, 6, 2, N)
            a.append(_sin_angle(smm.estimate_subspace(X, n, 2), beta.T))
        angles.append(np.mean(a))
    assert angles[0] > angles[1] > angles[2]
    assert angles[2] < 0.5 * angles[0]
    assert angles[2] < 0.1


def test_diagnostics_eigenvalues_and_gap():
    X, n, truth, beta, wh = _design(2, 20_000, 6, 3, 500_000)
    U, diag = smm.estimate_subspace(X, n, 3, return_diagnostics=True)
    assert isinstance(diag, WarmStartDiagnostics)
    ev = diag.subspace_eigenvalues
    assert ev.shape == (6,) and np.all(np.diff(ev) <= 0)
    # Population eigenvalues of sum_k alpha_k beta_k beta_k^T are alpha_k * radius^2 (orthogonal atoms).
    np.testing.assert_allclose(ev[:3], np.sort(truth.weights * 1.2**2)[::-1], atol=0.1)
    assert ev[:3].sum() == pytest.approx(1.2**2, abs=0.1)
    assert np.all(np.abs(ev[3:]) < 0.05)
    assert diag.eigengap == pytest.approx(ev[2] - ev[3])
    assert 0 < diag.relative_eigengap <= 1
    assert diag.gaussian_ok and diag.skewness < 0.2
    assert "subspace" in diag.summary()


def test_weak_k_th_direction_is_noted():
    # Two classes with identical atoms: the data show only one direction besides noise.
    X, n, truth, beta, wh = _design(3, 5_000, 4, 2, 50_000)
    same = smm.SMMParams(np.array([0.5, 0.5]), np.repeat(truth.atoms[:1], 2, axis=0))
    n = smm.simulate_counts(0, X, same, 50_000)
    _, diag = smm.estimate_subspace(X, n, 2, return_diagnostics=True)
    assert diag.relative_eigengap < 0.1
    assert diag.notes  # says the subspace is poorly determined


def test_non_gaussian_design_warns_but_works():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(5_000, 4)) * [1, 2, 3, 4]
    params = smm.SMMParams(np.array([0.5, 0.5]), np.array([[2.0, 0, 0, 0], [0, -1.0, 0, 0]]))
    n = smm.simulate_counts(1, X, params, 50_000)
    with pytest.warns(UserWarning, match="far from Gaussian"):
        U, diag = smm.estimate_subspace(X, n, 2, return_diagnostics=True)
    assert not diag.gaussian_ok and np.all(np.isfinite(U))


def test_gaussian_design_does_not_warn():
    X, n, *_ = _design(4, 5_000, 4, 2, 50_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        smm.estimate_subspace(X, n, 2)


def test_errors():
    X, n, *_ = _design(4, 5_000, 4, 2, 50_000)
    with pytest.raises(ValueError, match="init='random'"):
        smm.estimate_subspace(X, n, 5)
    with pytest.raises(ValueError, match="n_components"):
        smm.estimate_subspace(X, n, 0)
    with pytest.raises(TypeError, match="n_components"):
        smm.estimate_subspace(X, n, 2.0)
    with pytest.raises(ValueError, match="coordinates"):
        smm.estimate_subspace(X, n, 2, coordinates="raw")
    with pytest.raises(TypeError, match="return_diagnostics"):
        smm.estimate_subspace(X, n, 2, return_diagnostics="yes")
    with pytest.raises(ValueError, match="counts"):
        smm.estimate_subspace(X, n[:-1], 2)
    with pytest.raises(ValueError, match="counts"):
        smm.estimate_subspace(X, -n, 2)
    with pytest.raises(ValueError, match="features"):
        smm.estimate_subspace(X[:, 0], n, 1)
