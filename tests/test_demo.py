"""The demo workflow at a small size: EM inside the posterior intervals, files written and readable."""

import json

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.demo import DEMO_TRUTH, run_demo

#: Heavy integration test (runs the demo end to end): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration


def test_run_demo_small(tmp_path):
    res = run_demo(
        tmp_path,
        seed=1,
        n_items=300,
        n_obs=20_000,
        num_chains=2,
        num_warmup=300,
        num_samples=300,
        progress_bar=False,
        log=None,
    )
    table = res.table
    assert list(table.index[:2]) == ["weights[0]", "weights[1]"] and len(table) == 2 + 2 * 3
    # The EM estimate sits inside the posterior and near the truth (within 5 standard errors).
    assert res.all_inside_hdi
    assert res.max_rhat < 1.05
    assert np.all(np.abs(table["em_estimate"] - table["truth"]) < 5 * table["em_se"])
    assert np.allclose(np.sort(table["truth"].values[:2]), np.sort(DEMO_TRUTH.weights))
    for path in res.files.values():
        assert path.exists() and path.stat().st_size > 0
    doc = json.loads(res.files["em_fit"].read_text())
    np.testing.assert_allclose(doc["params"]["weights"], res.em.params.weights)
    idata = smm.load_inference_data(res.files["posterior"])
    np.testing.assert_array_equal(idata.posterior["atoms"].values, res.idata.posterior["atoms"].values)
