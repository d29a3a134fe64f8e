"""Warm starts for EM and MCMC (docs/math.md#latent-moments, docs/math.md#warm-starts).

One module per idea:

- :mod:`.moments` — Hermite latent moments as weighted sums over items (``O(pL)``).
- :mod:`.subspace` — :func:`estimate_subspace`, the top-``K`` eigenvectors of ``M2``.
- :mod:`.mom` — :func:`mom_init`, the paper's method of moments (small ``K``).
- :mod:`.tensor` — :func:`tensor_init`, the third-moment (Jennrich) warm start.
- :mod:`.random_starts` — :func:`subspace_random_inits`, random starts in the subspace.

Every warm start returns parameters in the user's original coordinates and
accepts ``return_diagnostics=True`` to also get a :class:`WarmStartDiagnostics`.
"""

from .design import GaussianityCheck, check_gaussian_design
from .mom import mom_init
from .moments import LatentMoments, directional_moments, latent_moments
from .random_starts import subspace_random_inits
from .report import WarmStartDiagnostics, effective_items
from .subspace import estimate_subspace
from .tensor import tensor_init

__all__ = [
    "WarmStartDiagnostics",
    "LatentMoments",
    "estimate_subspace",
    "mom_init",
    "tensor_init",
    "subspace_random_inits",
    "latent_moments",
    "directional_moments",
    "effective_items",
    "GaussianityCheck",
    "check_gaussian_design",
]
