"""Run the benchmarks, each in its own process, and write ``benchmarks/RESULTS.md`` from their JSON.

Usage::

    python benchmarks/run_all.py                       # everything (hours on 2 CPU cores: sbc, select_k, real)
    python benchmarks/run_all.py --only accuracy peers # some of the steps
    python benchmarks/run_all.py --smoke               # every benchmark's --smoke mode, minutes
    python benchmarks/run_all.py --report-only         # rebuild RESULTS.md from benchmarks/results/*.json

A step is a benchmark (``benchmarks/bench_<name>.py``, see ``harness.py``) run
as a script in its own process group, ``--smoke`` passed through, under its
``timeout``; its output goes to a log. A benchmark that cannot be imported is
reported as such; one that fails does not stop the others. ``RESULTS.md`` is
each benchmark's ``report`` of its JSON, in the order of :data:`STEPS`, and
the headline figures they give. Results: ``benchmarks/results/<name>.json``
and PNG plots there; logs in ``benchmarks/_peers/logs`` (git-ignored). A smoke
run writes to ``benchmarks/_peers/smoke`` (git-ignored) and never touches the
committed results.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

#: The modules whose ``BENCHMARK`` (or ``BENCHMARKS``) are the steps, in the order they run and RESULTS.md shows them.
STEPS = (
    "bench_em_scaling bench_em bench_peers bench_nuts bench_bayes bench_accuracy bench_warmstart bench_memory "
    "bench_defaults real_reports bench_choice bench_scale bench_sbc bench_select_k bench_latency"
).split()
COMMAND = "python benchmarks/run_all.py"
SMOKE_TIMEOUT = 300


def benchmarks() -> tuple[dict[str, harness.Benchmark], dict[str, str]]:
    """The benchmarks by name, in the order they run, and the modules that could not be imported (why)."""
    found, broken = {}, {}
    for module in STEPS:
        try:
            mod = importlib.import_module(module)
        except Exception as err:  # reported as the step's status; the others still run
            broken[module] = f"{type(err).__name__}: {err}"
            continue
        for bench in getattr(mod, "BENCHMARKS", None) or (mod.BENCHMARK,):
            found[bench.name] = bench
    return found, broken


def run_step(bench: harness.Benchmark, smoke: bool, results_dir: Path, logs: Path) -> dict:
    name, script = bench.name, bench.script_name
    timeout = SMOKE_TIMEOUT if smoke else bench.timeout
    cmd = [sys.executable, str(harness.HERE / script)]
    if smoke:
        cmd.append("--smoke")
    if smoke or results_dir != harness.RESULTS:
        cmd += ["--out", str(results_dir / f"{name}.json")]
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
            cwd=harness.ROOT,
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
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=harness.ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "smm_ppl"],
            capture_output=True,
            text=True,
            cwd=harness.ROOT,
        ).stdout.strip()
        return head + (" + local changes to smm_ppl" if dirty else "") if head else "?"
    except OSError:
        return "?"


# --------------------------------------------------------------------------- #
# RESULTS.md
# --------------------------------------------------------------------------- #


def write_report(
    benches: dict, results_dir: Path, runs: list[dict], smoke: bool, total_s: float | None, path: Path
) -> None:
    """RESULTS.md: the run's header and table of steps, the headline figures, then every benchmark's section."""
    results = {name: harness.load_json(results_dir / f"{name}.json") for name in benches}
    env = next((d["environment"] for d in results.values() if d and "environment" in d), None)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=harness.ROOT
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
            f"{harness.fmt(env.get('load_average_1min'), '{:.1f}')} (the machine was shared: timings are "
            "indicative, ratios are taken within one run)."
        ]
    if smoke:
        parts += ["", "**Smoke run: tiny sizes, the numbers mean nothing.**"]
    if runs:
        parts += [
            "",
            harness.table(
                "step | script | status | wall s | code (commit) | finished",
                [
                    [
                        r["name"],
                        r["script"],
                        r["status"],
                        harness.fmt(r.get("wall_s"), "{:.0f}"),
                        f"`{r.get('commit', '?')}`",
                        r.get("finished", "–"),
                    ]
                    for r in runs
                ],
            ),
        ]
    sections, headline = [], []
    for name, bench in benches.items():
        body, heads = bench.section(results[name])
        if body:
            sections += [body, ""]
        headline += heads
    parts += ["", "## Headline figures", ""] + [f"- {h}" for h in headline] + [""] + sections
    path.write_text("\n".join(parts).rstrip() + "\n")
    print(f"\nwrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--smoke", action="store_true", help="every script's --smoke mode (results in benchmarks/_peers/smoke)"
    )
    ap.add_argument("--only", nargs="+", help="run only these steps (by name: em_scaling, em, peers, ...)")
    ap.add_argument("--skip", nargs="+", default=[])
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
        results_dir = harness.SMOKE_RESULTS if args.smoke else harness.RESULTS
        report = results_dir / "RESULTS.md" if args.smoke else harness.HERE / "RESULTS.md"
    results_dir.mkdir(parents=True, exist_ok=True)
    runs_file = results_dir / "runs.json"
    t0 = time.perf_counter()
    benches, broken = benchmarks()
    unknown = (set(args.only or []) | set(args.skip)) - set(benches)
    if unknown:
        ap.error(f"unknown steps {sorted(unknown)}; the steps: {', '.join(benches)}")
    runs = []
    if not args.report_only:
        runs = [{"name": m, "script": f"{m}.py", "status": f"not importable ({why})"} for m, why in broken.items()]
        for name, bench in benches.items():
            if (args.only and name not in args.only) or name in args.skip:
                continue
            runs.append(run_step(bench, args.smoke, results_dir, harness.LOGS))
        previous = json.loads(runs_file.read_text()) if runs_file.exists() and args.only else []
        merged = {r["name"]: r for r in previous}
        merged.update({r["name"]: r for r in runs})
        runs = [merged[n] for n in benches if n in merged] + [r for n, r in merged.items() if n not in benches]
        runs_file.write_text(json.dumps(runs, indent=2) + "\n")
    elif runs_file.exists():
        runs = json.loads(runs_file.read_text())
    total = sum(r.get("wall_s", 0) for r in runs) or (time.perf_counter() - t0)
    write_report(benches, results_dir, runs, args.smoke, total, report)
    failed = [r["name"] for r in runs if r["status"] != "ok"]
    if failed:
        print("failed steps:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
