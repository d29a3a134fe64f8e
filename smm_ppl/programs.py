"""The package's compiled programs: stored on disk once compiled, and counted.

:func:`stored_jit` is ``jax.jit`` plus a store of the *compiled* program
(``jax.experimental.serialize_executable``) in the persistent cache folder
(:mod:`smm_ppl._config`).  JAX's compilation cache skips XLA's compilation in
a new process, but every call still traces and lowers the Python function to
find its cache key, and for the EM loop and the observed information that
alone takes most of a second.  A stored program is read back and called with
neither tracing nor lowering: a new process pays only the loading of the
executable.  Calls on arrays split over several devices
(:mod:`smm_ppl.layouts.placement`) are plain ``jax.jit`` calls, keyed on the
shardings too.

A compiled program is machine code for one machine.  The store holds two
files per program: an entry, keyed on the argument shapes and dtypes, the
static arguments and a hash of the package's source files, that names the
program's text (StableHLO) and holds its output tree; and the executable,
keyed on that text, the JAX version and the machine (backend, device kind,
CPU features, ``XLA_FLAGS``, 64-bit mode, default device).  An edited
package or another JAX never reuses a stale program, a cache folder shared
with another machine never runs another machine's code, and a new version
of the package whose programs did not change traces each one once and
loads the executable it already has.  Executables are compiled afresh for
the store (see :func:`_fresh_compilation`).  Without a cache folder, or if
anything about storing or loading fails, the call is a plain ``jax.jit``.

:meth:`StoredFunction.prefetch` compiles (or loads) a program in a background
thread, so that a fit can compile its EM loop and its observed information
while it builds the warm starts.  XLA holds the interpreter lock while it
compiles (two programs in two threads take about as long as in sequence), so
only the fit's other work overlaps with it: about 10 % of a first fit.  A
call that needs a program still being prepared waits for it; one that was
never prefetched compiles as usual.  ``SMM_PPL_BACKGROUND_COMPILE=0``
turns the background thread off.

:func:`compiled_programs` says how many shapes each named program has met in
this process: a new data shape outside its bucket, another ``K`` or ``L``, or
another variant compiles anew (seconds); everything else reuses it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import os
import pickle
import tempfile
import threading
import warnings
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

__all__ = [
    "stored_jit",
    "StoredFunction",
    "register_program",
    "compiled_programs",
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


_PROGRAMS: dict[str, list] = {}
#: Bumped when the stored format changes.
_FORMAT = 4


def register_program(name: str, jitted: Any) -> Any:
    """Record a jitted function under ``name`` (for :func:`compiled_programs`); returns it.

    Several functions may share a name (one sampler per settings): their counts add up.  The
    registry holds weak references, so a program its owner dropped is not kept alive.
    """
    _PROGRAMS.setdefault(name, []).append(weakref.ref(jitted))
    return jitted


def compiled_programs() -> dict[str, int]:
    """Number of compiled shapes of each registered program in this process (``{name: count}``)."""
    counts = {}
    for name, refs in _PROGRAMS.items():
        live = [fn for fn in (r() for r in refs) if fn is not None]
        _PROGRAMS[name] = [weakref.ref(fn) for fn in live]
        counts[name] = sum(int(getattr(fn, "_cache_size", lambda: 0)()) for fn in live)
    return counts


@functools.cache
def _source_hash() -> str:
    """Hash of the package's source (the models included): part of every stored program's key."""
    import importlib.util

    roots = [Path(__file__).resolve().parent]
    spec = importlib.util.find_spec("smm_ppl.models")
    if spec is not None and spec.submodule_search_locations:
        roots += [Path(p) for p in spec.submodule_search_locations]
    h = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def _store() -> Path | None:
    """The folder of stored programs, or None (no cache folder)."""
    from ._config import COMPILATION_CACHE

    return Path(COMPILATION_CACHE) / "smm-ppl-programs" if COMPILATION_CACHE else None


def _cpu_features() -> str:
    """The host CPU's instruction-set features (what XLA:CPU compiles for)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return f"{platform.machine()} {platform.processor()}"


@functools.cache
def _machine() -> str:
    """What a compiled program depends on beyond its arguments: part of every stored program's key."""
    import jaxlib

    device = jax.devices()[0]
    text = repr(
        (
            jaxlib.__version__,
            device.platform,
            device.client.platform_version,
            device.device_kind,
            os.environ.get("XLA_FLAGS", ""),
            bool(jax.config.jax_enable_x64),
            _cpu_features() if device.platform == "cpu" else "",
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stable(value: Any) -> str:
    """A text for a static argument that is the same in every process."""
    if isinstance(value, functools.partial):
        kw = sorted((k, _stable(v)) for k, v in (value.keywords or {}).items())
        return f"partial({_stable(value.func)}, {[_stable(a) for a in value.args]}, {kw})"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}"
    if isinstance(value, tuple):
        return f"{type(value).__name__}({', '.join(_stable(v) for v in value)})"
    return repr(value)


def _aval(x) -> tuple:
    dtype = getattr(x, "dtype", None)
    return (tuple(np.shape(x)), str(dtype if dtype is not None else np.result_type(x)))


def _spread(x) -> Any:
    """The sharding of an array split over several devices, else ``None``."""
    sharding = getattr(x, "sharding", None)
    return sharding if sharding is not None and len(sharding.device_set) > 1 else None


def background_compile_enabled() -> bool:
    """Whether :meth:`StoredFunction.prefetch` compiles in a background thread (``SMM_PPL_BACKGROUND_COMPILE``)."""
    return os.environ.get("SMM_PPL_BACKGROUND_COMPILE", "1").strip().lower() not in {"0", "false", "no", "off"}


@functools.cache
def _compiler() -> ThreadPoolExecutor:
    # One worker: compilations do not run in parallel anyway, and queued programs compile in the order asked.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="smm-ppl-compile")


def _clear_with_jax(stored: StoredFunction) -> None:
    """Have ``jax.clear_caches()`` clear ``stored`` too, as it clears ``jax.jit``'s compiled programs.

    The executables a :class:`StoredFunction` holds are its own, not in JAX's caches; a long process
    frees them (and their memory mappings) the way it frees JAX's.  JAX keeps the registry weakly.
    """
    try:
        from jax._src.util import register_cache
    except ImportError:  # another JAX: the programs live as long as their function
        return
    register_cache(stored, f"smm_ppl stored program {stored.name}")


class _Program:
    """One compiled program of a :class:`StoredFunction` function: called on the flat argument leaves.

    ``jitted`` is a ``jax.jit`` function (compiled on first use) or, for a stored program, a
    ``jax.stages.Compiled`` executable.
    """

    def __init__(self, jitted: Callable, to_args: Callable, to_out: Callable):
        self.jitted, self.to_args, self.to_out = jitted, to_args, to_out

    def __call__(self, leaves):
        args, kwargs = self.to_args(leaves)
        return self.to_out(self.jitted(*args, **kwargs))

    def compile(self, leaves) -> None:
        """Compile without running: JAX keeps the executable for the next call with these argument types."""
        if isinstance(self.jitted, jax.stages.Compiled):
            return
        args, kwargs = self.to_args(leaves)
        self.jitted.lower(*args, **kwargs).compile()


class StoredFunction:
    """A jitted function whose compiled programs are kept on disk (see the module docstring)."""

    def __init__(self, fn: Callable, static_argnames: tuple, name: str):
        self.fn = fn
        self.static_argnames = tuple(static_argnames)
        self.name = name
        self.jitted = jax.jit(fn, static_argnames=self.static_argnames)
        self.memo: dict = {}
        self.pending: dict[Any, Future] = {}
        self.lock = threading.Lock()
        self.positional_names = [
            q.name
            for q in inspect.signature(fn).parameters.values()
            if q.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        self.first_static_position = next(
            (i for i, name in enumerate(self.positional_names) if name in self.static_argnames), None
        )
        functools.update_wrapper(self, fn)
        _clear_with_jax(self)

    def _cache_size(self) -> int:
        return len(self.memo)

    def cache_clear(self) -> None:
        """Drop this process's programs (``jax.clear_caches()`` calls it): their memory is freed."""
        with self.lock:
            self.memo.clear()

    def key(self, *args, **kwargs):
        """The key of the program a call with these arguments runs (shapes, dtypes, statics, shardings)."""
        return self._split(args, kwargs)[3]

    def _split(self, args, kwargs):
        """``(leaves, treedef, statics, key)``: the key names one compiled program."""
        kwargs = dict(kwargs)
        first = self.first_static_position
        if first is not None and first < len(args) <= len(self.positional_names):
            # A static argument given by position is static too (as for jax.jit): from the first
            # static position on, the arguments go by name.
            kwargs.update(zip(self.positional_names[first:], args[first:]))
            args = args[:first]
        statics = {k: kwargs.pop(k) for k in self.static_argnames if k in kwargs}
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        key = (
            treedef,
            tuple(_aval(x) for x in leaves),
            tuple(sorted((k, _stable(v)) for k, v in statics.items())),
            tuple(_spread(x) for x in leaves),
        )
        return leaves, treedef, statics, key

    def is_compiled(self, *args, **kwargs) -> bool:
        """Whether a call with these arguments reuses a program of this process (no compilation)."""
        return self._split(args, kwargs)[3] in self.memo

    def __call__(self, *args, **kwargs):
        leaves, treedef, statics, key = self._split(args, kwargs)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):  # inside vmap/jit/grad: JAX's own path
            return self.jitted(*args, **kwargs)
        call = self.memo.get(key)
        if call is None:
            with self.lock:
                future = self.pending.pop(key, None)
            try:  # a program being prepared in the background: wait for it rather than compile it twice
                call = future.result() if future is not None else None
            except Exception:  # the background attempt failed: compile here, where errors surface
                call = None
            if call is None:
                call = self._program(key, treedef, leaves, statics)
            self.memo[key] = call
        return call(leaves)

    def prefetch(self, *args, **kwargs) -> None:
        """Compile (or load) the program a call with these arguments needs, in a background thread.

        The arguments only give shapes, dtypes and static values: nothing
        runs.  It returns at once; a later call waits for the program if it
        is not ready yet.  Does nothing when the program exists, when the
        background thread is off, or inside a transformation.
        """
        if not background_compile_enabled():
            return
        leaves, treedef, statics, key = self._split(args, kwargs)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return
        with self.lock:
            if key in self.memo or key in self.pending:
                return
            self.pending[key] = _compiler().submit(self._compiled_program, key, treedef, leaves, statics)

    def _compiled_program(self, key, treedef, leaves, statics) -> _Program:
        program = self._program(key, treedef, leaves, statics)
        program.compile(leaves)
        return program

    def _program(self, key, treedef, leaves, statics) -> _Program:
        # Programs over arrays split across devices are partitioned for that mesh: not stored.
        store = None if any(s is not None for s in key[3]) else _store()
        if store is None:
            return self._plain(treedef, statics)
        return self._load_or_compile(store, key, treedef, leaves, statics)

    def _load_or_compile(self, store: Path, key, treedef, leaves, statics) -> _Program:
        # Two files.  The entry, keyed on the call and the package's source, names the program text
        # (StableHLO) and holds the output tree; the executable, keyed on that text and the machine,
        # holds the machine code.  A new version of the package whose programs did not change
        # traces each program once (to find its entry), then loads the executable it already has.
        where = str(jax.config.jax_default_device)  # the platform an executable is compiled and loaded for
        context = (_FORMAT, jax.__version__, _machine(), where)
        entry = store / f"{self.name}-{_digest((self.name, str(key[0]), key[1], key[2], _source_hash(), context))}.key"
        try:
            text_digest, out_tree = pickle.loads(entry.read_bytes())
            return self._stored(_read(store / f"{self.name}-{text_digest}.bin"), out_tree)
        except Exception:  # absent, damaged or from elsewhere: trace the program to find its executable
            pass
        try:
            lowered, out_tree = self._lower(treedef, leaves, statics)
            text_digest = _digest((self.name, lowered.as_text(), context))
        except Exception:  # the error surfaces where the plain jax.jit call raises it
            return self._plain(treedef, statics)
        path = store / f"{self.name}-{text_digest}.bin"
        try:
            compiled = _read(path)
        except Exception:
            try:
                with _fresh_compilation() as options:
                    compiled = lowered.compile(compiler_options=options)
            except Exception:
                return self._plain(treedef, statics)
            if options is not None:
                _write(path, compiled)
        _write_bytes(entry, pickle.dumps((text_digest, out_tree)))
        return self._stored(compiled, out_tree)

    @staticmethod
    def _stored(compiled, out_tree) -> _Program:
        return _Program(
            compiled, lambda leaves: (tuple(leaves), {}), lambda out: jax.tree_util.tree_unflatten(out_tree, out)
        )

    def _lower(self, treedef, leaves, statics):
        """The function lowered for flat leaves of these shapes and dtypes, and its output tree."""
        out_trees = []

        def flat(*flat_leaves):
            args, kwargs = jax.tree_util.tree_unflatten(treedef, flat_leaves)
            out = self.fn(*args, **kwargs, **statics)
            out_leaves, out_tree = jax.tree_util.tree_flatten(out)
            out_trees.append(out_tree)
            return tuple(out_leaves)

        specs = [jax.ShapeDtypeStruct(*_aval(x)) for x in leaves]
        lowered = jax.jit(flat).lower(*specs)
        return lowered, out_trees[-1]

    def _plain(self, treedef, statics) -> _Program:
        def to_args(leaves):
            args, kwargs = jax.tree_util.tree_unflatten(treedef, leaves)
            return args, {**kwargs, **statics}

        return _Program(self.jitted, to_args, lambda out: out)


#: An XLA option at its default value, passed with every compilation meant for the store: it leaves
#: the machine code as it is but gives the compilation a key of its own in JAX's persistent cache.
_FRESH_OPTIONS = {"xla_embed_ir_in_executable": False}


@contextlib.contextmanager
def _fresh_compilation():
    """Compiler options for a compilation that JAX's persistent cache neither answers nor keeps.

    An executable that JAX read back from its own cache serialises without its
    machine code (XLA:CPU: a new process that loads it fails with "Function
    ... not found"), so a program to be stored must be compiled afresh.  The
    options (:data:`_FRESH_OPTIONS`) give it a cache key that no other
    compilation uses, and JAX writes no entry under that key here (a minimum
    compile time no compilation reaches, in this thread only), so no later
    compilation for the store can be answered from the cache either.  Where
    JAX offers no such setting it yields ``None``: the program is compiled as
    usual and not stored.
    """
    try:
        from jax._src.config import persistent_cache_min_compile_time_secs as min_compile_time
    except ImportError:
        yield None
        return
    with min_compile_time(float("inf")):
        yield dict(_FRESH_OPTIONS)


def _n_devices(compiled) -> int:
    """How many devices a compiled program runs on."""
    shardings = jax.tree_util.tree_leaves((compiled.input_shardings, compiled.output_shardings))
    return len({d for s in shardings for d in s.device_set})


def _default_device() -> jax.Device:
    """The device a call on host arrays runs on: the default device, else this process's first."""
    device = jax.config.jax_default_device
    if isinstance(device, jax.Device):
        return device
    return jax.local_devices(backend=device if isinstance(device, str) else None)[0]


def _digest(value) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:32]


def _read(path: Path):
    """A stored executable, loaded; raises if there is none or it does not load."""
    from jax.experimental import serialize_executable

    payload = pickle.loads(path.read_bytes())
    # Loaded onto this process's default device: device ids differ between processes of one job.
    return serialize_executable.deserialize_and_load(
        payload["executable"], payload["in_tree"], payload["out_tree"], execution_devices=[_default_device()]
    )


def _write(path: Path, compiled) -> None:
    """Store a one-device executable; one that cannot be serialised is simply not stored."""
    from jax.experimental import serialize_executable

    try:
        if _n_devices(compiled) != 1:
            return
        executable, in_tree, out_tree = serialize_executable.serialize(compiled)
    except Exception:
        return
    payload = {"executable": executable, "in_tree": in_tree, "out_tree": out_tree}
    _write_bytes(path, pickle.dumps(payload))


_WRITE_FAILED = threading.Event()


def _write_bytes(path: Path, data: bytes) -> None:
    """Write atomically.  A failed write (a full disk, a folder made read-only) is not an error:
    nothing is stored, and the first failure in a process warns, as JAX's cache does."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not _WRITE_FAILED.is_set():
            _WRITE_FAILED.set()
            warnings.warn(
                f"smm-ppl could not store a compiled program in its compilation cache folder {path.parent} "
                f"({err}); the fit goes on, and a new process compiles the program again.",
                RuntimeWarning,
                stacklevel=2,
            )


def stored_jit(fn: Callable | None = None, *, static_argnames: tuple = (), name: str | None = None):
    """``jax.jit`` whose compiled programs are stored in the cache folder and registered by ``name``."""
    if fn is None:
        return functools.partial(stored_jit, static_argnames=static_argnames, name=name)
    stored = StoredFunction(fn, static_argnames, name or fn.__name__)
    if name is not None:
        register_program(name, stored)
    return stored
