"""Layer 1, the basics: input checks, parameters, the prior, configuration, the whitening and the compiled programs.

Nothing here knows how observations are arranged; every other layer builds on these modules
(``docs/architecture.md``).  Importing any of them turns on float64 first (:mod:`smm_ppl.core.config`).
"""

from . import config  # noqa: F401  (must run before any JAX array is created)
