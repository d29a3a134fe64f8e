"""Running the EM map: algorithms as ``init``/``step`` pairs and one jitted program per shape bucket.

:func:`em_algorithm` returns the pair for a variant (M-step, acceleration).
:func:`run_starts` runs every start for a short while, then continues the
best to convergence, all in *one* ``lax.while_loop`` whose body holds the
step once: the compiled program does not depend on the number of starts (the
starts are padded to :func:`starts_bucket`), on ``max_iter`` within its
bucket, on ``N`` or on the counts, so a user meets one compilation per data
shape bucket instead of one per phase.  :func:`run` is the single-start case
of the same program.

The starts run one after the other, so memory does not grow with their
number: the E-step arrays of one start are alive at a time.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..layouts import Layout
from ..programs import stored_jit
from .kernel import em_init, em_update
from .squarem import squarem_init, squarem_update

__all__ = [
    "EMAlgorithm",
    "em_algorithm",
    "ACCELERATIONS",
    "RunOut",
    "run",
    "run_starts",
    "StartsOutcome",
    "starts_bucket",
    "iterations_bucket",
]

ACCELERATIONS = ("squarem", "none")

#: Smallest padded number of starts and of iterations: every fit with fewer
#: shares one compiled program.
_MIN_STARTS_BUCKET = 32
_MIN_ITER_BUCKET = 32


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


def _power_of_two_at_least(n: int, floor: int) -> int:
    return max(floor, 1 << max(0, int(n) - 1).bit_length())


def starts_bucket(n_starts: int) -> int:
    """Padded length of the starts axis: a power of two, at least 32."""
    return _power_of_two_at_least(n_starts, _MIN_STARTS_BUCKET)


def iterations_bucket(n_iter: int) -> int:
    """Length of a trace buffer for ``n_iter`` iterations: a power of two, at least 32."""
    return _power_of_two_at_least(n_iter, _MIN_ITER_BUCKET)


def _converged(old, new, prev_dll, tol):
    """The stopping rule; returns ``(done, dll)``.

    EM converges linearly, so a small change per iteration can still leave a
    long way to go.  The rule projects the changes (Aitken): with ``rate =
    dll_t / dll_{t-1}`` (clipped to ``[0, 0.99]``) it stops when ``dll_t / (1
    - rate) < tol * |ll|`` and ``dpar_t / (1 - sqrt(rate)) < sqrt(tol) *
    max(1, max|beta|)``.  Strict inequalities, so ``tol = 0`` runs exactly
    ``max_iter`` iterations.
    """
    dll = jnp.abs(new.ll - old.ll)
    rate = jnp.clip(jnp.where(prev_dll > 0, dll / jnp.where(prev_dll > 0, prev_dll, 1.0), 0.0), 0.0, 0.99)
    rel_ll = dll / (1.0 - rate) / jnp.maximum(jnp.abs(old.ll), 1e-300)
    d_par = jnp.maximum(jnp.max(jnp.abs(new.weights - old.weights)), jnp.max(jnp.abs(new.atoms - old.atoms)))
    rel_par = d_par / (1.0 - jnp.sqrt(rate)) / jnp.maximum(1.0, jnp.max(jnp.abs(old.atoms)))
    return (rel_ll < tol) & (rel_par < jnp.sqrt(tol)), dll


class _Schedule(NamedTuple):
    state: Any
    start: jax.Array  # () int: the start in its short run; >= n_first in the long run
    t: jax.Array  # () int: iterations of the current run
    ll_start: jax.Array  # (S,)
    ll_short: jax.Array  # (S,)
    trace_short: jax.Array  # (short_buffer + 1,) the current start's short run
    best: jax.Array  # () int
    best_ll: jax.Array  # ()
    best_trace: jax.Array  # (short_buffer + 1,)
    best_weights: jax.Array  # (K,)
    best_atoms: jax.Array  # (K, L)
    trace: jax.Array  # (buffer + 1,) the long run, its start at 0
    done: jax.Array  # () bool
    prev_dll: jax.Array  # ()


def _run_schedule(
    layout, weights0, atoms0, n_starts, n_short, tol, max_long, step_size, *, short_buffer, buffer, algorithm
):
    """Short runs of ``n_short`` iterations of starts ``0 .. n_starts - 1`` (when ``n_starts > 1``),
    then the best continued for at most ``max_long`` iterations under the stopping rule.

    One loop, one copy of the step: at the end of a short run the state is
    re-initialised (behind a ``lax.cond``) at the next start or, after the
    last, at the best start's short-run result.
    """
    S = weights0.shape[0]
    n_first = jnp.where(n_starts > 1, n_starts, 0)
    state0 = algorithm.init(layout, weights0[0], atoms0[0])
    dtype = state0.atoms.dtype
    nan = jnp.asarray(jnp.nan, dtype)
    fresh_short = jnp.full((short_buffer + 1,), nan)
    init = _Schedule(
        state=state0,
        start=jnp.asarray(0),
        t=jnp.asarray(0),
        ll_start=jnp.full((S,), nan).at[0].set(state0.ll),
        ll_short=jnp.full((S,), nan),
        trace_short=fresh_short.at[0].set(state0.ll),
        best=jnp.asarray(0),
        best_ll=jnp.asarray(-jnp.inf, dtype),
        best_trace=fresh_short,
        best_weights=weights0[0],
        best_atoms=atoms0[0],
        trace=jnp.full((buffer + 1,), nan).at[0].set(state0.ll),
        done=jnp.asarray(False),
        prev_dll=jnp.asarray(0.0, dtype),
    )

    def cond(c):
        return (c.start < n_first) | ((c.t < max_long) & ~c.done)

    def body(c):
        short = c.start < n_first
        new, _ = algorithm.step(layout, c.state, step_size)
        t = c.t + 1
        # The short phase: record, and at its end compare with the best so far
        # (argmax over finite values, the first on ties).
        trace_short = jnp.where(short, c.trace_short.at[t].set(new.ll), c.trace_short)
        end = short & (t >= n_short)
        ll_end = jnp.where(jnp.isfinite(new.ll), new.ll, -jnp.inf)
        better = end & ((ll_end > c.best_ll) | (c.start == 0))
        best = jnp.where(better, c.start, c.best)
        best_ll = jnp.where(better, ll_end, c.best_ll)
        best_trace = jnp.where(better, trace_short, c.best_trace)
        best_weights = jnp.where(better, new.weights, c.best_weights)
        best_atoms = jnp.where(better, new.atoms, c.best_atoms)
        ll_short = jnp.where(end, c.ll_short.at[c.start].set(new.ll), c.ll_short)
        start = c.start + end.astype(c.start.dtype)
        # The long phase: the stopping rule.
        stop, dll = _converged(c.state, new, c.prev_dll, tol)
        done = ~short & stop
        trace = jnp.where(short, c.trace, c.trace.at[t].set(new.ll))

        def load(_):
            following = start < n_first
            j = jnp.minimum(start, S - 1)
            w = jnp.where(following, weights0[j], best_weights)
            a = jnp.where(following, atoms0[j], best_atoms)
            return algorithm.init(layout, w, a)

        state = lax.cond(end, load, lambda _: new, None)
        loaded_start = end & (start < n_first)
        ll_start = jnp.where(loaded_start, c.ll_start.at[jnp.minimum(start, S - 1)].set(state.ll), c.ll_start)
        trace = jnp.where(end & ~loaded_start, trace.at[0].set(state.ll), trace)
        trace_short = jnp.where(end, fresh_short.at[0].set(state.ll), trace_short)
        return _Schedule(
            state=state,
            start=start,
            t=jnp.where(end, 0, t),
            ll_start=ll_start,
            ll_short=ll_short,
            trace_short=trace_short,
            best=best,
            best_ll=best_ll,
            best_trace=best_trace,
            best_weights=best_weights,
            best_atoms=best_atoms,
            trace=trace,
            done=done,
            prev_dll=jnp.where(short, 0.0, dll).astype(dtype),
        )

    return lax.while_loop(cond, body, init)


_run_schedule_jit = stored_jit(_run_schedule, static_argnames=("short_buffer", "buffer", "algorithm"), name="em")


def _padded_starts(weights0, atoms0):
    """Starts padded to :func:`starts_bucket` by repeating the first (never run)."""
    w = np.asarray(weights0, dtype=np.float64)
    a = np.asarray(atoms0, dtype=np.float64)
    S = w.shape[0]
    pad = starts_bucket(S) - S
    if pad:
        w = np.concatenate([w, np.repeat(w[:1], pad, axis=0)])
        a = np.concatenate([a, np.repeat(a[:1], pad, axis=0)])
    return jnp.asarray(w), jnp.asarray(a)


class RunOut(NamedTuple):
    state: Any
    trace: jax.Array  # (n_iter + 1,)
    n_iter: jax.Array
    converged: jax.Array


def run(layout: Layout, weights0, atoms0, tol, max_iter, step_size, *, algorithm: EMAlgorithm, buffer=None) -> RunOut:
    """One start iterated under the stopping rule (the program :func:`run_starts` compiles).

    ``max_iter`` and ``tol`` do not recompile; ``buffer`` (default
    :func:`iterations_bucket` of ``max_iter``) sizes the trace.
    """
    buffer = iterations_bucket(max_iter) if buffer is None else int(buffer)
    w, a = _padded_starts(np.asarray(weights0)[None], np.asarray(atoms0)[None])
    out = _run_schedule_jit(
        layout,
        w,
        a,
        1,
        1,
        tol,
        min(int(max_iter), buffer),
        step_size,
        short_buffer=_MIN_ITER_BUCKET,
        buffer=buffer,
        algorithm=algorithm,
    )
    n = int(out.t)
    return RunOut(out.state, out.trace[: n + 1], n, out.done)


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
    progress: Callable[[str], None] | None = None,
) -> StartsOutcome:
    """Short runs of every start (when there are several), then the best one continued to convergence.

    ``progress``, if given, receives a line saying what runs (and whether
    the program compiles first).
    """
    S = int(np.shape(weights0)[0])
    n_short = min(short_iter, max_iter) if S > 1 else 0
    w, a = _padded_starts(weights0, atoms0)
    args = (layout, w, a, S, max(n_short, 1), tol, max_iter - n_short, step_size)
    statics = dict(short_buffer=iterations_bucket(short_iter), buffer=iterations_bucket(max_iter), algorithm=algorithm)
    if progress is not None:
        compiles = not _run_schedule_jit.is_compiled(*args, **statics)
        what = f"{S} starts, {n_short} iterations each, then the best" if S > 1 else "one start"
        progress(
            f"EM: {what} to convergence (at most {max_iter} iterations)"
            + ("; compiling EM for this shape bucket first (seconds, once per process)" if compiles else "")
        )
    out = _run_schedule_jit(*args, **statics)
    n_long = int(out.t)
    trace = np.asarray(out.trace)[: n_long + 1]
    if S > 1:
        trace = np.concatenate([np.asarray(out.best_trace)[: n_short + 1], trace[1:]])
    return StartsOutcome(
        int(out.best),
        np.asarray(out.ll_start)[:S],
        np.asarray(out.ll_short)[:S],
        np.asarray(out.state.weights, dtype=np.float64),
        np.asarray(out.state.atoms, dtype=np.float64),
        trace,
        n_short + n_long,
        bool(out.done),
    )
