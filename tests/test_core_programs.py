"""The package's programs (smm_ppl.core.programs): a transformed call takes JAX's own path; a program compiled
in the background is the one the call runs, and fit_em prefetches exactly the programs it calls; the
registry counts compiled shapes; clear_programs frees them.  Persistence across processes is JAX's own
cache (tests/test_two_processes.py, tests/test_core_config.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import monitoring

import smm_ppl as smm
from smm_ppl.core import programs
from smm_ppl.core.programs import jit_program


def test_inside_a_transformation_the_program_is_plain_jax():
    from smm_ppl.warmstart.moments import second_moment_jax

    xt = np.random.default_rng(0).normal(size=(3, 50, 2))
    w = np.full(50, 1 / 50)
    before = len(second_moment_jax.memo)
    batched = jax.vmap(second_moment_jax, in_axes=(0, None))(xt, w)
    assert len(second_moment_jax.memo) == before  # traced inside vmap, not compiled as a program of its own
    for b in range(3):
        np.testing.assert_allclose(batched[b], second_moment_jax(xt[b], w), rtol=1e-12)


class _Compiles:
    """Counts XLA compilations in this process while active."""

    def __init__(self):
        self.n = 0
        self.on = False
        monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **_):
        if self.on and event == "/jax/core/compile/backend_compile_duration":
            self.n += 1

    def __enter__(self):
        self.n, self.on = 0, True
        return self

    def __exit__(self, *exc):
        self.on = False


_COMPILES = _Compiles()


def _poly(x, c, *, degree):
    return sum(c**k * jnp.sin(x) ** k for k in range(degree + 1)).sum(axis=0)


def test_a_prefetched_program_is_compiled_in_the_background_and_called_without_compiling():
    fn = jit_program(_poly, static_argnames=("degree",))
    x = np.random.default_rng(0).normal(size=(37, 3))
    fn.prefetch(x, 0.5, degree=5)
    key = fn.key(x, 0.5, degree=5)
    future = fn.pending[key]
    future.result(timeout=120)  # compiled, not yet run
    with _COMPILES as compiles:
        out = fn(x, 0.7, degree=5)  # another value of the traced argument: the same program
    assert compiles.n == 0
    assert not fn.pending and len(fn.memo) == 1
    np.testing.assert_allclose(out, jax.jit(_poly, static_argnames="degree")(x, 0.7, degree=5), rtol=1e-14)
    fn.prefetch(x, 0.5, degree=5)  # already there: nothing queued
    assert not fn.pending


def test_a_failed_background_compilation_raises_where_the_program_is_called():
    fn = jit_program(_poly, static_argnames=("degree",))
    c = np.ones(4)  # broadcasts against (37, 3) in no way: the program cannot be built
    x = np.ones((37, 3))
    fn.prefetch(x, c, degree=2)
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        fn(x, c, degree=2)


def test_background_compilation_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SMM_PPL_BACKGROUND_COMPILE", "0")
    fn = jit_program(_poly, static_argnames=("degree",))
    fn.prefetch(np.ones((5, 2)), 0.5, degree=1)
    assert not fn.pending


def test_fit_em_prefetches_exactly_the_programs_it_calls(monkeypatch, small_problem):
    """Every program fit_em asks for in the background is one its own calls then run: the same
    argument types and statics, so no compilation is wasted on a program nothing uses."""
    prefetched, called = [], []
    prefetch, call = programs.Program.prefetch, programs.Program.__call__

    def spy_prefetch(self, *args, **kwargs):
        prefetched.append((self.name, self.key(*args, **kwargs)))
        return prefetch(self, *args, **kwargs)

    def spy_call(self, *args, **kwargs):
        called.append((self.name, self.key(*args, **kwargs)))
        return call(self, *args, **kwargs)

    monkeypatch.setattr(programs.Program, "prefetch", spy_prefetch)
    monkeypatch.setattr(programs.Program, "__call__", spy_call)
    X, n, _ = small_problem
    res = smm.fit_em(X, n, 2, init="mom", max_iter=200)
    names = {name for name, _ in prefetched}
    assert {"em", "information", "_effective_items_jax"} <= names
    for item in prefetched:
        assert item in called, f"{item[0]} was compiled in the background for arguments no call used"
    assert np.all(np.isfinite(res.standard_errors.atoms))


def _powers(x, order, scale):
    return jnp.stack([scale * x**r for r in range(order + 1)])


def test_a_static_argument_given_by_position_is_static():
    """As with jax.jit's static_argnames: the value by position or by name names the same program."""
    f = jit_program(_powers, static_argnames=("order",))
    x = np.linspace(0.0, 1.0, 7)
    assert f.key(x, 3, 2.0) == f.key(x, order=3, scale=2.0)
    assert f.key(x, 3, 2.0) != f.key(x, 4, 2.0)
    by_position = f(x, 3, 2.0)
    np.testing.assert_allclose(by_position, np.stack([2.0 * x**r for r in range(4)]), rtol=1e-15)
    with _COMPILES as compiles:
        np.testing.assert_array_equal(f(x, order=3, scale=2.0), by_position)
    assert compiles.n == 0 and len(f.memo) == 1
    assert f(x, 4, 2.0).shape == (5, 7) and len(f.memo) == 2


def test_a_program_is_keyed_on_weak_types_and_counted_by_name():
    """A Python scalar and a strongly typed array of the same dtype are different programs for JAX
    (weak types): both run, each compiled once, and compiled_programs counts them under the name."""
    f = jit_program(_powers, static_argnames=("order",), name="test-powers")
    x = np.linspace(0.0, 1.0, 5)
    weak = f(x, 2, 3.0)
    strong = f(x, 2, np.float64(3.0))
    np.testing.assert_array_equal(weak, strong)
    assert smm.compiled_programs()["test-powers"] == 2
    f(x, 2, -1.0)  # another value of the same type: no new program
    assert smm.compiled_programs()["test-powers"] == 2


def test_clear_programs_frees_the_executables_and_the_next_call_compiles_again():
    f = jit_program(_powers, static_argnames=("order",))
    x = np.linspace(0.0, 1.0, 5)
    first = f(x, 2, 3.0)
    assert len(f.memo) == 1
    smm.clear_programs()
    assert not f.memo
    np.testing.assert_array_equal(f(x, 2, 3.0), first)
    assert len(f.memo) == 1


def test_a_parallel_map_over_devices_is_a_program_too():
    """NUTS's parallel chains are a jax.pmap: lowered, compiled and called like a jit program."""
    f = jit_program(lambda a, b: a * b + 1.0, name="test-pmap", transform=jax.pmap)
    a = np.arange(6.0).reshape(1, 6)
    np.testing.assert_array_equal(f(a, 2 * a), a * 2 * a + 1.0)
    assert smm.compiled_programs()["test-pmap"] == 1


def test_batch_size_keeps_small_problems_in_one_batch_and_bounds_large_ones():
    assert programs.batch_size(20, 3 * 1_000 * 2) == 20  # all members at once: the program of before
    big = programs.batch_size(20, 3 * 1_000_000 * 8)
    assert big == 1 and big * 3 * 1_000_000 * 8 <= 2 * programs.BATCH_NUMBERS
    members = programs.batch_size(1_000, 50_000)
    assert members * 50_000 <= programs.BATCH_NUMBERS < (members + 1) * 50_000
    assert programs.batch_size(0, 10) == 1 and programs.batch_size(5, 0) == 5
