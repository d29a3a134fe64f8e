"""Running the EM map: algorithms as ``init``/``step`` pairs and one jitted program per shape bucket.

:func:`em_algorithm` returns the pair for a variant (M-step, acceleration).
:func:`run_starts` runs every start for a short while, then continues the
best to convergence, all in *one* ``lax.while_loop`` whose body holds the
step once: the compiled program does not depend on the number of starts (the
starts are padded to :func:`starts_bucket`), on ``max_iter`` within its
bucket, on ``N`` or on the counts, so a user meets one compilation per data
shape bucket instead of one per phase.  :func:`run` is the single-start case
of the same program.

In that loop the starts run one after the other, so memory does not grow
with their number: the E-step arrays of one start are alive at a time.  On a
large design the short runs of the selection (and of the path of priors)
instead take :data:`BATCH_STARTS` starts at once where their E-step arrays
fit in :data:`BATCH_BYTES` (:func:`batch_size`): one pass over the features then
serves every start of the batch, which is what an iteration costs on a
large design (measured on 30,522 items with L = 384, K = 2: an iteration
of 8 starts at once took about twice one start's, 26 against 12.5 ms).

The driver knows nothing of mixtures beyond the defaults of
:class:`EMAlgorithm`: the parameters are a tuple of arrays (the mixture's
``(weights, atoms)``, the choice model's ``(z,)``) and each algorithm brings
its stopping test.  ``run_starts(..., halving=False)`` runs every start to
its own convergence instead of the successive halving (the choice model's
starts table reports each start's optimum).
"""

from __future__ import annotations

import operator
from functools import cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core.prior import scale_penalty
from ..core.programs import jit_program, on_device
from ..layouts import Layout
from .kernel import decrement, em_init, em_update, slack
from .lbfgs import lbfgs_init, lbfgs_update
from .runaway import RUNAWAY_WINDOW, RUNAWAY_WINDOWS, running_off
from .squarem import squarem_init, squarem_update

__all__ = [
    "EMAlgorithm",
    "MixtureMemory",
    "mixture_memory",
    "scalar_memory",
    "em_algorithm",
    "ACCELERATIONS",
    "RunOut",
    "run",
    "run_starts",
    "StartsOutcome",
    "starts_bucket",
    "iterations_bucket",
    "batch_size",
    "prefetch",
]

ACCELERATIONS = ("squarem", "lbfgs", "none")

#: ``fit_em``'s default iteration budget (its trace buffer is the one every default fit compiles).
DEFAULT_MAX_ITER = 2000
#: ``fit_em``'s default budget with a prior: on a real design the posterior mode's sharp classes converge
#: slowly (a vocabulary of 30,522 tokens with four languages: 2,256 iterations, measured), and a MAP fit is
#: the estimate there, so it gets the room to converge.
DEFAULT_MAP_MAX_ITER = 5000

#: A step moving no parameter by more than this many rounding units (relative to the largest atom) is stuck.
STUCK_ULPS = 64

#: Smallest padded number of starts and of iterations: every fit with fewer
#: shares one compiled program.  The trace buffer starts at the default
#: budget's, so that any ``max_iter`` up to the default (short runs, refits,
#: quick looks) reuses the program of a default fit; it costs a few kB.
_MIN_STARTS_BUCKET = 32
_MIN_ITER_BUCKET = 1 << (DEFAULT_MAX_ITER - 1).bit_length()


def mixture_params(state) -> tuple:
    """A mixture state's parameters, ``(weights, atoms)``: the positional parameters of its ``init``."""
    return state.weights, state.atoms


class MixtureMemory(NamedTuple):
    """What the mixture's stopping test carries from one iteration to the next (reset with every start)."""

    prev_dll: jax.Array  # () the last change of the objective (the projection's rate)
    t: jax.Array  # () int: iterations since the run began
    norms: jax.Array  # (RUNAWAY_WINDOWS + 1, K) whitened atom norms every RUNAWAY_WINDOW iterations, oldest first
    objectives: jax.Array  # (RUNAWAY_WINDOWS + 1,) the objective at the same checkpoints
    running_off: jax.Array  # (K,) bool: the classes :func:`~smm_ppl.em.runaway.running_off` flagged at the stop


def mixture_memory(state, penalty=None) -> MixtureMemory:
    """The mixture's :class:`MixtureMemory` at the beginning of a run from ``state`` (its first checkpoint)."""
    norms = jnp.linalg.norm(state.atoms, axis=1)
    rows = RUNAWAY_WINDOWS + 1
    dtype = state.objective.dtype
    return MixtureMemory(
        prev_dll=jnp.zeros((), dtype),
        t=jnp.zeros((), jnp.asarray(0).dtype),
        norms=jnp.full((rows, norms.shape[0]), jnp.nan, norms.dtype).at[-1].set(norms),
        objectives=jnp.full((rows,), jnp.nan, dtype).at[-1].set(state.objective),
        running_off=jnp.zeros(norms.shape, bool),
    )


def mixture_stop(layout, old, new, memory: MixtureMemory, tol, penalty, check):
    """The mixture's stopping test: :func:`_converged`'s projection, confirmed by the gradient, and, for
    a maximum likelihood fit, the runaway trend (:func:`~smm_ppl.em.runaway.running_off`).

    The confirmation costs two passes, so it runs only where ``check`` (the
    long run) and the projection says stop.  Returns ``(stop, converged,
    memory)``: a run that stops converged, unless a class is running off
    (``memory.running_off``), which stops it unconverged.
    """
    projected, stuck, dll = _converged(old, new, memory.prev_dll, tol)
    confirmed = lax.cond(
        check & projected & ~stuck,
        lambda: decrement(layout, new.weights, new.atoms, penalty) < tol * jnp.abs(new.objective),
        lambda: projected,
    )
    converged = stuck | confirmed
    t = memory.t + 1
    at_checkpoint = t % RUNAWAY_WINDOW == 0
    norms = jnp.where(
        at_checkpoint,
        jnp.concatenate([memory.norms[1:], jnp.linalg.norm(new.atoms, axis=1)[None].astype(memory.norms.dtype)]),
        memory.norms,
    )
    objectives = jnp.where(
        at_checkpoint, jnp.concatenate([memory.objectives[1:], new.objective[None]]), memory.objectives
    )
    if penalty is None:  # a prior's mode is finite: only a maximum likelihood fit can lack one
        off = running_off(norms, objectives, new.weights) & at_checkpoint & (tol > 0) & ~converged
    else:
        off = jnp.zeros_like(memory.running_off)
    memory = MixtureMemory(dll.astype(memory.prev_dll.dtype), t, norms, objectives, off)
    return converged | jnp.any(off), converged, memory


def scalar_memory(state, penalty=None):
    """The memory of a stopping test that needs only the last change of the objective."""
    return jnp.zeros((), state.objective.dtype)


class EMAlgorithm(NamedTuple):
    """An EM variant as pure functions (BlackJAX style), over any parameter tuple.

    ``init(layout, *params, penalty) -> state`` and ``step(layout, state,
    step_size, penalty) -> (state, info)``; every state has ``objective`` (the
    log-likelihood, plus the log prior of ``penalty``, a
    :class:`~smm_ppl.core.prior.Penalty` or ``None``, per observation or in
    total: the driver only compares it).  ``params(state)`` returns the tuple
    of arrays ``init`` takes (the mixture's ``(weights, atoms)``, the choice
    model's ``(z,)``); ``stop(layout, old, new, memory, tol, penalty,
    check) -> (stop, converged, memory)`` is the algorithm's stopping test
    after the step ``old -> new``: ``memory``, a pytree that
    ``memory(state, penalty)`` builds at the beginning of every run, carries
    what the test keeps between iterations (the last change of the
    objective; the mixture's :class:`MixtureMemory` also the atoms' norms
    every few iterations); ``check`` says whether the driver will use the
    verdict, so that costly confirmations can be skipped.  A run may stop
    unconverged (the mixture's runaway trend).
    ``layout`` is whatever the functions need of the data (a
    :class:`~smm_ppl.layouts.Layout` for the mixture), a pytree.
    """

    init: Callable
    step: Callable
    params: Callable = mixture_params
    stop: Callable = mixture_stop
    memory: Callable = mixture_memory


def _plain_init(layout, weights, atoms, penalty=None):
    return em_init(layout, weights, atoms, penalty)


@cache
def em_algorithm(m_step: str = "gradient", acceleration: str = "squarem") -> EMAlgorithm:
    """The algorithm for a variant; cached, so that jitted programs keyed on it compile once."""
    if acceleration == "squarem":
        return EMAlgorithm(squarem_init, partial(squarem_update, m_step=m_step))
    if acceleration == "lbfgs":
        if m_step != "gradient":
            raise ValueError(
                f"acceleration='lbfgs' preconditions with the gradient M-step; m_step={m_step!r} does not combine "
                "with it (use m_step='gradient', or acceleration='squarem')."
            )
        return EMAlgorithm(lbfgs_init, lbfgs_update)
    return EMAlgorithm(_plain_init, partial(em_update, m_step=m_step))


def _power_of_two_at_least(n: int, floor: int) -> int:
    return max(floor, 1 << max(0, int(n) - 1).bit_length())


def starts_bucket(n_starts: int) -> int:
    """Padded length of the starts axis: a power of two, at least 32."""
    return _power_of_two_at_least(n_starts, _MIN_STARTS_BUCKET)


def iterations_bucket(n_iter: int) -> int:
    """Length of a trace buffer for ``n_iter`` iterations: a power of two, at least that of ``DEFAULT_MAX_ITER``."""
    return _power_of_two_at_least(n_iter, _MIN_ITER_BUCKET)


def _converged(old, new, prev_dll, tol):
    """The stopping rule's projection (docs/math.md#stopping-rule).

    EM converges linearly, so a small change per iteration can still leave a
    long way to go.  The rule projects the changes (Aitken): with ``rate =
    dll_t / dll_{t-1}`` (clipped to ``[0, 0.99]``) it stops when ``dll_t / (1
    - rate) < tol * |ll|`` and ``dpar_t / (1 - sqrt(rate)) < sqrt(tol) *
    max(1, max|beta|)``.  Strict inequalities, so ``tol = 0`` runs exactly
    ``max_iter`` iterations.  It also stops when a step moves the parameters
    by a few rounding units only (:data:`STUCK_ULPS`, float32 fits).  The
    projection can be fooled (an accelerated step that happened to gain
    little), so the driver confirms a stop with the gradient:
    :func:`~smm_ppl.em.kernel.decrement` ``< tol * |objective|``.
    Returns ``(projected, stuck, dll)``: the projection's verdict, the
    rounding-level stop (which needs no confirmation), and the change.
    """
    dll = jnp.abs(new.objective - old.objective)
    rate = jnp.clip(jnp.where(prev_dll > 0, dll / jnp.where(prev_dll > 0, prev_dll, 1.0), 0.0), 0.0, 0.99)
    rel_ll = dll / (1.0 - rate) / jnp.maximum(jnp.abs(old.objective), 1e-300)
    d_par = jnp.maximum(jnp.max(jnp.abs(new.weights - old.weights)), jnp.max(jnp.abs(new.atoms - old.atoms)))
    size = jnp.maximum(1.0, jnp.max(jnp.abs(old.atoms)))
    rel_par = d_par / (1.0 - jnp.sqrt(rate)) / size
    # At the parameters' precision (float32 fits) the iterates can cycle in their last digits,
    # which the projection reads as slow progress: a step of a few rounding units that changes
    # the log-likelihood by no more than the safeguard's slack is the end.
    dtype = old.atoms.dtype
    stuck = (d_par <= STUCK_ULPS * jnp.finfo(dtype).eps * size) & (dll <= slack(dtype) * jnp.abs(old.objective))
    return (rel_ll < tol) & (rel_par < jnp.sqrt(tol)), stuck & (tol > 0), dll


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
    best_params: tuple  # the best start's parameters at the end of its short run
    trace: jax.Array  # (buffer + 1,) the long run, its start at 0
    done: jax.Array  # () bool
    converged: jax.Array  # () bool: the long run stopped converged
    memory: Any  # the stopping test's memory (``algorithm.memory``)
    end_params: tuple  # (S, ...) each start's parameters at the end of its short run
    end_traces: jax.Array  # (S, short_buffer + 1) each start's short run
    end_t: jax.Array  # (S,) int: iterations of each start's short run
    end_converged: jax.Array  # (S,) bool: each start's short run stopped converged (``to_convergence``)


def _tree_where(c, a, b):
    return jax.tree.map(lambda x, y: jnp.where(c, x, y), a, b)


def _run_schedule(
    layout, params0, n_starts, n_short, tol, max_long, step_size, penalty, *, short_buffer, buffer, algorithm,
    to_convergence=False,
):  # fmt: skip
    """Short runs of ``n_short`` iterations of starts ``0 .. n_starts - 1`` (when ``n_starts > 1``),
    then the best continued for at most ``max_long`` iterations under the stopping rule.

    One loop, one copy of the step: at the end of a short run the state is
    re-initialised (behind a ``lax.cond``) at the next start or, after the
    last, at the best start's short-run result.  ``params0`` is the tuple of
    the starts' parameters, each with the starts' axis first.  With
    ``to_convergence`` (static) every start runs, even a single one, and its
    run ends at the algorithm's stopping test or after ``n_short``
    iterations, whichever comes first.
    """
    S = params0[0].shape[0]
    n_first = n_starts if to_convergence else jnp.where(n_starts > 1, n_starts, 0)
    first = tuple(p[0] for p in params0)
    state0 = algorithm.init(layout, *first, penalty)
    dtype = state0.objective.dtype  # float64 also for float32 parameters (see layouts.accumulator)
    nan = jnp.asarray(jnp.nan, dtype)
    fresh_short = jnp.full((short_buffer + 1,), nan)
    init = _Schedule(
        state=state0,
        start=jnp.asarray(0),
        t=jnp.asarray(0),
        ll_start=jnp.full((S,), nan).at[0].set(state0.objective),
        ll_short=jnp.full((S,), nan),
        trace_short=fresh_short.at[0].set(state0.objective),
        best=jnp.asarray(0),
        best_ll=jnp.asarray(-jnp.inf, dtype),
        best_trace=fresh_short,
        best_params=first,
        trace=jnp.full((buffer + 1,), nan).at[0].set(state0.objective),
        done=jnp.asarray(False),
        converged=jnp.asarray(False),
        memory=algorithm.memory(state0, penalty),
        end_params=params0,
        end_traces=jnp.full((S, short_buffer + 1), nan),
        end_t=jnp.zeros((S,), jnp.asarray(0).dtype),
        end_converged=jnp.zeros((S,), bool),
    )

    def cond(c):
        return (c.start < n_first) | ((c.t < max_long) & ~c.done)

    def body(c):
        short = c.start < n_first
        new, _ = algorithm.step(layout, c.state, step_size, penalty)
        t = c.t + 1
        # The stopping test: in the long run, and in every run with to_convergence.
        check = jnp.asarray(True) if to_convergence else ~short
        stop, converged, memory = algorithm.stop(layout, c.state, new, c.memory, tol, penalty, check)
        stopped = check & stop
        # The short phase: record, and at its end compare with the best so far
        # (argmax over finite values, the first on ties).
        trace_short = jnp.where(short, c.trace_short.at[t].set(new.objective), c.trace_short)
        trace_short_end = trace_short
        end = short & ((t >= n_short) | stopped) if to_convergence else short & (t >= n_short)
        ll_end = jnp.where(jnp.isfinite(new.objective), new.objective, -jnp.inf)
        better = end & ((ll_end > c.best_ll) | (c.start == 0))
        new_params = algorithm.params(new)
        best = jnp.where(better, c.start, c.best)
        best_ll = jnp.where(better, ll_end, c.best_ll)
        best_trace = jnp.where(better, trace_short, c.best_trace)
        best_params = _tree_where(better, new_params, c.best_params)
        ll_short = jnp.where(end, c.ll_short.at[c.start].set(new.objective), c.ll_short)
        start = c.start + end.astype(c.start.dtype)
        done = ~short & stopped
        trace = jnp.where(short, c.trace, c.trace.at[t].set(new.objective))

        def load(_):
            following = start < n_first
            j = jnp.minimum(start, S - 1)
            p = _tree_where(following, tuple(x[j] for x in params0), best_params)
            return algorithm.init(layout, *p, penalty)

        state = lax.cond(end, load, lambda _: new, None)
        loaded_start = end & (start < n_first)
        ll_start = jnp.where(loaded_start, c.ll_start.at[jnp.minimum(start, S - 1)].set(state.objective), c.ll_start)
        trace = jnp.where(end & ~loaded_start, trace.at[0].set(state.objective), trace)
        trace_short = jnp.where(end, fresh_short.at[0].set(state.objective), trace_short)
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
            best_params=best_params,
            trace=trace,
            done=done,
            converged=done & converged,
            memory=_tree_where(end | (short & ~check), algorithm.memory(state, penalty), memory),
            end_params=_tree_where(
                end, jax.tree.map(lambda e, x: e.at[c.start].set(x), c.end_params, new_params), c.end_params
            ),
            end_traces=jnp.where(end, c.end_traces.at[c.start].set(trace_short_end), c.end_traces),
            end_t=jnp.where(end, c.end_t.at[c.start].set(t), c.end_t),
            end_converged=jnp.where(end, c.end_converged.at[c.start].set(stopped & converged), c.end_converged),
        )

    return lax.while_loop(cond, body, init)


_run_schedule_jit = jit_program(
    _run_schedule, static_argnames=("short_buffer", "buffer", "algorithm", "to_convergence"), name="em"
)


def _run_batch(layout, params0, n_iter, step_size, penalty, *, buffer, algorithm):
    """``n_iter`` iterations of every start in ``params0`` at once, vmapped over the starts' axis.

    The short runs of the start selection without the one-after-the-other
    loop: one pass over the features serves every start (a matrix product
    with ``S K`` rows instead of ``S`` products with ``K``), which is what an
    iteration costs on a large design.  No stopping test (a short run of the
    selection runs exactly its iterations).  Returns the starts' parameters at
    the end, their objectives at the start and the end, and the traces
    ``(S, buffer + 1)`` (NaN past ``n_iter``).
    """
    state0 = jax.vmap(lambda *p: algorithm.init(layout, *p, penalty))(*params0)
    step = jax.vmap(lambda state: algorithm.step(layout, state, step_size, penalty)[0])
    S = params0[0].shape[0]
    trace = jnp.full((S, buffer + 1), jnp.nan, state0.objective.dtype).at[:, 0].set(state0.objective)

    def body(c):
        t, state, trace = c
        new = step(state)
        return t + 1, new, trace.at[:, t + 1].set(new.objective)

    _, state, trace = lax.while_loop(lambda c: c[0] < n_iter, body, (jnp.asarray(0), state0, trace))
    return algorithm.params(state), state0.objective, state.objective, trace


_run_batch_jit = jit_program(_run_batch, static_argnames=("buffer", "algorithm"), name="em")

#: Starts the selection runs at once (fewer where their E-step arrays would not fit in :data:`BATCH_BYTES`).
#: Fixed, not the number of starts: the batched program is one per shape bucket, as the sequential one.
BATCH_STARTS = 8
#: Designs with fewer feature entries (rows x L) run their short runs one start at a time: the batched
#: program is a second compilation, which paid on 30,522 x 384 (the path of priors 15 s -> 4 s) but not on
#: 2,000 x 8 (a first fit 2.9 -> 5.2 s) or 100,000 x 64 (the same warm time, 6 s more compilation), measured.
BATCH_MIN_ENTRIES = 2**23
#: Memory a batch of starts may take for its E-step arrays (about this many ``(K, rows)`` arrays per start).
BATCH_BYTES = 512 * 2**20
_BATCH_ARRAYS = 16


def batch_size(n_components: int, n_rows: int, n_features: int, itemsize: int = 8) -> int:
    """How many starts the short runs of the selection take at once (vmapped): :data:`BATCH_STARTS`,
    halved while their E-step arrays would exceed :data:`BATCH_BYTES`; 0 (one after the other) on a
    design smaller than :data:`BATCH_MIN_ENTRIES` or when not even two fit."""
    if n_rows * n_features < BATCH_MIN_ENTRIES:
        return 0
    size = BATCH_STARTS
    while size > 1 and size * _BATCH_ARRAYS * n_components * n_rows * itemsize > BATCH_BYTES:
        size //= 2
    return size if size > 1 else 0


def _padded_starts(params0, dtype=np.float64, size=None) -> tuple:
    """Starts padded to ``size`` (default :func:`starts_bucket`) by repeating the first (never run), in the
    layout's ``dtype``, on the device."""
    arrays = [np.asarray(p, dtype=dtype) for p in params0]
    S = arrays[0].shape[0]
    pad = (starts_bucket(S) if size is None else size) - S
    if pad:
        arrays = [np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in arrays]
    return tuple(on_device(a) for a in arrays)


def _penalty_on_device(penalty, dtype):
    """A MAP fit's penalty in the parameters' ``dtype``, on the device (``None`` for maximum likelihood)."""
    return None if penalty is None else jax.tree.map(lambda x: on_device(np.asarray(x, dtype=dtype)), penalty)


class RunOut(NamedTuple):
    state: Any
    trace: jax.Array  # (n_iter + 1,)
    n_iter: jax.Array
    converged: jax.Array


def _schedule_args(layout, params, n_starts, n_short, tol, max_long, step_size, buffer, algorithm, penalty, dtype=None,
                   to_convergence=False):  # fmt: skip
    """The arguments of one call of the EM program: every call builds them here, so that the argument
    types (Python scalars for the traced counts) match what :func:`prefetch` compiled."""
    dtype = layout.features.dtype if dtype is None else dtype
    starts = _padded_starts(params, dtype)
    penalty = _penalty_on_device(penalty, dtype)
    args = (layout, starts, int(n_starts), max(int(n_short), 1), float(tol), int(max_long), float(step_size), penalty)
    statics = dict(short_buffer=buffer, buffer=buffer, algorithm=algorithm)
    if to_convergence:  # only then: the mixture's calls keep their key
        statics["to_convergence"] = True
    return args, statics


def prefetch(
    layout: Layout,
    n_components: int,
    *,
    max_iter: int,
    tol: float,
    step_size: float,
    algorithm: EMAlgorithm,
    penalty: Any = None,
) -> None:
    """Compile the EM program of :func:`run_starts` (and :func:`run`) for this layout in the background."""
    K, L = int(n_components), layout.n_features
    args, statics = _schedule_args(
        layout, (np.full((1, K), 1.0 / K), np.zeros((1, K, L))), 1, 1, tol, 0, step_size,
        iterations_bucket(max_iter), algorithm, penalty,
    )  # fmt: skip
    _run_schedule_jit.prefetch(*args, **statics)


def run(
    layout: Layout, weights0, atoms0, tol, max_iter, step_size, *, algorithm: EMAlgorithm, buffer=None, penalty=None
) -> RunOut:
    """One start iterated under the stopping rule (the program :func:`run_starts` compiles).

    ``max_iter`` and ``tol`` do not recompile; ``buffer`` (default
    :func:`iterations_bucket` of ``max_iter``) sizes the trace.
    """
    buffer = iterations_bucket(max_iter) if buffer is None else int(buffer)
    args, statics = _schedule_args(
        layout, (np.asarray(weights0)[None], np.asarray(atoms0)[None]), 1, 1, tol, min(int(max_iter), buffer),
        step_size, buffer, algorithm, penalty,
    )  # fmt: skip
    out = _run_schedule_jit(*args, **statics)
    n = int(out.t)
    # On the host: slicing the device array would compile a program per length.
    return RunOut(out.state, np.asarray(out.trace)[: n + 1], n, out.converged)


class StartsOutcome(NamedTuple):
    """What :func:`run_starts` found (in the units of the algorithm's objective).

    One entry per candidate: the starts, then (a MAP fit with several starts
    and ``prior_path``) each start again after the path of priors
    (:data:`ANNEAL_FACTORS`); ``origin`` says which start a candidate came from.
    """

    best: int
    ll_start: np.ndarray  # (S,)
    ll_short: np.ndarray  # (S,) each start's last value in the selection (NaN with a single start)
    params: tuple  # the estimate: the algorithm's parameters (the mixture's whitened (weights, atoms))
    trace: np.ndarray
    n_iter: int
    converged: bool
    iterations: np.ndarray  # (S,) iterations each start ran in the selection
    outcomes: list  # (S,) str: why each start was kept or dropped
    selection: str  # why the winner won
    starts_converged: np.ndarray  # (S,) bool: each start stopped converged (only with halving=False)
    origin: np.ndarray  # (S,) int: the start each candidate came from
    annealed: np.ndarray  # (S,) bool: whether it came along the path of priors
    memory: Any = None  # the stopping test's memory at the end of the winner's run (None with halving=False)


#: Successive halving keeps at most this share of the starts after each round.
HALVING_KEEP = 0.5
#: Iterations over which a start's recent gain per iteration is measured.
_RECENT = 5


#: A MAP fit with several starts on a real design also takes each start along a path of priors, the
#: prior's precision times these factors (its atoms' scale over ``sqrt(factor)``), before the
#: selection compares the results with the starts themselves (docs/math.md#multiple-starts).
#: On real designs the log posterior has many local modes, which a start run under the
#: prior itself falls into at once; under a stronger prior the classes stay diffuse, the
#: landscape is smoother, and relaxing the prior step by step tracks a mode as it sharpens.
ANNEAL_FACTORS = (100.0, 10.0)
#: Iterations at each step of that path (every start runs them).
ANNEAL_ITER = (50, 100)
#: The path is taken only with at least this ``max_iter`` (it leaves the rest for the selection and the winner).
ANNEAL_MIN_ITER = 4 * sum(ANNEAL_ITER)


#: Log-likelihoods this close (relative) rank as equal, the earlier start first: round-off
#: (another summation order, items split over devices) must not change which start wins.
_TIE = 1e-12


def _ranking(ll: np.ndarray) -> np.ndarray:
    """Indices from the best log-likelihood down; values within :data:`_TIE` of each other keep the starts' order."""
    finite = ll[np.isfinite(ll)]
    scale = _TIE * float(np.max(np.abs(finite))) if finite.size else 0.0
    rounded = np.where(np.isfinite(ll), np.round(ll / scale) if scale > 0 else ll, -np.inf)
    return np.argsort(-rounded, kind="stable")


def _survivors(lls: np.ndarray, traces: list, next_budget: int, margin: float) -> tuple[np.ndarray, list[str]]:
    """Successive halving with an optimistic cut: which of the running starts go on, and why the others stop.

    A start goes on when it ranks in the best ``HALVING_KEEP`` share *and*
    could still pass the leader by more than ``margin``: its log-likelihood
    plus its recent gain per iteration over the whole next round (EM's gains
    shrink, so the linear extrapolation is optimistic).  Starts that reached
    the leader's optimum (within ``margin``) therefore stop at once.
    """
    m = len(lls)
    ll = np.where(np.isfinite(lls), lls, -np.inf)
    order = _ranking(ll)
    leader = ll[order[0]]
    n_keep = max(1, int(np.ceil(HALVING_KEEP * m)))
    keep, why = np.zeros(m, bool), [""] * m
    for rank, j in enumerate(order):
        tr = traces[j]
        recent = tr[-1] - tr[-1 - min(_RECENT, len(tr) - 1)]
        gain = max(recent / max(min(_RECENT, len(tr) - 1), 1), 0.0)
        bound = ll[j] + gain * next_budget
        if rank == 0:
            keep[j] = True
        elif rank >= n_keep:
            why[j] = f"ranked {rank + 1} of {m}"
        elif not bound > leader + margin:
            why[j] = (
                "reached the leader's optimum"
                if ll[j] >= leader - margin
                else "cannot catch the leader at its recent rate"
            )
        else:
            keep[j] = True
    return keep, why


def run_starts(
    layout: Any,
    params0: tuple,
    *,
    tol: float,
    max_iter: int,
    step_size: float,
    short_iter: int,
    algorithm: EMAlgorithm,
    progress: Callable[[str], None] | None = None,
    n_obs: float = 1.0,
    penalty: Any = None,
    halving: bool = True,
    dtype: Any = None,
    prior_path: bool = False,
    batch: int = 0,
) -> StartsOutcome:
    """Choose among the starts by successive halving, then continue the winner to convergence.

    ``params0`` is the tuple of the starts' parameters that
    ``algorithm.init`` takes, each with the starts' axis first (the
    mixture's ``(weights, atoms)``).  Round one runs every start
    ``short_iter`` iterations; each later round doubles the iterations of the
    starts that go on (:func:`_survivors`), until one is left.  So starts are
    compared once they have had the time to separate, and hopeless ones stop
    early.  Every round and the final run are calls of the one compiled
    program.  ``progress``, if given, receives lines saying what runs (and
    whether the program compiles first); ``n_obs`` scales the
    log-likelihoods in those lines and in the reasons.  With ``penalty`` (a
    :class:`~smm_ppl.core.prior.Penalty`, a MAP fit) every value compared,
    recorded and reported is the log posterior per observation, up to the
    prior's normalising constant.

    ``halving=False`` runs every start instead to its own stopping test (at
    most ``max_iter`` iterations each, one call of the program), and the best
    wins: ``starts_converged`` then says which starts converged.  ``dtype``:
    of the parameters (default: the layout's features').  ``prior_path``
    (with ``penalty`` and several starts, halving): each start also goes along
    the path of priors (:data:`ANNEAL_FACTORS`) and enters the selection
    beside itself.  ``batch`` (:func:`batch_size`; 0: one after the other):
    the short runs take that many starts at once, vmapped.
    """
    params0 = tuple(np.asarray(p, dtype=np.float64) for p in params0)
    S = int(params0[0].shape[0])
    buffer = iterations_bucket(max_iter)
    params = [np.array(p) for p in params0]
    say = progress if progress is not None else (lambda _: None)
    value = "log-likelihood" if penalty is None else "log posterior"

    def call(idx, n_short, max_long, to_convergence=False, source=None, pen=penalty):
        source = params if source is None else source
        args, statics = _schedule_args(
            layout, tuple(p[idx] for p in source), len(idx), n_short, tol, max_long, step_size, buffer, algorithm,
            pen, dtype, to_convergence,
        )  # fmt: skip
        if progress is not None and not _run_schedule_jit.is_compiled(*args, **statics):
            say("compiling EM for this shape bucket first (seconds, once per process)")
        return _run_schedule_jit(*args, **statics)

    if not halving:
        say(f"EM: {S} start(s), each to convergence (at most {max_iter} iterations)")
        out = call(np.arange(S), max_iter, 0, to_convergence=True)
        ll = np.asarray(out.ll_short)[:S]
        iterations = np.asarray(out.end_t)[:S].astype(int)
        converged = np.asarray(out.end_converged)[:S].astype(bool)
        best = int(_ranking(ll)[0])
        ends = np.asarray(out.end_traces)
        outcomes = [
            f"{'converged' if converged[i] else 'stopped without converging'} after {iterations[i]} iterations"
            for i in range(S)
        ]
        selection = "a single start"
        if S > 1:
            outcomes[best] += ", won"
            runner_up = np.nanmax(np.where(np.arange(S) == best, -np.inf, ll))
            selection = (
                f"start {best} ended highest of {S} starts each run to convergence: {value} "
                f"{ll[best] * n_obs:,.2f}, the best other start {runner_up * n_obs:,.2f}"
            )
        return StartsOutcome(
            best,
            np.asarray(out.ll_start)[:S],
            ll,
            tuple(np.asarray(p, dtype=np.float64)[best] for p in out.end_params),
            ends[best, : iterations[best] + 1],
            int(iterations[best]),
            bool(converged[best]),
            iterations,
            outcomes,
            selection,
            converged,
            np.arange(S),
            np.zeros(S, bool),
        )

    def short_runs(idx, n_short, source=None, pen=penalty):
        """``n_short`` iterations of each start in ``idx``: vmapped in batches of ``batch`` starts, or in
        calls of at most the starts' own bucket (so that more candidates than starts compile nothing new).
        The end parameters, the values at the start and the end, and the traces."""
        if batch:
            return batched_runs(idx, n_short, source, pen)
        pieces = np.array_split(idx, -(-len(idx) // starts_bucket(S0)))
        outs = [call(piece, n_short, 0, source=source, pen=pen) for piece in pieces]

        def cat(arrays):
            return np.concatenate([np.asarray(a)[: len(pc)] for a, pc in zip(arrays, pieces)])

        ends = tuple(cat([o.end_params[j] for o in outs]) for j in range(len(params)))
        return ends, cat([o.ll_start for o in outs]), cat([o.ll_short for o in outs]), cat([o.end_traces for o in outs])

    def batched_runs(idx, n_short, source=None, pen=penalty):
        source = params if source is None else source
        run_dtype = layout.features.dtype if dtype is None else dtype
        pen = _penalty_on_device(pen, run_dtype)
        outs = []
        for piece in np.array_split(idx, -(-len(idx) // batch)):
            starts = _padded_starts([p[piece] for p in source], run_dtype, size=batch)
            args = (layout, starts, max(int(n_short), 1), float(step_size), pen)
            if progress is not None and not _run_batch_jit.is_compiled(*args, buffer=buffer, algorithm=algorithm):
                say("compiling the batched short runs for this shape bucket first (seconds, once per process)")
            out = jax.tree.map(np.asarray, _run_batch_jit(*args, buffer=buffer, algorithm=algorithm))
            outs.append(jax.tree.map(operator.itemgetter(slice(len(piece))), out))
        ends = tuple(np.concatenate([o[0][j] for o in outs]) for j in range(len(params)))
        return ends, *(np.concatenate([o[i] for o in outs]) for i in (1, 2, 3))

    S0 = S
    origin, annealed = np.arange(S), np.zeros(S, bool)
    offset = np.zeros(S, int)  # iterations a candidate ran before the selection (along the path of priors)
    if prior_path and penalty is not None and S > 1 and max_iter >= ANNEAL_MIN_ITER:
        path = [p.copy() for p in params]
        for factor, n in zip(ANNEAL_FACTORS, ANNEAL_ITER):
            say(f"EM: the path of priors: {S} starts, {n} iterations each under the prior's precision x {factor:g}")
            path = list(short_runs(np.arange(S), n, path, scale_penalty(penalty, factor))[0])
        params = [np.concatenate([p, q]) for p, q in zip(params, path)]
        origin, annealed = np.concatenate([origin, origin]), np.concatenate([annealed, ~annealed])
        offset = np.concatenate([offset, np.full(S, sum(ANNEAL_ITER))])
        S = 2 * S

    ll_start = np.full(S, np.nan)
    ll_last = np.full(S, np.nan)
    iterations = offset.copy()
    traces: list = [[] for _ in range(S)]
    outcomes = [""] * S
    alive = np.arange(S)
    budget, spent, rnd = int(short_iter), 0, 0
    while len(alive) > 1 and spent < max_iter:
        n = min(budget, max_iter - spent)
        rnd += 1
        say(f"EM: round {rnd} of the start selection: {len(alive)} starts, {n} iterations each")
        end_params, starts_ll, short_ll, ends = short_runs(alive, n)
        if rnd == 1:
            ll_start[alive] = starts_ll
            for i in alive:
                traces[i].append(ll_start[i])
        ll_last[alive] = short_ll
        for p, end in zip(params, end_params):
            p[alive] = end
        for j, i in enumerate(alive):
            traces[i].extend(ends[j, 1 : n + 1].tolist())
        iterations[alive] += n
        spent += n
        leader = np.nanmax(ll_last[alive])
        margin = max(np.sqrt(tol), 1e-9) * abs(leader) if np.isfinite(leader) else 0.0
        keep, why = _survivors(ll_last[alive], [traces[i] for i in alive], 2 * budget, margin)
        for j, i in enumerate(alive):
            if not keep[j]:
                outcomes[i] = f"dropped after round {rnd} ({iterations[i]} iterations): {why[j]}"
        alive = alive[keep]
        budget *= 2
    best = int(alive[_ranking(ll_last[alive])[0]]) if S > 1 else 0
    if S > 1:
        for i in alive:
            if i != best:
                outcomes[i] = f"stopped at max_iter after {rnd} round(s) ({iterations[i]} iterations), below the winner"
        runner_up = np.nanmax(np.where(np.arange(S) == best, -np.inf, ll_last))
        outcomes[best] = f"won after {rnd} round(s) ({iterations[best]} iterations)"
        selection = (
            f"start {best} won the successive halving after {rnd} round(s): {value} "
            f"{ll_last[best] * n_obs:,.2f}, the best other start {runner_up * n_obs:,.2f} when it stopped"
        )
    else:
        selection = "a single start"
        outcomes[0] = "the only start"
    left = max(max_iter - spent - int(offset[best]), 0)
    say(f"EM: the winner to convergence (at most {left} more iterations)")
    out = call(np.array([best]), 1, left)
    n_long = int(out.t)
    trace = np.asarray(out.trace)[: n_long + 1]  # on the host: a device slice compiles per length
    if S == 1:
        ll_start[0] = float(trace[0])
    if S > 1:
        trace = np.concatenate([np.asarray(traces[best]), trace[1:]])
    return StartsOutcome(
        best,
        ll_start,
        ll_last,
        tuple(np.asarray(p, dtype=np.float64) for p in algorithm.params(out.state)),
        trace,
        spent + int(offset[best]) + n_long,
        bool(out.converged),
        iterations,
        outcomes,
        selection,
        np.zeros(S, bool),
        origin,
        annealed,
        jax.tree.map(np.asarray, out.memory),
    )
