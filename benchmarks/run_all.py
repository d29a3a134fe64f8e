"""Run the benchmark suite and write ``benchmarks/RESULTS.md``.

Usage::

    python benchmarks/run_all.py                       # everything (~25 min on 2 CPU cores)
    python benchmarks/run_all.py --only accuracy peers # some of the steps
    python benchmarks/run_all.py --smoke               # every script's --smoke mode, seconds-minutes
    python benchmarks/run_all.py --report-only         # rebuild RESULTS.md from benchmarks/results/*.json

Steps (each a script run in its own process, ``--smoke`` passed through):

==============  =============================  ==============================================
name            script                         what
==============  =============================  ==============================================
em_scaling      bench_em_scaling.py            item 1: EM iteration vs two passes, p = 1e4..1e6
em              bench_em.py                    EM module's own benchmark (p = 200,000)
peers           bench_peers.py                 item 2: lcl-choice and flexmix, same data/target
nuts            bench_nuts.py                  item 3: warm-started vs default-initialised NUTS
bayes           bench_bayes.py                 item 3: smm NUTS vs biogeme Bayesian (PyMC)
accuracy        bench_accuracy.py              item 4: oracle ratio, efficiency, rate, success
warmstart       bench_warmstart.py             warm-start module's own benchmark
==============  =============================  ==============================================

A script that is missing is reported as such; a script that fails does not
stop the others. Results: ``benchmarks/results/<name>.json`` and PNG plots
there; logs in ``benchmarks/_peers/logs`` (git-ignored). A smoke run writes to
``benchmarks/_peers/smoke`` (git-ignored) and never touches the committed results.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

STEPS = [
    # name, script, full-run timeout (s)
    ("em_scaling", "bench_em_scaling.py", 1200),
    ("em", "bench_em.py", 900),
    ("peers", "bench_peers.py", 3600),
    ("nuts", "bench_nuts.py", 1800),
    ("bayes", "bench_bayes.py", 2400),
    ("accuracy", "bench_accuracy.py", 2400),
    ("warmstart", "bench_warmstart.py", 1200),
    ("memory", "bench_memory.py", 1800),
    ("latency", "bench_latency.py", 1800),
    ("defaults", "bench_defaults.py", 1800),
    ("real", "bench_real.py", 14400),
    ("map", "bench_map.py", 7200),
    ("choice", "bench_choice.py", 7200),
    ("scale", "bench_scale.py", 7200),
    ("sbc", "bench_sbc.py", 14400),
    ("select_k", "bench_select_k.py", 14400),
]
# JSON file each step leaves in the results folder (others' scripts choose their own names).
JSON_NAMES = {
    "em_scaling": "em_scaling.json",
    "em": "em.json",
    "peers": "peers.json",
    "nuts": "nuts.json",
    "bayes": "bayes.json",
    "accuracy": "accuracy.json",
    "warmstart": "warmstart.json",
    "memory": "memory.json",
    "latency": "latency.json",
    "defaults": "defaults.json",
    "real": "real.json",
    "map": "map.json",
    "choice": "choice.json",
    "scale": "scale.json",
    "sbc": "sbc.json",
    "select_k": "select_k.json",
}
COMMAND = "python benchmarks/run_all.py"


def _accepts_out(script: Path) -> bool:
    try:
        return "--out" in script.read_text()
    except OSError:
        return False


def run_step(name: str, script: str, timeout: float, smoke: bool, results_dir: Path, logs: Path) -> dict:
    path = _common.HERE / script
    if not path.exists():
        return {"name": name, "script": script, "status": "missing"}
    cmd = [sys.executable, str(path)]
    if smoke:
        cmd.append("--smoke")
    if (smoke or results_dir != _common.RESULTS) and _accepts_out(path):
        cmd += ["--out", str(results_dir / JSON_NAMES[name])]
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}{'_smoke' if smoke else ''}.log"
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    commit = _git_commit()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=_common.ROOT,
            env=env,
            start_new_session=True,
        )

        def pump():
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                fh.flush()
                quiet = "Warning" in line or line.lstrip().startswith(("warnings.warn", "res = ", "em_res = "))
                if not quiet:
                    sys.stdout.write("  | " + line)
                    sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The script's own process group (it may have started peer processes): ours to end.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            rc = "timeout"
        reader.join(timeout=10)
    wall = time.perf_counter() - t0
    status = "ok" if rc == 0 else ("timeout" if rc == "timeout" else f"failed (exit {rc})")
    print(f"=== {name}: {status} in {wall:.0f} s (log {log})", flush=True)
    return {
        "name": name,
        "script": script,
        "status": status,
        "wall_s": wall,
        "log": str(log),
        "command": "python benchmarks/" + script + (" --smoke" if smoke else ""),
        "commit": commit,
        "finished": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def _git_commit() -> str:
    """Short HEAD, with ``+local changes`` when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=_common.ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "smm_ppl"],
            capture_output=True,
            text=True,
            cwd=_common.ROOT,
        ).stdout.strip()
        return head + (" + local changes to smm_ppl" if dirty else "") if head else "?"
    except OSError:
        return "?"


# --------------------------------------------------------------------------- #
# RESULTS.md
# --------------------------------------------------------------------------- #


def _load(results_dir: Path, name: str):
    p = results_dir / JSON_NAMES[name]
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def _f(x, fmt="{:.3g}"):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    try:
        if isinstance(x, float) and not math.isfinite(x):
            return "–"
        return fmt.format(x)
    except (TypeError, ValueError):
        return str(x)


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def section_em_scaling(d) -> tuple[str, list[str]]:
    if d is None:
        return "_No result (run `python benchmarks/bench_em_scaling.py`)._", []
    if d.get("smoke"):
        return _generic(d, "bench_em_scaling --smoke"), []
    rows = [
        [
            f"{r['p']:,}",
            _f(r["two_passes_s"] * 1e3, "{:.2f}"),
            _f(r["estep_s"] * 1e3, "{:.2f}"),
            _f(r["em_iteration_s"] * 1e3, "{:.2f}"),
            _f(r["ratio_iteration_to_two_passes"], "{:.2f}"),
            _f(100 * r["share_two_passes"], "{:.0f}%"),
            _f(100 * r["share_estep"], "{:.0f}%"),
            _f(100 * r["share_rest"], "{:.0f}%"),
        ]
        for r in d["rows"]
    ]
    r0 = d["rows"][0]
    txt = [
        f"`L = {r0['L']}`, `K = {r0['K']}`, {r0['dtype']}, {d['environment']['device']} "
        f"({d['environment']['cpu_count']} cores). One iteration = gradient M-step, no acceleration, "
        f"timed through {r0.get('em_timed_via', 'the EM driver')} as the difference of a long and a short run "
        "(`tol = 0`, so fixed costs cancel). The two passes are "
        "`Xt @ B.T` and `Xt.T @ R` jitted together (the faster of the `(p, L)` and `(L, p)` storage of the "
        "features); the E-step is the layout's statistics (normalisers, mixture probabilities, "
        "log-likelihood) at given `(K, p)` logits. Each part is timed as its own jitted call, so the shares need not add "
        "up to 100 %: inside the EM loop XLA fuses the elementwise work into the passes (rest = what the "
        "two parts leave unexplained, floored at 0).",
        "",
        _table(
            [
                "p",
                "two passes (ms)",
                "E-step (ms)",
                "EM iteration (ms)",
                "ratio iteration / passes",
                "passes share",
                "E-step share",
                "rest",
            ],
            rows,
        ),
    ]
    if "ratio_newton_to_two_passes" in r0:
        txt += [
            "",
            f"Newton M-step at p = {r0['p']:,}: {r0['em_iteration_newton_s'] * 1e3:.2f} ms per iteration, "
            f"{r0['ratio_newton_to_two_passes']:.1f}× the two passes.",
        ]
    if d.get("plot"):
        txt += ["", f"![EM scaling](results/{d['plot']})"]
    big = d["rows"][-1]
    head = [
        f"EM iteration at p = {big['p']:,} (L = {big['L']}, K = {big['K']}): "
        f"{big['em_iteration_s'] * 1e3:.1f} ms = {big['ratio_iteration_to_two_passes']:.2f}× the two "
        f"feature passes (`python benchmarks/bench_em_scaling.py`)"
    ]
    return "\n".join(txt), head


def section_peers(d) -> tuple[str, list[str]]:
    if d is None:
        return "_No result (run `python benchmarks/bench_peers.py`)._", []
    if d.get("smoke"):
        return _generic(d, "bench_peers --smoke"), []
    txt = []
    inst = [
        [name, v.get("status"), v.get("version", "–"), (v.get("reason") or "").replace("|", "/")[:200]]
        for name, v in d["peers"].items()
    ]
    txt += [
        "Peer installation (by the script, into `benchmarks/_peers/`, never into the project):",
        "",
        _table(["peer", "status", "version", "reason"], inst),
        "",
    ]
    des = d["design"]
    txt += [
        f"**Shared design** `p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`. "
        "Every tool's estimate is evaluated with `smm.log_likelihood` on the same counts "
        "(`sum_j n_j log pi_j`); gap = that minus smm's. Fit time is measured by each tool around its "
        "fit call (smm: second call, compiled; its first call including JIT compilation in brackets); "
        "wall = the whole subprocess (import, data layout, fit).",
        "",
    ]
    rows = []
    for r in d["shared"]:
        if r.get("status") != "ok":
            rows.append([r["tool"], f"{r['N']:,}", "–", "–", "–", "–", "–", "–", r.get("status")])
            continue
        t = _f(r["time_s"], "{:.2f}")
        if r["tool"] == "smm":
            t += f" ({_f(r.get('time_cold_s'), '{:.1f}')})"
        rows.append(
            [
                r["tool"],
                f"{r['N']:,}",
                f"{r.get('n_rows', '–'):,}" if isinstance(r.get("n_rows"), int) else "–",
                t,
                _f(r.get("wall_s"), "{:.1f}"),
                _f(r["log_likelihood"], "{:.3f}"),
                _f(r.get("log_likelihood_gap_to_smm"), "{:+.4f}"),
                _f(r["error_atoms"], "{:.4f}"),
                "ok",
            ]
        )
    txt += [
        _table(["tool", "N", "rows fed", "fit s", "wall s", "log-lik (smm eval)", "gap", "atom error", "status"], rows),
        "",
    ]
    if d.get("sweep"):
        s = d["sweep_settings"]
        txt += [
            f"**Largest p** (N = {s['N']:,}; p doubles until a fit takes over {s['limit_s']:.0f} s or fails; "
            f"smm capped at p = {s['smm_max_p']:,}):",
            "",
        ]
        rows = []
        for r in d["sweep"]:
            if r.get("status") == "ok":
                over = r["time_s"] > s["limit_s"]
                rows.append(
                    [
                        r["tool"],
                        f"{r['p']:,}",
                        _f(r["time_s"], "{:.2f}"),
                        _f(r.get("wall_s"), "{:.1f}"),
                        _f(r.get("log_likelihood_gap_to_smm"), "{:+.3f}"),
                        _f(r.get("error_atoms"), "{:.3f}"),
                        f"ok, over the {s['limit_s']:.0f} s limit" if over else "ok",
                    ]
                )
            else:
                rows.append(
                    [
                        r["tool"],
                        f"{r['p']:,}",
                        "–",
                        _f(r.get("wall_s"), "{:.1f}"),
                        "–",
                        "–",
                        f"{r.get('status')}: {(r.get('reason') or '')[:80]}".replace("|", "/"),
                    ]
                )
        txt += [_table(["tool", "p", "fit s", "wall s", "gap", "atom error", "status"], rows), ""]
        txt += [
            "Largest p within the limit: "
            + ", ".join(f"{k}: {v:,}" if v else f"{k}: none" for k, v in d["largest_p"].items())
        ]
    head = []
    by = {(r["tool"], r["N"]): r for r in d["shared"]}
    for N in d["design"]["N"]:
        sm = by.get(("smm", N))
        parts = []
        for tool in ("lcl", "flexmix"):
            r = by.get((tool, N))
            if r and r.get("status") == "ok" and sm:
                parts.append(f"{tool} {r['time_s']:.1f} s (gap {r['log_likelihood_gap_to_smm']:+.3f})")
            elif r:
                parts.append(f"{tool} {r.get('status')}")
        if sm:
            cold = f" (first call, with JIT compilation, {sm['time_cold_s']:.1f} s)" if sm["time_cold_s"] > 1 else ""
            head.append(
                f"p = {d['design']['p']}, N = {N:,}: smm {sm['time_s']:.2f} s{cold} vs "
                + ", ".join(parts)
                + " (`python benchmarks/bench_peers.py`)"
            )
    if d.get("sweep") and d.get("largest_p"):
        head.append(
            "Largest p handled within the limit: "
            + ", ".join(f"{k} {v:,}" if v else f"{k} none" for k, v in d["largest_p"].items())
        )
    return "\n".join(txt), head


def _generic(d, title) -> str:
    """A flat table of the scalar fields of another module's benchmark JSON."""
    if d is None:
        return f"_No result for {title}._"
    rows = []

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else k, x)
        elif isinstance(v, (int, float, str, bool)) and not (isinstance(v, str) and len(v) > 120):
            rows.append([prefix, _f(v, "{:.4g}") if isinstance(v, float) else str(v)])
        elif isinstance(v, list) and len(v) <= 12 and all(isinstance(x, (int, float)) for x in v):
            rows.append([prefix, ", ".join(_f(x, "{:.4g}") for x in v)])

    walk("", d)
    return _table(["field", "value"], rows[:80])


def section_nuts(d) -> tuple[str, list[str]]:
    if d is None:
        return "_No result from `benchmarks/bench_nuts.py`._", []
    if d.get("smoke") or "summary" not in d:
        return _generic(d, "bench_nuts"), []
    try:
        c, sm = d["design"], d["summary"]
        keys = [
            ("fraction_all_chains_agree", "all chains agree (R-hat < 1.01)", "{:.2f}"),
            ("fraction_raw_rhat_below_1.01", "raw R-hat < 1.01 (no relabelling)", "{:.2f}"),
            ("median_max_rhat", "median max R-hat", "{:.3f}"),
            ("median_min_ess", "median min bulk ESS", "{:.0f}"),
            ("median_wall_s", "median wall s (compilation included)", "{:.1f}"),
            ("median_ess_per_s", "median min ESS / s", "{:.2f}"),
            ("median_sampling_s", "median sampling s (compilation subtracted)", "{:.1f}"),
            ("median_ess_per_sampling_s", "median min ESS / sampling s", "{:.2f}"),
            ("total_divergences", "divergences (all runs)", "{:d}"),
            ("median_error_vs_truth", "median posterior-mean atom error", "{:.4f}"),
        ]
        rows = [[label, _f(sm["warm"].get(k), fmt), _f(sm["default"].get(k), fmt)] for k, label, fmt in keys]
        txt = [
            f"`p = {c['p']}`, `L = {c['L']}`, `K = {c['K']}`, `N = {c['N']:,}`, {c['chains']} chains × "
            f"({c['warmup']} + {c['draws']}), {c['seeds']} data sets; both relabelled to the EM estimate.",
            "",
            _table(["", "warm start (EM)", "default init"], rows),
            "",
        ]
        r = sm["ratios"]
        txt += [
            f"Ratios (same run): min ESS per second warm / default {r['ess_per_s_warm_over_default']:.2f} "
            f"(per sampling second {r['ess_per_sampling_s_warm_over_default']:.2f}); wall time default / warm "
            f"{r['wall_time_default_over_warm']:.2f}; the EM fit itself took {r['median_em_s']:.2f} s (median)."
        ]
        head = [
            f"NUTS warm-started at EM vs default init: chains agree in {sm['warm']['fraction_all_chains_agree']:.0%} vs "
            f"{sm['default']['fraction_all_chains_agree']:.0%} of data sets; min ESS/s ratio warm/default "
            f"{r['ess_per_s_warm_over_default']:.2f} (`python benchmarks/bench_nuts.py`)"
        ]
        return "\n".join(txt), head
    except (KeyError, TypeError):
        return _generic(d, "bench_nuts"), []


def section_bayes(d) -> tuple[str, list[str]]:
    if d is None:
        return "_No result (run `python benchmarks/bench_bayes.py`)._", []
    if d.get("smoke"):
        return _generic(d, "bench_bayes --smoke"), []
    des = d["design"]
    txt = [
        f"Same data (`p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`, `N = {des['N']:,}`), same model "
        f"and priors, {des['chains']} chains × ({des['warmup']} warm-up + {des['draws']} draws), both started at "
        "the EM estimate; draws relabelled to it. Time = the sampling call, compilation included.",
        "",
    ]
    rows = []
    for name in ("smm", "biogeme"):
        t = d["tools"].get(name)
        if not t:
            continue
        if t.get("status") != "ok":
            rows.append([name, t.get("status"), "–", "–", "–", "–", (t.get("reason") or "")[:160].replace("|", "/")])
            continue
        rows.append(
            [
                name,
                _f(t["time_s"], "{:.1f}"),
                _f(t["ess_bulk_min"], "{:.0f}"),
                _f(t["ess_bulk_median"], "{:.0f}"),
                _f(t["ess_bulk_min_per_s"], "{:.2f}"),
                _f(t["rhat_max"], "{:.3f}"),
                "",
            ]
        )
    txt += [_table(["tool", "time s", "bulk ESS min", "bulk ESS median", "min ESS / s", "R-hat max", "note"], rows)]
    head = []
    ag = d["tools"].get("agreement")
    if ag:
        txt += [
            "",
            f"Posterior means agree within {ag['max_mean_difference_in_sd']:.2f} posterior sd; "
            f"posterior sd ratio biogeme/smm in [{ag['sd_ratio_min']:.2f}, {ag['sd_ratio_max']:.2f}].",
        ]
        s, b = d["tools"]["smm"], d["tools"]["biogeme"]
        head.append(
            f"NUTS, same model and draws: smm {s['time_s']:.0f} s (min ESS/s {s['ess_bulk_min_per_s']:.1f}) vs "
            f"biogeme {b['time_s']:.0f} s (min ESS/s {b['ess_bulk_min_per_s']:.2f}); "
            f"posterior means within {ag['max_mean_difference_in_sd']:.2f} sd (`python benchmarks/bench_bayes.py`)"
        )
    elif "biogeme" in d["tools"]:
        head.append(f"biogeme Bayesian: {d['tools']['biogeme'].get('status')} (`python benchmarks/bench_bayes.py`)")
    txt += ["", f"biogeme install: {d['peer'].get('status')} {d['peer'].get('version', '')}"]
    return "\n".join(txt), head


def section_accuracy(d) -> tuple[str, list[str]]:
    if d is None:
        return "_No result (run `python benchmarks/bench_accuracy.py`)._", []
    if d.get("smoke"):
        return _generic(d, "bench_accuracy --smoke"), []
    txt, head = [], []
    if "rate" in d:
        r = d["rate"]
        des = r["design"]
        txt += [
            f"**Oracle ratio, efficiency, rate** (`p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`, fixed "
            f"design and truth, {des['seeds']} count vectors per N). Error = `max_k |theta_hat_k - theta_k|` "
            "after matching; oracle = EM started at the truth; efficiency = MSE of "
            "`(alpha_1..alpha_{K-1}, theta)` / trace of the inverse Fisher information of N draws at the truth.",
            "",
        ]
        rows = [
            [
                f"{x['N']:,}",
                _f(x["error_auto_mean"], "{:.4f}"),
                _f(x["error_oracle_mean"], "{:.4f}"),
                _f(x["ratio_median"], "{:.3f}"),
                _f(x["ratio_of_means"], "{:.3f}"),
                _f(x["ratio_max"], "{:.2f}"),
                _f(100 * x["share_within_5pct_of_oracle"], "{:.0f}%"),
                _f(x["efficiency_auto"], "{:.2f}"),
                _f(x["efficiency_oracle"], "{:.2f}"),
                f"{x['n_seeds']}" + (f" ({x['failures']} failed)" if x["failures"] else ""),
            ]
            for x in r["rows"]
        ]
        txt += [
            _table(
                [
                    "N",
                    "error auto",
                    "error oracle",
                    "ratio (median)",
                    "ratio of means",
                    "ratio max",
                    "within 5% of oracle",
                    "MSE/tr(CRB) auto",
                    "oracle",
                    "seeds",
                ],
                rows,
            ),
            "",
        ]
        txt += [
            f"Log-log slope of the mean error against N: auto **{r['slope_auto']:.3f}**, oracle "
            f"{r['slope_oracle']:.3f}, sqrt(trace CRB) {r['slope_sqrt_trace_crb']:.3f} (target −0.5)."
        ]
        if r.get("plot"):
            txt += ["", f"![error against N](results/{r['plot']})"]
        last = r["rows"][-1]
        effs = [x["efficiency_auto"] for x in r["rows"]]
        head.append(
            f"fit_em(init='auto') error / oracle error: median {min(x['ratio_median'] for x in r['rows']):.3f}–"
            f"{max(x['ratio_median'] for x in r['rows']):.3f} over N = {r['rows'][0]['N']:,}–{last['N']:,}; "
            f"log-log slope of the error {r['slope_auto']:.2f}; MSE / tr(CRB) "
            f"{min(effs):.2f}–{max(effs):.2f} (`python benchmarks/bench_accuracy.py --parts rate`)"
        )
    if "success" in d:
        s = d["success"]
        des = s["design"]
        txt += [
            "",
            f"**Success rate of each start against K** (`p = {des['p']}`, `L = {des['L']}`, `N = {des['N']:,}`, "
            f"{des['seeds']} designs per K; success = EM from that start ends within {des['ll_tol']} "
            f"log-likelihood units of the oracle (or above); at most {des['max_iter']} iterations; "
            "`random` = random starts in the full space; `random x1` has the compute of one warm start, "
            f"`random x{des['n_starts']}` that of `subspace x{des['n_starts']}`).",
            "",
        ]
        rows = []
        for x in s["rows"]:
            rows.append(
                [x["K"]]
                + [
                    _f(x[m]["success_rate"], "{:.2f}")
                    + (f" ({x[m]['n_failed_to_start']} no start)" if x[m]["n_failed_to_start"] else "")
                    for m in s["methods"]
                ]
                + [_f(x["time_s"], "{:.0f}")]
            )
        txt += [_table(["K"] + s["methods"] + ["time s"], rows)]
        ex = {m: x[m]["failure_examples"] for x in s["rows"] for m in s["methods"] if x[m]["failure_examples"]}
        if ex:
            txt += [
                "",
                "Starts that could not be computed, e.g.: "
                + "; ".join(f"{m}: {v[0]}" for m, v in ex.items()).replace("|", "/"),
            ]
        if s.get("plot"):
            txt += ["", f"![success against K](results/{s['plot']})"]
        Ks = [x["K"] for x in s["rows"]]
        summary = "; ".join(f"{m} " + "/".join(f"{x[m]['success_rate']:.2f}" for x in s["rows"]) for m in s["methods"])
        head.append(
            "success rate of EM from each start (landing in the oracle's basin), K = "
            + "/".join(str(k) for k in Ks)
            + f": {summary} (`python benchmarks/bench_accuracy.py --parts success`)"
        )
    return "\n".join(txt), head


def section_scale(res):
    """Items over devices, float32 against float64, peak memory against p (``bench_scale.py``)."""
    if not res or res.get("smoke"):
        return (_generic(res, "bench_scale --smoke"), []) if res else ("", [])
    L, K = res["L"], res["K"]
    rows = [
        [
            str(r["devices"]),
            f"{r['first_seconds']:.2f}",
            f"{r['first_ratio']:.2f}",
            f"{r['compiled_seconds']:.2f}",
            f"{r['compiled_ratio']:.2f}",
            f"{r['log_likelihood_gap']:.1e}",
            f"{r['atoms_gap']:.1e}",
            f"{r['iteration_over_floor']:.1f}" if "iteration_over_floor" in r else "–",
        ]
        for r in res["scaling"]
        if r.get("status") == "ok"
    ]
    first = res["scaling"][0]
    out = [
        f"**Items split over forced host CPU devices** (p = {first['p']:,}, L = {L}, K = {K}, "
        f"{first['max_iter']} EM iterations from the same start, float64). The devices share the machine's "
        f"{res['environment'].get('cpu_count')} cores, so a speed-up comes from XLA running the blocks side by "
        "side on those cores, not from more hardware; the gaps are to the 1-device fit.",
        "",
        _table(
            [
                "devices",
                "first fit s",
                "x 1 device",
                "compiled s",
                "x 1 device",
                "log-lik gap",
                "atoms gap",
                "iteration / bandwidth floor",
            ],
            rows,
        ),
        "",
    ]
    head = []
    pr = res.get("precision")
    if isinstance(pr, dict):
        out += [
            f"**float32 against float64** on the same float32 data (p = {pr['float64']['p']:,}, L = {L}, K = {K}, "
            f"to convergence): log-likelihood {pr['log_likelihood_gap']:+.3e} ({pr['relative_gap']:+.1e} "
            f"relative); atoms differ by at most {pr['atoms_max_difference']:.1e}, "
            f"{pr['atoms_max_difference_in_se']:.3f} standard errors; iterations {pr['float64']['n_iter']} / "
            f"{pr['float32']['n_iter']}.",
            "",
        ]
        head.append(
            f"float32 EM costs {abs(pr['relative_gap']):.0e} of the log-likelihood and "
            f"{pr['atoms_max_difference_in_se']:.3f} standard errors of the atoms (`python benchmarks/bench_scale.py`)"
        )
    mem = [r for r in res["memory"] if r.get("status") == "ok"]
    rows = [
        [
            f"{r['p']:,}",
            f"{r['features_bytes'] / 2**30:.2f}",
            f"{r['peak_rss_bytes'] / 2**30:.2f}",
            f"{r['peak_rss_bytes'] / r['features_bytes']:.1f}",
            f"{r['first_seconds']:.0f}",
        ]
        for r in mem
    ]
    out += [
        f"**Peak memory of a float32 fit** (L = {L}, K = {K}, {res['memory'][0]['max_iter']} iterations from a "
        "given start, no standard errors; each p in its own process):",
        "",
        _table(["p", "float32 features GiB", "peak RSS GiB", "x features", "fit s"], rows),
        "",
    ]
    if res["environment"].get("backend") == "cpu":
        out.append("No GPU was available for this run: every figure is CPU.")
    if mem:
        top = mem[-1]
        head.append(
            f"float32 fit at p = {top['p']:,}, L = {L}, K = {K}: peak {top['peak_rss_bytes'] / 2**30:.1f} GiB "
            "(`python benchmarks/bench_scale.py`)"
        )
    return "\n".join(out), head


def section_memory(res):
    """Peak resident memory of each stage, each run in its own process."""
    if not res:
        return "", []
    rows = []
    for st in res["stages"]:
        if st.get("status") != "ok":
            rows.append([st["stage"], "failed", "–", "–", "–"])
            continue
        note = (
            f"{st['n_iter']} iterations, start {st['init']}, converged {st['converged']}"
            if st["stage"] == "fit_em"
            else ""
        )
        rows.append(
            [
                st["stage"],
                f"{st['peak_rss_bytes'] / 2**30:.2f}",
                f"{st['peak_rss_bytes'] / st['features_bytes']:.1f}",
                f"{st['seconds']:.1f}",
                note,
            ]
        )
    table = _table(["stage", "peak RSS (GiB)", "x features", "stage s", "note"], rows)
    intro = (
        f"`p = {res['p']:,}`, `L = {res['L']}`, `K = {res['K']}`, `N = {res['n_obs']:,}`; the feature matrix is "
        f"{res['stages'][0].get('features_bytes', 0) / 2**20:.0f} MiB. `data` = simulate features and counts; "
        "`warmstarts` = that plus the subspace, tensor, MoM (K = 3) and 16 subspace random starts; "
        '`fit_em` = that plus `fit_em(init="auto", max_iter=100)` with standard errors (memory does not grow '
        "with the iteration count)."
    )
    fit = [st for st in res["stages"] if st["stage"] == "fit_em" and st.get("status") == "ok"]
    head = (
        [
            f"peak memory of fit_em(init='auto') at p = {res['p']:,}, L = {res['L']}, K = {res['K']}: "
            f"{fit[0]['peak_rss_bytes'] / 2**30:.1f} GiB (`python benchmarks/bench_memory.py`)"
        ]
        if fit
        else []
    )
    return intro + "\n\n" + table, head


def latency_table(res) -> str:
    """The steps a user waits for (fresh processes, compilation included) and the ratios against BFGS."""
    cold, warm, bfgs, flex = res["cold"], res["warm"], res["bfgs"], res.get("flexmix") or {}
    d = res["data"]
    rows = [
        ["`import smm_ppl`", _f(cold["import_s"], "{:.2f}"), _f(warm["import_s"], "{:.2f}")],
        ["first `fit_em`", _f(cold["first_fit_s"], "{:.2f}"), _f(warm["first_fit_s"], "{:.2f}")],
        ["same shapes, new data", _f(cold["same_shapes_s"], "{:.2f}"), ""],
        [f"p = {d['p_other']:,} (same bucket)", _f(cold["other_size_s"], "{:.2f}"), ""],
        [f"K = {d['K'] + 1}", _f(cold["other_k_s"], "{:.2f}"), ""],
        ["first `sample_nuts` (2 x 600 draws)", _f(cold["first_nuts_s"], "{:.2f}"), ""],
        ["`sample_nuts`, new data of the same bucket", _f(cold["second_nuts_s"], "{:.2f}"), ""],
        ["  its sampling time (a compiled call)", _f(cold["nuts_sampling_s"], "{:.2f}"), ""],
        ["SciPy BFGS, 5 starts (fit; process wall)", f"{bfgs['fit_s']:.2f}; {bfgs['process_wall_s']:.2f}", ""],
    ]
    if "fit_s" in flex:
        rows.append(["flexmix, 1 rep (fit; process wall)", f"{flex['fit_s']:.2f}; {flex['process_wall_s']:.2f}", ""])
    table = _table(["step (fresh process, in order)", "empty cache (s)", "filled cache (s)"], rows)
    acc = res.get("acceptance", {})
    ratios = ", ".join(
        f"{k.replace('_', ' ')} {v:.2f}" + (f" (target <= {acc[k]})" if k in acc else "")
        for k, v in res["ratios"].items()
    )
    return (
        f"p = {d['p']:,}, L = {d['L']}, K = {d['K']}, N = {d['N']:,} (`python benchmarks/bench_latency.py`).\n\n"
        + table
        + f"\n\nRatios in the same run: {ratios}."
    )


def section_defaults(res) -> tuple[str, list[str]]:
    """The quasi-Newton default against SQUAREM on Gaussian designs (no regression)."""
    if not res or not res.get("summary"):
        return "", []
    rows = []
    for line in res["summary"]:
        a, q = line["auto"], line["squarem"]
        rows.append(
            [
                line["K"],
                f"{a['max_error_ratio']:.4f}",
                f"{a['converged']}/{a['fits']}",
                f"{a['median_wall_s']:.2f}",
                f"{q['max_error_ratio']:.4f}",
                f"{q['converged']}/{q['fits']}",
                f"{q['median_wall_s']:.2f}",
            ]
        )
    args = res["args"]
    table = _table(
        ["K", "default: max error ratio", "converged", "median s", "SQUAREM: max ratio", "converged", "median s"],
        rows,
    )
    intro = (
        f"p = {args['p']:,}, L = {args['L']}, N = {args['N']:,}, {args['seeds']} seeds per K; error ratio = "
        "atom error of `fit_em(init='auto')` over that of EM from the truth (`python benchmarks/bench_defaults.py`)."
    )
    worst = max(line["auto"]["max_error_ratio"] for line in res["summary"])
    return intro + "\n\n" + table, [
        f"Gaussian designs, K up to {max(a['K'] for a in res['summary'])}: error of "
        f"`auto` at most {worst:.4f}x the oracle's with the default acceleration"
    ]


def section_choice(res) -> tuple[str, list[str]]:
    """The panel latent-class logit on Train's Electricity data against lcl-choice and biogeme."""
    if not res or not res.get("rows"):
        return "", []
    smm_row = next((r for r in res["rows"] if r["peer"] == "smm"), None)
    rows, heads = [], []
    for r in res["rows"]:
        if r.get("status") != "ok" or r.get("loglik") is None:
            rows.append([r["peer"], "–", "–", "–", "–", str(r.get("reason", r.get("status")))[:120]])
            continue
        ratio = r.get("wall_ratio_vs_smm")
        note = (
            f"compiled fit {r['fit_compiled_s']:.2f} s"
            if r["peer"] == "smm"
            else f"{r.get('fits', r.get('starts', ''))} fits"
            if r.get("fits")
            else ""
        )
        rows.append(
            [
                f"{r['peer']} {r.get('version', '')}".strip(),
                f"{r['loglik']:.3f}",
                f"{r.get('gap_vs_smm', 0.0):+.4f}",
                f"{r['wall_s']:.1f}",
                f"{ratio:.2f}" if ratio is not None else "–",
                note,
            ]
        )
        if r["peer"] != "smm" and ratio is not None:
            heads.append(f"{r['peer']} {r['wall_s']:.0f} s (gap {r.get('gap_vs_smm', 0.0):+.3f})")
    table = _table(["tool", "log-likelihood", "gap vs smm", "wall s", "wall / smm", ""], rows)
    intro = (
        f"{res.get('data', 'Electricity')}: 2 classes drawn once per person, six class-specific coefficients, "
        f"constant membership; {res['starts']} starts per tool. Wall time = a fresh process (interpreter, imports, "
        "and for smm JAX compilation with an empty cache) in the same run (`python benchmarks/bench_choice.py`)."
    )
    head = []
    if smm_row and smm_row.get("status") == "ok":
        head = [
            f"Electricity panel latent-class logit: smm {smm_row['wall_s']:.0f} s wall, "
            f"{smm_row['fit_compiled_s']:.2f} s compiled; "
            + "; ".join(heads)
            + (" (see the section's note on these times)" if res.get("notes") else "")
        ]
    notes = "".join(f"\n\nNote: {n}" for n in res.get("notes", []))
    return intro + "\n\n" + table + notes, head


def section_real(res) -> tuple[str, list[str]]:
    """Fits on the real vocabulary design against the polished labelled oracle."""
    if not res or not res.get("rows"):
        return "", []
    rows = []
    for r in res["rows"]:
        a = r.get("auto") or {}
        rows.append(
            [
                r["case"],
                r["K"],
                f"{r['ll_oracle']:,.2f}",
                f"{r['gap']:+.3f}",
                f"{'yes' if a.get('converged') else 'no'} ({a.get('n_iter', '?')})",
                f"{r['wall_auto_s']:.0f}",
                f"{r['labelled_s']:.1f}",
                f"{r['ratio']:.1f}",
            ]
        )
    table = _table(
        [
            "case",
            "K",
            "oracle log-lik.",
            "auto - oracle",
            "converged (iterations)",
            "auto wall s",
            "labelled s",
            "ratio",
        ],
        rows,
    )
    intro = (
        "MiniLM-L6 token embeddings (p = 30,522, L = 384), N = 200,000 (`python benchmarks/bench_real.py`; "
        "the oracle is the labelled MNLs polished by `fit_em` and by SciPy L-BFGS-B, the better; wall times "
        "include compilation)."
    )
    return intro + "\n\n" + table, []


def write_report(results_dir: Path, runs: list[dict], smoke: bool, total_s: float | None, path: Path) -> None:
    env = None
    for name in JSON_NAMES:
        d = _load(results_dir, name)
        if d and "environment" in d:
            env = d["environment"]
            break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=_common.ROOT
        ).stdout.strip()
    except OSError:
        commit = "?"
    parts = [
        "# smm-ppl benchmark results",
        "",
        f"Produced by `{COMMAND}{' --smoke' if smoke else ''}` on "
        f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} at commit `{commit or '?'}`"
        + (f", {total_s / 60:.0f} min in all" if total_s else "")
        + ".",
    ]
    if env:
        parts += [
            f"Machine: {env.get('cpu_count')} CPU cores ({env.get('machine')}), JAX {env.get('jax')} "
            f"on {env.get('device')}, float64; load average at the start of the last script "
            f"{_f(env.get('load_average_1min'), '{:.1f}')} (the machine was shared: timings are "
            "indicative, ratios are taken within one run)."
        ]
    if smoke:
        parts += ["", "**Smoke run: tiny sizes, the numbers mean nothing.**"]
    if runs:
        parts += [
            "",
            _table(
                ["step", "script", "status", "wall s", "code (commit)", "finished"],
                [
                    [
                        r["name"],
                        r["script"],
                        r["status"],
                        _f(r.get("wall_s"), "{:.0f}"),
                        f"`{r.get('commit', '?')}`",
                        r.get("finished", "–"),
                    ]
                    for r in runs
                ],
            ),
        ]
    sections = []
    headline = []
    body, h = section_em_scaling(_load(results_dir, "em_scaling"))
    sections += ["## 1. Where an EM iteration's time goes", "", body, ""]
    headline += h
    em = _load(results_dir, "em")
    if em:
        sections += [
            "The EM module's own benchmark (`python benchmarks/bench_em.py`):",
            "",
            _generic(em, "bench_em"),
            "",
        ]
    body, h = section_peers(_load(results_dir, "peers"))
    sections += ["## 2. End-to-end fit against peer tools", "", body, ""]
    headline += h
    sections += [
        "## 3. Bayesian",
        "",
        "### Warm-started NUTS against NUTS from the default initialisation",
        "",
        "From `python benchmarks/bench_nuts.py` (the inference module's benchmark):",
        "",
    ]
    body, h = section_nuts(_load(results_dir, "nuts"))
    sections += [body, "", "### Against biogeme's Bayesian estimation", ""]
    headline += h
    body, h = section_bayes(_load(results_dir, "bayes"))
    sections += [body, ""]
    headline += h
    body, h = section_accuracy(_load(results_dir, "accuracy"))
    sections += ["## 4. Accuracy", "", body, ""]
    headline += [x for x in h if x]
    ws = _load(results_dir, "warmstart")
    if ws:
        sections += [
            "## Warm starts (the warm-start module's benchmark, `python benchmarks/bench_warmstart.py`)",
            "",
            _generic(ws, "bench_warmstart"),
            "",
        ]
    body, h = section_memory(_load(results_dir, "memory"))
    if body:
        sections += ["## Memory at p = 10^6 items, L = 64 (`python benchmarks/bench_memory.py`)", "", body, ""]
        headline += h
    body, h = section_defaults(_load(results_dir, "defaults"))
    if body:
        sections += ["## EM defaults on Gaussian designs", "", body, ""]
        headline += h
    body, h = section_real(_load(results_dir, "real"))
    if body:
        sections += ["## Real designs", "", body, ""]
        headline += h
    body, h = section_map(_load(results_dir, "map"))
    if body:
        sections += ["## The posterior mode on real designs", "", body, ""]
        headline += h
    body, h = section_choice(_load(results_dir, "choice"))
    if body:
        sections += ["## Choice data: a panel latent-class logit against its peers", "", body, ""]
        headline += h
    body, h = section_scale(_load(results_dir, "scale"))
    if body:
        sections += ["## Scale: devices, precision, memory (`python benchmarks/bench_scale.py`)", "", body, ""]
        headline += h
    for section, name, title in (
        (section_sbc, "sbc", "Simulation-based calibration (`python benchmarks/bench_sbc.py`)"),
        (section_select_k, "select_k", "Choosing K, measured (`python benchmarks/bench_select_k.py`)"),
    ):
        body, h = section(_load(results_dir, name))
        if body:
            sections += [f"## {title}", "", body, ""]
            headline += h
    lat = _load(results_dir, "latency")
    if lat:
        sections += ["## Time to a first result (compilation included)", "", latency_table(lat), ""]
        headline += [
            f"first fit_em in a fresh process: {lat['cold']['first_fit_s']:.1f} s with an empty cache, "
            f"{lat['warm']['first_fit_s']:.1f} s with a filled one; SciPy BFGS {lat['bfgs']['fit_s']:.2f} s "
            "(`python benchmarks/bench_latency.py`)"
        ]
    parts += ["", "## Headline figures", ""] + [f"- {h}" for h in headline] + [""] + sections
    path.write_text("\n".join(parts).rstrip() + "\n")
    print(f"\nwrote {path}")


def section_sbc(res) -> tuple[str, list[str]]:
    """SBC of NUTS, SVI and Laplace (bench_sbc.py): per configuration, uniformity and the worst scalar."""
    rows = (res or {}).get("rows") or []
    if not rows:
        return "", []
    d = res.get("design", {})
    lines = [
        f"Prior SBC on a fixed design (softmax mixture: p = {d.get('p')} items, L = {d.get('L')}; latent-class logit: "
        "100 persons x 4 situations x 3 alternatives, prior sd 1): parameters from the model's prior, data simulated "
        f"from them, fitted with the same prior; each true scalar ranked among {d.get('num_ranks')} thinned draws. "
        f"Uniform = every scalar's chi-square test ({d.get('bins')} bins) has a Bonferroni-corrected p >= "
        f"{d.get('alpha')}. sd ratio = the fit's posterior sd over the true posterior's implied by the 90 % "
        "intervals' coverage (1: calibrated; < 1: intervals too narrow); failures = replications whose fit could "
        "not run (Laplace at a singular Hessian), excluded from the ranks. Times on the shared 2-core CPU, several "
        "configurations at once: `python benchmarks/bench_sbc.py --parts nuts` reruns the 400-replication runs "
        "(chunks of 50, resumable), `--parts broken`, `--parts approx` the others.",
        "",
        "| configuration | method | K | N | replications | failures | uniform | min p (Bonf.) | coverage 90 % "
        "(min–max) | sd ratio (min–max) | s / replication | wall s | figure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = [s["coverage_90"] for s in r["scalars"]]
        sd = [s["sd_ratio"] for s in r["scalars"]]
        lines.append(
            f"| {r['name']} | {r['method']} ({r['labels']}) | {r['K']} | {_f(r.get('N'), '{:,}')} | "
            f"{r['n_simulations']} | {r['failures']} | {'yes' if r['all_uniform'] else '**no**'} | "
            f"{r['min_p_bonferroni']:.2g} | {min(cov):.2f}–{max(cov):.2f} | {min(sd):.2f}–{max(sd):.2f} | "
            f"{r['seconds_per_replication']:.2f} | {r['wall_s']:.0f} | `results/{r.get('plot', '')}` |"
        )
    if res.get("plot_by_n"):
        lines += ["", f"![SBC of the approximations against N](results/{res['plot_by_n']})"]
    nuts = [r for r in rows if r["method"] == "nuts"]
    head = []
    if nuts:
        ok = sum(r["all_uniform"] for r in nuts)
        sizes = ", ".join(f"{r['name']}: {r['n_simulations']}" for r in nuts)
        head.append(
            f"SBC: NUTS uniform in {ok} of {len(nuts)} configurations (replications {sizes}) "
            "(`python benchmarks/bench_sbc.py`)"
        )
    return "\n".join(lines), head


def section_select_k(res) -> tuple[str, list[str]]:
    """How often each criterion picks K_true (bench_select_k.py)."""
    summary = (res or {}).get("summary") or []
    if not summary:
        return "", []
    crit = res.get("criteria", ["loo_nuts", "loo_1se", "waic", "loo_laplace", "bic", "aic"])
    lines = [
        "Share of simulated data sets in which each criterion picked the true K (candidates K = 1 .. max(3, K_true + 2)). "
        "loo_nuts: "
        "count-weighted PSIS-LOO from NUTS; loo_1se: the smallest K within 2 dse of LOO's best; waic: from NUTS; "
        "loo_laplace: PSIS-LOO from the Laplace posterior; bic/aic: from the maximum likelihood fit. "
        "LOO uncertain = a smaller K within 2 dse of LOO's best.",
        "",
        "| design | N | K_true | data sets | " + " | ".join(crit) + " | LOO uncertain |",
        "|---|---|---|---|" + "---|" * len(crit) + "---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['design']} | {r['N']:,} | {r['K_true']} | {r['n']} | "
            + " | ".join(f"{r[c]:.2f}" for c in crit)
            + f" | {r['loo_uncertain']:.2f} |"
        )
    if res.get("plot"):
        lines += ["", f"![K selection](results/{res['plot']})"]
    overall = {c: sum(r[c] * r["n"] for r in summary) / max(1, sum(r["n"] for r in summary)) for c in crit}
    head = [
        "choosing K (share picking K_true over all cells): "
        + ", ".join(f"{c} {overall[c]:.2f}" for c in crit)
        + " (`python benchmarks/bench_select_k.py`)"
    ]
    return "\n".join(lines), head


def section_map(res) -> tuple[str, list[str]]:
    """MAP fits on real designs (bench_map.py): the log posterior against the labelled MAP polished."""
    rows = (res or {}).get("rows") or []
    if not rows:
        return "", []
    lines = [
        '`fit_em(init="auto", prior=smm.Prior())` against the oracle: the labelled MAP (one MAP MNL per class) '
        "polished by MAP-EM and by SciPy L-BFGS-B on the exact log posterior, the better of the two; the maximum "
        "likelihood fit of the same data beside it (`python benchmarks/bench_map.py`).",
        "",
        "| case | K | p | L | N | log posterior (oracle) | gap | converged | iterations | wall s | labelled s | ratio "
        "| MLE stop | MLE s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        star = "*" if r.get("first_call") else ""
        lines.append(
            f"| {r['case']} | {r['K']} | {r['p']:,} | {r['L']} | {r['N']:,} | {r['lp_oracle']:,.1f} | {r['gap']:+.1f} "
            f"| {r['converged']} | {r['n_iter']} | {r['wall_auto_s']:.1f}{star} | {r['labelled_s']:.1f} "
            f"| {r['ratio']:.1f} | {r['mle_stop_reason']} | {r['wall_mle_s']:.1f} |"
        )
    lines += [
        "",
        "gap = log posterior of `auto` minus the oracle's (target >= -1); ratio = wall time over the labelled MAP "
        "MNL fits (target <= 10); * compilation included (the first fit of its shape in the process).",
    ]
    worst = min(rows, key=lambda r: r["gap"])
    head = [
        f"MAP on real designs: worst gap to the labelled MAP polished {worst['gap']:+.1f} ({worst['case']}); "
        "(`python benchmarks/bench_map.py`)"
    ]
    return "\n".join(lines), head


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--smoke", action="store_true", help="every script's --smoke mode (results in benchmarks/_peers/smoke)"
    )
    ap.add_argument("--only", nargs="+", choices=[s[0] for s in STEPS], help="run only these steps")
    ap.add_argument("--skip", nargs="+", default=[], choices=[s[0] for s in STEPS])
    ap.add_argument("--report-only", action="store_true", help="only rebuild RESULTS.md from the saved results")
    ap.add_argument(
        "--results-dir",
        default=None,
        help="where results go and RESULTS.md is written (default: benchmarks/results and benchmarks/)",
    )
    args = ap.parse_args(argv)
    if args.results_dir:
        results_dir = Path(args.results_dir).resolve()
        report = results_dir / "RESULTS.md"
    else:
        results_dir = _common.SMOKE_RESULTS if args.smoke else _common.RESULTS
        report = results_dir / "RESULTS.md" if args.smoke else _common.HERE / "RESULTS.md"
    results_dir.mkdir(parents=True, exist_ok=True)
    runs_file = results_dir / "runs.json"
    t0 = time.perf_counter()
    runs = []
    if not args.report_only:
        for name, script, timeout in STEPS:
            if (args.only and name not in args.only) or name in args.skip:
                continue
            runs.append(
                run_step(name, script, timeout if not args.smoke else 300, args.smoke, results_dir, _common.LOGS)
            )
        previous = json.loads(runs_file.read_text()) if runs_file.exists() and args.only else []
        merged = {r["name"]: r for r in previous}
        merged.update({r["name"]: r for r in runs})
        runs = [merged[s[0]] for s in STEPS if s[0] in merged]
        runs_file.write_text(json.dumps(runs, indent=2) + "\n")
    elif runs_file.exists():
        runs = json.loads(runs_file.read_text())
    total = sum(r.get("wall_s", 0) for r in runs) or (time.perf_counter() - t0)
    write_report(results_dir, runs, args.smoke, total, report)
    failed = [r["name"] for r in runs if r["status"] not in ("ok", "missing")]
    if failed:
        print("failed steps:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
