"""The paper's method-of-moments warm start (docs/math.md#method-of-moments)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..core.params import SMMParams, floor_weights
from ..core.programs import batch_size, jit_program, on_device
from ..core.validation import check_bool, check_key, check_positive_int, host_rng
from ..layouts.items import log_likelihood as log_likelihood_jax
from .moments import directional_moments_jax, first_moment_jax, mixed_moments_jax
from .report import effective_items
from .subspace import atom_bound, base_diagnostics, fit_subspace, moment_input

__all__ = ["mom_init"]

# Moments of order 2K - 1 of a Gaussian design have noise growing like sqrt((2K-1)!):
# past this K the quadrature is numerically meaningless (the paper: exponential decay).
MAX_COMPONENTS_MOM = 8
# No class starts EM with less weight than this fraction of 1/K: EM cannot revive a dead class.
START_WEIGHT_FLOOR = 0.01
# The denoised quadrature must give every class at least this fraction of 1/K: a
# tiny weight attached to a far atom is how noise in the high moments shows up.
_MIN_QUAD_WEIGHT = 0.1


def gauss_quadrature(m: np.ndarray, K: int, bound: float, min_weight: float = 0.0):
    """Atoms and weights of the ``K``-point quadrature matching ``m_0 .. m_{2K-1}``.

    Returns ``None`` when ``m`` is not the moment vector of ``K`` distinct atoms
    in ``[-bound, bound]`` with non-negative weights: a Hankel matrix that is not
    positive definite, complex, repeated or runaway roots, negative weights.
    """
    hankel = np.array([[m[i + j] for j in range(K)] for i in range(K)])
    if not np.all(np.isfinite(hankel)):
        return None
    ev = np.linalg.eigvalsh(0.5 * (hankel + hankel.T))
    if ev[0] <= 1e-10 * max(1.0, ev[-1]):
        return None
    try:
        coef = np.linalg.solve(hankel, -m[K : 2 * K])
    except np.linalg.LinAlgError:
        return None
    roots = np.roots(np.concatenate([[1.0], coef[::-1]]))
    if roots.shape[0] != K or np.any(np.abs(roots.imag) > 1e-8 * (1.0 + np.abs(roots))):
        return None
    t = np.sort(roots.real)
    if np.any(np.abs(t) > bound) or (K > 1 and np.min(np.diff(t)) < 1e-6 * (1.0 + np.abs(t).max())):
        return None
    vander = t[None, :] ** np.arange(K)[:, None]
    try:
        a = np.linalg.solve(vander, m[:K])
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(a)) or np.any(a < min_weight - 1e-10):
        return None
    a = np.clip(a, 0.0, None)
    return t, a / a.sum()


def _unpack(x, K, bound, min_weight):
    """Atoms ``bound * tanh`` and floored-softmax weights of rows ``x`` (B, 2K); also ``tanh`` and the softmax."""
    th = np.tanh(x[:, :K])
    z = x[:, K:]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    return bound * th, min_weight + (1.0 - K * min_weight) * sm, th, sm


#: Damping beyond which a row's steps are vanishingly short: it has converged.
_LM_STALLED = 1e10


def _solve_rows(A, b):
    """Batched solve; a singular row gets a NaN step (rejected, its damping grows) instead of an error."""
    try:
        return np.linalg.solve(A, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        out = np.full_like(b, np.nan)
        for i in range(A.shape[0]):
            try:
                out[i] = np.linalg.solve(A[i], b[i])
            except np.linalg.LinAlgError:
                pass
        return out


def _fit_moments_batch(target, inv_scale, x0, bound, min_weight, K, n_iter=150):
    """Levenberg-Marquardt fits of ``K`` atoms and weights to moments, batched over rows (NumPy).

    The box ``|t| <= bound`` and the simplex with floor ``min_weight`` are built
    into the parametrisation (``tanh`` and a floored softmax), so every iterate
    is feasible and no root can run away or turn complex.  The Jacobian is in
    closed form; the problem is ``2K`` parameters per row, so the whole batch
    costs milliseconds on the host and compiles nothing.
    """
    powers = np.arange(1, 2 * K)
    eye = np.eye(2 * K)

    def residual(x):
        t, a, th, sm = _unpack(x, K, bound, min_weight)
        T = t[:, None, :] ** powers[None, :, None]  # (B, 2K-1, K)
        return (np.einsum("brk,bk->br", T, a) - target) * inv_scale, (t, a, th, sm, T)

    def jacobian(parts):
        t, a, th, sm, T = parts
        dT = powers[None, :, None] * t[:, None, :] ** (powers[None, :, None] - 1)
        j_atoms = dT * (a * bound * (1.0 - th * th))[:, None, :]
        d_weights = (1.0 - K * min_weight) * (sm[:, :, None] * (np.eye(K)[None] - sm[:, None, :]))
        j_weights = np.einsum("brk,bkl->brl", T, d_weights)
        return np.concatenate([j_atoms, j_weights], axis=2) * inv_scale[:, :, None]

    x = np.array(x0, dtype=np.float64)
    lam = np.full(x.shape[0], 1e-3)
    r, parts = residual(x)
    cost = np.sum(r * r, axis=1)
    with np.errstate(all="ignore"):
        for _ in range(n_iter):
            J = jacobian(parts)
            H = np.einsum("bri,brj->bij", J, J)
            g = np.einsum("bri,br->bi", J, r)
            damping = np.einsum("bii->bi", H)[:, :, None] * eye + 1e-9 * eye
            step = _solve_rows(H + lam[:, None, None] * damping, g)
            r_new, parts_new = residual(x - step)
            cost_new = np.sum(r_new * r_new, axis=1)
            ok = np.isfinite(cost_new) & (cost_new < cost)
            x = np.where(ok[:, None], x - step, x)
            cost = np.where(ok, cost_new, cost)
            lam = np.where(ok, lam * 0.3, lam * 4.0)
            if np.all(lam > _LM_STALLED):  # every row rejects even tiny steps: converged
                break
            # The accepted rows' residuals are the trial's: no second evaluation.
            r = np.where(ok[:, None], r_new, r)
            parts = tuple(
                np.where(ok.reshape((-1,) + (1,) * (new.ndim - 1)), new, old) for new, old in zip(parts_new, parts)
            )
    t, a, _, _ = _unpack(x, K, bound, min_weight)
    return t, a, cost


def _starting_points(m: np.ndarray, K: int, bound: float, min_weight: float) -> list:
    """Atoms and weights to start the projection from: a Gaussian-quadrature guess, an even spread, the raw roots."""
    starts = []
    mean = float(np.clip(m[1], -0.9 * bound, 0.9 * bound))
    sd = float(np.sqrt(max(m[2] - m[1] ** 2, 1e-4)))
    nodes, gw = hermegauss(K)
    starts.append((mean + sd * nodes, gw / gw.sum()))
    starts.append((np.linspace(-0.5 * bound, 0.5 * bound, K), np.full(K, 1.0 / K)))
    roots = None
    try:
        hankel = np.array([[m[i + j] for j in range(K)] for i in range(K)])
        coef = np.linalg.lstsq(hankel, -m[K : 2 * K], rcond=None)[0]
        roots = np.roots(np.concatenate([[1.0], coef[::-1]]))
    except (np.linalg.LinAlgError, ValueError):
        pass
    if roots is not None and roots.shape[0] == K and np.all(np.isfinite(roots)):
        starts.append((np.sort(roots.real), np.full(K, 1.0 / K)))
    else:
        starts.append(starts[0])
    out = []
    for t0, a0 in starts:
        t0 = np.clip(np.asarray(t0, dtype=np.float64), -0.95 * bound, 0.95 * bound)
        a0 = np.clip((np.asarray(a0) - min_weight) / max(1.0 - K * min_weight, 1e-12), 1e-6, None)
        out.append(np.concatenate([np.arctanh(t0 / bound), np.log(a0 / a0.sum())]))
    return out


def project_moments_batch(m: np.ndarray, scale: np.ndarray, K: int, bound: float, min_weight: float):
    """Project each row of ``m`` (D, 2K) onto the moments of ``K`` atoms in ``[-bound, bound]``.

    Noise-weighted least squares (residual of ``m_r`` divided by its noise
    scale) over atoms in the box and weights on the simplex with floor
    ``min_weight``; the best of three starting points per row.  This is the
    projection of step 2 of docs/math.md#method-of-moments: the fitted distribution's
    moments are the denoised ones and its atoms their Gauss quadrature nodes.

    Returns atoms ``(D, K)`` sorted, weights ``(D, K)``, and the relative
    (noise-weighted) change of the moment vector ``(D,)``.
    """
    D = m.shape[0]
    target = m[:, 1 : 2 * K]
    inv_scale = 1.0 / np.maximum(scale[:, 1 : 2 * K], 1e-12)
    x0 = np.stack([x for d in range(D) for x in _starting_points(m[d], K, bound, min_weight)])
    n_starts = x0.shape[0] // D
    t, a, cost = _fit_moments_batch(
        np.repeat(target, n_starts, axis=0), np.repeat(inv_scale, n_starts, axis=0), x0, bound, min_weight, K
    )
    t, a, cost = (np.asarray(v).reshape((D, n_starts) + np.shape(v)[1:]) for v in (t, a, cost))
    cost = np.where(np.isfinite(cost), cost, np.inf)
    best = np.argmin(cost, axis=1)
    t, a = t[np.arange(D), best], a[np.arange(D), best]
    order = np.argsort(t, axis=1)
    t, a = np.take_along_axis(t, order, 1), np.take_along_axis(a, order, 1)
    bad = ~(np.all(np.isfinite(t), axis=1) & np.all(np.isfinite(a), axis=1))
    t[bad] = np.linspace(-0.5 * bound, 0.5 * bound, K)
    a[bad] = 1.0 / K
    powers = np.arange(1, 2 * K)
    fitted = np.einsum("dkr,dk->dr", t[:, :, None] ** powers[None, None, :], a)
    change = np.linalg.norm((fitted - target) * inv_scale, axis=1) / np.maximum(
        np.linalg.norm(target * inv_scale, axis=1), 1e-300
    )
    return t, a, change


def _other_coordinates(t, a, g, scale, bound):
    """Solve the mixed-moment Vandermonde systems ``sum_k a_k t_k^r c_k = g_r`` for ``c`` (K, M).

    A ridge term keeps the solve finite when two atoms nearly coincide or a
    weight is tiny; ``g`` has orders ``0..K`` (one more equation than
    unknowns, for stability).
    """
    R = g.shape[0]
    A = (t[None, :] ** np.arange(R)[:, None]) * a[None, :]  # (R, K)
    d = 1.0 / np.maximum(scale[:R], 1e-12)
    Aw, gw = A * d[:, None], g * d[:, None]
    gram = Aw.T @ Aw
    ridge = 1e-8 * max(np.trace(gram), 1e-300)
    c = np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), Aw.T @ gw)
    return c


def clip_norms(b: np.ndarray, bound: float) -> np.ndarray:
    norms = np.linalg.norm(b, axis=-1, keepdims=True)
    return b * np.minimum(1.0, bound / np.maximum(norms, 1e-300))


def floor_start_weights(a: np.ndarray) -> np.ndarray:
    """A warm start's weights, floored at ``START_WEIGHT_FLOOR / K``."""
    return floor_weights(a, START_WEIGHT_FLOOR / a.shape[-1])


def _batched_ll(z, counts, weights, atoms, valid):
    # Candidates in batches: all of them at once would hold (candidates, p, K) logits.
    size = batch_size(weights.shape[0], 3 * z.shape[0] * weights.shape[1])
    return jax.lax.map(lambda wa: log_likelihood_jax(z, counts, wa[0], wa[1], valid), (weights, atoms), batch_size=size)


_batched_ll = jit_program(_batched_ll)


def candidate_log_likelihoods(z, counts, weights, atoms, valid=None) -> np.ndarray:
    ll = np.asarray(_batched_ll(z, counts, np.asarray(weights), np.asarray(atoms), valid))
    return np.where(np.isfinite(ll), ll, -np.inf)


def mom_init(
    features: Any,
    counts: Any,
    n_components: int,
    seed: Any = 0,
    *,
    n_directions: int = 10,
    return_diagnostics: bool = False,
):
    """The paper's method-of-moments warm start (docs/math.md#method-of-moments).

    1. Estimate the ``K``-dimensional latent subspace (:func:`estimate_subspace`)
       and project the whitened features on it.
    2. For each of ``n_directions`` random unit directions ``v`` in the subspace,
       estimate the Hermite moments ``m_0 .. m_{2K-1}`` along ``v``.
    3. Denoise: when the moments are not those of ``K`` distinct atoms in the
       bounded interval ``[-B, B]`` (``B = sqrt(2 log p) + 1``) with
       non-negative weights, replace them by the closest (noise-weighted least
       squares) such moment vector. No complex or runaway root passes.
    4. Gauss quadrature gives the atoms ``t_k`` along ``v``; the Vandermonde
       system on the simplex gives the weights.
    5. The mixed moments give the other coordinates by linear Vandermonde
       systems.
    6. Map back to the original coordinates and keep the direction whose
       candidate has the highest log-likelihood.

    Its quality degrades quickly with ``K`` (the paper: exponentially); for
    ``K`` beyond 3 or 4 prefer :func:`tensor_init` or
    :func:`subspace_random_inits`.

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,)
        Non-negative integer counts.
    n_components : int
        ``K``, at most ``min(L, 8)``. ``K = 1`` returns the atom given by the
        first moment.
    seed : int or jax.random key
        Draws the directions; the same seed gives the same result.
    n_directions : int
        Number of random directions tried (default 10).
    return_diagnostics : bool
        Also return a :class:`WarmStartDiagnostics` (directions, per-direction
        log-likelihoods, whether denoising changed the moments, effective
        number of items per class, eigengap, Gaussian-design check).

    Returns
    -------
    params : SMMParams
        Weights ``(K,)`` and atoms ``(K, L)`` in the original coordinates, as
        float64 NumPy arrays. Weights are floored at ``0.01 / K``.
    diagnostics : WarmStartDiagnostics
        Only with ``return_diagnostics=True``.

    Raises
    ------
    ValueError
        When ``n_components > n_features`` or ``n_components > 8``, naming the
        fallback (random starts, ``tensor_init``, ``subspace_random_inits``).

    Warns
    -----
    UserWarning
        When the whitened features are far from Gaussian.
    """
    key = check_key(seed)
    n_directions = check_positive_int(n_directions, "n_directions")
    return_diagnostics = check_bool(return_diagnostics, "return_diagnostics")
    prep = moment_input(features, counts, n_components, "mom_init")
    K, p = prep.n_components, prep.n_items
    if K > MAX_COMPONENTS_MOM:
        raise ValueError(
            f"mom_init supports n_components <= {MAX_COMPONENTS_MOM}: it needs Hermite moments of order "
            f"2K - 1 = {2 * K - 1}, whose noise grows factorially. Use tensor_init (third moments only) or "
            "subspace_random_inits with EM instead."
        )
    sub = fit_subspace(prep)
    bound = atom_bound(p)
    min_weight = _MIN_QUAD_WEIGHT / K
    notes = []

    if K == 1:
        beta = np.asarray(first_moment_jax(prep.xt, prep.w))[None, :]
        beta = clip_norms(beta, bound)
        weights = np.ones(1)
        atoms = prep.whitening.to_original(beta)
        params = SMMParams(weights, atoms)
        if not return_diagnostics:
            return params
        ll = float(log_likelihood_jax(prep.xt, prep.counts, on_device(weights), on_device(beta), prep.valid))
        diag = base_diagnostics(
            prep,
            sub,
            "mom",
            n_candidates=0,
            log_likelihood=ll,
            effective_items=effective_items(prep.xt, beta, prep.valid),
            notes=("K = 1: the atom is the first latent moment",),
        )
        return params, diag

    z = sub.z
    dirs = host_rng(key).standard_normal((n_directions, K))
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs = np.where(norms > 0, dirs / np.maximum(norms, 1e-300), np.eye(K)[0])
    others = np.stack([np.linalg.qr(np.column_stack([v, np.eye(K)]))[0][:, 1:K] for v in dirs])  # (D, K, K-1)
    others = np.transpose(others, (0, 2, 1))  # (D, K-1, K)

    m, m_second = directional_moments_jax(z, prep.w, dirs, 2 * K - 1)
    m, scale = np.asarray(m), np.sqrt(np.asarray(m_second))
    g = np.asarray(mixed_moments_jax(z, prep.w, dirs, others, K))  # (D, K+1, K-1)

    cand_w = np.empty((n_directions, K))
    cand_b = np.empty((n_directions, K, K))
    change = np.zeros(n_directions)
    quads = [gauss_quadrature(m[d], K, bound, min_weight) for d in range(n_directions)]
    denoised = np.array([q is None for q in quads])
    if denoised.any():
        # Projected for every direction, so that the jitted fit sees one shape per (n_directions, K).
        proj_t, proj_a, proj_change = project_moments_batch(m, scale, K, bound, min_weight)
        change[denoised] = proj_change[denoised]
    for d in range(n_directions):
        if denoised[d]:
            t, a = proj_t[d], proj_a[d]
        else:
            t, a = quads[d]
        c = _other_coordinates(t, a, g[d], scale[d], bound)  # (K, K-1)
        b = t[:, None] * dirs[d][None, :] + c @ others[d]
        cand_b[d] = clip_norms(np.where(np.isfinite(b), b, 0.0), bound)
        cand_w[d] = floor_start_weights(a)

    lls = candidate_log_likelihoods(z, prep.counts, cand_w, cand_b, prep.valid)
    if not np.any(np.isfinite(lls)):
        # Every candidate degenerated (cannot happen with finite clipped inputs, but never return NaN):
        # spread the atoms along the subspace axes by the eigenvalue scale.
        notes.append("every direction degenerated; fell back to atoms spread along the subspace axes")
        spread = np.sqrt(np.clip(sub.eigenvalues[:K], 1e-4, None))
        cand_b[0] = np.diag(spread) * np.where(np.arange(K) % 2 == 0, 1.0, -1.0)[:, None]
        cand_w[0] = np.full(K, 1.0 / K)
        lls[0] = float(candidate_log_likelihoods(z, prep.counts, cand_w[:1], cand_b[:1], prep.valid)[0])
    best = int(np.argmax(lls))
    beta = cand_b[best] @ sub.basis.T  # (K, L) whitened
    atoms = prep.whitening.to_original(beta)
    params = SMMParams(np.asarray(cand_w[best], dtype=np.float64), np.asarray(atoms, dtype=np.float64))
    if not return_diagnostics:
        return params
    if denoised.any():
        notes.append(f"denoising projected the moments along {int(denoised.sum())} of {n_directions} directions")
    diag = base_diagnostics(
        prep,
        sub,
        "mom",
        n_candidates=n_directions,
        directions=dirs,
        candidate_log_likelihoods=lls,
        best_index=best,
        log_likelihood=float(lls[best]),
        denoised=denoised,
        moment_change=change,
        effective_items=effective_items(prep.xt, beta, prep.valid),
        notes=tuple(notes),
    )
    return params, diag
