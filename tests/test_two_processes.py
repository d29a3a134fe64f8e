"""Two fresh processes on one compilation cache folder: the second reads back what the first compiled.

Every fit of the package (each EM variant, the choice fit, NUTS and SVI for both layouts) runs in
two new interpreters, one after the other, on the same cache folder.  The second must neither crash
(a program read back from a cache once lost the process) nor give other figures: the executable that
JAX's cache returns is the one the first process compiled, on the same machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Heavy integration test (starts fresh interpreters): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parent


def _run(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_PPL_", "JAX_COMPILATION", "XLA_FLAGS"))}
    env["SMM_PPL_COMPILATION_CACHE"] = str(cache)
    out = subprocess.run(
        [sys.executable, str(TESTS / "_two_process_fits.py"), str(TESTS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert out.returncode == 0, f"exit code {out.returncode}: {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_fit_runs_again_in_a_second_process_on_the_same_cache(tmp_path):
    first = _run(tmp_path / "cache")
    assert any((tmp_path / "cache").iterdir())  # the first process filled the cache
    second = _run(tmp_path / "cache")
    assert second.keys() == first.keys()
    for name, value in first.items():
        # The same executables on the same machine and the same inputs: the same numbers.
        assert second[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
