"""Smoke run of each benchmark script (issue 7): tiny sizes, no installs, JSON with sane fields.

The scripts are imported and their ``main([...])`` called in this process (one
JAX start-up for all of them); each writes its JSON to a temporary folder.
The peers and biogeme are never installed here: ``bench_peers --smoke`` checks
the long data layouts and parameter conversions against ``smm.log_likelihood``,
``bench_bayes --smoke`` runs a tiny NUTS and the summary code only.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest

#: Heavy integration test (runs every benchmark's smoke mode): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_em_scaling_smoke(tmp_path):
    out = tmp_path / "em_scaling.json"
    res = _load("bench_em_scaling").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["smoke"] is True and len(saved["rows"]) == len(res["rows"]) >= 1
    for r in saved["rows"]:
        for key in ("two_passes_s", "estep_s", "em_iteration_s", "ratio_iteration_to_two_passes"):
            assert _finite(r[key]) and r[key] > 0, key
        assert 0 <= r["share_rest"] <= 1


def test_peers_smoke_layouts_match_smm_log_likelihood(tmp_path):
    out = tmp_path / "peers.json"
    _load("bench_peers").main(["--smoke", "--out", str(out)])
    checks = json.loads(out.read_text())["checks"]
    assert checks["ok"] is True
    ll = checks["log_likelihood_smm"]
    assert _finite(ll) and ll < 0
    assert checks["log_likelihood_per_observation_layout"] == pytest.approx(ll, rel=1e-10)
    assert checks["log_likelihood_per_item_layout"] == pytest.approx(ll, rel=1e-10)
    assert checks["rows_per_observation_layout"] == checks["expected_rows_per_observation"]
    assert checks["rows_per_item_layout"] == checks["expected_rows_per_item"]


def test_peer_layouts_other_parameters():
    """The layouts' own log-likelihood equals smm's away from the truth and for K = 3 too."""
    import numpy as np

    import smm_ppl as smm

    if str(BENCH / "peers") not in sys.path:
        sys.path.insert(0, str(BENCH / "peers"))
    formats = importlib.import_module("formats")
    X = smm.simulate_features(3, 15, 2, mean=[2.0, -1.0])
    params = smm.SMMParams(np.array([0.2, 0.3, 0.5]), np.array([[1.0, -2.0], [0.5, 0.5], [-1.5, 0.2]]))
    n = smm.simulate_counts(4, X, params, 120)
    other = smm.SMMParams(np.array([0.6, 0.3, 0.1]), np.array([[0.1, 0.2], [-0.3, 1.0], [2.0, -1.0]]))
    ll = smm.log_likelihood(X, n, other)
    per_obs = formats.expand_per_observation(X, n)
    per_item = formats.expand_per_item(X, n)
    assert formats.long_log_likelihood(per_obs, other.weights, other.atoms, "obs") == pytest.approx(ll, rel=1e-10)
    assert formats.long_log_likelihood(per_item, other.weights, other.atoms, "sid", "w") == pytest.approx(ll, rel=1e-10)
    # flexmix needs contiguous 1-based situation ids, constant weights within a situation
    sid = per_item["sid"]
    assert sid.min() == 1 and set(np.unique(sid)) == set(range(1, sid.max() + 1))
    assert all(len(set(per_item["w"][sid == s])) == 1 for s in np.unique(sid))


def test_bayes_smoke(tmp_path):
    out = tmp_path / "bayes.json"
    _load("bench_bayes").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    t = saved["tools"]["smm"]
    assert t["status"] == "ok"
    assert _finite(t["time_s"]) and t["time_s"] > 0
    assert _finite(t["ess_bulk_min"]) and t["ess_bulk_min"] > 0
    assert _finite(t["rhat_max"])
    assert _finite(saved["self_agreement"]["max_mean_difference_in_sd"])


def test_accuracy_smoke(tmp_path):
    out = tmp_path / "accuracy.json"
    _load("bench_accuracy").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    rate = saved["rate"]
    for r in rate["rows"]:
        assert r["n_seeds"] >= 1
        assert _finite(r["ratio_median"]) and r["ratio_median"] > 0
        assert _finite(r["efficiency_auto"]) and r["efficiency_auto"] > 0
        assert _finite(r["trace_crb"]) and r["trace_crb"] > 0
    assert _finite(rate["slope_auto"])
    succ = saved["success"]
    for r in succ["rows"]:
        for m in succ["methods"]:
            assert 0.0 <= r[m]["success_rate"] <= 1.0


def test_run_all_report_from_smoke_results(tmp_path):
    """run_all writes RESULTS.md from whatever results are there (here: a fresh smoke peers run)."""
    run_all = _load("run_all")
    _load("bench_peers").main(["--smoke", "--out", str(tmp_path / "peers.json")])
    assert run_all.main(["--report-only", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "# smm-ppl benchmark results" in text and "## 2. End-to-end fit against peer tools" in text


def test_em_smoke(tmp_path):
    out = tmp_path / "em.json"
    _load("bench_em").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["smoke"] is True
    for key in ("two_passes_s", "em_iteration_gradient_s", "ratio_iteration_to_two_passes"):
        assert _finite(saved[key]) and saved[key] > 0, key


def test_warmstart_smoke(tmp_path):
    out = tmp_path / "warmstart.json"
    _load("bench_warmstart").main(["--smoke", "--repeats", "1", "--out", str(out)])
    text = out.read_text()
    assert "tensor" in text and "mom" in text
    assert "NaN" not in text


def test_nuts_smoke(tmp_path):
    out = tmp_path / "nuts.json"
    assert _load("bench_nuts").main(["--smoke", "--out", str(out)]) in (0, None)
    saved = json.loads(out.read_text())
    assert saved


def test_memory_smoke(tmp_path):
    out = tmp_path / "memory.json"
    assert _load("bench_memory").main(["--smoke", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [s["stage"] for s in saved["stages"]] == ["data", "warmstarts", "fit_em"]
    for s in saved["stages"]:
        assert s["status"] == "ok" and s["peak_rss_bytes"] > s["features_bytes"] > 0


def test_choice_smoke(tmp_path):
    """The panel latent-class benchmark's smm side on Electricity, and its RESULTS section."""
    out = tmp_path / "choice.json"
    _load("bench_choice").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    (row,) = saved["rows"]
    assert row["peer"] == "smm" and row["status"] == "ok" and row["converged"]
    assert row["loglik"] == pytest.approx(-4526.829, abs=1e-3)  # two starts reach the ten-start optimum
    body, head = _load("run_all").section_choice(saved)
    assert "| smm" in body and "-4526.829" in body and head


def test_committed_scale_results_meet_issue_15():
    """The committed bench_scale run: p = 10^7 float32 within 24 GiB, and every split fit agrees with one device."""
    saved = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "scale.json").read_text())
    assert not saved["smoke"] and saved["L"] == 64 and saved["K"] == 8
    top = max((r for r in saved["memory"] if r["status"] == "ok"), key=lambda r: r["p"])
    assert top["p"] == 10_000_000 and top["dtype"] == "float32" and top["peak_rss_bytes"] < 24 * 2**30
    assert [r["devices"] for r in saved["scaling"] if r["status"] == "ok"] == [1, 2, 4]
    assert all(r["log_likelihood_gap"] < 1e-10 for r in saved["scaling"])
    assert abs(saved["precision"]["relative_gap"]) < 1e-7 and saved["precision"]["atoms_max_difference_in_se"] < 0.5
    body, head = _load("run_all").section_scale(saved)
    assert "10,000,000" in body and len(head) == 2
