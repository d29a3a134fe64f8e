"""Shared plumbing for the benchmark scripts: paths, timing, environment, JSON output.

Every script imports this first; it puts the repository root on ``sys.path`` so
the scripts run from a checkout without installing the package.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
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


def best_time(fn, repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls, blocking on JAX results."""
    import jax

    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def timed(fn):
    """``(result, seconds)`` of one call, blocking on JAX results."""
    import jax

    t0 = time.perf_counter()
    out = fn()
    for leaf in jax.tree_util.tree_leaves(out):
        if isinstance(leaf, jax.Array):
            leaf.block_until_ready()
    return out, time.perf_counter() - t0


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


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, os.PathLike):  # e.g. an --out argument in vars(args)
        return os.fspath(obj)
    if isinstance(obj, (np.floating,)):
        obj = float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def result_path(name: str, smoke: bool, out: str | os.PathLike | None = None) -> Path:
    """``out`` if given, else ``benchmarks/results/<name>.json`` (smoke: the git-ignored scratch folder)."""
    if out:
        return Path(out)
    return (SMOKE_RESULTS if smoke else RESULTS) / f"{name}.json"


def save_json(result: dict, name: str, out: str | os.PathLike | None = None) -> Path:
    """Write ``result`` to ``benchmarks/results/<name>.json`` (or ``out``) and return the path."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    print(f"  saved {path}")
    return path


def save_figure(fig, folder: str | os.PathLike, name: str) -> str:
    """Write a matplotlib figure to ``folder/name`` (80 dpi), close it, and return ``name``."""
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(folder) / name, dpi=80)
    plt.close(fig)
    return name
