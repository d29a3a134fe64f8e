"""The benchmark harness: what every benchmark shares, so that a benchmark is its measurement.

A benchmark is a module ``benchmarks/bench_<name>.py`` with two functions,

* ``measure(args) -> dict``: the measurement, a JSON-able result; ``args``
  holds ``args.smoke``, ``args.out`` (the JSON file) and the benchmark's own
  options;
* ``report(result) -> (markdown, headlines)``: its section of
  ``benchmarks/RESULTS.md`` (under the benchmark's ``heading``) and its lines
  among the headline figures, from the saved JSON alone (an empty section is
  left out),

registered with the harness::

    BENCHMARK = harness.Benchmark(
        name="em",  # benchmarks/results/em.json
        measure=measure,
        report=report,
        options=(harness.option("--p", type=int, default=200_000),),
        smoke={"p": 20_000},  # what --smoke sets
        timeout=900,  # seconds run_all.py gives a full run
        heading="## The EM iteration",
    )

    if __name__ == "__main__":
        harness.main(BENCHMARK)

The harness owns the command line (``--smoke``, ``--out`` and the declared
options; the module's docstring is its help), the timers, running a function
in a fresh Python process and a peer's script in its own interpreter, the
environment record, the JSON (written when ``measure`` returns, and by
``save_json`` after every case of a long run) and printing the report. ``run_all.py`` runs each benchmark in its own process
and builds ``RESULTS.md`` from each one's ``report``.

It puts the repository root on ``sys.path``, so that the benchmarks run from a
checkout without installing the package. Nothing heavy is imported here:
JAX and NumPy only inside the functions that need them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PEERS_DIR = HERE / "_peers"  # git-ignored: peer virtual environments and scratch data
SMOKE_RESULTS = PEERS_DIR / "smoke"  # smoke runs write here, never over the committed results
LOGS = PEERS_DIR / "logs"
PEER_SCRIPTS = HERE / "peers"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- #
# A benchmark and its command line
# --------------------------------------------------------------------------- #


def option(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    """A benchmark's own command-line option: ``argparse.add_argument``'s arguments."""
    return flags, kwargs


@dataclass(frozen=True)
class Benchmark:
    """A measurement and its report, with what the harness needs to run it (see the module docstring)."""

    name: str
    measure: Callable[[argparse.Namespace], dict | None] | None  # None: a script of its own (``script``)
    report: Callable[[dict], tuple[str, list[str]]]
    options: tuple = ()
    smoke: dict = field(default_factory=dict)
    timeout: float = 1800.0
    #: False where a result records a failed case (the script then exits with 1).
    succeeded: Callable[[dict], bool] = lambda result: True
    #: Whether the harness adds ``environment`` (the machine and library versions) to the result.
    environment: bool = True
    #: What RESULTS.md puts above the report (Markdown: a heading, or a line under the previous section's).
    heading: str = ""
    #: Whether RESULTS.md shows the section, saying so, where there is no result (else it leaves it out).
    required: bool = False
    #: Whether the report of a smoke run is the table of its fields (else ``report`` renders it).
    smoke_fields: bool = False
    #: The script, where it is not the file that defines ``measure``.
    script: str | None = None

    @property
    def script_name(self) -> str:
        return self.script or Path(inspect.getfile(self.measure)).name

    def section(self, result: dict | None) -> tuple[str, list[str]]:
        """The heading and the report of ``result`` (nothing where the report is empty), and its headlines."""
        if not result:
            missing = f"_No result (run `python benchmarks/{self.script_name}`)._"
            body, headlines = (missing if self.required else ""), []
        elif result.get("smoke") and self.smoke_fields:
            body, headlines = fields_table(result), []
        else:
            body, headlines = self.report(result)
        body = f"{self.heading}\n\n{body}" if body and self.heading else body
        return body, [h for h in headlines if h]


def parse(benchmark: Benchmark, argv: list[str] | None = None) -> argparse.Namespace:
    """The options: the shared ones, the benchmark's, ``--smoke``'s settings over them; ``out`` resolved."""
    doc = sys.modules[benchmark.measure.__module__].__doc__
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in benchmark.smoke.items())
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, seconds to minutes; the JSON goes to benchmarks/_peers/smoke"
        + (f" ({sizes})" if sizes else ""),
    )
    ap.add_argument(
        "--out", type=Path, default=None, help=f"the JSON file (default benchmarks/results/{benchmark.name}.json)"
    )
    for flags, kwargs in benchmark.options:
        ap.add_argument(*flags, **kwargs)
    args = ap.parse_args(argv)
    if args.smoke:
        for key, value in benchmark.smoke.items():
            setattr(args, key, value)
    args.out = result_path(benchmark.name, args.smoke, args.out)
    return args


def run(benchmark: Benchmark, argv: list[str] | None = None) -> dict | None:
    """Parse ``argv``, measure, save the JSON (with the environment), print the report; the result."""
    args = parse(benchmark, argv)
    result = benchmark.measure(args)
    if result is None:
        return None
    if benchmark.environment:
        result.setdefault("environment", environment())
    save_json(result, args.out)
    body, headlines = benchmark.section(result)
    print("\n" + "\n".join([body, ""] + [f"- {h}" for h in headlines]).strip())
    return result


def main(benchmark: Benchmark, argv: list[str] | None = None) -> None:
    """:func:`run` from the command line: exit status 1 where the result records a failure."""
    result = run(benchmark, argv)
    sys.exit(0 if result is None or benchmark.succeeded(result) else 1)


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #


def timed(fn: Callable, *args, **kwargs):
    """``(result, seconds)`` of one call ``fn(*args, **kwargs)``, waiting for the JAX arrays in its result."""
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - t0


def best_time(fn: Callable, repeats: int) -> float:
    """The shortest wall time of ``fn()`` over ``repeats`` calls (the least disturbed on a shared machine)."""
    return min(timed(fn)[1] for _ in range(max(1, repeats)))


def twice(fn: Callable, *args, **kwargs):
    """``(first, second, first_s, compiled_s)``: two identical calls ``fn(*args, **kwargs)``, the first with its
    compilation, the second compiled; their results and wall times."""
    first, first_s = timed(fn, *args, **kwargs)
    second, compiled_s = timed(fn, *args, **kwargs)
    return first, second, first_s, compiled_s


def long_and_short(run: Callable[[int], object], n_long: int, repeats: int) -> tuple[float, float, int]:
    """``(t_long, t_short, n_short)``: the best times of ``run(n_long)`` and ``run(n_short)``, ``n_short = n_long //
    4``, over ``repeats`` interleaved rounds, both compiled first. ``(t_long - t_short) / (n_long - n_short)`` is
    one iteration's time, the fixed costs (the start, the transfer of the result) cancelled."""
    n_short = max(1, n_long // 4)
    timed(run, n_short)
    timed(run, n_long)
    t_long = t_short = math.inf
    for _ in range(max(1, repeats)):
        t_long = min(t_long, timed(run, n_long)[1])
        t_short = min(t_short, timed(run, n_short)[1])
    return t_long, t_short, n_short


# --------------------------------------------------------------------------- #
# A fresh process
# --------------------------------------------------------------------------- #


class ProcessFailed(RuntimeError):
    """A fresh process that exited with an error or gave no result; ``stderr`` is the end of its output."""

    def __init__(self, returncode, stderr: str):
        super().__init__(f"the process failed ({returncode}):\n{stderr}")
        self.stderr = stderr


_CHILD = """\
import json, sys
sys.path[:0] = {paths!r}
import harness
fn = getattr(__import__({module!r}), {name!r})
print("RESULT " + json.dumps(harness.jsonable(fn(*json.loads(sys.argv[1])))))
"""


def run_script(cmd: list[str], out: str | os.PathLike, timeout: float) -> dict:
    """Run a peer's script (its own interpreter, R) that writes its result to ``out``: ``{"status": "ok",
    "wall_s": ...}``, else ``"timeout"`` or ``"failed"`` with the ``reason`` (the end of its output)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall_s": time.perf_counter() - t0, "reason": f"no result within {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not Path(out).exists():
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        return {"status": "failed", "wall_s": wall, "reason": " | ".join(lines[-4:])[-600:]}
    return {"status": "ok", "wall_s": wall}


def in_fresh_process(fn: Callable, *args, env: dict | None = None, timeout: float = 1800) -> tuple[dict, float]:
    """``(fn(*args), seconds)`` with ``fn`` run in a new Python interpreter: a compilation, an import or a peak
    memory of its own. ``fn`` is a module-level function of a benchmark (it imports what it uses), its arguments
    and result JSON-able; ``env`` adds environment variables; ``seconds`` is the process's wall time.

    Raises :class:`ProcessFailed` (with the end of its standard error) where it fails or times out.
    """
    path = Path(inspect.getfile(fn))
    code = _CHILD.format(paths=[str(path.parent), str(HERE)], module=path.stem, name=fn.__name__)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(jsonable(list(args)))],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        raise ProcessFailed("timeout", f"no result within {timeout:.0f} s") from None
    seconds = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise ProcessFailed(proc.returncode, proc.stderr[-2000:])
    return json.loads(lines[-1].removeprefix("RESULT ")), seconds


# --------------------------------------------------------------------------- #
# The record: environment, JSON, figures
# --------------------------------------------------------------------------- #


def progress(label: str, row: dict, *keys: str) -> None:
    """One line of a run's progress: ``label`` and the fields ``keys`` of ``row`` (the report comes at the end)."""
    print(f"  {label}: " + ", ".join(f"{k} {fmt(row.get(k), '{:.4g}')}" for k in keys), flush=True)


def environment() -> dict:
    """Machine and library versions, recorded with every result."""
    import jax
    import numpy as np

    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "x64": bool(jax.config.jax_enable_x64),
    }
    try:
        env["load_average_1min"] = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        pass
    try:
        import numpyro

        env["numpyro"] = numpyro.__version__
    except Exception:  # pragma: no cover
        pass
    return env


def jsonable(obj):
    """``obj`` with NumPy scalars and arrays as Python values, paths as strings, and non-finite floats as
    ``None``/``"inf"``."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.floating):
        obj = float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def result_path(name: str, smoke: bool, out: str | os.PathLike | None = None) -> Path:
    """``out`` if given, else ``benchmarks/results/<name>.json`` (smoke: the git-ignored scratch folder)."""
    if out:
        return Path(out)
    return (SMOKE_RESULTS if smoke else RESULTS) / f"{name}.json"


def save_json(result: dict, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path`` (its folder made); a long run calls it after every case."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(result), indent=2) + "\n")
    print(f"  saved {path}", flush=True)
    return path


def load_json(path: str | os.PathLike) -> dict | None:
    """The result saved at ``path``, or ``None`` where there is none (or it is not JSON)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def save_figure(fig, folder: str | os.PathLike, name: str, dpi: int = 80) -> str:
    """Write a matplotlib figure to ``folder/name``, close it, and return ``name`` (for the JSON)."""
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(folder) / name, dpi=dpi)
    plt.close(fig)
    return name


# --------------------------------------------------------------------------- #
# Markdown for the reports
# --------------------------------------------------------------------------- #


def fmt(x, spec: str = "{:.3g}") -> str:
    """``spec.format(x)``; a dash for ``None`` and non-finite numbers, strings as they are."""
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    try:
        if isinstance(x, float) and not math.isfinite(x):
            return "–"
        return spec.format(x)
    except (TypeError, ValueError):
        return str(x)


def table(header: str | list[str], rows: list[list]) -> str:
    """A Markdown table; ``header`` its column names, or them in one string, ``"a | b | c"``."""
    header = header.split(" | ") if isinstance(header, str) else header
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fields_table(result: dict) -> str:
    """A flat table of a result's scalar fields (the report of a smoke run, or of a benchmark without its own)."""
    rows = []

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else k, x)
        elif isinstance(v, (int, float, str, bool)) and not (isinstance(v, str) and len(v) > 120):
            rows.append([prefix, fmt(v, "{:.4g}") if isinstance(v, float) else str(v)])
        elif isinstance(v, list) and len(v) <= 12 and all(isinstance(x, (int, float)) for x in v):
            rows.append([prefix, ", ".join(fmt(x, "{:.4g}") for x in v)])

    walk("", result)
    return table(["field", "value"], rows[:80])
