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
    """Every run holds the figures the script claims, derived as it says; the summary is its runs'."""
    import numpy as np

    out = tmp_path / "nuts.json"
    assert _load("bench_nuts").main(["--smoke", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    design, runs, summary = saved["design"], saved["runs"], saved["summary"]
    assert saved["smoke"] is True and len(runs) == design["seeds"] >= 1
    for variant in ("warm", "default"):
        rows = [run[variant] for run in runs]
        for r in rows:
            assert _finite(r["max_rhat"]) and r["all_chains_agree"] == (r["max_rhat"] < 1.01)
            assert _finite(r["min_ess_bulk"]) and r["min_ess_bulk"] > 0
            assert 0 <= r["divergences"] <= design["chains"] * design["draws"]
            assert _finite(r["error_vs_truth"]) and r["error_vs_truth"] >= 0
            assert r["sampling_s"] == max(r["wall_s"] - r["overhead_s"], 1e-3) > 0
            assert r["ess_per_s"] == r["min_ess_bulk"] / r["wall_s"]
            assert r["ess_per_sampling_s"] == r["min_ess_bulk"] / r["sampling_s"]
        agg = summary[variant]
        assert agg["median_wall_s"] == float(np.median([r["wall_s"] for r in rows]))
        assert agg["median_min_ess"] == float(np.median([r["min_ess_bulk"] for r in rows]))
        assert agg["fraction_all_chains_agree"] == float(np.mean([r["all_chains_agree"] for r in rows]))
        assert agg["total_divergences"] == sum(r["divergences"] for r in rows)
    ratios = summary["ratios"]
    assert (
        ratios["wall_time_default_over_warm"] == summary["default"]["median_wall_s"] / summary["warm"]["median_wall_s"]
    )
    assert ratios["median_em_s"] == float(np.median([run["em_s"] for run in runs])) > 0


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


def test_scale_smoke(tmp_path):
    """Issue 15 at smoke sizes: the items split over 1, 2 and 4 devices give the same fit, float32 agrees
    with float64, each peak memory is against the feature matrix it was measured with, and the report
    (RESULTS.md) shows those figures."""
    out = tmp_path / "scale.json"
    assert _load("bench_scale").main(["--smoke", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    L, K = saved["L"], saved["K"]
    assert saved["smoke"] is True
    scaling = saved["scaling"]
    base = scaling[0]
    assert [r["status"] for r in scaling] == ["ok"] * 3
    assert [r["devices"] for r in scaling] == [1, 2, 4]  # as each process saw them
    for r in scaling:
        assert (r["p"], r["L"], r["K"], r["dtype"]) == (base["p"], L, K, "float64")
        assert r["n_iter"] == r["max_iter"]  # tol = 0: every split runs the same iterations
        gap = abs(r["log_likelihood"] - base["log_likelihood"]) / abs(base["log_likelihood"])
        assert r["log_likelihood_gap"] == gap < 1e-10
        assert r["compiled_ratio"] == r["compiled_seconds"] / base["compiled_seconds"]
        assert r["features_bytes"] == r["p"] * L * 8
    pr = saved["precision"]
    hi, lo = pr["float64"], pr["float32"]
    assert (hi["dtype"], lo["dtype"]) == ("float64", "float32") and hi["converged"] and lo["converged"]
    assert pr["log_likelihood_gap"] == lo["log_likelihood"] - hi["log_likelihood"]
    assert pr["relative_gap"] == pr["log_likelihood_gap"] / abs(hi["log_likelihood"])
    assert abs(pr["relative_gap"]) < 1e-7 and pr["atoms_max_difference_in_se"] < 0.5
    memory = saved["memory"]
    assert [r["status"] for r in memory] == ["ok"] * len(memory) and len(memory) >= 1
    for r in memory:
        assert r["dtype"] == "float32" and r["features_bytes"] == r["p"] * L * 4
        assert r["peak_over_features"] == r["peak_rss_bytes"] / r["features_bytes"] > 1
    body, head = _load("run_all").section_scale({**saved, "smoke": False})
    assert f"{memory[-1]['p']:,}" in body and f"{pr['atoms_max_difference_in_se']:.3f}" in body and len(head) == 2


def test_sbc_smoke(tmp_path):
    out = tmp_path / "sbc.json"
    _load("bench_sbc").main(["--smoke", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert {r["name"] for r in rows} >= {"nuts_k2_ordered", "laplace_n100"}
    for r in rows:
        assert r["n_simulations"] + r["failures"] == 4 and r["scalars"]
        assert all(0 <= s["p_value"] <= 1 for s in r["scalars"])


def test_select_k_smoke(tmp_path):
    out = tmp_path / "select_k.json"
    _load("bench_select_k").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["summary"] and all(0 <= r["bic"] <= 1 for r in saved["summary"])
    assert (tmp_path / saved["plot"]).exists()
