"""Maximum likelihood for the latent-class logit: EM safeguarded into Newton (docs/math.md#choice-situations-and-panels).

Every iteration works on the free vector ``z`` of a :class:`ParameterMap`
(coefficients and membership), a few tens of numbers, through the layout's one
likelihood:

* the **EM direction** is the Newton step of the complete-data objective
  ``Q(z | h) = sum_u w_u sum_k h_uk (log P_k(unit) + log pi_uk)`` at the
  current responsibilities ``h``: a weighted conditional logit per class
  (solved jointly where coefficients are shared) and a weighted MNL of the
  membership, both concave.  By Fisher's identity its gradient is the
  observed gradient, so it is an ascent direction wherever ``Q``'s Hessian is
  negative definite;
* the **Newton direction** of the observed log-likelihood, taken whenever
  its Hessian is negative definite (near an optimum: quadratic convergence,
  so the published digits are reached in a few steps, not thousands of EM
  iterations).

Armijo backtracking on the observed log-likelihood along the Newton direction,
then along the EM direction, keeps every accepted step monotone; a run stops
at a Newton decrement below ``tol`` (the distance to the local maximum in
log-likelihood units), or where no ascent step is found.  That step is
:data:`NEWTON_EM`, an :class:`~smm_ppl.em.driver.EMAlgorithm` over ``(z,)``:
the :mod:`smm_ppl.em` driver runs the starts, one after the other inside its
one compiled program, each to convergence (``run_starts(...,
halving=False)``).

Starts (``init="auto"``): persons split along directions of their scores under
the one-class logit (the leading direction of taste heterogeneity first, then
random ones), each partition turned into parameters by one complete M-step.
The Hermite moment starts do not apply to choice situations (the layout says
``supports_moments = False``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..em.driver import EMAlgorithm, scalar_memory
from .spec import ParameterMap, pooled_map

__all__ = [
    "NewtonEMState",
    "NEWTON_EM",
    "newton_decrement",
    "newton_concave",
    "Derivatives",
    "derivatives",
    "partition_starts",
]

#: Step halvings tried along each direction.
MAX_HALVINGS = 12
#: Armijo constant.
ARMIJO = 1e-4


def total_ll(z, pmap: ParameterMap, layout) -> jax.Array:
    ll_u = pmap.unit_log_likelihoods(z, layout)
    w = jnp.asarray(layout.unit_weights, dtype=ll_u.dtype)
    return jnp.sum(jnp.where(w > 0, w * ll_u, 0.0))


def complete_ll(z, h, pmap: ParameterMap, layout) -> jax.Array:
    """``Q(z | h)``: the complete-data log-likelihood at responsibilities ``h`` (K, U)."""
    joint = layout.log_component_probs(pmap.atoms(z)) + pmap.log_class_probs(z).T
    w = jnp.asarray(layout.unit_weights, dtype=joint.dtype)
    return jnp.sum(w * h * joint)


class Derivatives(NamedTuple):
    """The log-likelihood and its derivatives at ``z`` (see :func:`derivatives`)."""

    ll: jax.Array  # ()
    grad: jax.Array  # (P,)
    information: jax.Array  # (P, P) minus the observed Hessian
    complete_information: jax.Array  # (P, P) minus the Hessian of Q(. | h) at the current h
    unit_scores: jax.Array  # (U, P) d (w_u log L_u) / dz


def derivatives(z, pmap: ParameterMap, layout, h=None) -> Derivatives:
    """Analytic gradient, observed and complete-data information, and per-unit scores at ``z``.

    With ``j_uk = log pi_uk + log P_k(unit u)`` and its gradient ``s_uk``,
    ``log L_u = logsumexp_k j_uk`` has gradient ``g_u = sum_k h_uk s_uk`` and
    Hessian ``sum_k h_uk d^2 j_uk + sum_k h_uk s_uk s_uk^T - g_u g_u^T``
    (Louis' identity: complete information minus the missing information).
    The coefficients enter ``j_uk`` linearly through the atoms (``theta_k =
    A_k z``), so the class curvatures of the layout map to ``A_k^T C_k A_k``;
    the membership block is the MNL Hessian, which does not depend on ``h``.
    Two passes over the rows, no automatic Hessian (several times faster).

    Given responsibilities ``h`` (K, U), ``grad`` and ``unit_scores`` are
    those of ``Q(. | h)`` instead (the M-step's Newton system).
    """
    K = pmap.n_components
    atoms = pmap.atoms(z)
    log_cp = pmap.log_class_probs(z)  # (U, K)
    stats = layout.statistics(jnp.exp(log_cp), atoms @ layout.features_t)
    h, atom_scores, curvature = layout.unit_derivatives(stats, h)
    w = jnp.asarray(layout.unit_weights, dtype=z.dtype)
    ll = jnp.sum(jnp.where(w > 0, w * stats.log_pi, 0.0))

    A = pmap.coefficient_map(z.dtype)  # d theta_k / d z
    s_coef = jnp.einsum("kul,klp->kup", atom_scores, A)
    info_coef = jnp.einsum("klp,klm,kmq->pq", A, curvature, A)

    cov = jnp.asarray(pmap.covariates, dtype=z.dtype)  # (U, C)
    pi = jnp.exp(log_cp)  # (U, K)
    # d log pi_uk / d gamma_cj = (delta_kj - pi_uj) z_uc, mapped to the membership parameters by B (C, K, Pm).
    T = jnp.einsum("uc,cjp->ujp", cov, pmap.membership_map(z.dtype))  # d score_uj / d parameter
    dlog = jnp.eye(K, dtype=z.dtype)[:, None, :] - pi[None, :, :]  # (K, U, K)
    s_mem = jnp.einsum("kuj,ujp->kup", dlog, T)
    mnl = (jax.vmap(jnp.diag)(pi) - pi[:, :, None] * pi[:, None, :]) * w[:, None, None]  # (U, K, K)
    info_mem = jnp.einsum("ujp,ujl,ulq->pq", T, mnl, T)

    scores = jnp.concatenate([s_coef, s_mem], axis=2)  # (K, U, P)
    info_q = jax.scipy.linalg.block_diag(info_coef, info_mem)
    g_u = jnp.einsum("ku,kup->up", h, scores)
    missing = jnp.einsum("u,ku,kup,kuq->pq", w, h, scores, scores) - jnp.einsum("u,up,uq->pq", w, g_u, g_u)
    info = info_q - missing
    return Derivatives(ll, w @ g_u, 0.5 * (info + info.T), info_q, w[:, None] * g_u)


def _solve(neg_hess, g):
    """``neg_hess^{-1} g`` by Cholesky, and whether ``neg_hess`` is positive definite."""
    n = g.shape[0]
    scale = jnp.maximum(jnp.max(jnp.abs(jnp.diag(neg_hess))), 1e-300)
    chol = jnp.linalg.cholesky(neg_hess + 1e-12 * scale * jnp.eye(n, dtype=g.dtype))
    ok = jnp.all(jnp.isfinite(chol))
    d = jax.scipy.linalg.cho_solve((chol, True), g)
    ok = ok & jnp.all(jnp.isfinite(d))
    return jnp.where(ok, d, 0.0), ok


def _line_search(f, z, f0, g, directions, valid):
    """Armijo backtracking along each direction in turn; ``(z_new, f_new, accepted)``."""
    n_dir = len(directions)
    D = jnp.stack(directions)
    V = jnp.stack(valid)
    trials = n_dir * (MAX_HALVINGS + 1)

    def cond(c):
        i, _, _, done = c
        return (i < trials) & ~done

    def body(c):
        i, zb, fb, _ = c
        which = i // (MAX_HALVINGS + 1)
        t = 0.5 ** (i % (MAX_HALVINGS + 1)).astype(z.dtype)
        d = D[which]
        zt = z + t * d
        ft = f(zt)
        ok = V[which] & jnp.isfinite(ft) & (ft >= f0 + ARMIJO * t * jnp.dot(g, d))
        return i + 1, jnp.where(ok, zt, zb), jnp.where(ok, ft, fb), ok

    _, zn, fn, accepted = lax.while_loop(cond, body, (jnp.int32(0), z, f0, jnp.bool_(False)))
    return zn, fn, accepted


class NewtonEMState(NamedTuple):
    """One start of the safeguarded EM/Newton iteration: the free parameters and what the last step found."""

    z: jax.Array  # (P,)
    objective: jax.Array  # () the log-likelihood, less sum(precision z^2) / 2 for a MAP fit
    decrement: jax.Array  # () the Newton decrement at the iterate the last step left (inf: no Newton step)
    accepted: jax.Array  # () bool: the last step found an ascent


class NewtonEMInfo(NamedTuple):
    decrement: jax.Array
    accepted: jax.Array


def _objective(pmap: ParameterMap, layout, precision):
    return lambda z: total_ll(z, pmap, layout) - 0.5 * jnp.sum(precision * z * z)


def _newton_em_init(problem, z, precision) -> NewtonEMState:
    """The state at ``z``; ``problem`` is ``(pmap, layout)``, ``precision`` (P,) the prior's (zeros: ML)."""
    pmap, layout = problem
    f0 = _objective(pmap, layout, precision)(z)
    return NewtonEMState(z, f0, jnp.asarray(jnp.inf, f0.dtype), jnp.bool_(True))


def _newton_em_step(problem, state: NewtonEMState, step_size, precision) -> tuple[NewtonEMState, NewtonEMInfo]:
    """One iteration: Newton where the observed information is positive definite, else the EM direction.

    With ``precision`` (P,), the prior precision of each free parameter (a
    ``Normal(0, 1 / precision)`` prior; 0 leaves a parameter flat), the
    objective is the log posterior ``ll - sum(precision z^2) / 2`` (up to a
    constant): the prior adds ``-precision z`` to the gradient and
    ``diag(precision)`` to both informations.  ``step_size`` is unused (the
    line search chooses it).
    """
    pmap, layout = problem
    z = state.z
    d = derivatives(z, pmap, layout)
    g = d.grad - precision * z
    curvature = jnp.diag(precision)
    d_newton, ok_newton = _solve(d.information + curvature, g)
    d_em, ok_em = _solve(d.complete_information + curvature, g)
    dec = jnp.where(ok_newton, 0.5 * jnp.dot(g, d_newton), jnp.inf)
    f = _objective(pmap, layout, precision)
    zn, fn, accepted = _line_search(f, z, state.objective, g, [d_newton, d_em], [ok_newton, ok_em])
    return NewtonEMState(zn, fn, dec, accepted), NewtonEMInfo(dec, accepted)


def _newton_em_params(state: NewtonEMState) -> tuple:
    return (state.z,)


def _newton_em_stop(problem, old, new: NewtonEMState, memory, tol, precision, check):
    """Stop at a Newton decrement below ``tol`` (converged), or where no ascent step was found (converged only
    if that decrement was below ``tol`` too).  The test keeps nothing between iterations (``memory``: the
    last change of the objective, unused)."""
    converged = new.decrement < tol
    return converged | ~new.accepted, converged, jnp.abs(new.objective - old.objective).astype(memory.dtype)


#: The safeguarded EM/Newton iteration over ``(z,)``, run by :func:`smm_ppl.em.driver.run_starts` on the
#: problem ``(pmap, layout)`` with the prior precision (P,) as its penalty.
NEWTON_EM = EMAlgorithm(_newton_em_init, _newton_em_step, _newton_em_params, _newton_em_stop, scalar_memory)


def newton_decrement(d: Derivatives, z, precision) -> float:
    """The Newton decrement of the objective at ``z`` from its :class:`Derivatives` (inf where the information
    plus the prior's curvature is not positive definite)."""
    z = jnp.asarray(z)
    precision = jnp.asarray(precision, z.dtype)
    g = d.grad - precision * z
    step, ok = _solve(d.information + jnp.diag(precision), g)
    return float(jnp.where(ok, 0.5 * jnp.dot(g, step), jnp.inf))


def newton_concave(value, grad_and_information, z0, *, max_iter: int = 50, tol: float = 1e-10):
    """Newton with backtracking for a concave objective (the one-class fit, the M-step from given ``h``)."""

    def step(carry):
        z, fz, it, _ = carry
        g, info = grad_and_information(z)
        d, ok = _solve(info, g)
        d = jnp.where(ok, d, g)
        zn, fn, accepted = _line_search(value, z, fz, g, [d], [jnp.bool_(True)])
        return zn, fn, it + 1, (~accepted) | (0.5 * jnp.dot(g, d) < tol)

    def cond(c):
        return (c[2] < max_iter) & ~c[3]

    z, _, _, _ = lax.while_loop(cond, step, (z0, value(z0), jnp.int32(0), jnp.bool_(False)))
    return z


def _m_step_from(h, pmap: ParameterMap, layout, z_init):
    def grad_info(z):
        d = derivatives(z, pmap, layout, h)
        return d.grad, d.complete_information

    return newton_concave(lambda z: complete_ll(z, h, pmap, layout), grad_info, z_init)


def _one_class_fit(pmap: ParameterMap, layout):
    def grad_info(z):
        d = derivatives(z, pmap, layout)
        return d.grad, d.information

    z0 = jnp.zeros(pmap.n_params)
    return newton_concave(lambda z: total_ll(z, pmap, layout), grad_info, z0)


def _partition_starts(pmap: ParameterMap, pooled: ParameterMap, layout, key, n_starts: int):
    K = pmap.n_components
    U = layout.n_units
    z_pool = _one_class_fit(pooled, layout)
    scores = derivatives(z_pool, pooled, layout).unit_scores[:, : pooled.n_coefficients]
    lam, vec = jnp.linalg.eigh(scores.T @ scores)
    inv_sqrt = jnp.where(lam > 1e-10 * jnp.maximum(lam[-1], 1e-300), 1.0 / jnp.sqrt(jnp.abs(lam)), 0.0)
    white = scores @ (vec * inv_sqrt)
    _, _, vt = jnp.linalg.svd(white - jnp.mean(white, axis=0), full_matrices=False)
    dirs = jax.random.normal(key, (n_starts, white.shape[1]), dtype=white.dtype).at[0].set(vt[0])
    proj = white @ dirs.T  # (U, n_starts)
    ranks = jnp.argsort(jnp.argsort(proj, axis=0), axis=0)
    labels = jnp.minimum((ranks * K) // U, K - 1)
    h = jnp.transpose(jax.nn.one_hot(labels, K, dtype=white.dtype), (1, 2, 0))  # (n_starts, K, U)
    # Every class starts from the pooled coefficients (fixed entries keep their values).
    pooled_atoms = jnp.broadcast_to(pooled.atoms(z_pool), pmap.index.shape)
    z_init = pmap.pack(pooled_atoms, jnp.zeros((pmap.covariates.shape[1], K), white.dtype))
    return lax.map(lambda hs: _m_step_from(hs, pmap, layout, z_init), h)


_partition_starts_program = jax.jit(_partition_starts, static_argnames=("n_starts",))


def partition_starts(n_starts: int, pmap: ParameterMap, layout, seed: Any) -> np.ndarray:
    """``n_starts`` starts: units split along directions of their one-class scores, then one full M-step each.

    The one-class logit (:func:`~smm_ppl.choice.spec.pooled_map`: a
    coefficient per feature that some class estimates) is fitted first; each unit's
    score under it, whitened by the information, says which way its tastes
    pull.  Start 0 splits along the leading direction of their spread, the
    others along random directions; the split is into ``K`` quantile bins of
    the projection (hard responsibilities).  One compiled program.
    """
    key = jax.random.PRNGKey(seed) if isinstance(seed, (int, np.integer)) else seed
    pooled = pooled_map(pmap).without_names()
    if pooled.n_coefficients == 0:  # only membership to estimate: its likelihood has one maximum
        return np.zeros((1, pmap.n_params))
    return np.asarray(_partition_starts_program(pmap.without_names(), pooled, layout, key, n_starts=n_starts))
