"""Stored programs (smm_ppl.programs): a new process loads the stored executable (no compilation), with the same result, on the same machine only;
a damaged store falls back to jax.jit; a transformed call takes JAX's own path; a program compiled in
the background is the one the call runs, and fit_em prefetches exactly the programs it calls."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import monitoring

import smm_ppl as smm
from smm_ppl import programs
from smm_ppl.programs import stored_jit

FIT = """
import json, time
import numpy as np
import smm_ppl as smm
from smm_ppl import programs
X = smm.simulate_features(0, 150, 2)
n = smm.simulate_counts(1, X, smm.SMMParams(np.array([.4, .6]), np.array([[1., 0.], [-1., .5]])), 3000)
res = smm.fit_em(X, n, 2)
print(json.dumps({"ll": res.log_likelihood, "atoms": res.params.atoms.tolist(),
                  "se": res.standard_errors.atoms.tolist(), "n_iter": res.n_iter,
                  "stored": programs._store() is not None}))
"""


def _fit(cache) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_PPL_", "JAX_COMPILATION"))}
    env["SMM_PPL_COMPILATION_CACHE"] = str(cache)
    out = subprocess.run([sys.executable, "-c", FIT], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# Heavy integration test (starts fresh interpreters): `make test` and CI run it, `make test-quick` does not.
@pytest.mark.integration
def test_a_stored_program_gives_the_fit_of_a_fresh_compilation(tmp_path):
    store = tmp_path / "cache" / "smm-ppl-programs"
    first = _fit(tmp_path / "cache")
    assert first["stored"]
    names = sorted(p.name.split("-")[0] for p in store.glob("*.bin"))
    assert "em" in names and "information" in names
    second = _fit(tmp_path / "cache")  # reads the stored programs back
    unstored = _fit("0")  # no cache folder: plain jax.jit
    for other in (second, unstored):
        assert other["n_iter"] == first["n_iter"]
        assert other["ll"] == pytest.approx(first["ll"], rel=1e-13)
        np.testing.assert_allclose(other["atoms"], first["atoms"], rtol=1e-10)
        np.testing.assert_allclose(other["se"], first["se"], rtol=1e-8)
    # Stored again by a process whose compilations JAX's own cache answers (the programs' folder alone
    # removed), the programs still load and run in a new process: they are compiled afresh to be stored.
    for path in store.glob("*.bin"):
        path.unlink()
    restored = _fit(tmp_path / "cache")
    assert sorted(p.name.split("-")[0] for p in store.glob("*.bin")) == names
    for other in (restored, _fit(tmp_path / "cache")):
        assert other["n_iter"] == first["n_iter"]
        assert other["ll"] == pytest.approx(first["ll"], rel=1e-13)
    # A damaged store is not an error: the call falls back to jax.jit.
    for path in store.glob("*.bin"):
        path.write_bytes(b"not a program")
    damaged = _fit(tmp_path / "cache")
    assert damaged["ll"] == pytest.approx(first["ll"], rel=1e-13)


def test_inside_a_transformation_the_stored_function_is_plain_jax():
    from smm_ppl.warmstart.moments import second_moment_jax

    xt = np.random.default_rng(0).normal(size=(3, 50, 2))
    w = np.full(50, 1 / 50)
    batched = jax.vmap(second_moment_jax, in_axes=(0, None))(xt, w)
    for b in range(3):
        np.testing.assert_allclose(batched[b], second_moment_jax(xt[b], w), rtol=1e-12)
    assert smm.compiled_programs()  # the named programs are registered


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
    fn = stored_jit(_poly, static_argnames=("degree",))
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
    fn = stored_jit(_poly, static_argnames=("degree",))
    c = np.ones(4)  # broadcasts against (37, 3) in no way: the program cannot be built
    x = np.ones((37, 3))
    fn.prefetch(x, c, degree=2)
    with pytest.raises(ValueError, match="Incompatible shapes for broadcasting"):
        fn(x, c, degree=2)


def test_background_compilation_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("SMM_PPL_BACKGROUND_COMPILE", "0")
    fn = stored_jit(_poly, static_argnames=("degree",))
    fn.prefetch(np.ones((5, 2)), 0.5, degree=1)
    assert not fn.pending


def test_fit_em_prefetches_exactly_the_programs_it_calls(monkeypatch, small_problem):
    """Every program fit_em asks for in the background is one its own calls then run: the same
    argument types and statics, so no compilation is wasted on a program nothing uses."""
    prefetched, called = [], []
    prefetch, call = programs.StoredFunction.prefetch, programs.StoredFunction.__call__

    def spy_prefetch(self, *args, **kwargs):
        prefetched.append((self.name, self.key(*args, **kwargs)))
        return prefetch(self, *args, **kwargs)

    def spy_call(self, *args, **kwargs):
        called.append((self.name, self.key(*args, **kwargs)))
        return call(self, *args, **kwargs)

    monkeypatch.setattr(programs.StoredFunction, "prefetch", spy_prefetch)
    monkeypatch.setattr(programs.StoredFunction, "__call__", spy_call)
    X, n, _ = small_problem
    res = smm.fit_em(X, n, 2, init="mom", max_iter=200)
    names = {name for name, _ in prefetched}
    assert {"em", "information", "_effective_items_jax"} <= names
    for item in prefetched:
        assert item in called, f"{item[0]} was compiled in the background for arguments no call used"
    assert np.all(np.isfinite(res.standard_errors.atoms))


def _powers(x, order, scale):
    return jnp.stack([scale * x**r for r in range(order + 1)])


def test_a_static_argument_given_by_position_is_static_and_the_program_is_stored(monkeypatch, tmp_path):
    """As with jax.jit's static_argnames: the value by position or by name names the same program, and
    that program is the stored one (a static value given by position once fell back to plain jax.jit)."""
    monkeypatch.setattr(programs, "_store", lambda: tmp_path)
    f = stored_jit(_powers, static_argnames=("order",))
    x = np.linspace(0.0, 1.0, 7)
    assert f.key(x, 3, 2.0) == f.key(x, order=3, scale=2.0)
    assert f.key(x, 3, 2.0) != f.key(x, 4, 2.0)
    by_position = f(x, 3, 2.0)
    assert len(list(tmp_path.glob("_powers-*.bin"))) == 1  # compiled and stored, not a plain jit
    np.testing.assert_allclose(by_position, np.stack([2.0 * x**r for r in range(4)]), rtol=1e-15)
    np.testing.assert_array_equal(f(x, order=3, scale=2.0), by_position)
    assert f(x, 4, 2.0).shape == (5, 7)


def test_a_stored_program_is_loaded_without_compiling_and_only_on_the_same_machine(monkeypatch, tmp_path):
    """A new function object (as in a new process) runs the stored executable: no XLA compilation, the
    same numbers.  The key names the machine, so a store shared with another machine is not reused."""
    monkeypatch.setattr(programs, "_store", lambda: tmp_path)
    x = np.linspace(0.0, 1.0, 11)
    first = stored_jit(_powers, static_argnames=("order",))(x, 3, 1.5)
    assert len(list(tmp_path.glob("_powers-*.bin"))) == 1
    again = stored_jit(_powers, static_argnames=("order",))
    with _COMPILES as compiles:
        second = again(x, 3, 1.5)
        third = again(x, 3, -2.0)  # another value of a traced argument: the same program
    assert compiles.n == 0
    assert isinstance(next(iter(again.memo.values())).jitted, jax.stages.Compiled)
    np.testing.assert_array_equal(second, first)
    np.testing.assert_allclose(third, np.stack([-2.0 * x**r for r in range(4)]), rtol=1e-15)
    # A new version of the package whose program did not change: traced once more, not compiled.
    monkeypatch.setattr(programs, "_source_hash", lambda: "another version")
    with _COMPILES as compiles:
        np.testing.assert_array_equal(stored_jit(_powers, static_argnames=("order",))(x, 3, 1.5), first)
    assert compiles.n == 0
    assert len(list(tmp_path.glob("_powers-*.bin"))) == 1 and len(list(tmp_path.glob("_powers-*.key"))) == 2
    monkeypatch.setattr(programs, "_machine", lambda: "another machine")
    elsewhere = stored_jit(_powers, static_argnames=("order",))(x, 3, 1.5)
    np.testing.assert_array_equal(elsewhere, first)
    assert len(list(tmp_path.glob("_powers-*.bin"))) == 2


def test_jax_clear_caches_frees_the_stored_programs_of_this_process(monkeypatch, tmp_path):
    """The executables a stored function holds are freed by jax.clear_caches(), as jax.jit's are (the test
    suite and long notebooks rely on it to stay under the limit on memory mappings); the next call
    loads the program again."""
    monkeypatch.setattr(programs, "_store", lambda: tmp_path)
    f = stored_jit(_powers, static_argnames=("order",))
    x = np.linspace(0.0, 1.0, 5)
    first = f(x, 2, 3.0)
    assert f._cache_size() == 1
    jax.clear_caches()
    assert f._cache_size() == 0
    np.testing.assert_array_equal(f(x, 2, 3.0), first)
    assert f._cache_size() == 1


def test_batch_size_keeps_small_problems_in_one_batch_and_bounds_large_ones():
    assert programs.batch_size(20, 3 * 1_000 * 2) == 20  # all members at once: the program of before
    big = programs.batch_size(20, 3 * 1_000_000 * 8)
    assert big == 1 and big * 3 * 1_000_000 * 8 <= 2 * programs.BATCH_NUMBERS
    members = programs.batch_size(1_000, 50_000)
    assert members * 50_000 <= programs.BATCH_NUMBERS < (members + 1) * 50_000
    assert programs.batch_size(0, 10) == 1 and programs.batch_size(5, 0) == 5
