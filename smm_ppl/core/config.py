"""Process-wide numerical configuration.

Estimation in this package runs in float64: EM's monotonicity check, the
observed information and the latent moments all lose meaning in float32 at
the problem sizes the package targets.  JAX decides the default precision
once, globally, so importing :mod:`smm_ppl` turns on ``jax_enable_x64``
unless the environment variable ``SMM_PPL_ENABLE_X64`` is set to ``0``
*before* the import.  With x64 off the package still runs, in float32.
"""

from __future__ import annotations

import os
import tempfile

import jax


def _x64_requested() -> bool:
    return os.environ.get("SMM_PPL_ENABLE_X64", "1").strip().lower() not in {"0", "false", "no", "off"}


if _x64_requested():
    jax.config.update("jax_enable_x64", True)


# --------------------------------------------------------------------------- #
# JAX's persistent compilation cache
# --------------------------------------------------------------------------- #
#
# Compilation dominates a first fit (seconds, against milliseconds of compiled
# EM), and every new process (the CLI, a notebook kernel, a script) compiles
# again.  JAX can keep compiled programs on disk; smm-ppl turns that on in a
# per-user folder unless the user chose otherwise.  ``SMM_PPL_COMPILATION_CACHE``:
# unset or ``1`` for the default folder, ``0`` to leave it off, or a path.  A
# cache folder JAX already has (``jax_compilation_cache_dir``) is kept.  A
# folder that cannot be created or written to is skipped; a write that fails
# later (the disk filled up) is JAX's warning, never an error: that program is
# compiled again next time.

_OFF = {"0", "false", "no", "off"}
_ON = {"", "1", "true", "yes", "on"}
#: Cache every program: a fit runs dozens of small ones whose compile times add up
#: (a warm first fit_em at p = 1,000: 1.7 s with 0, 4.0 s with a 0.3 s threshold, 9 s cold).
CACHE_MIN_COMPILE_SECONDS = 0.0


def compilation_cache_dir() -> str | None:
    """The folder smm-ppl asks JAX to cache compiled programs in, or ``None`` when turned off."""
    value = os.environ.get("SMM_PPL_COMPILATION_CACHE", "").strip()
    if value.lower() in _OFF:
        return None
    if value.lower() not in _ON:
        return os.path.expanduser(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "smm-ppl", "jax-compilation-cache")


def _enable_compilation_cache() -> str | None:
    if jax.config.jax_compilation_cache_dir:  # the user's own choice wins
        return jax.config.jax_compilation_cache_dir
    path = compilation_cache_dir()
    if path is None:
        return None
    try:  # a folder that cannot be created or written to (read-only, full) is skipped
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    return path


COMPILATION_CACHE = _enable_compilation_cache()
