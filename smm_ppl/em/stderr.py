"""Observed information and standard errors of an SMM estimate (docs/math.md#standard-errors).

The simplex constraint on the weights is removed by the parametrisation
``alpha = softmax(eta)`` with one reference logit fixed at 0 (``K - 1`` free
logits); the atoms enter as they are.  The observed information is minus the
Hessian of ``ell = sum_j n_j log pi_j`` in that parametrisation, by automatic
differentiation (Hessian-vector products, one basis vector at a time, so
memory stays ``O(pK)``).  Its inverse is mapped back to ``(weights, atoms)``
by the delta method (the Jacobian of the softmax; the atoms map is linear).

The atoms act on the features directly, so the shift invariance of the model
creates no over-parametrisation (features with a constant column are
rejected by validation).  Internally the Hessian is taken in the whitened
coordinates ``beta = Sigma_hat^{1/2} theta`` (better conditioned, exactly
equivalent), and the reference class is the heaviest one (the result does not
depend on that choice; conditioning does).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core.params import SMMParams
from ..core.programs import batch_size, jit_program, on_device
from ..core.validation import check_params
from ..data.prepared import Prepared, prepare

__all__ = ["observed_information", "parameter_covariance", "standard_errors", "whitened_standard_errors"]


def _free_classes(K, ref, xp=np):
    """The classes with a free logit: all but ``ref`` (which may be traced)."""
    idx = xp.arange(K - 1)
    return idx + (idx >= ref)


def _unpack(z, K, L, ref):
    eta = jnp.zeros(K, dtype=z.dtype).at[_free_classes(K, ref, jnp)].set(z[: K - 1])
    return eta, z[K - 1 :].reshape(K, L)


def _loglik(z, layout, K, L, ref):
    eta, beta = _unpack(z, K, L, ref)
    return layout.log_likelihood(jax.nn.softmax(eta), beta)


# ``ref`` is traced: which class is the reference never recompiles.
def _information(z, layout, ref, *, K, L):
    grad = jax.grad(_loglik)

    def hvp(v):
        return jax.jvp(lambda zz: grad(zz, layout, K, L, ref), (z,), (v,))[1]

    eye = jnp.eye(z.shape[0], dtype=z.dtype)
    # Directions in batches of at most 8; fewer when the items are many: each holds several (K, p) tangents.
    size = min(8, batch_size(z.shape[0], 8 * K * layout.n_rows))
    hess = lax.map(hvp, eye, batch_size=size)
    hess = 0.5 * (hess + hess.T)
    return -hess


_information = jit_program(_information, static_argnames=("K", "L"), name="information")


def prefetch_information(prepared: Prepared, n_components: int) -> None:
    """Compile the observed information of a ``K``-class fit on ``prepared`` in the background."""
    K, L = int(n_components), prepared.n_features
    z = np.zeros(K * L if K == 1 else K - 1 + K * L)
    _information.prefetch(z, prepared.em_layout, 0, K=K, L=L)


def _pack(weights, beta, ref):
    K = weights.shape[0]
    logw = np.log(weights)
    eta = np.delete(logw - logw[ref], ref)
    return np.concatenate([eta, beta.ravel()]), K


def _invert(info: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric information matrix, or None if it is not positive definite."""
    if not np.all(np.isfinite(info)):  # e.g. a weight that underflows in the logit parametrisation
        return None
    lam, vec = np.linalg.eigh(info)
    if not np.all(np.isfinite(lam)) or lam[0] <= 1e-12 * max(lam[-1], 1e-300):
        return None
    return (vec / lam) @ vec.T


def prior_information(prior: Any, weights: np.ndarray, inv_half: np.ndarray, ref: int) -> np.ndarray:
    """Minus the Hessian of the log prior in the coordinates of :func:`_information`.

    The atoms' block: ``Sigma^{-1} / s0^2`` per class (``|theta_k|^2 = beta_k^T
    Sigma^{-1} beta_k``).  The free logits': ``a0 K (diag(alpha) - alpha
    alpha^T)`` over the free classes, the Dirichlet density in the logits
    (whose Jacobian turns the exponent ``a0 - 1`` into ``a0``), as in the
    Laplace posterior.
    """
    K, L = weights.shape[0], inv_half.shape[0]
    free = 0 if K == 1 else K - 1
    out = np.zeros((free + K * L, free + K * L))
    out[free:, free:] = np.kron(np.eye(K), inv_half @ inv_half) / float(prior.atoms_scale) ** 2
    if K > 1:
        a = (weights / weights.sum())[_free_classes(K, ref)]
        out[:free, :free] = float(prior.weights_concentration) * K * (np.diag(a) - np.outer(a, a))
    return out


def unconstrained_covariance(prepared: Prepared, weights: np.ndarray, beta: np.ndarray, prior: Any = None):
    """``(z, cov_z, ref)``: the point and the inverse information in the information's coordinates.

    ``z`` is the free logits of the weights against the reference class ``ref``
    (the heaviest; none when ``K = 1``) followed by the whitened atoms; with a
    prior the information adds the prior's curvature (:func:`prior_information`).
    ``cov_z`` is ``None`` where the information is singular.
    """
    K, L = beta.shape
    layout, inv_half = prepared.em_layout, prepared.whitening.inv_root
    if K > 1 and np.any(weights <= 0):
        return None, None, 0
    ref = int(np.argmax(weights)) if K > 1 else 0
    z = beta.ravel() if K == 1 else _pack(weights, beta, ref)[0]
    info = np.asarray(_information(on_device(z), layout, ref, K=K, L=L))
    if prior is not None:
        info = info + prior_information(prior, weights, inv_half, ref)
    return z, _invert(info), ref


def _covariance_whitened(prepared: Prepared, weights: np.ndarray, beta: np.ndarray, prior: Any = None):
    """Covariance of ``(weights, atoms.ravel())`` (original atoms) or None if singular.

    With a prior, the information adds the prior's curvature (:func:`prior_information`).
    """
    K, L = beta.shape
    inv_half = prepared.whitening.inv_root
    _, cov_z, ref = unconstrained_covariance(prepared, weights, beta, prior)
    if cov_z is None:
        return None
    if K == 1:
        A = np.kron(np.eye(K), inv_half.T)  # theta_k = inv_half @ beta_k (symmetric)
        out = np.zeros((K + K * L, K + K * L))
        out[K:, K:] = A @ cov_z @ A.T
        return out
    J = _delta_jacobian(weights, inv_half, ref)
    return J @ cov_z @ J.T


def unpack_draws(z: np.ndarray, n_components: int, ref: int, inv_half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points ``z`` (..., n) of :func:`unconstrained_covariance`'s coordinates as ``(weights, atoms)`` (original)."""
    K = int(n_components)
    free = 0 if K == 1 else K - 1
    L = inv_half.shape[0]
    eta = np.zeros(z.shape[:-1] + (K,))
    if K > 1:
        eta[..., _free_classes(K, ref)] = z[..., :free]
    eta -= eta.max(axis=-1, keepdims=True)
    weights = np.exp(eta)
    weights /= weights.sum(axis=-1, keepdims=True)
    atoms = z[..., free:].reshape(z.shape[:-1] + (K, L)) @ inv_half
    return weights, atoms


def _delta_jacobian(weights: np.ndarray, inv_half: np.ndarray, ref: int) -> np.ndarray:
    """Jacobian of ``z -> (softmax(eta), (beta @ inv_half).ravel())`` (the delta method), in closed form.

    ``d alpha_i / d eta_j = alpha_i (delta_ij - alpha_j)`` over the free
    logits; the atoms map is linear, one block ``inv_half^T`` per class.
    """
    K, L = weights.shape[0], inv_half.shape[0]
    a = weights / weights.sum()
    J = np.zeros((K + K * L, K - 1 + K * L))
    J[:K, : K - 1] = (np.diag(a) - np.outer(a, a))[:, _free_classes(K, ref)]
    J[K:, K - 1 :] = np.kron(np.eye(K), inv_half.T)
    return J


def _split_se(cov: np.ndarray | None, K: int, L: int) -> SMMParams:
    if cov is None:
        return SMMParams(np.full(K, np.nan), np.full((K, L), np.nan))
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return SMMParams(sd[:K].copy(), sd[K:].reshape(K, L).copy())


_SINGULAR_MSG = (
    "the observed information is singular or not positive definite at these parameters (not a strict local "
    "maximum, a collapsed class, or duplicated atoms); standard errors are NaN."
)


def whitened_standard_errors(prepared: Prepared, weights: np.ndarray, beta: np.ndarray, prior: Any = None) -> SMMParams:
    """Standard errors at whitened atoms ``beta`` (what :func:`smm_ppl.fit_em` has), original coordinates.

    With a prior: the posterior standard deviations of the Laplace approximation at the mode.
    """
    K, L = beta.shape
    cov = _covariance_whitened(prepared, weights, beta, prior)
    if cov is None:
        warnings.warn(_SINGULAR_MSG, UserWarning, stacklevel=3)
    return _split_se(cov, K, L)


def _prepare(features, counts, params, devices):
    prepared = prepare(features, counts, devices)
    return prepared, check_params(params, prepared.n_features)


def observed_information(features: Any, counts: Any, params: SMMParams, *, devices: Any = None) -> np.ndarray:
    """Observed information ``-d^2 ell`` in an unconstrained parametrisation.

    The parameter vector is ``(eta_1, ..., eta_{K-1}, theta.ravel())`` with
    ``eta_k = log(alpha_k / alpha_K)`` (the last class is the reference) and
    the atoms ``theta`` in the original coordinates, row-major.

    Parameters
    ----------
    features : array of shape (p, L)
    counts : array of shape (p,)
    params : SMMParams
        Weights must be strictly positive.
    devices : int, sequence of jax devices or Mesh, optional
        Split the items over these devices (see :func:`smm_ppl.fit_em`).

    Returns
    -------
    ndarray of shape (K - 1 + K L, K - 1 + K L)
    """
    prepared, params = _prepare(features, counts, params, devices)
    wh = prepared.whitening
    K, L = params.atoms.shape
    if K > 1 and np.any(params.weights <= 0):
        raise ValueError("params.weights must be strictly positive for the logit parametrisation of the weights.")
    beta = wh.to_whitened(params.atoms)
    if K == 1:
        z = beta.ravel()
    else:
        z, _ = _pack(params.weights, beta, K - 1)
    info = np.asarray(_information(on_device(z), prepared.em_layout, max(K - 1, 0), K=K, L=L))
    # d beta = half @ d theta per class: info_theta = A^T info_beta A.
    A = np.eye(z.shape[0])
    A[K - 1 :, K - 1 :] = np.kron(np.eye(K), wh.root)
    return A.T @ info @ A


def parameter_covariance(features: Any, counts: Any, params: SMMParams, *, devices: Any = None) -> np.ndarray:
    """Asymptotic covariance of ``(weights, atoms.ravel())`` from the observed information.

    The inverse information in the unconstrained parametrisation, mapped by
    the delta method.  The weights block is singular (they sum to one).
    ``devices``: as in :func:`standard_errors`.

    Returns
    -------
    ndarray of shape (K + K L, K + K L); NaN (with a warning) when the
    information is not positive definite.
    """
    prepared, params = _prepare(features, counts, params, devices)
    K, L = params.atoms.shape
    cov = _covariance_whitened(prepared, params.weights, prepared.whitening.to_whitened(params.atoms))
    if cov is None:
        warnings.warn(_SINGULAR_MSG, UserWarning, stacklevel=2)
        return np.full((K + K * L, K + K * L), np.nan)
    return cov


def standard_errors(features: Any, counts: Any, params: SMMParams, *, devices: Any = None) -> SMMParams:
    """Standard errors of ``weights`` and ``atoms`` from the observed information.

    Parameters
    ----------
    features : array of shape (p, L)
    counts : array of shape (p,)
    params : SMMParams
        Typically the EM estimate (the information is evaluated there).
    devices : int, sequence of jax devices or Mesh, optional
        Split the items over these devices (see :func:`smm_ppl.fit_em`).

    Returns
    -------
    SMMParams
        Same shapes as ``params``; NaN (with a warning) when the information
        is not positive definite.
    """
    prepared, params = _prepare(features, counts, params, devices)
    K, L = params.atoms.shape
    cov = _covariance_whitened(prepared, params.weights, prepared.whitening.to_whitened(params.atoms))
    if cov is None:
        warnings.warn(_SINGULAR_MSG, UserWarning, stacklevel=2)
    return _split_se(cov, K, L)
