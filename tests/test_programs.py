"""Stored programs (smm_ppl.programs): a new process calls the stored program, with the same result;
a damaged store falls back to jax.jit; a transformed call takes JAX's own path."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import smm_ppl as smm

#: Heavy integration test (starts fresh interpreters): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

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
