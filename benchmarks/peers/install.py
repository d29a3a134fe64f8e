"""Install the peer tools into their own environments (never into the project's).

* lcl-choice and biogeme: each in its own virtual environment under
  ``benchmarks/_peers/`` (git-ignored), from PyPI with pip. Separate
  environments because their pinned dependencies differ (pandas 3 vs 2).
* flexmix: R and the Debian packages ``r-base-core r-cran-flexmix
  r-cran-survival`` through apt-get (``FLXMRcondlogit`` fits each component
  with ``survival::coxph.fit``, and survival is only a suggestion of flexmix).

Every function returns a dict with ``status`` ("installed", "already installed"
or "not installable"), ``reason`` when it failed, ``version`` and the command it ran,
so that the benchmark can report a peer that could not be installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parents[1] / "_peers"
R_PACKAGES = ["r-base-core", "r-cran-flexmix", "r-cran-survival"]


def _run(cmd, timeout, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _tail(text: str, n: int = 600) -> str:
    text = (text or "").strip()
    return text[-n:]


def ensure_pip_package(package: str, venv_name: str, import_name: str, *, timeout: int = 1200) -> dict:
    """A virtual environment ``_peers/<venv_name>`` with ``package`` installed; returns its python."""
    venv = PEERS_DIR / venv_name
    py = venv / "bin" / "python"
    info = {"peer": package, "env": str(venv), "python": str(py)}
    check = [str(py), "-c", f"import importlib.metadata as m; import {import_name}; print(m.version('{package}'))"]
    if py.exists():
        r = _run(check, 300)
        if r.returncode == 0:
            return {**info, "status": "already installed", "version": r.stdout.strip().splitlines()[-1]}
    t0 = time.perf_counter()
    cmds = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(py), "-m", "pip", "install", "--quiet", package],
    ]
    info["command"] = " && ".join(" ".join(c) for c in cmds)
    try:
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        for c in cmds:
            r = _run(c, timeout)
            if r.returncode != 0:
                return {
                    **info,
                    "status": "not installable",
                    "reason": f"`{' '.join(c)}` failed (exit {r.returncode}): {_tail(r.stderr or r.stdout)}",
                }
        r = _run(check, 600)
        if r.returncode != 0:
            return {**info, "status": "not installable", "reason": f"installed but import failed: {_tail(r.stderr)}"}
    except subprocess.TimeoutExpired as err:
        return {**info, "status": "not installable", "reason": f"timed out after {err.timeout} s: {err.cmd}"}
    except OSError as err:
        return {**info, "status": "not installable", "reason": f"{type(err).__name__}: {err}"}
    return {
        **info,
        "status": "installed",
        "version": r.stdout.strip().splitlines()[-1],
        "install_s": time.perf_counter() - t0,
    }


def ensure_lcl() -> dict:
    return ensure_pip_package("lcl-choice", "venv-lcl", "lcl")


def ensure_biogeme() -> dict:
    return ensure_pip_package("biogeme", "venv-biogeme", "biogeme")


def r_check() -> subprocess.CompletedProcess | None:
    """``Rscript`` loading flexmix and printing its and R's versions; ``None`` when there is no R."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    return _run(
        [
            rscript,
            "-e",
            "suppressPackageStartupMessages({library(flexmix); library(survival)}); "
            'cat(as.character(packageVersion("flexmix")), R.version$major, R.version$minor)',
        ],
        120,
    )


def ensure_flexmix(*, timeout: int = 1500) -> dict:
    """R with flexmix and survival; installs the Debian packages when missing (needs root and apt-get)."""
    info = {"peer": "flexmix", "command": "apt-get install -y --no-install-recommends " + " ".join(R_PACKAGES)}
    r = r_check()
    if r is not None and r.returncode == 0:
        v = r.stdout.split()
        return {
            **info,
            "status": "already installed",
            "version": v[0],
            "R": ".".join(v[1:3]),
            "rscript": shutil.which("Rscript"),
        }
    apt = shutil.which("apt-get")
    if apt is None:
        return {**info, "status": "not installable", "reason": "Rscript/flexmix missing and no apt-get on this machine"}
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return {
            **info,
            "status": "not installable",
            "reason": "Rscript/flexmix missing and not root (apt-get needs root)",
        }
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    t0 = time.perf_counter()
    try:
        r = _run([apt, "install", "-y", "--no-install-recommends", *R_PACKAGES], timeout, env=env)
        if r.returncode != 0:  # perhaps stale package lists: update once and retry
            _run([apt, "update"], 600, env=env)
            r = _run([apt, "install", "-y", "--no-install-recommends", *R_PACKAGES], timeout, env=env)
        if r.returncode != 0:
            return {**info, "status": "not installable", "reason": f"apt-get failed: {_tail(r.stderr or r.stdout)}"}
    except subprocess.TimeoutExpired as err:
        return {**info, "status": "not installable", "reason": f"apt-get timed out after {err.timeout} s"}
    r = r_check()
    if r is None or r.returncode != 0:
        return {
            **info,
            "status": "not installable",
            "reason": "after apt-get, flexmix/survival do not load: " + _tail(r.stderr if r else "no Rscript"),
        }
    v = r.stdout.split()
    return {
        **info,
        "status": "installed",
        "version": v[0],
        "R": ".".join(v[1:3]),
        "rscript": shutil.which("Rscript"),
        "install_s": time.perf_counter() - t0,
    }
