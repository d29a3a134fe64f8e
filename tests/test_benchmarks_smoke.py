"""Smoke run of each benchmark (issue 7): tiny sizes, no installs; the JSON has the fields its report needs.

Each benchmark's ``BENCHMARK`` is run through the harness (``harness.run``) in this process (one JAX
start-up for all of them); each writes its JSON to a temporary folder. Each test asserts properties of the
measurement (finite, positive, derived as the script says) and that the benchmark's ``report`` renders its
RESULTS.md table, with its columns, from that JSON. The peers and biogeme are never installed here:
``bench_peers --smoke`` checks the long data layouts and parameter conversions against
``smm.log_likelihood``, ``bench_bayes --smoke`` runs a tiny NUTS and the summary code only.
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


def _smoke(module: str, tmp_path, *argv: str) -> tuple[object, dict]:
    """A benchmark's smoke run through the harness: the benchmark and the JSON it saved."""
    bench = _load(module).BENCHMARK
    out = tmp_path / f"{bench.name}.json"
    _load("harness").run(bench, ["--smoke", "--out", str(out), *argv])
    return bench, json.loads(out.read_text())


def _columns(markdown: str) -> list[list[str]]:
    """The header of every Markdown table in ``markdown``."""
    lines = markdown.splitlines()
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line, below in zip(lines, lines[1:])
        if line.startswith("|") and below.startswith("|---")
    ]


def _renders(bench, result, *columns: str) -> tuple[str, list[str]]:
    """The benchmark's RESULTS.md section of ``result``: under its heading, a table with these columns."""
    body, head = bench.section(result)
    assert body.startswith(bench.heading)
    assert any(set(columns) <= set(header) for header in _columns(body)), (columns, _columns(body))
    return body, head


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_harness_command_line(tmp_path):
    """--smoke sets the benchmark's smoke sizes over its options; the JSON goes where --out says, else to the
    scratch folder (a smoke run) or the committed results."""
    harness = _load("harness")
    bench = _load("bench_em").BENCHMARK
    args = harness.parse(bench, ["--smoke", "--p", "123"])
    assert (args.p, args.L, args.K) == (20_000, 8, 3) and args.out == harness.SMOKE_RESULTS / "em.json"
    args = harness.parse(bench, ["--p", "123", "--out", str(tmp_path / "x.json")])
    assert (args.p, args.L, args.smoke) == (123, 32, False) and args.out == tmp_path / "x.json"
    assert harness.parse(bench, []).out == harness.RESULTS / "em.json"


def test_em_scaling_smoke(tmp_path):
    bench, saved = _smoke("bench_em_scaling", tmp_path)
    assert saved["smoke"] is True and len(saved["rows"]) >= 1
    for r in saved["rows"]:
        for key in ("two_passes_s", "estep_s", "em_iteration_s", "ratio_iteration_to_two_passes"):
            assert _finite(r[key]) and r[key] > 0, key
        assert r["ratio_iteration_to_two_passes"] == r["em_iteration_s"] / r["two_passes_s"]
        assert 0 <= r["share_rest"] <= 1
    body, (head,) = _renders(bench, {**saved, "smoke": False}, "p", "two passes (ms)", "EM iteration (ms)", "rest")
    assert f"{saved['rows'][-1]['ratio_iteration_to_two_passes']:.2f}×" in head


def test_peers_smoke_layouts_match_smm_log_likelihood(tmp_path):
    bench, saved = _smoke("bench_peers", tmp_path)
    checks = saved["checks"]
    assert checks["ok"] is True
    ll = checks["log_likelihood_smm"]
    assert _finite(ll) and ll < 0
    assert checks["log_likelihood_per_observation_layout"] == pytest.approx(ll, rel=1e-10)
    assert checks["log_likelihood_per_item_layout"] == pytest.approx(ll, rel=1e-10)
    assert checks["rows_per_observation_layout"] == checks["expected_rows_per_observation"]
    assert checks["rows_per_item_layout"] == checks["expected_rows_per_item"]
    body, _ = _renders(bench, saved, "field", "value")
    assert "| checks.ok | True |" in body


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
    bench, saved = _smoke("bench_bayes", tmp_path)
    t = saved["tools"]["smm"]
    assert t["status"] == "ok"
    assert _finite(t["time_s"]) and t["time_s"] > 0
    assert _finite(t["ess_bulk_min"]) and t["ess_bulk_min"] > 0
    assert t["ess_bulk_min_per_s"] == pytest.approx(t["ess_bulk_min"] / t["time_s"])
    assert _finite(t["rhat_max"])
    assert _finite(saved["self_agreement"]["max_mean_difference_in_sd"])
    body, _ = _renders(bench, saved, "field", "value")
    assert "| tools.smm.rhat_max |" in body


def test_accuracy_smoke(tmp_path):
    bench, saved = _smoke("bench_accuracy", tmp_path)
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
    full = {**saved, "smoke": False}
    _renders(bench, full, "N", "error auto", "error oracle", "ratio (median)", "MSE/tr(CRB) auto", "seeds")
    body, head = _renders(bench, full, "K", *succ["methods"], "time s")
    assert len(head) == 2 and f"{rate['slope_auto']:.2f}" in head[0]


def test_run_all_report_from_smoke_results(tmp_path):
    """run_all writes RESULTS.md from whatever results are there (here: a fresh smoke peers run) with every
    benchmark's report: the sections without a result say so, those without one are left out."""
    run_all = _load("run_all")
    _smoke("bench_peers", tmp_path)
    assert run_all.main(["--report-only", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# smm-ppl benchmark results")
    section = text.split("## 2. End-to-end fit against peer tools")[1].split("\n## ")[0]
    assert "| checks.ok | True |" in section
    assert "_No result (run `python benchmarks/bench_accuracy.py`)._" in text
    assert "## Memory" not in text


def test_em_smoke(tmp_path):
    bench, saved = _smoke("bench_em", tmp_path)
    assert saved["smoke"] is True and "environment" not in saved
    for key in ("two_passes_s", "em_iteration_gradient_s", "ratio_iteration_to_two_passes"):
        assert _finite(saved[key]) and saved[key] > 0, key
    assert saved["ratio_iteration_to_two_passes"] == saved["em_iteration_gradient_s"] / saved["two_passes_s"]
    body, _ = _renders(bench, saved, "field", "value")
    assert f"| ratio_iteration_to_two_passes | {saved['ratio_iteration_to_two_passes']:.4g} |" in body


def test_warmstart_smoke(tmp_path):
    """Every warm start has its compiled time, as ratios to the two baselines of the same run, and those that
    return parameters their accuracy."""
    bench, saved = _smoke("bench_warmstart", tmp_path, "--repeats", "1")
    base = saved["baseline_seconds"]
    assert set(saved["warm_starts"]) >= {"mom_init", "tensor_init", "estimate_subspace"}
    for name, row in saved["warm_starts"].items():
        assert _finite(row["seconds"]) and row["seconds"] > 0, name
        assert row["ratio_to_pass"] == row["seconds"] / base["one_pass_XTw"]
        assert row["ratio_to_loglik"] == row["seconds"] / base["one_loglik"]
    for name in ("mom_init", "tensor_init"):
        assert _finite(saved["warm_starts"][name]["atom_error_whitened"]), name
    body, _ = _renders(bench, saved, "field", "value")
    assert "| warm_starts.tensor_init.ratio_to_pass |" in body


def test_nuts_smoke(tmp_path):
    """Every run holds the figures the script claims, derived as it says; the summary is its runs'."""
    import numpy as np

    bench, saved = _smoke("bench_nuts", tmp_path)
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
    _, (head,) = _renders(bench, {**saved, "smoke": False}, "", "warm start (EM)", "default init")
    assert f"{ratios['ess_per_s_warm_over_default']:.2f}" in head


def test_memory_smoke(tmp_path):
    """Each stage in its own process: its own peak memory, above the features it holds, growing by stage."""
    bench, saved = _smoke("bench_memory", tmp_path)
    stages = saved["stages"]
    assert [s["stage"] for s in stages] == ["data", "warmstarts", "fit_em"]
    for s in stages:
        assert s["status"] == "ok" and s["peak_rss_bytes"] > s["features_bytes"] == saved["p"] * saved["L"] * 8
        assert s["wall_seconds"] > s["seconds"] >= 0
    assert bench.succeeded(saved)
    body, (head,) = _renders(bench, saved, "stage", "peak RSS (GiB)", "x features", "stage s")
    assert f"{stages[-1]['peak_rss_bytes'] / 2**30:.1f} GiB" in head


def test_choice_smoke(tmp_path):
    """The panel latent-class benchmark's smm side on Electricity, and its RESULTS section."""
    bench, saved = _smoke("bench_choice", tmp_path)
    (row,) = saved["rows"]
    assert row["peer"] == "smm" and row["status"] == "ok" and row["converged"]
    assert row["loglik"] == pytest.approx(-4526.829, abs=1e-3)  # two starts reach the ten-start optimum
    assert row["wall_s"] > row["fit_first_s"] > 0 and row["fit_compiled_s"] > 0
    body, head = _renders(bench, saved, "tool", "log-likelihood", "gap vs smm", "wall s", "wall / smm")
    assert "| smm" in body and "-4526.829" in body and head


def test_scale_smoke(tmp_path):
    """Issue 15 at smoke sizes: the items split over 1, 2 and 4 devices give the same fit, float32 agrees
    with float64, each peak memory is against the feature matrix it was measured with, and the report
    (RESULTS.md) shows those figures."""
    bench, saved = _smoke("bench_scale", tmp_path)
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
    assert bench.succeeded(saved)
    _renders(bench, {**saved, "smoke": False}, "devices", "first fit s", "compiled s", "log-lik gap")
    body, head = _renders(bench, {**saved, "smoke": False}, "p", "float32 features GiB", "peak RSS GiB")
    assert f"{memory[-1]['p']:,}" in body and f"{pr['atoms_max_difference_in_se']:.3f}" in body and len(head) == 2


def test_sbc_smoke(tmp_path):
    bench, saved = _smoke("bench_sbc", tmp_path)
    rows = saved["rows"]
    assert {r["name"] for r in rows} >= {"nuts_k2_ordered", "laplace_n100"}
    for r in rows:
        assert r["n_simulations"] + r["failures"] == 4 and r["scalars"]
        assert all(0 <= s["p_value"] <= 1 for s in r["scalars"])
        assert r["all_uniform"] == all(s["p_bonferroni"] >= saved["design"]["alpha"] for s in r["scalars"])
    body, _ = _renders(bench, saved, "configuration", "method", "replications", "uniform", "sd ratio (min–max)")
    assert all(f"| {r['name']} |" in body for r in rows)


def test_select_k_smoke(tmp_path):
    """Each cell's share is the share of its data sets whose criterion picked K_true."""
    bench, saved = _smoke("bench_select_k", tmp_path)
    runs, criteria = saved["runs"], saved["criteria"]
    assert saved["summary"]
    for cell in saved["summary"]:
        mine = [r for r in runs if (r["design"], r["N"], r["K_true"]) == (cell["design"], cell["N"], cell["K_true"])]
        assert cell["n"] == len(mine) >= 1
        for c in criteria:
            assert cell[c] == sum(r["choice"][c] == cell["K_true"] for r in mine) / len(mine), c
    body, (head,) = _renders(bench, saved, "design", "N", "K_true", "data sets", *criteria, "LOO uncertain")
    assert all(c in head for c in criteria)


def test_the_map_report_renders_every_case_and_names_the_winners():
    """The MAP section (bench_map.py's committed JSON; its measurement needs the real-data extra): one table row
    per case with its gap as the JSON has it, and the headline names the worst gap."""
    result = json.loads((BENCH / "results" / "map.json").read_text())
    text, head = _load("real_reports").report_map(result)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == [r["case"] for r in result["rows"]]
    for line, r in zip(rows, result["rows"]):
        assert f"{r['gap']:+.1f}" in line and r["mle_stop_reason"] in line
    assert all(f"`{r['init']}`" in text for r in result["rows"])
    worst = min(result["rows"], key=lambda r: r["gap"])
    assert f"{worst['gap']:+.1f} ({worst['case']})" in head[0]
