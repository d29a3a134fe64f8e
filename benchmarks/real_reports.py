"""The RESULTS.md sections of ``bench_real.py`` and ``bench_map.py``, which run as scripts of their own.

Those two scripts predate the harness (their own command line and JSON, through ``_common``); ``run_all.py``
runs them as it runs the others and renders their JSON with these reports.
"""

from __future__ import annotations

import harness


def report_real(res) -> tuple[str, list[str]]:
    """Fits on the real vocabulary design against the polished labelled oracle."""
    if not res.get("rows"):
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
    table = harness.table(
        "case | K | oracle log-lik. | auto - oracle | converged (iterations) | auto wall s | labelled s | ratio",
        rows,
    )
    intro = (
        "MiniLM-L6 token embeddings (p = 30,522, L = 384), N = 200,000 (`python benchmarks/bench_real.py`; "
        "the oracle is the labelled MNLs polished by `fit_em` and by SciPy L-BFGS-B, the better; wall times "
        "include compilation)."
    )
    return intro + "\n\n" + table, []


def report_map(res) -> tuple[str, list[str]]:
    """MAP fits on real designs (bench_map.py): the log posterior against the labelled MAP polished."""
    rows = res.get("rows") or []
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
    winners = ", ".join(f"{r['case']} `{r['init']}`" for r in rows if r.get("init"))
    if winners:
        lines[-1] += (
            f" Winning starts: {winners}; `@annealed` marks a start taken along the path of priors, which a MAP "
            "fit on a design that fails the moment starts' Gaussian check runs (docs/math.md#multiple-starts)."
        )
    lines[-1] += (
        " MLE stop: `no_maximum` (a class ran off: seen as EM ran, a long atom growing at a steady pace while the "
        "gains shrank, or at the estimate; docs/math.md#no-maximum) or `tol`, in no more time than the MAP fit "
        "(target)."
    )
    no_stop = [r["case"] for r in rows if r["mle_stop_reason"] == "max_iter"]
    slower = [
        f"{r['case']} ({r['wall_mle_s']:.2f} s against {r['wall_auto_s']:.2f} s)"
        for r in rows
        if r["wall_mle_s"] > r["wall_auto_s"]
    ]
    if no_stop:
        lines[-1] += f" The MLE ran to `max_iter` without either on {', '.join(no_stop)}."
    if slower:
        lines[-1] += f" The MLE took longer than the MAP fit on {', '.join(slower)}."
    worst = min(rows, key=lambda r: r["gap"])
    head = [
        f"MAP on real designs: worst gap to the labelled MAP polished {worst['gap']:+.1f} ({worst['case']}); "
        "(`python benchmarks/bench_map.py`)"
    ]
    return "\n".join(lines), head


BENCHMARKS = (
    harness.Benchmark(
        name="real", measure=None, report=report_real, timeout=14400, script="bench_real.py", heading="## Real designs"
    ),
    harness.Benchmark(
        name="map",
        measure=None,
        report=report_map,
        timeout=7200,
        script="bench_map.py",
        heading="## The posterior mode on real designs",
    ),
)
