"""Starts built from the data themselves, for designs where the moment starts' assumptions fail.

The latent-moment (Hermite) starts rest on a Gaussian design and diffuse
classes: their error grows like ``sqrt(exp(|beta|^2) / p)``, so a class
concentrated on a few hundred items of a real design (a language over a
vocabulary) is out of their reach.  Two starts that assume neither:

- ``"split"``: the one-class fit (a plain MNL), then ``K - 1`` greedy
  splits.  Each splits the class whose data are most over-dispersed against
  its own softmax (the top eigenvalue of ``sum_j (w_j gamma_jk - alpha_k
  sigma_kj) x_j x_j^T``: a mixture's second moment exceeds a single MNL's
  along the differences of its atoms), along that eigenvector, at the
  distance that maximises the likelihood, and refits.
- ``"clusters"``: a count-weighted k-means of the observed items' whitened
  features, then one MNL per cluster (smoothed towards the pooled counts, so
  that it exists when a cluster is linearly separable).

Both run their refits with the ``K``-class EM program (classes not yet
created have weight 0 and stay inert), so they compile nothing new.  For a
MAP fit (a :class:`~smm_ppl.core.prior.Penalty`) the refits maximise the log
posterior too: on real designs a refit without it lets a class run off
before the selection ever sees it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
import scipy.special

from ..core.params import SMMParams
from ..core.prior import scale_penalty
from ..core.programs import batch_size
from ..core.validation import host_rng
from ..data.prepared import Prepared
from .driver import DEFAULT_MAX_ITER, em_algorithm, iterations_bucket, run

__all__ = ["split_start", "clusters_start"]

#: Iterations of the quasi-Newton refit after each split, and of each cluster's MNL.
REFIT_ITER = 60
#: Share of the pooled counts mixed into a cluster's counts before its MNL is fitted.
CLUSTER_SMOOTHING = 0.1
#: Split distances tried, in units of the class's own standard deviation along the direction.
_SPLIT_GRID = np.geomspace(0.1, 30.0, 24)


def _refit(prepared: Prepared, weights: np.ndarray, atoms: np.ndarray, max_iter: int, layout=None, penalty=None):
    """Quasi-Newton EM from whitened ``(weights, atoms)``; zero weights stay zero (inert classes)."""
    layout = prepared.em_layout if layout is None else layout
    # The trace buffer of a default fit: the refits share its compiled program.
    buffer = iterations_bucket(DEFAULT_MAX_ITER)
    algorithm = em_algorithm("gradient", "lbfgs")
    out = run(layout, weights, atoms, 1e-10, max_iter, 1.0, algorithm=algorithm, buffer=buffer, penalty=penalty)
    w = np.asarray(out.state.weights, dtype=np.float64)
    w = np.where(np.asarray(weights) > 0, w, 0.0)
    return w / w.sum(), np.asarray(out.state.atoms, dtype=np.float64)


def _log_sigma(x: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """``log sigma`` (p, K) of the rows ``x`` (p, L)."""
    logits = x @ atoms.T
    return logits - scipy.special.logsumexp(logits, axis=0)


def _split_scores(x, freq, trial_w, log_sigma, atom, direction, k, new, deltas) -> np.ndarray:
    """Log-likelihoods of the splits of class ``k`` into ``atom +- delta * direction`` (classes ``k`` and
    ``new``, weights ``trial_w``), one per ``delta``; the other classes keep their ``log_sigma``."""
    observed = freq > 0
    f = freq[observed]
    base, proj = x @ atom, x @ direction
    others = np.ones(log_sigma.shape[1], bool)
    others[[k, new]] = False
    with np.errstate(divide="ignore"):
        log_w = np.log(trial_w)
        rest = scipy.special.logsumexp(log_sigma[observed][:, others] + log_w[others], axis=1)
    scores = np.empty(len(deltas))
    # In batches of split distances: each holds a few (distances, p) arrays.
    size = batch_size(len(deltas), 4 * x.shape[0])
    for lo in range(0, len(deltas), size):
        shift = deltas[lo : lo + size, None] * proj
        up, down = base + shift, base - shift
        up -= scipy.special.logsumexp(up, axis=1, keepdims=True)
        down -= scipy.special.logsumexp(down, axis=1, keepdims=True)
        log_pi = np.logaddexp(np.logaddexp(up[:, observed] + log_w[k], down[:, observed] + log_w[new]), rest)
        scores[lo : lo + size] = log_pi @ f
    return scores


def _top_direction(x: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Largest eigenvalue and eigenvector of ``sum_j v_j x_j x_j^T``."""
    L = x.shape[1]
    if L <= 128:
        m = (x * v[:, None]).T @ x
        lam, vec = scipy.linalg.eigh((m + m.T) / 2, subset_by_index=[L - 1, L - 1])
        return float(lam[0]), vec[:, 0]
    op = scipy.sparse.linalg.LinearOperator((L, L), matvec=lambda u: x.T @ (v * (x @ u)), dtype=np.float64)
    lam, vec = scipy.sparse.linalg.eigsh(op, k=1, which="LA", tol=1e-6, v0=np.ones(L))
    return float(lam[0]), vec[:, 0]


def _split_once(x, freq, weights, atoms, alive):
    """The split that the over-dispersion points to, at the best distance: new ``(weights, atoms)``."""
    log_sigma = _log_sigma(x, atoms)
    with np.errstate(divide="ignore"):
        log_joint = log_sigma + np.log(weights)
    log_pi = scipy.special.logsumexp(log_joint, axis=1, keepdims=True)
    gamma = np.exp(log_joint - log_pi)
    sigma = np.exp(log_sigma)
    best = None
    for k in np.flatnonzero(alive):
        lam, d = _top_direction(x, freq * gamma[:, k] - weights[k] * sigma[:, k])
        if best is None or lam > best[0]:
            best = (lam, k, d)
    _, k, d = best
    proj = x @ d
    spread = np.sqrt(max(sigma[:, k] @ proj**2 - (sigma[:, k] @ proj) ** 2, 1e-12))
    new = int(np.flatnonzero(~alive)[0])
    trial_w = weights.copy()
    trial_w[k] = trial_w[new] = weights[k] / 2
    deltas = _SPLIT_GRID / spread
    delta = deltas[np.argmax(_split_scores(x, freq, trial_w, log_sigma, atoms[k], d, k, new, deltas))]
    a = atoms.copy()
    a[k], a[new] = atoms[k] + delta * d, atoms[k] - delta * d
    return trial_w, a, new


def split_start(prepared: Prepared, K: int, seed, n_starts: int, penalty=None) -> SMMParams:
    """The one-class fit split ``K - 1`` times (module docstring); original coordinates, a batch of one."""
    white = prepared.white
    x = np.asarray(white.features, dtype=np.float64)
    freq = np.asarray(white.frequencies, dtype=np.float64)
    L = x.shape[1]
    weights = np.zeros(K)
    weights[0] = 1.0
    atoms = np.zeros((K, L))
    weights, atoms = _refit(prepared, weights, atoms, REFIT_ITER, penalty=penalty)
    alive = np.zeros(K, bool)
    alive[0] = True
    for _ in range(K - 1):
        weights, atoms, new = _split_once(x, freq, weights, atoms, alive)
        alive[new] = True
        weights, atoms = _refit(prepared, weights, atoms, REFIT_ITER, penalty=penalty)
    return SMMParams(weights[None], prepared.whitening.to_original(atoms)[None])


def _weighted_kmeans(x: np.ndarray, w: np.ndarray, K: int, rng: np.random.Generator, n_iter: int = 50):
    """Lloyd's algorithm with k-means++ seeding, every point weighted by ``w``: labels (n,)."""
    centres = [x[rng.choice(len(x), p=w / w.sum())]]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for _ in range(1, K):
        p = w * d2
        centres.append(x[rng.choice(len(x), p=p / p.sum())] if p.sum() > 0 else x[rng.integers(len(x))])
        d2 = np.minimum(d2, np.sum((x - centres[-1]) ** 2, axis=1))
    c = np.stack(centres)
    labels = np.zeros(len(x), int)
    for it in range(n_iter):
        dist = np.sum(x**2, axis=1)[:, None] - 2 * x @ c.T + np.sum(c**2, axis=1)[None]
        new = np.argmin(dist, axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for k in range(K):
            members = labels == k
            if w[members].sum() > 0:
                c[k] = w[members] @ x[members] / w[members].sum()
    return labels


def clusters_start(prepared: Prepared, K: int, seed, n_starts: int, penalty=None) -> SMMParams:
    """Count-weighted k-means of the observed items, one MNL per cluster; a batch of one."""
    white, em = prepared.white, prepared.em_layout
    x = np.asarray(white.features, dtype=np.float64)
    freq = np.asarray(white.frequencies, dtype=np.float64)
    observed = np.flatnonzero(freq > 0)
    if observed.size < K:
        raise ValueError(f"{observed.size} observed items cannot form {K} clusters")
    labels = _weighted_kmeans(x[observed], freq[observed], K, host_rng(seed))
    R, L = em.n_rows, x.shape[1]
    weights = np.zeros(K)
    atoms = np.zeros((K, L))
    for k in range(K):
        member = np.zeros(R)
        member[observed[labels == k]] = freq[observed[labels == k]]
        weights[k] = member.sum()
        if weights[k] == 0:
            continue
        own = (1 - CLUSTER_SMOOTHING) * member / weights[k] + CLUSTER_SMOOTHING * np.pad(freq, (0, R - len(freq)))
        own = own.astype(em.features.dtype)
        layout = em._replace(counts=own, frequencies=own)
        one = np.zeros(K)
        one[k] = 1.0
        # The cluster's MNL sees its own share of the observations: the prior weighs 1 / share more per observation.
        own_penalty = None if penalty is None else scale_penalty(penalty, 1.0 / weights[k])
        _, fitted = _refit(prepared, one, np.zeros((K, L)), REFIT_ITER, layout=layout, penalty=own_penalty)
        atoms[k] = fitted[k]
    return SMMParams(weights[None] / weights.sum(), prepared.whitening.to_original(atoms)[None])
