"""Running the EM map: algorithms as ``init``/``step`` pairs, one jitted loop, starts under ``vmap``.

:func:`em_algorithm` returns the pair for a variant (M-step, acceleration);
:func:`run` iterates it in one ``lax.while_loop`` with the stopping rule;
:func:`run_starts` runs several starts at once and continues the best
(the two-phase runner behind every multi-start init).
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..layouts import Layout
from .kernel import em_init, em_update
from .squarem import squarem_init, squarem_update

__all__ = [
    "EMAlgorithm",
    "em_algorithm",
    "ACCELERATIONS",
    "RunOut",
    "run",
    "run_batch",
    "start_log_likelihoods",
    "run_starts",
    "StartsOutcome",
]

ACCELERATIONS = ("squarem", "none")


class EMAlgorithm(NamedTuple):
    """An EM variant as a pair of pure functions (BlackJAX style).

    ``init(layout, weights, atoms) -> state`` and ``step(layout, state,
    step_size) -> (state, info)``; every state has ``weights``, ``atoms`` and
    ``ll``.
    """

    init: Callable
    step: Callable


def _plain_init(layout, weights, atoms):
    return em_init(layout, weights, atoms)


@cache
def em_algorithm(m_step: str = "gradient", acceleration: str = "squarem") -> EMAlgorithm:
    """The algorithm for a variant; cached, so that jitted programs keyed on it compile once."""
    if acceleration == "squarem":
        return EMAlgorithm(squarem_init, partial(squarem_update, m_step=m_step))
    return EMAlgorithm(_plain_init, partial(em_update, m_step=m_step))


class RunOut(NamedTuple):
    state: Any
    trace: jax.Array  # (buffer + 1,), NaN past n_iter
    n_iter: jax.Array
    converged: jax.Array


def _run(layout, weights0, atoms0, tol, max_iter, step_size, *, buffer, algorithm):
    """One start in a single ``lax.while_loop``.

    EM converges linearly, so a small change per iteration can still leave a
    long way to go.  The stopping rule projects the changes (Aitken): with
    ``rate = dll_t / dll_{t-1}`` (clipped to ``[0, 0.99]``) it stops when
    ``dll_t / (1 - rate) < tol * |ll|`` and ``dpar_t / (1 - sqrt(rate)) <
    sqrt(tol) * max(1, max|beta|)``.  Strict inequalities, so ``tol = 0``
    runs exactly ``max_iter`` iterations.  ``max_iter`` is traced (no
    recompilation when it changes); ``buffer`` (static, ``>= max_iter``)
    sizes the trace.
    """
    state0 = algorithm.init(layout, weights0, atoms0)
    dtype = state0.atoms.dtype
    trace = jnp.full((buffer + 1,), jnp.nan, dtype=dtype).at[0].set(state0.ll)
    max_iter = jnp.minimum(max_iter, buffer)
    ptol = jnp.sqrt(tol)

    def cond(c):
        it, _, _, done, _ = c
        return (it < max_iter) & (~done)

    def body(c):
        it, state, trace, _, prev_dll = c
        new, _ = algorithm.step(layout, state, step_size)
        dll = jnp.abs(new.ll - state.ll)
        rate = jnp.clip(jnp.where(prev_dll > 0, dll / jnp.where(prev_dll > 0, prev_dll, 1.0), 0.0), 0.0, 0.99)
        rel_ll = dll / (1.0 - rate) / jnp.maximum(jnp.abs(state.ll), 1e-300)
        d_par = jnp.maximum(jnp.max(jnp.abs(new.weights - state.weights)), jnp.max(jnp.abs(new.atoms - state.atoms)))
        rel_par = d_par / (1.0 - jnp.sqrt(rate)) / jnp.maximum(1.0, jnp.max(jnp.abs(state.atoms)))
        done = (rel_ll < tol) & (rel_par < ptol)
        trace = trace.at[it + 1].set(new.ll)
        return it + 1, new, trace, done, dll

    init = (jnp.asarray(0), state0, trace, jnp.asarray(False), jnp.asarray(0.0, dtype))
    it, state, trace, done, _ = lax.while_loop(cond, body, init)
    return RunOut(state, trace, it, done)


_STATIC = ("buffer", "algorithm")
run = jax.jit(_run, static_argnames=_STATIC)


@partial(jax.jit, static_argnames=_STATIC)
def run_batch(layout, weights0, atoms0, tol, max_iter, step_size, *, buffer, algorithm):
    """:func:`run` over a leading starts axis of ``weights0`` (S, K) and ``atoms0`` (S, K, L)."""
    fn = partial(_run, buffer=buffer, algorithm=algorithm)
    return jax.vmap(fn, in_axes=(None, 0, 0, None, None, None))(layout, weights0, atoms0, tol, max_iter, step_size)


@jax.jit
def start_log_likelihoods(layout, weights, atoms):
    """Mean log-likelihood per observation of each start (S,)."""
    return jax.vmap(lambda a, b: em_init(layout, a, b).ll)(weights, atoms)


class StartsOutcome(NamedTuple):
    """What :func:`run_starts` found (log-likelihoods per observation)."""

    best: int
    ll_start: np.ndarray  # (S,)
    ll_short: np.ndarray  # (S,) NaN with a single start
    weights: np.ndarray  # (K,) whitened estimate
    atoms: np.ndarray  # (K, L)
    trace: np.ndarray
    n_iter: int
    converged: bool


def run_starts(
    layout: Layout,
    weights0: np.ndarray,
    atoms0: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    step_size: float,
    short_iter: int,
    algorithm: EMAlgorithm,
) -> StartsOutcome:
    """Short runs of every start (when there are several), then the best one continued to convergence."""
    S = weights0.shape[0]
    ll_start = np.asarray(start_log_likelihoods(layout, jnp.asarray(weights0), jnp.asarray(atoms0)))
    ll_short = np.full(S, np.nan)
    best, traces, done, converged = 0, [], 0, False
    w_cur, b_cur = weights0[0], atoms0[0]
    if S > 1:
        n_short = min(short_iter, max_iter)
        out = run_batch(
            layout,
            jnp.asarray(weights0),
            jnp.asarray(atoms0),
            0.0,
            n_short,
            step_size,
            buffer=short_iter,
            algorithm=algorithm,
        )
        ll_short = np.asarray(out.state.ll)
        best = int(np.argmax(np.where(np.isfinite(ll_short), ll_short, -np.inf)))
        traces.append(np.asarray(out.trace[best])[: n_short + 1])
        w_cur, b_cur = np.asarray(out.state.weights[best]), np.asarray(out.state.atoms[best])
        done = n_short
    if max_iter - done > 0:
        out1 = run(
            layout,
            jnp.asarray(w_cur),
            jnp.asarray(b_cur),
            tol,
            max_iter - done,
            step_size,
            buffer=max_iter,
            algorithm=algorithm,
        )
        k = int(out1.n_iter)
        tr = np.asarray(out1.trace)[: k + 1]
        traces.append(tr[1:] if traces else tr)
        done += k
        converged = bool(out1.converged)
        w_cur, b_cur = np.asarray(out1.state.weights), np.asarray(out1.state.atoms)
    return StartsOutcome(
        best,
        ll_start,
        ll_short,
        np.asarray(w_cur, dtype=np.float64),
        np.asarray(b_cur, dtype=np.float64),
        np.concatenate(traces),
        done,
        converged,
    )
