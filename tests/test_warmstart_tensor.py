"""tensor_init: the third-moment (Jennrich) warm start (docs/math.md#tensor-start)."""

import jax.numpy as jnp
import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.warmstart.tensor import decode, power_refine

from _designs import design_with_counts as _design  # noqa: E402
from _designs import local_em  # noqa: E402
from _designs import whitened_error as _whitened_error  # noqa: E402


@pytest.mark.parametrize("K,seed", [(2, 0), (4, 1), (6, 2)])
def test_tensor_lands_in_truth_basin(K, seed):
    X, n, truth, wh = _design(seed, 20_000, 8, K, 1_000_000)
    p0, diag = smm.tensor_init(X, n, K, seed=0, return_diagnostics=True)
    assert p0.weights.shape == (K,) and p0.atoms.shape == (K, 8)
    assert np.all(np.isfinite(p0.atoms)) and p0.weights.sum() == pytest.approx(1.0)
    separation = 1.3 * np.sqrt(2)
    err = _whitened_error(p0, truth, wh)
    # Every warm-start atom is nearer its own true atom than to any other: inside the basin directly.
    assert err["atoms"] < 0.5 * separation
    assert err["weights"] < 0.15
    em_warm, em_oracle = local_em(X, n, p0), local_em(X, n, truth)
    assert smm.parameter_error(em_warm, em_oracle)["atoms"] < 0.02
    assert diag.clipped_eigenvalues == 0 and diag.gaussian_ok
    assert diag.best_index == int(np.argmax(diag.candidate_log_likelihoods))
    assert diag.log_likelihood == pytest.approx(smm.log_likelihood(X, n, p0), rel=1e-9)


def test_decode_recovers_exact_population_parameters():
    """With the exact whitened tensor, Jennrich + decoding returns the truth (no noise, no approximation)."""
    rng = np.random.default_rng(0)
    K = 5
    b = rng.standard_normal((K, K))
    alpha = rng.dirichlet(np.full(K, 5.0))
    m2s = (b.T * alpha) @ b
    ev, evec = np.linalg.eigh(m2s)
    w_half = (evec / np.sqrt(ev)) @ evec.T
    root = (evec * np.sqrt(ev)) @ evec.T
    c = b @ w_half  # rows c_k = W b_k
    T = np.einsum("k,ka,kb,kc->abc", alpha, c, c, c)
    u = rng.standard_normal(K)
    _, vecs = np.linalg.eigh(np.einsum("abc,c->ab", T, u))
    for v in (vecs, np.asarray(power_refine(jnp.asarray(T), jnp.asarray(vecs), 10))):
        a_hat, b_hat = decode(T, v, root, K)
        order = [int(np.argmin(np.linalg.norm(b_hat - bk, axis=1))) for bk in b]
        np.testing.assert_allclose(b_hat[order], b, atol=1e-8)
        np.testing.assert_allclose(a_hat[order], alpha, atol=1e-8)


def test_deterministic_k1_and_degenerate_inputs():
    X, n, truth, wh = _design(3, 5_000, 4, 3, 200_000)
    p1 = smm.tensor_init(X, n, 3, seed=5, n_contractions=4)
    p2 = smm.tensor_init(X, n, 3, seed=5, n_contractions=4)
    np.testing.assert_array_equal(p1.atoms, p2.atoms)
    X1, n1, truth1, wh1 = _design(4, 5_000, 4, 1, 200_000)
    p0 = smm.tensor_init(X1, n1, 1)
    assert _whitened_error(p0, truth1, wh1)["atoms"] < 0.1
    # Three classes whose atoms span only two directions: M2s is near-singular; clipped, recorded, finite.
    flat = smm.SMMParams(np.full(3, 1 / 3), np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 1.0, 0, 0]]) @ wh.inv_root)
    nf = smm.simulate_counts(0, X, flat, 200_000)
    pf, d = smm.tensor_init(X, nf, 3, n_contractions=4, return_diagnostics=True)
    assert np.all(np.isfinite(pf.atoms)) and np.all(np.isfinite(pf.weights))
    assert d.eigengap < 0.1 * d.subspace_eigenvalues[0]
    one_item = np.zeros_like(n)
    one_item[0] = 10
    po = smm.tensor_init(X, one_item, 3, n_contractions=4)
    assert np.all(np.isfinite(po.atoms)) and np.all(np.isfinite(po.weights))


def test_errors_name_fallbacks():
    X, n, truth, wh = _design(5, 2_000, 3, 2, 10_000)
    with pytest.raises(ValueError, match="init='random'"):
        smm.tensor_init(X, n, 4)
    with pytest.raises(ValueError, match="n_contractions"):
        smm.tensor_init(X, n, 2, n_contractions=0)
    with pytest.raises(TypeError, match="seed"):
        smm.tensor_init(X, n, 2, seed=1.5)
    with pytest.raises(TypeError, match="n_components"):
        smm.tensor_init(X, n, "2")
    with pytest.raises(ValueError, match="features"):
        smm.tensor_init(np.c_[X, X[:, :1]], n, 2)
