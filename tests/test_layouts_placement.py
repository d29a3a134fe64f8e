"""Items split over devices (smm_ppl.layouts.placement): the same results as one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import smm_ppl as smm
from smm_ppl.layouts import ROWS_AXIS, bucketed, choice_situations, item_counts, mesh_of, padded_rows, row_mesh

HERE = Path(__file__).parent


def test_row_mesh_of_none_int_devices_and_mesh():
    assert row_mesh(None) is None
    one = row_mesh(1)
    assert one.axis_names == (ROWS_AXIS,) and list(one.devices) == jax.devices()[:1]
    assert list(row_mesh(jax.devices()[:1]).devices) == jax.devices()[:1]
    renamed = row_mesh(Mesh(np.array(jax.devices()[:1]), ("data",)))
    assert renamed.axis_names == (ROWS_AXIS,)


@pytest.mark.parametrize(
    ("devices", "error", "words"),
    [
        (0, ValueError, "xla_force_host_platform_device_count"),
        (len(jax.devices()) + 1, ValueError, "sees"),
        (True, TypeError, "devices must be"),
        (2.5, TypeError, "devices must be"),
        (["cpu"], TypeError, "jax devices"),
        ([], TypeError, "jax devices"),
        (jax.devices()[:1] * 2, ValueError, "more than once"),
        (Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("a", "b")), ValueError, "one-axis"),
    ],
)
def test_row_mesh_rejects_bad_devices(devices, error, words):
    with pytest.raises(error, match=words):
        row_mesh(devices)


def test_one_device_mesh_gives_the_default_fit(small_problem):
    X, n, params = small_problem
    a = smm.fit_em(X, n, 2, init=params, max_iter=50)
    b = smm.fit_em(X, n, 2, init=params, max_iter=50, devices=1)
    # fit_em pads the rows to their bucket either way, and one device is no split: the same program
    # on the same inputs, so the same numbers on any CPU.
    np.testing.assert_allclose(b.params.atoms, a.params.atoms, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.trace, a.trace, rtol=1e-14)
    # log_likelihood pads only for a mesh: the same p terms summed in another order, which may differ
    # by p * eps relative (all terms have one sign).  Measured: 1 ulp; rel=1e-14 was 45.
    ll_one = smm.log_likelihood(X, n, params, devices=1)
    assert ll_one == pytest.approx(smm.log_likelihood(X, n, params), rel=X.shape[0] * np.finfo(float).eps)


def test_placed_padding_is_a_multiple_of_the_devices(small_problem):
    X, n, _ = small_problem
    placed = bucketed(item_counts(X, n), row_mesh(1))
    assert placed.n_rows == padded_rows(item_counts(X, n)) >= X.shape[0]
    assert int(np.asarray(placed.valid).sum()) == X.shape[0]
    assert mesh_of(placed.features) is None  # one device is no split
    with pytest.raises(ValueError, match="multiple"):
        item_counts(X, n).padded(301, _FakeMesh(2))


class _FakeMesh:
    """Only the size (and that its devices are this process's) matters before anything is placed."""

    def __init__(self, size):
        self.size = size
        self.devices = np.array(jax.devices()[:1])


def test_choice_layouts_cannot_be_split():
    rng = np.random.default_rng(0)
    layout = choice_situations(rng.normal(size=(12, 2)), np.tile([1.0, 0.0, 0.0], 4), np.repeat(np.arange(4), 3))
    with pytest.raises(ValueError, match="cannot be split over devices"):
        bucketed(layout, row_mesh(1))


def test_parallel_chains_and_split_items_are_exclusive(small_problem):
    X, n, params = small_problem
    with pytest.raises(ValueError, match="choose one"):
        smm.sample_nuts(X, n, 2, init=params, devices=1, chain_method="parallel", num_chains=1)


@pytest.mark.integration
def test_four_forced_host_devices_agree_with_one():
    """The acceptance check: every entry point on 4 forced host CPU devices against one device, to 1e-10."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run = subprocess.run(
        [sys.executable, str(HERE / "_sharded_check.py"), "4"], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    diff = json.loads(run.stdout.strip().splitlines()[-1])
    # Exact although the sums run in another order: the winning start leads the runner-up by 9e-9
    # relative (the ranking's ties are 1e-12), and EM from the truth stops at iteration 10, where
    # the stopping rule's parameter statistic is 13 % below its threshold and 4 times above it one
    # iteration earlier (measured), against round-off of 1e-9 of it.
    assert diff.pop("auto_same_start") is True
    assert diff.pop("em_iterations") == 0
    # 60 NUTS transitions amplify round-off (measured: 3e-6 posterior sd, 3e-8 absolute) but keep
    # the chain: other draws would differ by a good part of an sd.  So a fraction of the posterior
    # sd bounds it, not a size of the values (1e-6 held with a margin of 30 on one CPU).
    nuts = diff.pop("nuts_in_sd")
    assert nuts < 1e-3, nuts
    in_se = diff.pop("auto_atoms_in_se")
    assert in_se < 1e-3, in_se  # a flat maximum: see _sharded_check.py
    worst = {k: v for k, v in diff.items() if not v <= 1e-10}
    assert not worst, worst


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_two_processes_agree_with_one():
    """jax.distributed on loopback: two CPU processes, each holding half of the items, give one process's fit."""
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    script = str(HERE / "_multiprocess_check.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(i), port], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(2)
    ]
    outs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert proc.returncode == 0, err.decode()[-3000:]
        outs.append(json.loads(out.decode().strip().splitlines()[-1]))
    for diff in outs:
        assert diff["iterations"] == 0
        assert diff["n_obs"] == [20_000, 20_000]
        assert diff["ll"] <= 1e-10 and diff["atoms"] <= 1e-10 and diff["weights"] <= 1e-10 and diff["se"] <= 1e-10, diff
    assert outs[0]["log_likelihood"] == outs[1]["log_likelihood"]


def test_a_mesh_over_processes_is_refused_where_items_are_not_process_local(small_problem, monkeypatch):
    """Only fit_em takes process-local items; the other entry points say so (checked without processes)."""
    X, n, params = small_problem
    monkeypatch.setattr("smm_ppl.layouts.spans_processes", lambda mesh: mesh is not None)
    with pytest.raises(ValueError, match="spans several processes"):
        smm.log_likelihood(X, n, params, devices=1)
