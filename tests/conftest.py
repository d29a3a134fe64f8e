import gc
import os

import jax
import numpy as np
import pytest

import smm_ppl as smm

import _em_problems


@pytest.fixture(scope="session")
def small_problem():
    """A small K = 2 problem: features (p, L) with a non-zero mean and non-identity covariance."""
    p, L = 300, 3
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 0.7]])
    X = smm.simulate_features(0, p, L, cov=cov, mean=[1.0, -0.5, 0.2])
    params = smm.SMMParams(np.array([0.35, 0.65]), np.array([[1.0, -0.5, 0.3], [-0.8, 0.6, -0.2]]))
    counts = smm.simulate_counts(1, X, params, 5000)
    return X, counts, params


@pytest.fixture(scope="session")
def problem():
    """K = 3, L = 4: non-identity covariance, non-zero mean, unequal weights."""
    L = 4
    X = smm.simulate_features(0, 2000, L, cov=_em_problems.COV4, mean=np.ones(L))
    truth = smm.SMMParams(
        np.array([0.5, 0.3, 0.2]),
        np.array([[1.0, 0.0, -0.5, 0.3], [-0.7, 0.5, 0.4, -0.2], [0.2, -0.6, 0.8, 0.6]]),
    )
    n = smm.simulate_counts(2, X, truth, 100_000)
    return X, n, truth


def pytest_collection_modifyitems(config, items):
    """The heavy integration tests first (stable order otherwise): spread over workers (``make test``
    runs pytest-xdist), they then start at once, and the suite ends on short tests rather than one
    worker finishing a notebook alone."""
    items.sort(key=lambda item: item.get_closest_marker("integration") is None)


@pytest.fixture(autouse=True)
def _keep_xla_flags():
    """A test that sets XLA_FLAGS (e.g. a host device count) must not pass it on to later subprocesses."""
    before = os.environ.get("XLA_FLAGS")
    yield
    if before is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = before


#: Clear JAX's caches past this many memory mappings: well below Linux's default limit of 65,530,
#: with room for the largest module (about 10,000), and rarely enough that few programs compile twice.
MAX_MAPPINGS = 30_000


def _memory_mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux: no such limit to guard
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free the compiled programs once the process holds many memory mappings.

    Every XLA:CPU executable keeps its memory mappings (hundreds for one with
    many kernels, e.g. a multinomial draw) while its function lives.  The whole
    suite in one process would pass the kernel's limit (``vm.max_map_count``),
    where LLVM cannot allocate code memory and aborts the process.  The package's programs keep
    their executables themselves (smm_ppl.core.programs): ``smm.clear_programs()`` frees those.
    """
    yield
    if _memory_mappings() > MAX_MAPPINGS:
        jax.clear_caches()
        smm.clear_programs()
        gc.collect()
