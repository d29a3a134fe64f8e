"""Expectation-maximisation for softmax mixtures (SPEC sections 4 and 7).

Design
------
* Everything runs in centred, whitened coordinates: ``xt_j = Sigma_hat^{-1/2}
  (x_j - xbar)`` and ``beta_k = Sigma_hat^{1/2} theta_k`` (so that
  ``xt_j . beta_k = (x_j - xbar) . theta_k``; centring is free by shift
  invariance).  There the Hessian of each class's weighted logit is close to
  minus the identity, which is what makes the paper's single gradient step with
  ``step_size = 1`` a sensible M-step.  Results are mapped back at the end.
* The algorithm is a pure ``init``/``update`` pair over a :class:`EMState`
  NamedTuple (Optax/BlackJAX style).  The driver is one jitted
  ``lax.while_loop``; several starts run at once under ``vmap``.
* Cost per plain iteration: the two unavoidable passes over the features,
  ``R @ Xt`` with the residual ``R = w gamma / alpha - sigma`` (the M-step
  gradient; the Newton M-step uses ``[w gamma ; sigma] @ Xt``, it needs the
  class means on their own) and ``B @ Xt.T`` (the new logits), plus a few
  memory-bound passes over ``(K, p)`` arrays, of which one exponential:
  ``exp(logits - max)`` gives the normalisers over items, ``sigma``, the
  mixture probabilities ``pi`` (in linear space) and the responsibilities
  ``alpha sigma / pi``.  Only when some observed item's ``pi`` underflows
  (extreme logits) are ``log pi`` and the responsibilities computed in log
  space instead, behind a ``lax.cond``.  The log-likelihood at the new point,
  which the monotonicity safeguard needs, comes with this E-step, which the
  next M-step reuses, so a safeguarded iteration costs no extra pass in the
  common (accepted) case.  ``benchmarks/bench_em.py`` measures the ratio to
  the two products alone.
* Safeguard.  The single gradient (or Newton) step is not guaranteed to raise
  the likelihood, so each iteration evaluates the observed log-likelihood at
  the proposed point and, if it fell, backtracks along the step (each trial
  recomputes its logits from its atoms, one ``B @ Xt.T``: keeping the old
  logits around to interpolate would cost the common, accepted, iteration a
  copy of them).  The last candidate is the weights-only update (``t = 0``),
  a generalised EM step that cannot lower the likelihood in exact
  arithmetic; if even that fails by round-off, the iteration leaves the
  parameters unchanged.  The trace is therefore monotone
  up to a relative slack of ``1e-12``.
* SQUAREM (Varadhan & Roland 2008, step length S3, with Varadhan's adaptive
  maximum step) wraps the safeguarded map; an extrapolated point is kept only
  if the map applied at it does not lower the log-likelihood below the start
  of the cycle, otherwise the cycle returns the plain double EM step.
* Collapsed classes.  A class whose weight falls below ``WEIGHT_FLOOR``
  (``1e-10``) has its atom frozen (its M-step would divide by the weight); the
  weight itself keeps following the closed-form update.  The fit warns and
  lists the class in :attr:`EMResult.collapsed`; its standard errors are NaN.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .data import as_data
from .params import SMMParams
from .validation import (
    check_choice,
    check_key,
    check_n_components,
    check_nonnegative_float,
    check_params,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "fit_em",
    "EMResult",
    "EMState",
    "EMData",
    "em_data",
    "ConvergenceWarning",
    "em_init",
    "em_update",
    "squarem_update",
    "INIT_METHODS",
    "M_STEPS",
    "ACCELERATIONS",
    "WEIGHT_FLOOR",
]

INIT_METHODS = ("auto", "mom", "tensor", "subspace", "random")
M_STEPS = ("gradient", "newton")
ACCELERATIONS = ("squarem", "none")

#: Classes with a weight below this are frozen (see the module docstring).
WEIGHT_FLOOR = 1e-10
#: Relative slack of the monotonicity safeguard (far below the 1e-9 the tests demand).
_SLACK = 1e-12
#: Backtracking halvings of the atom step before the weights-only update is tried.
_MAX_HALVINGS = 30
#: Newton directions longer than this (in whitened units, per class) are shortened:
#: a near-degenerate class (its softmax on few items) has a near-singular Hessian.
_NEWTON_MAX_STEP = 5.0

_DEFAULT_MAX_ITER = 2000
_DEFAULT_TOL = 1e-12
_DEFAULT_N_STARTS = 16


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting the tolerance."""


# --------------------------------------------------------------------------- #
# Pure JAX core (whitened coordinates; ``w`` are the frequencies n / N)
# --------------------------------------------------------------------------- #


class EMData(NamedTuple):
    """The data as the EM core uses it (build with :func:`em_data`).

    ``xt`` (p, L) and its transpose ``xt_t`` (L, p), both contiguous: the
    logits are computed as ``atoms @ xt_t`` and the M-step product as
    ``R @ xt``, so every ``(K, p)`` array is laid out item-minor (on XLA:CPU
    that layout made the reductions over items and the M-step product about
    twice as fast as the ``(p, K)`` layout).  (A ones column appended to
    ``xt``, which gave the weights' sums from the product, made that product
    about 40% slower at L = 32: an odd width suits the matrix kernels badly;
    the sums now come from a cheap reduction, see :func:`_residual`.)
    ``w`` are the frequencies ``n / N``.
    """

    xt: jax.Array
    xt_t: jax.Array
    w: jax.Array


def em_data(xt: Any, w: Any) -> EMData:
    """Pack whitened, centred features ``xt`` (p, L) and frequencies ``w`` (p,)."""
    xt = np.asarray(xt)
    return EMData(jnp.asarray(np.ascontiguousarray(xt)), jnp.asarray(np.ascontiguousarray(xt.T)), jnp.asarray(w))


class EMState(NamedTuple):
    """State of the EM map for one start, in whitened coordinates.

    Besides the parameters it carries the logits ``atoms @ xt.T`` (K, p) and
    what one exponential pass over them yields: the shifted exponentials
    ``expd = exp(logits - max_j logits)`` with ``inv_total = 1 / sum_j expd``
    (so ``sigma = inv_total * expd``), the log-normalisers over items and over
    classes, and the log-likelihood.  The safeguard computes them to get the
    log-likelihood at the new point and the next M-step reuses them, so no
    iteration computes an exponential of a ``(K, p)`` array twice.  ``ll`` is
    the mean log-likelihood per observation ``sum_j w_j log pi_j``.  ``exact``
    records that ``log_pi`` had to be computed in log space (some observed
    item's mixture probability below ``_pi_tiny``); the next E-step then
    forms the responsibilities in log space too.
    """

    weights: jax.Array  # (K,)
    atoms: jax.Array  # (K, L) = beta
    logits: jax.Array  # (K, p) = atoms @ xt.T
    log_norm: jax.Array  # (K,)  logsumexp_j logits[k, j]: log sigma = logits - log_norm
    expd: jax.Array  # (K, p) exp(logits - max_j logits): sigma = inv_total * expd
    inv_total: jax.Array  # (K,)  1 / sum_j expd[k, j]  (in (0, 1])
    log_pi: jax.Array  # (p,)  log of the mixture probabilities
    ll: jax.Array  # ()
    exact: jax.Array  # () bool: log_pi (and the next E-step) in log space


class _Norms(NamedTuple):
    log_norm: jax.Array
    expd: jax.Array
    inv_total: jax.Array
    log_pi: jax.Array
    ll: jax.Array
    exact: jax.Array


def _state(weights, atoms, logits, norms: _Norms) -> EMState:
    return EMState(weights, atoms, logits, norms.log_norm, norms.expd, norms.inv_total, norms.log_pi, norms.ll,
                   norms.exact)


def _over_classes(rows, op):
    """Reduce a short list of ``(p,)`` rows elementwise (K is small and static).

    An unrolled elementwise reduction fuses into one vectorised loop; XLA:CPU's
    reduction over the leading axis of a ``(K, p)`` array was several times
    slower.
    """
    out = rows[0]
    for r in rows[1:]:
        out = op(out, r)
    return out


def _pi_tiny(dtype):
    """Smallest mixture probability of an observed item the linear-space path accepts.

    ``tiny ** (2/3)`` (about ``4e-206`` in float64): a term ``alpha_k sigma_kj``
    lost to underflow (below ``tiny``) then changes ``pi_j`` and
    ``gamma_kj`` by at most ``tiny ** (1/3)`` (``6e-103``) relative, and
    ``w_j / pi_j`` cannot overflow.
    """
    return float(np.finfo(dtype).tiny) ** (2.0 / 3.0)


def _log_pi_exact(weights, logits, log_norm):
    """``log pi_j = logsumexp_k (log alpha_k + logits_kj - log_norm_k)``: exact at any logits."""
    K = logits.shape[0]
    c = jnp.log(weights) - log_norm
    if K <= 32:
        rows = [logits[k] + c[k] for k in range(K)]  # log(alpha_k sigma_k), one row per class
        mk = _over_classes(rows, jnp.maximum)
        z = _over_classes([jnp.exp(r - mk) for r in rows], jnp.add)
    else:
        joint = logits + c[:, None]
        mk = jnp.max(joint, axis=0)
        z = jnp.sum(jnp.exp(joint - mk), axis=0)
    return mk + jnp.log(z)


def _normalisers(w, weights, logits, exact=None) -> _Norms:
    """Normalisers and log-likelihood at given logits: one ``(K, p)`` exponential.

    ``expd = exp(logits - m)`` (``m`` the per-class maximum over items) gives
    ``log_norm = m + log sum_j expd``, and the mixture probabilities follow in
    linear space, ``pi_j = sum_k (alpha_k / sum_j expd_kj) expd_kj``, with no
    further exponential (on CPU an exponential pass over a ``(K, p)`` array
    costs about three plain passes).  That is exact to round-off unless some
    observed item's ``pi_j`` falls below ``_pi_tiny`` (``log pi_j < -472``:
    extreme logits, e.g. atoms a few hundred whitened units long); then
    ``log_pi`` is recomputed in log space behind a ``lax.cond`` (under
    ``vmap`` a select: both run) and ``exact`` is set.
    ``exact=True`` / ``False`` forces a path (tests).
    """
    K = logits.shape[0]
    m = jnp.max(logits, axis=1)
    expd = jnp.exp(logits - m[:, None])
    total = jnp.sum(expd, axis=1)  # >= 1 (the maximum contributes exp(0))
    log_norm = m + jnp.log(total)
    inv_total = 1.0 / total
    coef = weights * inv_total  # alpha_k / sum_j expd_kj
    if K <= 32:
        pi = _over_classes([coef[k] * expd[k] for k in range(K)], jnp.add)
    else:
        pi = coef @ expd
    # The predicate is taken on log(pi), not pi: XLA fuses the cheap sum giving
    # pi into each of its consumers (one more read of expd each), but not the
    # log, so expd is read once.
    log_pi_fast = jnp.log(pi)
    observed = w > 0

    def slow(_):
        return _log_pi_exact(weights, logits, log_norm)

    if exact is None:
        exact = jnp.any(observed & (log_pi_fast < math.log(_pi_tiny(logits.dtype))))
        log_pi = lax.cond(exact, slow, lambda _: log_pi_fast, None)
    else:
        log_pi = slow(None) if exact else log_pi_fast
        exact = jnp.asarray(bool(exact))
    ll = jnp.sum(jnp.where(observed, w * log_pi, 0.0))
    return _Norms(log_norm, expd, inv_total, log_pi, ll, exact)


def em_init(data: EMData, weights: jax.Array, atoms: jax.Array) -> EMState:
    """Build the :class:`EMState` at ``(weights, atoms)`` (whitened coordinates)."""
    logits = atoms @ data.xt_t
    return _state(weights, atoms, logits, _normalisers(data.w, weights, logits))


def _e_step(w, state: EMState, exact=None) -> jax.Array:
    """The M-step's left operand ``[w gamma ; sigma]`` (2K, p) from the carried E-step.

    ``sigma = inv_total * expd``.  Normally ``w_j gamma_kj = (alpha_k inv_total_k)
    expd_kj (w_j / pi_j)``: a ``(p,)`` exponential, none over ``(K, p)``.
    When ``state.exact`` (some observed ``pi_j`` underflowed) ``w_j / pi_j``
    may overflow, so ``w gamma = w exp(log sigma + log alpha - log pi)`` in log
    space instead (its exponent is ``<= 0``).  ``exact`` forces a path (tests).
    """
    # sigma is formed inside each branch so that it fuses into the one pass
    # writing the product's operand (outside, it would be written separately).
    def fast(_):
        sigma = state.inv_total[:, None] * state.expd
        # Items with w_j = 0 may have pi_j = 0 (w_j / pi_j = NaN): they get 0.
        wr = jnp.where(w > 0, w * jnp.exp(-state.log_pi), 0.0)
        wgamma = (state.weights * state.inv_total)[:, None] * state.expd * wr
        return jnp.concatenate([wgamma, sigma], axis=0)

    def slow(_):
        sigma = state.inv_total[:, None] * state.expd
        log_sigma = state.logits - state.log_norm[:, None]
        wgamma = w * jnp.exp(log_sigma + jnp.log(state.weights)[:, None] - state.log_pi)
        return jnp.concatenate([wgamma, sigma], axis=0)

    if exact is None:
        return lax.cond(state.exact, slow, fast, None)
    return slow(None) if exact else fast(None)


def _safe_weights(alpha_raw):
    """``alpha`` (on the simplex), ``alive`` (above ``WEIGHT_FLOOR``) and a divisor safe for dead classes."""
    alpha = alpha_raw / jnp.sum(alpha_raw)  # remove round-off drift off the simplex
    alive = alpha > WEIGHT_FLOOR
    return alpha, alive, jnp.where(alive, alpha_raw, 1.0)


def _residual(w, state: EMState, exact=None):
    """``alpha_raw = sum_j w_j gamma_kj`` and the gradient's residual (K, p) for the gradient M-step.

    The gradient ``Xt^T (w gamma_k / alpha_k - sigma_k)`` needs one product with
    the residual ``R = w gamma / alpha_raw - sigma`` rather than two (K rows
    instead of the 2K of ``[w gamma ; sigma]``: the product over the features
    dominates an iteration).  That needs ``alpha_raw`` first: normally
    ``alpha_raw_k = alpha_k inv_total_k (expd @ (w / pi))_k``, a read of
    ``expd``, and ``R = expd * (alpha_k inv_total_k (w_j / pi_j) / alpha_raw_k -
    inv_total_k)``.  When ``state.exact``, ``w gamma`` in log space as in
    :func:`_e_step`.  ``exact`` forces a path (tests).
    """

    def fast(_):
        # Items with w_j = 0 may have pi_j = 0 (w_j / pi_j = NaN): they get 0.
        wr = jnp.where(w > 0, w * jnp.exp(-state.log_pi), 0.0)
        coef = state.weights * state.inv_total
        alpha_raw = coef * (state.expd @ wr)
        _, _, safe = _safe_weights(alpha_raw)
        r = state.expd * ((coef / safe)[:, None] * wr - state.inv_total[:, None])
        return alpha_raw, r

    def slow(_):
        sigma = state.inv_total[:, None] * state.expd
        log_sigma = state.logits - state.log_norm[:, None]
        wgamma = w * jnp.exp(log_sigma + jnp.log(state.weights)[:, None] - state.log_pi)
        alpha_raw = jnp.sum(wgamma, axis=1)
        _, _, safe = _safe_weights(alpha_raw)
        return alpha_raw, wgamma / safe[:, None] - sigma

    if exact is None:
        return lax.cond(state.exact, slow, fast, None)
    return slow(None) if exact else fast(None)


def _accept(ll, ll_ref):
    return jnp.isfinite(ll) & (ll >= ll_ref - _SLACK * jnp.abs(ll_ref))


def em_update(
    data: EMData,
    state: EMState,
    *,
    m_step: str = "gradient",
    step_size: float = 1.0,
) -> EMState:
    """One safeguarded EM iteration (pure, jittable, vmappable).

    E-step: ``sigma_kj`` and ``gamma_kj = alpha_k sigma_kj / pi_j`` from the
    carried normalisers (:func:`_residual`, :func:`_e_step`); the weights take
    their closed form ``alpha_k = sum_j w_j gamma_kj``; the atoms take one
    gradient step ``beta_k + step_size * Xt^T (w gamma_k / alpha_k - sigma_k)``
    or one Newton step (Hessian ``Xt^T (diag sigma_k - sigma_k sigma_k^T)
    Xt``), then backtrack on the observed log-likelihood (module docstring).
    """
    w = data.w
    dtype = w.dtype
    K = state.atoms.shape[0]
    if m_step == "newton":
        # The Hessian needs the class means mu on their own: one product for
        # both halves of the gradient, [w gamma ; sigma] @ Xt (2K rows, one pass
        # over the features).
        h = _e_step(w, state)
        both = h @ data.xt  # (2K, L): the pass X.T @ R
        alpha_raw = jnp.sum(h[:K], axis=1)  # sum_j w_j gamma_kj
        alpha, alive, safe_alpha = _safe_weights(alpha_raw)
        mu = both[K:]  # Xt^T sigma_k: the class means of the features
        grad = both[:K] / safe_alpha[:, None] - mu
        # One class at a time: O(p L^2) memory-light products (an einsum over all
        # classes at once materialises a (p, K, L) array and ran 2-3x slower).
        xt = data.xt
        sigma = state.inv_total[:, None] * state.expd
        second = lax.map(lambda s: (xt * s[:, None]).T @ xt, sigma)
        hess = second - mu[:, :, None] * mu[:, None, :]
        L = xt.shape[1]
        scale = jnp.trace(hess, axis1=1, axis2=2) / L
        hess = hess + (1e-8 * scale + 1e-12)[:, None, None] * jnp.eye(L, dtype=dtype)
        direction = jnp.linalg.solve(hess, grad[..., None])[..., 0]
        norm = jnp.linalg.norm(direction, axis=1, keepdims=True)
        direction = direction * jnp.minimum(1.0, _NEWTON_MAX_STEP / jnp.maximum(norm, 1e-300))
    else:
        alpha_raw, resid = _residual(w, state)
        alpha, alive, _ = _safe_weights(alpha_raw)
        direction = resid @ data.xt  # the pass X.T @ R
    direction = jnp.where(alive[:, None], direction, 0.0)
    atoms_full = state.atoms + step_size * direction
    logits_full = atoms_full @ data.xt_t  # the pass X @ B (reused by the next E-step)
    norms = _normalisers(w, alpha, logits_full)
    ok = _accept(norms.ll, state.ll)

    # Backtracking along the step: trial i (i = 1 .. _MAX_HALVINGS) takes the
    # step length 2^-i, trial _MAX_HALVINGS + 1 the weights-only update (0);
    # the last trial is the old state itself, accepted unconditionally (if even
    # the weights-only update lost to round-off, stay put).  A while_loop whose
    # carry starts at the full step runs no trial in the common case and passes
    # the (K, p) arrays through without copying them (a lax.cond choosing
    # between the full step and a backtracking branch copied them).  Each trial
    # recomputes its logits from its atoms rather than interpolating with the
    # old logits: referring to those here would keep them alive past the new
    # ones, and cost every iteration a copy.  Under vmap the loop runs until
    # every start is done (per-start selects).
    stay = _MAX_HALVINGS + 2

    def cond(c):
        return ~c[1]

    def body(c):
        i, _, frac, _, _, logits_t, _ = c
        frac_t = jnp.where(i <= _MAX_HALVINGS, 0.5 * frac, 0.0).astype(dtype)
        weights_t = jnp.where(i < stay, alpha, state.weights)
        atoms_t = jnp.where(i < stay, state.atoms + (frac_t * step_size) * direction, state.atoms)
        logits_t = atoms_t @ data.xt_t
        norms_t = _normalisers(w, weights_t, logits_t)
        ok_t = _accept(norms_t.ll, state.ll) | (i >= stay)
        return i + 1, ok_t, frac_t, weights_t, atoms_t, logits_t, norms_t

    init = (jnp.asarray(1), ok, jnp.asarray(1.0, dtype), alpha, atoms_full, logits_full, norms)
    _, _, _, weights_b, atoms_b, logits_b, norms_b = lax.while_loop(cond, body, init)
    return _state(weights_b, atoms_b, logits_b, norms_b)


def _to_vector(state: EMState) -> jax.Array:
    logw = jnp.log(jnp.maximum(state.weights, 1e-300))
    return jnp.concatenate([logw, state.atoms.ravel()])


def squarem_update(
    data: EMData,
    state: EMState,
    step_max: jax.Array,
    *,
    m_step: str = "gradient",
    step_size: float = 1.0,
) -> tuple[EMState, jax.Array]:
    """One SQUAREM cycle (S3 step length) around :func:`em_update`.

    Extrapolates in ``(log weights, atoms)``; the weights are mapped back with
    a softmax.  Returns the new state and the adapted maximum step length.
    Three EM maps and one extra E-step per cycle.
    """
    K, L = state.atoms.shape
    f = partial(em_update, data, m_step=m_step, step_size=step_size)
    s1 = f(state)
    s2 = f(s1)
    x0, x1, x2 = _to_vector(state), _to_vector(s1), _to_vector(s2)
    r = x1 - x0
    v = x2 - 2.0 * x1 + x0
    rr, vv = jnp.sum(r * r), jnp.sum(v * v)
    # Varadhan & Roland's S3 length, in their sign convention a = |r| / |v| >= 1.
    a = jnp.where(vv > 0, jnp.sqrt(rr / jnp.where(vv > 0, vv, 1.0)), 1.0)
    a = jnp.clip(a, 1.0, step_max)
    x_ext = x0 + 2.0 * a * r + a * a * v
    logw = x_ext[:K]
    weights = jax.nn.softmax(logw)
    atoms = x_ext[K:].reshape(K, L)
    s_ext = em_init(data, weights, atoms)
    s3 = f(s_ext)
    ok = _accept(s3.ll, state.ll) & jnp.all(jnp.isfinite(s3.atoms)) & jnp.all(jnp.isfinite(s3.weights))
    new = jax.tree_util.tree_map(lambda a_, b_: jnp.where(ok, a_, b_), s3, s2)
    # Adaptive maximum step (mstep = 4): grow when the cap binds and the step
    # was kept, shrink back after a rejected extrapolation.
    step_max = jnp.where(ok & (a >= step_max), 4.0 * step_max, step_max)
    step_max = jnp.where(ok, step_max, jnp.maximum(1.0, step_max / 4.0))
    return new, step_max


class _RunOut(NamedTuple):
    state: EMState
    trace: jax.Array  # (max_iter + 1,), NaN past n_iter
    n_iter: jax.Array
    converged: jax.Array


def _run(data, weights0, atoms0, tol, max_iter, step_size, *, buffer, m_step, acceleration):
    """The EM driver for one start: a single ``lax.while_loop``.

    EM converges linearly, so a small change per iteration can still leave a
    long way to go.  The stopping rule therefore projects the changes
    (Aitken): with ``rate = dll_t / dll_{t-1}`` (clipped to ``[0, 0.99]``) it
    stops when ``dll_t / (1 - rate) < tol * |ll|`` (the estimated remaining
    gain of the log-likelihood) and ``dpar_t / (1 - sqrt(rate)) < sqrt(tol) *
    max(1, max|beta|)`` (the estimated remaining distance of the parameters,
    largest coordinate, whitened).  Strict inequalities, so ``tol = 0`` runs
    exactly ``max_iter`` iterations.  ``max_iter`` is traced (no recompilation
    when it changes); ``buffer`` (static, ``>= max_iter``) sizes the trace.
    """
    dtype = data.xt.dtype
    state0 = em_init(data, weights0, atoms0)
    trace = jnp.full((buffer + 1,), jnp.nan, dtype=dtype).at[0].set(state0.ll)
    max_iter = jnp.minimum(max_iter, buffer)
    ptol = jnp.sqrt(tol)

    def cond(c):
        it, _, _, done, _, _ = c
        return (it < max_iter) & (~done)

    def body(c):
        it, state, trace, _, step_max, prev_dll = c
        if acceleration == "squarem":
            new, step_max = squarem_update(data, state, step_max, m_step=m_step, step_size=step_size)
        else:
            new = em_update(data, state, m_step=m_step, step_size=step_size)
        dll = jnp.abs(new.ll - state.ll)
        rate = jnp.clip(jnp.where(prev_dll > 0, dll / jnp.where(prev_dll > 0, prev_dll, 1.0), 0.0), 0.0, 0.99)
        rel_ll = dll / (1.0 - rate) / jnp.maximum(jnp.abs(state.ll), 1e-300)
        d_par = jnp.maximum(jnp.max(jnp.abs(new.weights - state.weights)), jnp.max(jnp.abs(new.atoms - state.atoms)))
        rel_par = d_par / (1.0 - jnp.sqrt(rate)) / jnp.maximum(1.0, jnp.max(jnp.abs(state.atoms)))
        done = (rel_ll < tol) & (rel_par < ptol)
        trace = trace.at[it + 1].set(new.ll)
        return it + 1, new, trace, done, step_max, dll

    init = (jnp.asarray(0), state0, trace, jnp.asarray(False), jnp.asarray(1.0, dtype), jnp.asarray(0.0, dtype))
    it, state, trace, done, _, _ = lax.while_loop(cond, body, init)
    return _RunOut(state, trace, it, done)


@jax.jit
def _start_lls(data, weights, atoms):
    return jax.vmap(lambda a, b: em_init(data, a, b).ll)(weights, atoms)


_STATIC = ("buffer", "m_step", "acceleration")
_run_single = jax.jit(_run, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def _run_batch(data, weights0, atoms0, tol, max_iter, step_size, *, buffer, m_step, acceleration):
    fn = partial(_run, buffer=buffer, m_step=m_step, acceleration=acceleration)
    return jax.vmap(fn, in_axes=(None, 0, 0, None, None, None))(data, weights0, atoms0, tol, max_iter, step_size)


# --------------------------------------------------------------------------- #
# Whitening
# --------------------------------------------------------------------------- #


class _Whitening(NamedTuple):
    mean: np.ndarray  # (L,)
    half: np.ndarray  # Sigma_hat^{1/2}, symmetric
    inv_half: np.ndarray  # Sigma_hat^{-1/2}, symmetric
    xt: np.ndarray  # (p, L) whitened, centred features

    def to_whitened(self, atoms):
        """``beta = Sigma^{1/2} theta`` row-wise (any leading axes)."""
        return np.asarray(atoms) @ self.half

    def to_original(self, atoms):
        return np.asarray(atoms) @ self.inv_half


def _whitening(features: np.ndarray) -> _Whitening:
    mean = features.mean(axis=0)
    centred = features - mean
    cov = centred.T @ centred / features.shape[0]
    lam, vec = np.linalg.eigh(cov)
    lam = np.maximum(lam, 1e-300)
    half = (vec * np.sqrt(lam)) @ vec.T
    inv_half = (vec / np.sqrt(lam)) @ vec.T
    return _Whitening(mean, half, inv_half, centred @ inv_half)


# --------------------------------------------------------------------------- #
# Result and public driver
# --------------------------------------------------------------------------- #


class EMResult(NamedTuple):
    """Result of :func:`fit_em`.

    Attributes
    ----------
    params : SMMParams
        The estimate (NumPy float64, original coordinates).
    log_likelihood : float
        ``sum_j n_j log pi_j`` at ``params`` (no multinomial coefficient).
    trace : ndarray of shape (n_iter + 1,)
        Log-likelihood after each iteration, starting with the value at the
        start (for ``init="auto"`` and other multi-start inits, the winning
        start's short run followed by its continuation).  With
        ``acceleration="squarem"`` one iteration is one SQUAREM cycle.
    n_iter : int
        Iterations run (including the short run of the winning start).
    converged : bool
    stop_reason : str
        ``"tol"`` or ``"max_iter"``.
    init : str
        The start that won: ``"mom"``, ``"tensor"``, ``"subspace[i]"``,
        ``"random[i]"``, ``"user"`` or ``"user[i]"``.
    init_params : SMMParams
        That start's parameters, before any EM iteration.
    standard_errors : SMMParams or None
        Standard errors of ``weights`` and ``atoms`` from the observed
        information (see :func:`smm_ppl.standard_errors`); ``None`` when not
        requested, NaN where the information is singular.
    n_obs : int
        Number of observations ``N``.
    starts : list of dict
        One row per start: ``name``, ``log_likelihood_start`` (at the start),
        ``log_likelihood_short`` (after the short run; NaN with a single
        start) and ``error`` (why a warm start could not be computed, else
        ``None``).
    collapsed : tuple of int
        Classes whose weight fell below ``WEIGHT_FLOOR`` (atoms frozen).
    m_step, acceleration : str
        The variant that ran.
    """

    params: SMMParams
    log_likelihood: float
    trace: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str
    init: str
    init_params: SMMParams
    standard_errors: SMMParams | None
    n_obs: int
    starts: list
    collapsed: tuple
    m_step: str
    acceleration: str


def _check_acceleration(acceleration: Any) -> str:
    if acceleration is None or acceleration is False:
        return "none"
    if acceleration is True:
        return "squarem"
    if isinstance(acceleration, str) and acceleration.lower() in ACCELERATIONS:
        return acceleration.lower()
    raise ValueError(
        f"acceleration must be one of {list(ACCELERATIONS)} (or None/False for none, True for squarem), "
        f"got {acceleration!r}."
    )


def _check_init(init: Any, n_components: int, n_features: int):
    """Return ``("name", None)`` or ``("user", SMMParams with leading start axis)``."""
    if isinstance(init, str):
        if init not in INIT_METHODS:
            raise ValueError(
                f"init must be one of {list(INIT_METHODS)} or an SMMParams, got the unknown name {init!r}."
            )
        return init, None
    if isinstance(init, EMResult):
        init = init.params
    if not isinstance(init, tuple) or len(init) != 2:
        raise TypeError(
            f"init must be one of {list(INIT_METHODS)} or an SMMParams(weights, atoms), "
            f"got {type(init).__name__}."
        )
    weights = np.asarray(init[0])
    atoms = np.asarray(init[1])
    if weights.ndim == 2 and atoms.ndim == 3:  # a batch of starts
        if weights.shape[0] != atoms.shape[0] or weights.shape[0] == 0:
            raise ValueError(
                f"init with a leading starts axis needs weights (S, K) and atoms (S, K, L) with the same S >= 1, "
                f"got {weights.shape} and {atoms.shape}."
            )
        batch = [check_params((wt, at), n_features, name=f"init[{i}]") for i, (wt, at) in enumerate(zip(weights, atoms))]
    else:
        batch = [check_params((weights, atoms), n_features, name="init")]
    k_init = batch[0].weights.shape[0]
    if k_init != n_components:
        raise ValueError(
            f"init has {k_init} components but n_components={n_components}; they must match."
        )
    stacked = SMMParams(np.stack([b.weights for b in batch]), np.stack([b.atoms for b in batch]))
    return ("user" if weights.ndim == 1 else "user[]"), stacked


def _random_starts(key, wh: _Whitening, w: np.ndarray, K: int, n_starts: int) -> np.ndarray:
    """Random atoms in the full whitened space, shape (n_starts, K, L).

    ``beta_k ~ N(m1, C)`` with ``m1`` the first latent moment and ``C`` the
    between-class covariance ``M2 - m1 m1^T`` (SPEC section 2) with its
    eigenvalues clipped to ``[0.05, 4]``: the right location and scale for the
    atoms without using the subspace.
    """
    xt = wh.xt
    L = xt.shape[1]
    m1 = w @ xt
    m2 = (xt * w[:, None]).T @ xt - np.eye(L)
    between = m2 - np.outer(m1, m1)
    lam, vec = np.linalg.eigh((between + between.T) / 2)
    root = (vec * np.sqrt(np.clip(lam, 0.05, 4.0))) @ vec.T
    z = np.asarray(jax.random.normal(key, (n_starts, K, L)), dtype=np.float64)
    return m1 + z @ root


def _derived_seed(key, i: int) -> int:
    return int(jax.random.randint(jax.random.fold_in(key, i), (), 0, 2**31 - 1))


def _call_warmstart(name: str, X, n, K: int, seed: int, n_starts: int | None = None):
    from . import warmstart  # imported here so EM works while warm starts are incomplete

    if name == "mom":
        p = warmstart.mom_init(X, n, K, seed=seed)
    elif name == "tensor":
        p = warmstart.tensor_init(X, n, K, seed=seed)
    else:
        p = warmstart.subspace_random_inits(X, n, K, n_starts, seed=seed)
    w = np.asarray(p[0], dtype=np.float64)
    a = np.asarray(p[1], dtype=np.float64)
    if not (np.isfinite(w).all() and np.isfinite(a).all()):
        raise ValueError(f"{name} warm start returned non-finite values")
    if name == "subspace":
        if w.ndim != 2 or a.ndim != 3:
            raise ValueError(f"subspace_random_inits returned shapes {w.shape}, {a.shape}")
        return w, a
    return w[None], a[None]


def _normalise_weights(w: np.ndarray) -> np.ndarray:
    w = np.clip(w, 0.0, None)
    s = w.sum(axis=-1, keepdims=True)
    K = w.shape[-1]
    return np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / K)


def fit_em(
    features: Any,
    counts: Any,
    n_components: int,
    init: Any = "auto",
    n_starts: int | None = None,
    seed: Any = 0,
    max_iter: int = _DEFAULT_MAX_ITER,
    tol: float = _DEFAULT_TOL,
    m_step: str = "gradient",
    step_size: float = 1.0,
    acceleration: Any = "squarem",
    *,
    short_iter: int = 20,
    compute_standard_errors: bool = True,
) -> EMResult:
    """Fit a softmax mixture by EM (SPEC section 4).

    Parameters
    ----------
    features : array of shape (p, L)
    counts : array of shape (p,)
        Non-negative integer counts.
    n_components : int
        Number of classes ``K``.
    init : str or SMMParams, default "auto"
        ``"auto"``: the method-of-moments start when ``K <= 3``, the tensor
        start, and ``n_starts`` random starts in the estimated subspace (the
        subspace methods need ``K <= L``; otherwise random starts in the full
        space), each run for ``short_iter`` iterations, the best continued.
        ``"mom"``, ``"tensor"``: that single warm start.  ``"subspace"``,
        ``"random"``: ``n_starts`` random starts in the subspace / in the full
        space, short runs, best continued.  An ``SMMParams`` (weights ``(K,)``,
        atoms ``(K, L)``) starts there; with a leading starts axis
        (``(S, K)``, ``(S, K, L)``) it is a batch of user starts.  An
        :class:`EMResult` starts at its estimate.  Which start won is
        recorded in ``EMResult.init``.
    n_starts : int, optional
        Number of random starts for ``"auto"``, ``"subspace"`` and
        ``"random"`` (default 16).  Ignored otherwise.
    seed : int or jax.random key
        All randomness (warm starts, random starts) derives from it: the same
        seed gives the same result.
    max_iter : int, default 2000
        Maximum number of iterations in total (short runs included).  With
        acceleration an iteration is one SQUAREM cycle (three EM maps).
    tol : float, default 1e-12
        Stop when the projected remaining gain of the log-likelihood,
        ``dll / (1 - rate)`` with ``dll`` the last change and ``rate`` the
        ratio of the last two changes (Aitken; capped at 0.99), is
        ``< tol * |ll|``, and the projected remaining parameter change
        (largest coordinate, whitened, relative to ``max(1, max |atom|)``) is
        ``< sqrt(tol)``.  ``tol = 0`` runs exactly ``max_iter`` iterations
        (and does not warn).
    m_step : {"gradient", "newton"}
        The atoms' M-step: the paper's single gradient step in whitened
        coordinates, or a single Newton step on each class's weighted logit.
    step_size : float, default 1.0
        Step length ``eta`` of the gradient (or Newton) step.  Any positive
        value keeps the likelihood monotone: steps that lower it are halved.
    acceleration : {"squarem", "none"} or None or bool, default "squarem"
        SQUAREM acceleration with a monotonicity safeguard.
    short_iter : int, default 20
        Length of the short runs of a multi-start init.
    compute_standard_errors : bool, default True
        Compute ``standard_errors`` from the observed information.

    Returns
    -------
    EMResult

    Warns
    -----
    ConvergenceWarning
        When ``tol > 0`` and ``max_iter`` was reached first.
    UserWarning
        When a class collapsed (weight below ``WEIGHT_FLOOR``) or a warm start
        failed under ``init="auto"`` (the failure is also in ``starts``).
    """
    data = as_data(features, counts)
    X, n = data.features, data.counts
    p, L = X.shape
    K = check_n_components(n_components, p)
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_nonnegative_float(tol, "tol")
    m_step = check_choice(m_step, "m_step", M_STEPS)
    step_size = check_positive_float(step_size, "step_size")
    acceleration = _check_acceleration(acceleration)
    short_iter = check_positive_int(short_iter, "short_iter")
    if n_starts is not None:
        n_starts = check_positive_int(n_starts, "n_starts")
    if not isinstance(compute_standard_errors, (bool, np.bool_)):
        raise TypeError(f"compute_standard_errors must be a bool, got {type(compute_standard_errors).__name__}.")
    init_name, user = _check_init(init, K, L)
    key = check_key(seed)

    wh = _whitening(X)
    w = data.frequencies
    N = data.n_obs
    data_j = em_data(wh.xt, w)

    # ---- candidate starts: names, weights (S, K), whitened atoms (S, K, L), table rows
    names: list[str] = []
    wts: list[np.ndarray] = []
    ats: list[np.ndarray] = []
    originals: list[np.ndarray] = []  # each start's atoms as given (init_params reports them exactly)
    failed: list[dict] = []
    n_rand = _DEFAULT_N_STARTS if n_starts is None else n_starts

    def add(name_prefix, weights, atoms_orig, indexed):
        for i in range(weights.shape[0]):
            names.append(f"{name_prefix}[{i}]" if indexed else name_prefix)
            wts.append(_normalise_weights(weights[i]))
            ats.append(wh.to_whitened(atoms_orig[i]))
            originals.append(np.array(atoms_orig[i], dtype=np.float64))

    def add_random(count):
        atoms_wh = _random_starts(jax.random.fold_in(key, 1), wh, w, K, count)
        add("random", np.full((count, K), 1.0 / K), wh.to_original(atoms_wh), True)

    caught: list[str] = []  # warnings of the warm starts under "auto", re-issued once each

    def try_warm(name, count=None):
        try:
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                wt, at = _call_warmstart(name, X, n, K,
                                         _derived_seed(key, {"mom": 2, "tensor": 3, "subspace": 4}[name]), count)
            for item in record:
                if str(item.message) not in caught:
                    caught.append(str(item.message))
        except Exception as err:  # recorded, not fatal: other starts remain
            failed.append({"name": name, "log_likelihood_start": np.nan, "log_likelihood_short": np.nan,
                           "error": f"{type(err).__name__}: {err}"})
            return False
        add(name, wt, at, name == "subspace")
        return True

    if user is not None:
        add("user", user.weights, user.atoms, init_name == "user[]")
    elif init_name == "random":
        add_random(n_rand)
    elif init_name in ("mom", "tensor", "subspace"):
        if init_name != "mom" and K > L:
            raise ValueError(
                f"init={init_name!r} needs n_components <= n_features (the atoms span a K-dimensional subspace), "
                f"got K={K} > L={L}; use init='random' or 'auto'."
            )
        wt, at = _call_warmstart(init_name, X, n, K, _derived_seed(key, {"mom": 2, "tensor": 3, "subspace": 4}[init_name]),
                                 n_rand)
        add(init_name, wt, at, init_name == "subspace")
    else:  # auto
        if K <= L:
            if K <= 3:
                try_warm("mom")
            try_warm("tensor")
            if not try_warm("subspace", n_rand):
                add_random(n_rand)
        else:
            failed.append({"name": "subspace", "log_likelihood_start": np.nan, "log_likelihood_short": np.nan,
                           "error": f"K={K} > L={L}: subspace warm starts do not apply; random starts used"})
            add_random(n_rand)
        for message in caught:
            warnings.warn(f"init='auto' warm start: {message}", UserWarning, stacklevel=2)
        if failed and K <= L:
            warnings.warn(
                "init='auto': warm start(s) failed and were skipped: "
                + "; ".join(f"{f['name']} ({f['error']})" for f in failed),
                UserWarning,
                stacklevel=2,
            )

    W0 = np.stack(wts)
    B0 = np.stack(ats)
    S = W0.shape[0]
    statics = dict(m_step=m_step, acceleration=acceleration)
    ll_start = np.asarray(_start_lls(data_j, jnp.asarray(W0), jnp.asarray(B0))) * N

    if S > 1:
        n_short = min(short_iter, max_iter)
        out = _run_batch(data_j, jnp.asarray(W0), jnp.asarray(B0), 0.0, n_short, step_size, buffer=short_iter,
                         **statics)
        ll_short = np.asarray(out.state.ll) * N
        score = np.where(np.isfinite(ll_short), ll_short, -np.inf)
        best = int(np.argmax(score))
        trace_parts = [np.asarray(out.trace[best])[: n_short + 1]]
        w_cur = np.asarray(out.state.weights[best])
        b_cur = np.asarray(out.state.atoms[best])
        remaining = max_iter - n_short
        done_iter = n_short
        converged = False
    else:
        ll_short = np.full(1, np.nan)
        best = 0
        trace_parts = []
        w_cur, b_cur = W0[0], B0[0]
        remaining = max_iter
        done_iter = 0
        converged = False

    if remaining > 0:
        out1 = _run_single(data_j, jnp.asarray(w_cur), jnp.asarray(b_cur), tol, remaining, step_size,
                           buffer=max_iter, **statics)
        k = int(out1.n_iter)
        tr = np.asarray(out1.trace)[: k + 1]
        trace_parts.append(tr[1:] if trace_parts else tr)
        done_iter += k
        converged = bool(out1.converged)
        w_cur = np.asarray(out1.state.weights)
        b_cur = np.asarray(out1.state.atoms)
    trace = np.concatenate(trace_parts) * N

    weights = np.asarray(w_cur, dtype=np.float64)
    weights = weights / weights.sum()
    params = SMMParams(weights, wh.to_original(b_cur))
    collapsed = tuple(int(k) for k in np.flatnonzero(weights < WEIGHT_FLOOR))
    if collapsed:
        warnings.warn(
            f"class(es) {list(collapsed)} collapsed to weight < {WEIGHT_FLOOR:g}; their atoms were frozen and are "
            "not estimates (standard errors NaN). Consider fewer components.",
            UserWarning,
            stacklevel=2,
        )
    if not converged and tol > 0:
        hint = "" if acceleration == "squarem" else ", or use acceleration='squarem'"
        warnings.warn(
            f"EM did not converge in max_iter={max_iter} iterations (tol={tol:g}); raise max_iter or loosen tol"
            f"{hint}. (Slow convergence can also mean too many components: a flat likelihood.)",
            ConvergenceWarning,
            stacklevel=2,
        )

    starts = [
        {"name": names[i], "log_likelihood_start": float(ll_start[i]),
         "log_likelihood_short": float(ll_short[i]) if S > 1 else np.nan, "error": None}
        for i in range(S)
    ] + failed

    se = None
    if compute_standard_errors:
        from .stderr import _standard_errors_whitened

        se = _standard_errors_whitened(wh, n, weights, np.asarray(b_cur, dtype=np.float64))

    init_params = SMMParams(W0[best].copy(), originals[best])
    return EMResult(
        params=params,
        log_likelihood=float(trace[-1]),
        trace=trace,
        n_iter=int(done_iter),
        converged=converged,
        stop_reason="tol" if converged else "max_iter",
        init=names[best],
        init_params=init_params,
        standard_errors=se,
        n_obs=N,
        starts=starts,
        collapsed=collapsed,
        m_step=m_step,
        acceleration=acceleration,
    )
