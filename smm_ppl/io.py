"""Reading data files and saving fitted results.

Data: ``.npy`` (one array), ``.npz`` (arrays by name: ``features`` and
``counts`` or ``draws``) and ``.csv`` (numbers, comma separated, an optional
header row).  Tables (long-format choice data): :func:`read_table` reads CSV
(also gzipped) or Parquet into a DataFrame.  Results: parameters, standard
errors and fit metadata as JSON; posterior DataTrees as netCDF through
:mod:`smm_ppl.diagnostics`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .core.params import SMMParams
from .core.validation import check_features
from .data.arrays import SMMData, as_data, counts_from_draws

__all__ = ["load_array", "load_data", "read_table", "save_params", "load_params"]

_SUFFIXES = (".npy", ".npz", ".csv")


def _check_path(path: Any, name: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"{name} must be a file path (str or Path), got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{name}: no such file: {p}")
    if p.is_dir():
        raise ValueError(f"{name}: {p} is a directory, expected a .npy, .npz or .csv file.")
    if p.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"{name}: unsupported file type {p.suffix!r} for {p}; use .npy, .npz or .csv.")
    return p


def _read_csv(p: Path, name: str) -> np.ndarray:
    with open(p, newline="") as fh:
        first = fh.readline()
    try:
        [float(v) for v in first.strip().split(",") if v.strip()]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    try:
        arr = np.loadtxt(p, delimiter=",", skiprows=skip, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{name}: {p} is not a CSV of numbers ({err}).") from err
    if arr.size == 0:
        raise ValueError(f"{name}: {p} holds no data rows.")
    return arr[:, 0] if arr.shape[1] == 1 else arr


def load_array(path: Any, key: str | None = None, name: str = "path") -> np.ndarray:
    """Read one array from ``.npy``, ``.csv`` or (with ``key``) ``.npz``."""
    p = _check_path(path, name)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(p, name)
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        with np.load(p, allow_pickle=False) as z:
            if key is None:
                if len(z.files) != 1:
                    raise ValueError(f"{name}: {p} holds arrays {z.files}; say which one to use.")
                key = z.files[0]
            if key not in z.files:
                raise ValueError(f"{name}: {p} has no array {key!r} (it holds {z.files}).")
            return z[key]
    except (OSError, EOFError) as err:
        raise ValueError(f"{name}: could not read {p}: {err}") from err


def load_data(features: Any, counts: Any = None, draws: Any = None) -> SMMData:
    """Load and validate data files.

    Parameters
    ----------
    features : path
        ``.npy``/``.csv`` with the ``(p, L)`` feature matrix, or an ``.npz``
        holding ``features`` and ``counts`` (or ``draws``) together.
    counts : path, optional
        ``(p,)`` counts (``.npy``/``.csv``/``.npz`` with ``counts``).
    draws : path, optional
        Raw draws, one item index per observation, instead of counts.
    """
    fpath = _check_path(features, "features")
    if counts is not None and draws is not None:
        raise ValueError("give counts or draws, not both.")
    if fpath.suffix.lower() == ".npz":
        with np.load(fpath, allow_pickle=False) as z:
            if "features" not in z.files:
                raise ValueError(f"features: {fpath} has no array 'features' (it holds {z.files}).")
            X = check_features(z["features"])
            if counts is None and draws is None:
                if "counts" in z.files:
                    n = z["counts"]
                elif "draws" in z.files:
                    n = counts_from_draws(np.ravel(z["draws"]), X.shape[0])
                else:
                    raise ValueError(f"{fpath} has no 'counts' or 'draws' array; pass --counts or --draws.")
                return as_data(X, n)
    else:
        X = load_array(fpath, name="features")
    if counts is None and draws is None:
        raise ValueError("counts (or draws) are required: pass a counts file or an .npz holding both.")
    if counts is not None:
        n = load_array(counts, key="counts", name="counts")
    else:
        d = load_array(draws, key="draws", name="draws")
        X = check_features(X)
        n = counts_from_draws(np.ravel(d), X.shape[0])
    return as_data(X, n)


#: Table suffixes read by :func:`read_table` (lower case), and the reader of each.
_TABLE_SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Any, name: str = "data"):
    """Read a table (long-format choice data) into a pandas DataFrame.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.csv.gz`` (a header row of column names), or
        ``.parquet``/``.pq`` (needs pyarrow: ``pip install "smm-ppl[parquet]"``).
    name : str
        What the file is, for error messages.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        An unknown suffix, a directory, an unreadable or empty file, or a
        Parquet file without pyarrow installed.
    """
    import pandas as pd

    if not isinstance(path, (str, Path)):
        raise TypeError(f"{name} must be a file path (str or Path), got {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{name}: no such file: {p}")
    kinds = ", ".join(_TABLE_SUFFIXES)
    if p.is_dir():
        raise ValueError(f"{name}: {p} is a directory, expected a table file ({kinds}).")
    lower = p.name.lower()
    kind = next((k for suffix, k in _TABLE_SUFFIXES.items() if lower.endswith(suffix)), None)
    if kind is None:
        raise ValueError(f"{name}: unsupported file type {''.join(p.suffixes)!r} for {p}; use {kinds}.")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(
                f"{name}: reading Parquet ({p}) needs pyarrow, which is not installed; "
                'pip install "smm-ppl[parquet]" (or pip install pyarrow), or convert the file to CSV.'
            ) from None
    try:
        frame = pd.read_csv(p) if kind == "csv" else pd.read_parquet(p, engine="pyarrow")
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{name}: could not read {p} as {kind}: {err}") from err
    except Exception as err:  # pyarrow raises its own classes (ArrowInvalid, ArrowTypeError, ...)
        if type(err).__module__.startswith("pyarrow"):
            raise ValueError(f"{name}: could not read {p} as {kind}: {err}") from err
        raise
    if len(frame) == 0:
        raise ValueError(f"{name}: {p} holds no data rows.")
    return frame


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, SMMParams):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


def save_params(path: Any, params: SMMParams, standard_errors: SMMParams | None = None, **metadata: Any) -> Path:
    """Write parameters (and standard errors, metadata) to JSON; floats round-trip exactly."""
    if not isinstance(params, SMMParams):
        raise TypeError(f"params must be an SMMParams, got {type(params).__name__}.")
    doc = {"params": params.to_dict()}
    if standard_errors is not None:
        doc["standard_errors"] = SMMParams(*standard_errors).to_dict()
    doc["metadata"] = _to_jsonable(metadata)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2))
    return p


def load_params(path: Any) -> tuple[SMMParams, SMMParams | None, dict]:
    """Read what :func:`save_params` wrote: ``(params, standard_errors or None, metadata)``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"path: no such file: {p}")
    try:
        doc = json.loads(p.read_text())
        params = SMMParams.from_dict(doc["params"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"path: {p} is not a parameters file written by save_params ({err}).") from err
    se = SMMParams.from_dict(doc["standard_errors"]) if doc.get("standard_errors") else None
    return params, se, doc.get("metadata", {})
