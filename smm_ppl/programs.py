"""The package's main compiled programs, and how many shapes each has compiled in this process.

A new data shape outside its bucket, another ``K`` or ``L``, or another
variant compiles a program anew (seconds); everything else reuses it.
:func:`compiled_programs` lets a user, a benchmark or a test see that.
"""

from __future__ import annotations

from typing import Any

__all__ = ["register_program", "compiled_programs"]

_PROGRAMS: dict[str, Any] = {}


def register_program(name: str, jitted: Any) -> Any:
    """Record a ``jax.jit``-ed function under ``name``; returns it (usable as a decorator's result)."""
    _PROGRAMS[name] = jitted
    return jitted


def compiled_programs() -> dict[str, int]:
    """Number of compiled shapes of each registered program in this process (``{name: count}``)."""
    return {name: int(fn._cache_size()) for name, fn in _PROGRAMS.items()}
