"""The package's compiled programs: ``jax.jit`` with a registry, and compiled ahead in the background.

Compiled programs persist across processes through JAX's own persistent
compilation cache (:mod:`smm_ppl.core.config` turns it on), as in NumPyro,
BlackJAX and Optax: a new process traces and lowers a program again, and XLA's
compilation is answered from the cache.

:func:`jit_program` is ``jax.jit`` (or any function with ``lower``, such as
``jax.pmap``) that keeps this process's compiled executables itself, keyed on
the argument shapes, dtypes, weak types, static values and shardings.  That
gives three things ``jax.jit`` does not offer through its public API:

- :meth:`Program.prefetch` compiles the program a later call will need in a
  background thread, so that a fit can compile its EM loop and its observed
  information while it builds the warm starts.  XLA holds the interpreter
  lock while it compiles (two programs in two threads take about as long as
  in sequence), so only the fit's other work overlaps with it: about 10 % of
  a first fit.  A call that needs a program still being prepared waits for
  it.  ``SMM_PPL_BACKGROUND_COMPILE=0`` turns the background thread off.
- :meth:`Program.is_compiled` says whether a call compiles (progress lines
  say so before a wait of seconds).
- :func:`compiled_programs` says how many shapes each named program has met
  in this process: a new data shape outside its bucket, another ``K`` or
  ``L``, or another variant compiles anew (seconds); everything else reuses
  it.

:func:`clear_programs` frees the executables the programs hold (their memory
mappings with them); a long process calls it beside ``jax.clear_caches()``.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import jax
import numpy as np

__all__ = [
    "jit_program",
    "Program",
    "compiled_programs",
    "clear_programs",
    "background_compile_enabled",
    "BATCH_NUMBERS",
    "batch_size",
    "on_device",
]

#: A program vectorised over many members (draws, candidate starts, directions) takes them in
#: batches of at most this many per-member numbers in all (160 MB in float64): its peak memory then
#: stays flat as the members or the items grow, and small problems still run in one batch.
BATCH_NUMBERS = 20_000_000


def on_device(x: Any) -> jax.Array:
    """A host array on the default device, compiling nothing.

    ``jnp.asarray`` of a NumPy array runs a small program per shape, which a
    new process compiles or reads from the cache: a few milliseconds each,
    dozens of them in a first fit.  A transfer needs no program.
    """
    return x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))


def batch_size(n_members: int, numbers_per_member: int) -> int:
    """Members per batch (``lax.map``'s ``batch_size``): all of them when they fit in :data:`BATCH_NUMBERS`."""
    return max(1, min(int(n_members), int(BATCH_NUMBERS // max(1, int(numbers_per_member)))))


#: Every program made in this process, by name (weakly: a program its owner dropped is not kept alive).
_PROGRAMS: dict[str, list] = {}
_ALL: weakref.WeakSet = weakref.WeakSet()


def compiled_programs() -> dict[str, int]:
    """Number of compiled shapes of each named program in this process (``{name: count}``)."""
    counts = {}
    for name, refs in list(_PROGRAMS.items()):
        live = [fn for fn in (r() for r in refs) if fn is not None]
        _PROGRAMS[name] = [weakref.ref(fn) for fn in live]
        counts[name] = sum(len(fn.memo) for fn in live)
    return counts


def clear_programs() -> None:
    """Free the compiled executables of every program in this process.

    Every XLA:CPU executable keeps its memory mappings while it lives; a long
    process that compiles many shapes frees them with this and
    ``jax.clear_caches()``.  The next call compiles again (from JAX's
    persistent cache when it has the program).
    """
    for program in list(_ALL):
        program.cache_clear()


def background_compile_enabled() -> bool:
    """Whether :meth:`Program.prefetch` compiles in a background thread (``SMM_PPL_BACKGROUND_COMPILE``)."""
    return os.environ.get("SMM_PPL_BACKGROUND_COMPILE", "1").strip().lower() not in {"0", "false", "no", "off"}


@functools.cache
def _compiler() -> ThreadPoolExecutor:
    # One worker: compilations do not run in parallel anyway, and queued programs compile in the order asked.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smm-ppl-compile")


def _aval(x) -> tuple:
    """Shape, dtype and weak type of an argument leaf: what its compiled program depends on."""
    if type(x) in (bool, int, float, complex):  # Python scalars are weakly typed (NumPy scalars are not)
        return ((), type(x).__name__, True)
    dtype = getattr(x, "dtype", None)
    return (
        tuple(np.shape(x)),
        str(dtype if dtype is not None else np.result_type(x)),
        bool(getattr(x, "weak_type", False)),
    )


def _sharding(x) -> Any:
    """The sharding of an array split over several devices, else ``None`` (host arrays and one device)."""
    sharding = getattr(x, "sharding", None)
    return sharding if sharding is not None and len(sharding.device_set) > 1 else None


def _stable(value: Any) -> Any:
    """A static argument as a dictionary key (unhashable values by their text)."""
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


class Program:
    """A jitted function that keeps its compiled executables and can compile them ahead (module docstring)."""

    def __init__(
        self, fn: Callable, static_argnames: tuple = (), name: str | None = None, transform: Callable = jax.jit
    ):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "program")
        self.static_argnames = tuple(static_argnames)
        self.jitted = transform(fn, static_argnames=self.static_argnames) if self.static_argnames else transform(fn)
        self.memo: dict = {}
        self.pending: dict[Any, Future] = {}
        self.lock = threading.Lock()
        try:
            parameters = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            parameters = []
        self.positional_names = [q.name for q in parameters if q.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        self.first_static_position = next(
            (i for i, n in enumerate(self.positional_names) if n in self.static_argnames), None
        )
        functools.update_wrapper(self, fn)
        _ALL.add(self)

    def cache_clear(self) -> None:
        """Drop this process's executables of this program: their memory is freed."""
        with self.lock:
            self.memo.clear()

    def _split(self, args, kwargs):
        """``(args, kwargs, statics, key)`` of a call; the key names one compiled program."""
        kwargs = dict(kwargs)
        first = self.first_static_position
        if first is not None and first < len(args) <= len(self.positional_names):
            # A static argument given by position is static too (as for jax.jit): from the first
            # static position on, the arguments go by name.
            kwargs.update(zip(self.positional_names[first:], args[first:]))
            args = tuple(args[:first])
        statics = {k: kwargs.pop(k) for k in self.static_argnames if k in kwargs}
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        key = (
            treedef,
            tuple(_aval(x) for x in leaves),
            tuple(sorted((k, _stable(v)) for k, v in statics.items())),
            tuple(_sharding(x) for x in leaves),
        )
        return args, kwargs, statics, key

    def key(self, *args, **kwargs):
        """The key of the program a call with these arguments runs (shapes, dtypes, statics, shardings)."""
        return self._split(args, kwargs)[3]

    def is_compiled(self, *args, **kwargs) -> bool:
        """Whether a call with these arguments reuses a program of this process (no compilation)."""
        return self._split(args, kwargs)[3] in self.memo

    def _compile(self, args, kwargs, statics):
        return self.jitted.lower(*args, **kwargs, **statics).compile()

    def __call__(self, *args, **kwargs):
        args, kwargs, statics, key = self._split(args, kwargs)
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((args, kwargs))):
            return self.jitted(*args, **kwargs, **statics)  # inside vmap/jit/grad: JAX's own path
        compiled = self.memo.get(key)
        if compiled is None:
            with self.lock:
                future = self.pending.pop(key, None)
            try:  # a program being compiled in the background: wait for it rather than compile it twice
                compiled = future.result() if future is not None else None
            except Exception:  # the background attempt failed: compile here, where errors surface
                compiled = None
            if compiled is None:
                compiled = self._compile(args, kwargs, statics)
            with self.lock:
                self.memo[key] = compiled
        return compiled(*args, **kwargs)

    def prefetch(self, *args, **kwargs) -> None:
        """Compile the program a call with these arguments needs, in a background thread.

        The arguments only give shapes, dtypes and static values: nothing
        runs.  It returns at once; a later call waits for the program if it
        is not ready yet.  Does nothing when the program exists, when the
        background thread is off, or inside a transformation.
        """
        if not background_compile_enabled():
            return
        args, kwargs, statics, key = self._split(args, kwargs)
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((args, kwargs))):
            return
        with self.lock:
            if key in self.memo or key in self.pending:
                return
            self.pending[key] = _compiler().submit(self._compile, args, kwargs, statics)


def jit_program(
    fn: Callable | None = None,
    *,
    static_argnames: tuple = (),
    name: str | None = None,
    transform: Callable = jax.jit,
) -> Any:
    """``transform(fn)`` (``jax.jit`` by default) as a :class:`Program`, registered under ``name``.

    Several programs may share a name (one sampler per settings): their counts
    in :func:`compiled_programs` add up.  Usable as a decorator.
    """
    if fn is None:
        return functools.partial(jit_program, static_argnames=static_argnames, name=name, transform=transform)
    program = Program(fn, static_argnames, name, transform)
    if name is not None:
        _PROGRAMS.setdefault(name, []).append(weakref.ref(program))
    return program
