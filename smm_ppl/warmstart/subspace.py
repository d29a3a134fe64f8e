"""The latent subspace (docs/math.md#subspace) and the preparation shared by the warm starts."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from ..core.programs import on_device
from ..core.validation import check_bool, check_choice, check_n_components
from ..data.prepared import Prepared, prepare
from .design import GaussianityCheck, warn_if_not_gaussian
from .moments import second_moment_jax
from .report import WarmStartDiagnostics

__all__ = [
    "estimate_subspace",
    "MomentData",
    "moment_data",
    "moment_input",
    "atom_bound",
    "fit_subspace",
    "base_diagnostics",
]


class MomentData(NamedTuple):
    """What every latent-moment warm start works on (whitened coordinates)."""

    prepared: Prepared
    xt: jax.Array  # (P, L) whitened, centred features, padded to the shape bucket (P >= p rows)
    w: jax.Array  # (P,) frequencies (0 on padding: every moment is a sum weighted by them)
    counts: jax.Array  # (P,)
    n_items: int  # p, the items of the data
    n_components: int
    gauss: GaussianityCheck
    valid: jax.Array | None = None  # (P,) bool: False on padding (likelihoods, effective items)

    @property
    def whitening(self):
        return self.prepared.whitening


def moment_data(prepared: Prepared, n_components: Any, method: str, stacklevel: int = 4) -> MomentData:
    """Check that the moment starts apply (K <= L, counts over one set of items) and warn on a non-Gaussian design."""
    layout = prepared.white
    K = check_n_components(n_components, layout.n_rows)
    if not getattr(layout, "supports_moments", False):
        raise ValueError(
            f"{method} needs counts over one set of items (the latent moments are sums over items); this data "
            f"layout ({type(layout).__name__}) does not have them. Use fit_em(..., init='random')."
        )
    # Every warm start lives in the K-dimensional subspace: fail before any work if it cannot exist.
    require_subspace(K, layout.n_features, method)
    gauss = prepared.gaussianity
    warn_if_not_gaussian(gauss, method, stacklevel=stacklevel)
    # The bucketed layout: the moment programs compile once per shape bucket.
    em = prepared.em_layout
    valid = getattr(em, "valid", None)
    return MomentData(prepared, em.features, em.frequencies, em.counts, layout.n_rows, K, gauss, valid)


def moment_input(features: Any, counts: Any, n_components: Any, method: str, stacklevel: int = 5) -> MomentData:
    """:func:`moment_data` of user input (or of a :class:`Prepared`, not whitened again)."""
    return moment_data(prepare(features, counts), n_components, method, stacklevel)


def require_subspace(K: int, L: int, method: str) -> None:
    if K > L:
        raise ValueError(
            f"{method} needs n_components <= n_features: the K = {K} whitened atoms are assumed to span a "
            f"K-dimensional subspace of R^L with L = {L}, which is impossible. Fall back to random starts in "
            "R^L with EM (fit_em(..., init='random', n_starts=...)), or add features."
        )


def atom_bound(n_items: int) -> float:
    """Largest whitened atom norm a warm start may return.

    Beyond ``sqrt(2 log p)`` the tilted weights of a class concentrate on a
    handful of items (the largest of ``p`` Gaussian scores is about
    ``sqrt(2 log p)``), where the Gaussian-tilt approximation behind every
    moment has broken down anyway; the bound keeps runaway roots out.
    """
    return float(np.sqrt(2.0 * np.log(max(n_items, 3))) + 1.0)


class _Subspace(NamedTuple):
    basis: np.ndarray  # (L, K) orthonormal, whitened coordinates
    eigenvalues: np.ndarray  # (L,) of M2, descending
    eigengap: float
    relative_eigengap: float
    z: jax.Array  # (p, K) projected features
    notes: tuple


def fit_subspace(prep: MomentData) -> _Subspace:
    K = prep.n_components
    L = prep.xt.shape[1]
    m2 = np.asarray(second_moment_jax(prep.xt, prep.w))
    m2 = 0.5 * (m2 + m2.T)
    eigval, eigvec = np.linalg.eigh(m2)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = eigval[order], eigvec[:, order]
    basis = eigvec[:, :K]
    # eigh's signs are arbitrary; fix them so that equal inputs give equal outputs everywhere.
    pivot = np.argmax(np.abs(basis), axis=0)
    basis = basis * np.sign(basis[pivot, np.arange(K)])
    nxt = eigval[K] if K < L else 0.0
    gap = float(eigval[K - 1] - nxt)
    top = float(max(eigval[0], 1e-300))
    rel = gap / top if eigval[0] > 0 else 0.0
    notes = []
    if eigval[K - 1] <= 0:
        notes.append(
            f"the K-th eigenvalue of M2 is {eigval[K - 1]:.3g} <= 0: the data do not show K classes along "
            "independent directions (too few observations, or fewer classes)"
        )
    elif rel < 0.02:
        notes.append(f"small relative eigengap {rel:.3g}: the subspace is poorly determined")
    z = prep.xt @ on_device(basis)
    return _Subspace(basis, eigval, gap, float(rel), z, tuple(notes))


def base_diagnostics(prep: MomentData, sub: _Subspace, method: str, **kwargs) -> WarmStartDiagnostics:
    notes = tuple(sub.notes) + tuple(kwargs.pop("notes", ()))
    return WarmStartDiagnostics(
        method=method,
        n_components=prep.n_components,
        subspace_eigenvalues=sub.eigenvalues,
        eigengap=sub.eigengap,
        relative_eigengap=sub.relative_eigengap,
        skewness=prep.gauss.skewness,
        excess_kurtosis=prep.gauss.excess_kurtosis,
        gaussian_ok=prep.gauss.ok,
        notes=notes,
        **kwargs,
    )


def estimate_subspace(
    features: Any,
    counts: Any,
    n_components: int,
    *,
    coordinates: str = "whitened",
    return_diagnostics: bool = False,
):
    """Estimate the span of the atoms: the top-``K`` eigenvectors of the latent second moment.

    With whitened, centred features ``xt_j`` (docs/math.md#latent-moments),
    ``M2 = sum_j w_j (xt_j xt_j^T - I) ~ sum_k alpha_k beta_k beta_k^T`` whose
    range is ``span(beta_1, .., beta_K)``, ``beta_k = Sigma_hat^{1/2} theta_k``.

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,)
        Non-negative integer counts.
    n_components : int
        ``K``; must not exceed ``L``.
    coordinates : {"whitened", "original"}
        ``"whitened"`` (default, docs/math.md#subspace) returns the eigenvectors ``U``
        of ``M2``, a basis of ``span(beta_k)``: project whitened features with
        ``xt @ U``.  ``"original"`` returns an orthonormal basis of the
        corresponding span of the original atoms ``theta_k``,
        ``span(Sigma_hat^{-1/2} U)``.
    return_diagnostics : bool
        Also return a :class:`WarmStartDiagnostics` (eigenvalues, eigengap,
        Gaussian-design check).

    Returns
    -------
    basis : ndarray (L, K)
        Orthonormal columns, ordered by decreasing eigenvalue of ``M2``.
    diagnostics : WarmStartDiagnostics
        Only with ``return_diagnostics=True``.

    Raises
    ------
    ValueError
        When ``n_components > n_features`` (the fallback, random starts in
        ``R^L``, is named in the message) or on invalid data.

    Warns
    -----
    UserWarning
        When the whitened features are far from Gaussian.
    """
    coordinates = check_choice(coordinates, "coordinates", {"whitened", "original"})
    return_diagnostics = check_bool(return_diagnostics, "return_diagnostics")
    prep = moment_input(features, counts, n_components, "estimate_subspace")
    sub = fit_subspace(prep)
    basis = sub.basis
    if coordinates == "original":
        basis, _ = np.linalg.qr(prep.whitening.inv_root @ basis)
        pivot = np.argmax(np.abs(basis), axis=0)
        basis = basis * np.sign(basis[pivot, np.arange(basis.shape[1])])
    basis = np.asarray(basis, dtype=np.float64)
    if not return_diagnostics:
        return basis
    return basis, base_diagnostics(prep, sub, "subspace", n_candidates=0)
