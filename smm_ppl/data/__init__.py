"""Layer 2, the data: validated arrays, the one whitening, the likelihood over a layout, simulated designs,
and the prepared data every fit runs on (``docs/architecture.md``).
"""

from .arrays import SMMData, as_data, counts_from_draws

__all__ = ["SMMData", "as_data", "counts_from_draws"]
