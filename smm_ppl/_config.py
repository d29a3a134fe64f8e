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

import jax


def _x64_requested() -> bool:
    return os.environ.get("SMM_PPL_ENABLE_X64", "1").strip().lower() not in {"0", "false", "no", "off"}


if _x64_requested():
    jax.config.update("jax_enable_x64", True)
