"""The third-moment (Jennrich) warm start (docs/math.md#tensor-start) — beyond the paper."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..core.params import SMMParams
from ..core.programs import jit_program, on_device
from ..core.validation import check_bool, check_key, check_positive_int, host_rng
from ..layouts.items import log_likelihood as log_likelihood_jax
from .mom import candidate_log_likelihoods, clip_norms, floor_start_weights
from .moments import first_moment_jax, second_moment_jax, third_moment_tensor_jax
from .report import effective_items
from .subspace import atom_bound, base_diagnostics, fit_subspace, moment_input

__all__ = ["tensor_init"]

# Eigenvalues of the projected second moment below this fraction of the largest are
# raised to it: M2s^{-1/2} must stay finite when an atom direction is barely supported.
_EIG_FLOOR = 1e-3
_POWER_ITERATIONS = 15


@jit_program(static_argnames=("n_iter",))
def power_refine(tensor, vecs, n_iter):
    """Tensor power iterations ``e <- T(I, e, e) / |T(I, e, e)|`` on each column of ``vecs`` (..., K, K).

    For an orthogonally decomposable ``T = sum_k alpha_k^{-1/2} e_k^{(x)3}`` the
    ``e_k`` are attracting fixed points; starting from Jennrich's eigenvectors
    this removes most of the noise a single random contraction leaves.
    """

    def body(_, v):
        nv = jnp.einsum("abc,...bk,...ck->...ak", tensor, v, v)
        norm = jnp.linalg.norm(nv, axis=-2, keepdims=True)
        sign = jnp.sign(jnp.sum(nv * v, axis=-2, keepdims=True))
        sign = jnp.where(sign == 0, 1.0, sign)
        return jnp.where(norm > 1e-300, sign * nv / jnp.maximum(norm, 1e-300), v)

    return jax.lax.fori_loop(0, n_iter, body, vecs)


def decode(tensor: np.ndarray, vecs: np.ndarray, root: np.ndarray, K: int):
    """Orthonormal ``e_k`` of the whitened tensor -> weights and subspace atoms ``b_k``.

    ``T(e_k, e_k, e_k) = alpha_k^{-1/2}`` gives the scale and the sign at once
    (it is odd in ``e_k``, so ``c_k = T(e_k,e_k,e_k) e_k`` does not depend on
    the eigenvector's arbitrary sign); ``alpha_k <= 1`` bounds it below by 1.
    """
    s = np.einsum("abc,ak,bk,ck->k", tensor, vecs, vecs, vecs)
    mag = np.clip(np.abs(s), 1.0, np.sqrt(K / _MIN_ALPHA_FRACTION))
    s = np.where(s < 0, -mag, mag)
    c = vecs * s[None, :]  # columns c_k
    weights = 1.0 / s**2
    b = (root @ c).T  # rows b_k = M2s^{1/2} c_k
    return weights / weights.sum(), b


_MIN_ALPHA_FRACTION = 0.01


def tensor_init(
    features: Any,
    counts: Any,
    n_components: int,
    seed: Any = 0,
    *,
    n_contractions: int = 10,
    return_diagnostics: bool = False,
):
    """Third-moment (Jennrich) warm start (docs/math.md#tensor-start).

    In the estimated ``K``-dimensional subspace, with projected features
    ``z_j`` and ``M2s = sum_j w_j (z_j z_j^T - I)``, ``W = M2s^{-1/2}``, the
    whitened third Hermite moment is ``T = sum_k alpha_k c_k^{(x)3}`` with
    ``c_k = W b_k`` and ``sqrt(alpha_k) c_k`` orthonormal.  Contracting ``T``
    with a random unit ``u`` gives a symmetric matrix whose eigenvectors are the
    directions of the ``c_k`` (Jennrich).  Each eigenvector set is polished by
    a few tensor power iterations; ``T(e_k, e_k, e_k) = alpha_k^{-1/2}`` gives
    the scale, then ``alpha_k = 1 / |c_k|^2`` and ``b_k = M2s^{1/2} c_k``.
    Both the raw and the polished candidate of every contraction are scored by
    log-likelihood and the best is returned.  No root finding; cost
    ``O(p L^2 + p K^3)`` and polynomial in ``K``, so it stays usable for ``K``
    well past 3 (tested to ``K = 6``).

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,)
        Non-negative integer counts.
    n_components : int
        ``K <= L``.  ``K = 1`` returns the atom given by the first moment.
    seed : int or jax.random key
        Draws the contraction vectors; the same seed gives the same result.
    n_contractions : int
        Number of random contractions tried (default 10).
    return_diagnostics : bool
        Also return a :class:`WarmStartDiagnostics` (contraction vectors,
        candidate log-likelihoods, clipped eigenvalues of ``M2s``, effective
        number of items per class, eigengap, Gaussian-design check).

    Returns
    -------
    params : SMMParams
        Weights ``(K,)`` and atoms ``(K, L)`` in the original coordinates,
        float64 NumPy arrays; weights floored at ``0.01 / K``.
    diagnostics : WarmStartDiagnostics
        Only with ``return_diagnostics=True``.

    Raises
    ------
    ValueError
        When ``n_components > n_features``, naming the fallback (random starts
        in ``R^L`` with EM).

    Warns
    -----
    UserWarning
        When the whitened features are far from Gaussian.
    """
    key = check_key(seed)
    n_contractions = check_positive_int(n_contractions, "n_contractions")
    return_diagnostics = check_bool(return_diagnostics, "return_diagnostics")
    prep = moment_input(features, counts, n_components, "tensor_init")
    K, p = prep.n_components, prep.n_items
    sub = fit_subspace(prep)
    bound = atom_bound(p)
    notes = []

    if K == 1:
        beta = clip_norms(np.asarray(first_moment_jax(prep.xt, prep.w))[None, :], bound)
        weights = np.ones(1)
        params = SMMParams(weights, prep.whitening.to_original(beta))
        if not return_diagnostics:
            return params
        ll = float(log_likelihood_jax(prep.xt, prep.counts, on_device(weights), on_device(beta), prep.valid))
        return params, base_diagnostics(
            prep,
            sub,
            "tensor",
            n_candidates=0,
            log_likelihood=ll,
            effective_items=effective_items(prep.xt, beta, prep.valid),
            notes=("K = 1: the atom is the first latent moment",),
        )

    z = sub.z
    m2s = np.asarray(second_moment_jax(z, prep.w))
    m2s = 0.5 * (m2s + m2s.T)
    ev, evec = np.linalg.eigh(m2s)
    floor = _EIG_FLOOR * max(ev[-1], 1e-12)
    n_clipped = int(np.sum(ev < floor))
    if n_clipped:
        notes.append(
            f"{n_clipped} eigenvalue(s) of the projected second moment M2s were below {floor:.3g} and were "
            "clipped: some atom direction is barely supported by the data"
        )
    ev = np.maximum(ev, floor)
    w_half = (evec / np.sqrt(ev)) @ evec.T  # M2s^{-1/2}
    root = (evec * np.sqrt(ev)) @ evec.T  # M2s^{1/2}
    y = z @ on_device(w_half)
    tensor = np.asarray(third_moment_tensor_jax(y, prep.w, w_half @ w_half))

    dirs = host_rng(key).standard_normal((n_contractions, K))
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = np.where(norms > 0, dirs / np.maximum(norms, 1e-300), np.eye(K)[0])

    raw_vecs = []
    for u in dirs:
        t_u = np.einsum("abc,c->ab", tensor, u)
        t_u = 0.5 * (t_u + t_u.T)
        _, vecs = np.linalg.eigh(t_u)
        raw_vecs.append(vecs)
    raw_vecs = np.stack(raw_vecs)  # (D, K, K), columns e_k
    polished = np.array(power_refine(tensor, raw_vecs, _POWER_ITERATIONS))
    # Power iterations may pull two columns onto the same component: keep such a set only if it stays
    # close to orthonormal, otherwise its raw counterpart stands in.
    for d in range(n_contractions):
        sv = np.linalg.svd(polished[d], compute_uv=False)
        if not np.all(np.isfinite(polished[d])) or sv[-1] < 0.5:
            polished[d] = raw_vecs[d]

    cand_w = np.empty((2 * n_contractions, K))
    cand_b = np.empty((2 * n_contractions, K, K))
    for i, vecs in enumerate(np.concatenate([raw_vecs, polished])):
        a, b = decode(tensor, vecs, root, K)
        cand_w[i] = floor_start_weights(a)
        cand_b[i] = clip_norms(np.where(np.isfinite(b), b, 0.0), bound)
    lls = candidate_log_likelihoods(z, prep.counts, cand_w, cand_b, prep.valid)
    if not np.any(np.isfinite(lls)):
        notes.append("every contraction degenerated; fell back to atoms spread along the subspace axes")
        cand_b[0] = np.diag(np.sqrt(np.clip(sub.eigenvalues[:K], 1e-4, None)))
        cand_w[0] = np.full(K, 1.0 / K)
        lls[0] = float(candidate_log_likelihoods(z, prep.counts, cand_w[:1], cand_b[:1], prep.valid)[0])
    best = int(np.argmax(lls))
    beta = cand_b[best] @ sub.basis.T
    params = SMMParams(
        np.asarray(cand_w[best], dtype=np.float64), np.asarray(prep.whitening.to_original(beta), dtype=np.float64)
    )
    if not return_diagnostics:
        return params
    # One score per contraction: the better of its raw and polished candidates.
    per_dir = np.maximum(lls[:n_contractions], lls[n_contractions:])
    notes.append(
        f"returned the {'polished' if best >= n_contractions else 'raw'} eigenvectors of contraction "
        f"{best % n_contractions}"
    )
    diag = base_diagnostics(
        prep,
        sub,
        "tensor",
        n_candidates=n_contractions,
        directions=dirs,
        candidate_log_likelihoods=per_dir,
        best_index=best % n_contractions,
        log_likelihood=float(lls[best]),
        effective_items=effective_items(prep.xt, beta, prep.valid),
        clipped_eigenvalues=n_clipped,
        notes=tuple(notes),
    )
    return params, diag
