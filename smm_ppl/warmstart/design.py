"""The Gaussian-design warning of the latent-moment warm starts (docs/math.md#latent-moments, docs/math.md#moment-assumptions).

The check itself (:func:`check_gaussian_design`, :class:`GaussianityCheck`)
is a property of the whitened rows and lives with the whitening
(:mod:`smm_ppl.data.whitening`, layer 2), where :class:`smm_ppl.data.prepared.Prepared`
computes it once per fit; it is re-exported here.
"""

from __future__ import annotations

import warnings

from ..data.whitening import GaussianityCheck, check_gaussian_design

__all__ = ["GaussianityCheck", "check_gaussian_design", "warn_if_not_gaussian"]


def warn_if_not_gaussian(check: GaussianityCheck, method: str, stacklevel: int = 3) -> None:
    """Emit a ``UserWarning`` (never an error) when the design is far from Gaussian."""
    if check.ok:
        return
    warnings.warn(
        f"{method}: the whitened features look far from Gaussian (max |skewness| = {check.skewness:.2f}, "
        f"max |excess kurtosis| = {check.excess_kurtosis:.2f}). The latent-moment warm starts "
        "(estimate_subspace, mom_init, tensor_init, subspace_random_inits) rely on a Gaussian design "
        "and may land far from the truth; refine with EM from several starts "
        "(fit_em(..., n_starts=...)) and check the log-likelihood.",
        UserWarning,
        stacklevel=stacklevel,
    )
