"""Process-wide configuration (smm_ppl.core.config): float64 and the persistent compilation cache.

Both act at import, so each case runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys

import pytest

#: Heavy integration test (starts fresh interpreters): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

FIT = """
import json, warnings
import numpy as np
{before}
import smm_ppl as smm, jax

# JAX's public monitoring events: a compilation that may use the persistent cache, one that the cache
# answered, and an entry written to the cache folder.
events = {{"/jax/compilation_cache/compile_requests_use_cache": 0, "/jax/compilation_cache/cache_hits": 0,
          "/jax/compilation_cache/cache_misses": 0}}
def count(event, **kwargs):
    if event in events:
        events[event] += 1
jax.monitoring.register_event_listener(count)

X = smm.simulate_features(0, 60, 2)
n = smm.simulate_counts(1, X, smm.SMMParams(np.array([.5, .5]), np.array([[1., 0.], [-1., .5]])), 500)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    res = smm.fit_em(X, n, 2, init="random", n_starts=2, max_iter=5, tol=0, compute_standard_errors=False)
print(json.dumps({{"cache": smm.core.config.COMPILATION_CACHE, "jax_dir": jax.config.jax_compilation_cache_dir,
                  "x64": bool(jax.config.jax_enable_x64), "ll": float(res.log_likelihood),
                  "requests": events["/jax/compilation_cache/compile_requests_use_cache"],
                  "hits": events["/jax/compilation_cache/cache_hits"],
                  "writes": events["/jax/compilation_cache/cache_misses"],
                  "warnings": [str(w.message) for w in caught if "compilation cache" in str(w.message)]}}))
"""


def _run(env: dict, before: str = "") -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_PPL_", "JAX_COMPILATION"))}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", FIT.format(before=before)], env=full, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("xdg")
    return home, _run({"XDG_CACHE_HOME": str(home)})


def test_the_cache_is_on_by_default_in_a_per_user_folder(default_run):
    home, result = default_run
    folder = home / "smm-ppl" / "jax-compilation-cache"
    assert result["cache"] == result["jax_dir"] == str(folder)
    # An empty folder answered no compilation, and the compiled programs were written to it.
    assert result["requests"] > 0 and result["hits"] == 0 and result["writes"] > 0
    assert result["x64"]


def test_a_filled_cache_makes_a_second_process_compile_nothing_and_fit_the_same(default_run):
    home, first = default_run
    again = _run({"XDG_CACHE_HOME": str(home)})
    # Every program read back, none compiled, nothing written.
    assert again["hits"] == again["requests"] == first["requests"] and again["writes"] == 0
    assert again["ll"] == first["ll"]


def test_the_cache_can_be_turned_off_or_moved(tmp_path):
    off = _run({"SMM_PPL_COMPILATION_CACHE": "0", "XDG_CACHE_HOME": str(tmp_path / "x")})
    assert off["cache"] is None and off["jax_dir"] is None
    assert off["hits"] == off["writes"] == 0  # nothing read from or written to a cache
    assert not (tmp_path / "x").exists()
    moved = _run({"SMM_PPL_COMPILATION_CACHE": str(tmp_path / "mine")})
    assert moved["cache"] == moved["jax_dir"] == str(tmp_path / "mine")
    assert moved["hits"] == 0 and moved["writes"] > 0  # a new folder, filled


def test_an_unusable_folder_never_breaks_a_fit(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _run({"SMM_PPL_COMPILATION_CACHE": str(blocker / "cache")})  # cannot be created
    assert result["cache"] is None and result["ll"] < 0


def test_a_failing_write_is_a_warning_not_an_error(tmp_path):
    """The disk fills up during a session: every write to JAX's cache fails; the fit runs, and JAX warns.

    (The failure is planted in JAX's cache module, the one place every write goes through: as root a
    read-only folder would still be written to.)"""
    before = (
        "import jax._src.compilation_cache as cc\n"
        "def _full(*a, **k):\n"
        "    raise OSError(28, 'No space left on device')\n"
        "cc.put_executable_and_time = _full\n"
    )
    result = _run({"SMM_PPL_COMPILATION_CACHE": str(tmp_path / "full")}, before=before)
    assert result["ll"] < 0
    assert result["warnings"] and all("No space left" in w for w in result["warnings"])


def test_a_cache_folder_the_user_set_is_kept(tmp_path):
    before = f"import jax\njax.config.update('jax_compilation_cache_dir', {str(tmp_path / 'theirs')!r})\n"
    result = _run({"XDG_CACHE_HOME": str(tmp_path / "x")}, before=before)
    assert result["cache"] == result["jax_dir"] == str(tmp_path / "theirs")
