"""The diagnostics record attached to every warm start."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..core.programs import jit_program, on_device
from ..layouts.items import log_component_probs as log_component_probs_jax

__all__ = ["WarmStartDiagnostics", "effective_items"]


@dataclass(frozen=True)
class WarmStartDiagnostics:
    """What a warm start tried and how far its assumptions held.

    Returned next to the parameters by ``estimate_subspace``, ``mom_init``,
    ``tensor_init`` and ``subspace_random_inits`` when called with
    ``return_diagnostics=True``.

    Attributes
    ----------
    method : str
        ``"subspace"``, ``"mom"``, ``"tensor"`` or ``"subspace_random"``.
    n_components : int
        ``K``.
    n_candidates : int
        Directions tried (MoM), contractions tried (tensor) or starts drawn.
    directions : ndarray (n_candidates, K) or None
        The random unit vectors, in the coordinates of the estimated subspace
        (``U``'s columns), that produced each candidate.
    candidate_log_likelihoods : ndarray (n_candidates,) or None
        Log-likelihood of each candidate (``-inf`` where a candidate degenerated).
    best_index : int or None
        Index of the candidate returned.
    log_likelihood : float or None
        Log-likelihood of the returned parameters.
    denoised : ndarray of bool (n_candidates,) or None
        MoM only: whether the raw moments along each direction were *not* those
        of a ``K``-atom distribution on the bounded interval (complex, repeated
        or runaway roots, or negative weights) and had to be projected.
    moment_change : ndarray (n_candidates,) or None
        MoM only: relative change of the moment vector made by denoising
        (noise-weighted Euclidean norm); ``0`` where nothing changed.
    effective_items : ndarray (K,) or (n_candidates, K) or None
        ``1 / sum_j sigma_j(theta_k)^2`` at the returned parameters: the number
        of items each class effectively spreads over.  The moment
        approximations need this to be large (hundreds or more).
    subspace_eigenvalues : ndarray (L,)
        Eigenvalues of the latent second moment ``M2``, descending.
    eigengap : float
        ``lambda_K - lambda_{K+1}`` (``lambda_K`` when ``K = L``).
    relative_eigengap : float
        ``eigengap / lambda_1``; small values mean the subspace is poorly
        determined (too few items or observations, or fewer effective classes).
    clipped_eigenvalues : int
        Tensor method: how many eigenvalues of the projected ``M2s`` were
        clipped to keep its inverse square root finite.
    skewness, excess_kurtosis : float
        Largest marginal ``|skewness|`` and ``|excess kurtosis|`` of the
        whitened features (0 for a Gaussian design).
    gaussian_ok : bool
        False when those exceed the tolerance (a ``UserWarning`` was issued).
    notes : tuple of str
        Fallbacks and regularisations that were applied.
    """

    method: str
    n_components: int
    n_candidates: int
    subspace_eigenvalues: np.ndarray
    eigengap: float
    relative_eigengap: float
    skewness: float
    excess_kurtosis: float
    gaussian_ok: bool
    directions: np.ndarray | None = None
    candidate_log_likelihoods: np.ndarray | None = None
    best_index: int | None = None
    log_likelihood: float | None = None
    denoised: np.ndarray | None = None
    moment_change: np.ndarray | None = None
    effective_items: np.ndarray | None = None
    clipped_eigenvalues: int = 0
    notes: tuple = field(default_factory=tuple)

    @property
    def denoising_changed_moments(self) -> bool | None:
        """MoM: whether denoising changed the moments along the chosen direction."""
        if self.denoised is None or self.best_index is None:
            return None
        return bool(self.denoised[self.best_index])

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"warm start {self.method!r}, K = {self.n_components}, {self.n_candidates} candidate(s)",
            f"  M2 eigenvalues: {np.array2string(np.asarray(self.subspace_eigenvalues), precision=3)}; "
            f"gap lambda_K - lambda_K+1 = {self.eigengap:.3g} (relative {self.relative_eigengap:.3g})",
            f"  Gaussian design check: max |skew| {self.skewness:.3f}, max |excess kurtosis| "
            f"{self.excess_kurtosis:.3f} -> {'ok' if self.gaussian_ok else 'FAR FROM GAUSSIAN'}",
        ]
        if self.log_likelihood is not None:
            lines.append(
                f"  log-likelihood of the returned start: {self.log_likelihood:.6g} (candidate {self.best_index})"
            )
        if self.denoised is not None:
            lines.append(f"  denoised directions: {int(np.sum(self.denoised))}/{self.n_candidates}")
        if self.effective_items is not None:
            eff = np.asarray(self.effective_items)
            lines.append(f"  effective items per class: min {eff.min():.1f}, max {eff.max():.1f}")
        if self.clipped_eigenvalues:
            lines.append(f"  clipped eigenvalues of M2s: {self.clipped_eigenvalues}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


@jit_program
def _effective_items_jax(features, atoms, valid):
    log_sigma = log_component_probs_jax(features, atoms, valid)  # (p, K)
    return jnp.exp(-jax.nn.logsumexp(2.0 * log_sigma, axis=0))


def prefetch_effective_items(layout, n_components: int) -> None:
    """Compile :func:`effective_items` for ``K`` atoms on ``layout``'s rows in the background."""
    atoms = np.zeros((int(n_components), layout.n_features))
    _effective_items_jax.prefetch(on_device(layout.features), atoms, layout.valid)


def effective_items(features, atoms, valid=None) -> np.ndarray:
    """``1 / sum_j sigma_j(theta_k)^2`` for each atom (rows of ``atoms``, any leading batch axes).

    ``valid`` (p,) bool marks the rows that are items (False: padding, no mass).
    """
    f = on_device(features)
    a = np.asarray(atoms)
    if a.ndim == 2:
        return np.asarray(_effective_items_jax(f, a, valid))
    flat = a.reshape((-1,) + a.shape[-2:])
    out = jax.vmap(lambda t: _effective_items_jax(f, t, valid))(flat)
    return np.asarray(out).reshape(a.shape[:-1])
