"""The parameter container and label matching (docs/math.md#the-model, docs/math.md#accuracy-yardsticks)."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "SMMParams",
    "n_free_parameters",
    "match_components",
    "relabel_draws",
    "align_params",
    "parameter_error",
    "WEIGHT_FLOOR",
    "floor_weights",
]

#: A class whose weight falls below this is *collapsed*: EM freezes its atom
#: (its M-step would divide by the weight) and its standard errors are NaN.
WEIGHT_FLOOR = 1e-10


def safe_divisor(weights_raw):
    """``weights_raw`` where the class is alive (normalised weight above :data:`WEIGHT_FLOOR`), else 1."""
    alive = weights_raw / jnp.sum(weights_raw) > WEIGHT_FLOOR
    return jnp.where(alive, weights_raw, 1.0)


def floor_weights(weights, floor: float = 0.0) -> np.ndarray:
    """Weights (..., K) raised to at least ``floor`` and renormalised (non-finite entries count as 0;
    a row summing to 0 becomes uniform).

    Starting points must not sit on the simplex's boundary: a warm start floors
    its weights at a fraction of ``1 / K`` (a class with almost no weight gets
    no EM updates to speak of), the samplers at the smallest weight whose
    stick-breaking coordinate is finite.
    """
    w = np.asarray(weights, dtype=np.float64)
    K = w.shape[-1]
    w = np.maximum(np.where(np.isfinite(w), w, 0.0), floor)
    s = w.sum(axis=-1, keepdims=True)
    return np.where(s > 0, w / np.where(s > 0, s, 1.0), 1.0 / K)


def n_free_parameters(n_components: int, n_features: int) -> int:
    """Free parameters of a K-class mixture over L features: ``(K - 1)`` weights and ``K L`` atom coordinates."""
    return (n_components - 1) + n_components * n_features


class SMMParams(NamedTuple):
    """Parameters of a softmax mixture.

    Attributes
    ----------
    weights : array of shape (K,)
        Mixing weights ``alpha`` on the simplex.
    atoms : array of shape (K, L)
        Class atoms ``theta_k``; class ``k`` chooses item ``j`` with
        probability ``softmax(features @ atoms[k])[j]``.

    A leading batch axis (e.g. ``n_starts``) on both fields is allowed where a
    function says so (:func:`smm_ppl.subspace_random_inits`).
    """

    weights: np.ndarray
    atoms: np.ndarray

    @property
    def n_components(self) -> int:
        return int(np.shape(self.weights)[-1])

    @property
    def n_features(self) -> int:
        return int(np.shape(self.atoms)[-1])

    def to_numpy(self) -> SMMParams:
        return SMMParams(np.asarray(self.weights, dtype=np.float64), np.asarray(self.atoms, dtype=np.float64))

    def to_dict(self) -> dict:
        """Plain lists, for JSON."""
        return {"weights": np.asarray(self.weights).tolist(), "atoms": np.asarray(self.atoms).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> SMMParams:
        return cls(np.asarray(d["weights"], dtype=np.float64), np.asarray(d["atoms"], dtype=np.float64))


def match_components(atoms, reference_atoms) -> np.ndarray:
    """Permutation ``perm`` so that ``atoms[perm]`` best matches ``reference_atoms``.

    Hungarian assignment on the Euclidean distances between atoms (docs/math.md#the-model).
    ``atoms[perm[k]]`` is the estimate matched to reference class ``k``.
    """
    a = np.asarray(atoms, dtype=np.float64)
    r = np.asarray(reference_atoms, dtype=np.float64)
    if a.shape != r.shape or a.ndim != 2:
        raise ValueError(
            f"atoms and reference_atoms must both be (K, L) of the same shape, got {a.shape} and {r.shape}."
        )
    cost = np.linalg.norm(r[:, None, :] - a[None, :, :], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(a.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm


# Enumerating all K! permutations vectorises the matching over draws; beyond
# this K the factorial loses to a loop of Hungarian assignments.
_MAX_K_ENUMERATE = 6


def relabel_draws(weights: Any, atoms: Any, reference_atoms: Any):
    """Match every draw's classes to a reference labelling (Hungarian on the atoms).

    Parameters
    ----------
    weights : array of shape (..., K)
        Draws of the mixing weights (any leading batch shape, e.g. (chain, draw)).
    atoms : array of shape (..., K, L)
        Draws of the atoms, same leading shape.
    reference_atoms : array of shape (K, L)
        The reference labelling (usually the warm start / EM estimate).

    Returns
    -------
    weights, atoms : ndarray
        Relabelled draws: ``atoms_out[..., k, :] = atoms[..., perm[..., k], :]``.
    perm : ndarray of int64, shape (..., K)
        The permutation applied to each draw; the same convention as
        :func:`smm_ppl.match_components` (minimum total Euclidean distance).
    """
    w = np.asarray(weights, dtype=np.float64)
    a = np.asarray(atoms, dtype=np.float64)
    ref = np.asarray(reference_atoms, dtype=np.float64)
    if a.ndim < 2 or a.shape[-2:] != ref.shape or w.shape != a.shape[:-1]:
        raise ValueError(
            f"relabel_draws: weights (..., K), atoms (..., K, L) and reference_atoms (K, L) must agree, got "
            f"{w.shape}, {a.shape} and {ref.shape}."
        )
    batch = w.shape[:-1]
    K = ref.shape[0]
    flat_a = a.reshape((-1,) + ref.shape)
    # dist[s, r, e]: distance from reference class r to the draw's class e.
    dist = np.linalg.norm(ref[None, :, None, :] - flat_a[:, None, :, :], axis=-1)
    if K <= _MAX_K_ENUMERATE:
        perms = np.array(list(itertools.permutations(range(K))), dtype=np.int64)  # (K!, K)
        cost = dist[:, np.arange(K)[None, :], perms].sum(axis=-1)  # (S, K!)
        perm = perms[np.argmin(cost, axis=1)]
    else:
        perm = np.empty((flat_a.shape[0], K), dtype=np.int64)
        for s in range(flat_a.shape[0]):
            rows, cols = linear_sum_assignment(dist[s])
            perm[s, rows] = cols
    perm = perm.reshape(batch + (K,))
    w_out = np.take_along_axis(w, perm, axis=-1)
    a_out = np.take_along_axis(a, perm[..., None], axis=-2)
    return w_out, a_out, perm


def align_params(params: SMMParams, reference: SMMParams) -> SMMParams:
    """Relabel ``params`` to the labelling of ``reference``."""
    perm = match_components(params.atoms, reference.atoms)
    return SMMParams(np.asarray(params.weights)[perm], np.asarray(params.atoms)[perm])


def parameter_error(estimate: SMMParams, truth: SMMParams) -> dict:
    """Errors of docs/math.md#accuracy-yardsticks after Hungarian matching.

    Returns ``{"atoms": max_k |theta_hat_k - theta_k|, "weights": max_k |alpha_hat_k - alpha_k|}``.
    """
    aligned = align_params(estimate, truth)
    atoms_err = float(np.max(np.linalg.norm(np.asarray(aligned.atoms) - np.asarray(truth.atoms), axis=-1)))
    weights_err = float(np.max(np.abs(np.asarray(aligned.weights) - np.asarray(truth.weights))))
    return {"atoms": atoms_err, "weights": weights_err}
