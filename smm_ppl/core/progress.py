"""Progress lines for long work, under NumPyro's ``progress_bar`` convention.

``progress_bar=None`` (the default of :func:`smm_ppl.fit_em` and
:func:`smm_ppl.sample_nuts`) means on when standard error is a terminal and
off in logs, notebooks' captured output and tests; ``True``/``False`` force
it.  Lines go to standard error with the time since the call began, so that
a user sees what a long first call is doing (compiling, running starts,
iterating) and can tell compilation from work.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .validation import check_bool

__all__ = ["Progress", "check_progress_bar"]


def check_progress_bar(value: Any, name: str = "progress_bar") -> bool:
    """NumPyro's convention: a bool; ``None`` means on in a terminal, off in logs, notebooks and tests."""
    if value is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return check_bool(value, name)


class Progress:
    """Timestamped lines on standard error when enabled, nothing otherwise."""

    def __init__(self, enabled: bool, prefix: str):
        self.enabled = bool(enabled)
        self.prefix = prefix
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{self.prefix} {time.perf_counter() - self.t0:6.1f} s] {message}", file=sys.stderr, flush=True)
