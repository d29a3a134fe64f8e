"""What ``bench_real.py`` and ``bench_map.py`` import from before the harness: names of :mod:`harness`.

Those two scripts keep their own command line; everything here lives in ``harness.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import ROOT, SMOKE_RESULTS, environment, result_path
from harness import save_json as _save_json

__all__ = ["ROOT", "SMOKE_RESULTS", "environment", "result_path", "save_json"]


def save_json(result: dict, name: str, out: str | os.PathLike | None = None) -> Path:
    """Write ``result`` to ``out``, else to ``benchmarks/results/<name>.json``."""
    return _save_json(result, result_path(name, False, out))
