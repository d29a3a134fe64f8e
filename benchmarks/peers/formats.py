"""Data layouts the peer tools need, and their log-likelihoods computed independently of smm-ppl.

Pure NumPy, importable both from the project's environment and from the peers'
virtual environments (the peer scripts sit in the same folder).

The softmax mixture has one choice situation with ``p`` alternatives, drawn
``N`` times, each draw with its own latent class. Two equivalent long layouts:

* ``expand_per_observation`` (lcl-choice; it has no frequency weights for
  latent-class models): one choice situation *and* one panel per observation,
  one row per (observation, item): ``N * p`` rows.
* ``expand_per_item`` (flexmix, counts as weights): one choice situation per
  distinct chosen item ``j`` (``n_j > 0``), one row per (situation, item),
  weight ``n_j`` on every row of the situation: ``#{j: n_j > 0} * p`` rows.

``long_log_likelihood`` evaluates the latent-class conditional logit on either
layout row by row (a group-wise logsumexp, no reference to ``pi``), so a test
can check that both layouts and ``smm.log_likelihood`` agree.
"""

from __future__ import annotations

import numpy as np


def expand_per_observation(features: np.ndarray, counts: np.ndarray) -> dict:
    """One row per (observation, item): columns ``obs``, ``alt``, ``chosen``, ``x0..``; ``N * p`` rows."""
    features = np.asarray(features, dtype=np.float64)
    counts = np.asarray(counts).astype(np.int64)
    p, L = features.shape
    draws = np.repeat(np.arange(p), counts)  # the item of each observation
    N = draws.size
    obs = np.repeat(np.arange(N), p)
    alt = np.tile(np.arange(p), N)
    data = {"obs": obs, "alt": alt, "chosen": (alt == draws[obs]).astype(np.int64)}
    for l in range(L):
        data[f"x{l}"] = np.tile(features[:, l], N)
    return data


def expand_per_item(features: np.ndarray, counts: np.ndarray) -> dict:
    """One situation per chosen item: columns ``sid`` (1-based, contiguous), ``alt``, ``chosen``, ``x0..``, ``w``."""
    features = np.asarray(features, dtype=np.float64)
    counts = np.asarray(counts).astype(np.int64)
    p, L = features.shape
    items = np.flatnonzero(counts > 0)
    S = items.size
    sid = np.repeat(np.arange(1, S + 1), p)
    alt = np.tile(np.arange(p), S)
    data = {"sid": sid, "alt": alt, "chosen": (alt == np.repeat(items, p)).astype(np.int64)}
    for l in range(L):
        data[f"x{l}"] = np.tile(features[:, l], S)
    data["w"] = np.repeat(counts[items], p)
    return data


def write_csv(data: dict, path) -> None:
    """CSV with a header; floats with 17 significant digits (exact round trip)."""
    cols = list(data)
    arrs = [np.asarray(data[c]) for c in cols]
    fmts = ["%.17g" if a.dtype.kind == "f" else "%d" for a in arrs]
    with open(path, "w") as f:
        f.write(",".join(cols) + "\n")
        n = len(arrs[0])
        chunk = 200_000
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            cols_txt = [np.char.mod(fmt, a[start:stop]) for fmt, a in zip(fmts, arrs)]
            lines = cols_txt[0]
            for c in cols_txt[1:]:
                lines = np.char.add(np.char.add(lines, ","), c)
            f.write("\n".join(lines.tolist()) + "\n")


def long_log_likelihood(
    data: dict, weights: np.ndarray, atoms: np.ndarray, group: str, weight: str | None = None
) -> float:
    """Latent-class conditional logit log-likelihood of a long layout.

    ``sum_g w_g log sum_k alpha_k exp(v_{k, chosen(g)} - logsumexp_{rows of g} v_k)``
    with ``v_k = x . theta_k`` row by row; ``group`` names the situation column,
    ``weight`` the (row-constant within a group) weight column or ``None`` for 1.
    """
    weights = np.asarray(weights, dtype=np.float64)
    atoms = np.asarray(atoms, dtype=np.float64)
    L = atoms.shape[1]
    x = np.column_stack([np.asarray(data[f"x{l}"], dtype=np.float64) for l in range(L)])
    g = np.asarray(data[group])
    _, gi = np.unique(g, return_inverse=True)
    G = gi.max() + 1
    v = x @ atoms.T  # (rows, K)
    vmax = np.full((G, atoms.shape[0]), -np.inf)
    np.maximum.at(vmax, gi, v)
    lse = np.log(_group_sum(np.exp(v - vmax[gi]), gi, G)) + vmax  # (G, K) log normalisers
    chosen = np.asarray(data["chosen"]).astype(bool)
    v_chosen = np.zeros((G, atoms.shape[0]))
    v_chosen[gi[chosen]] = v[chosen]
    log_sigma = v_chosen - lse  # (G, K): log prob of the chosen item under each class
    a = log_sigma + np.log(weights)
    m = a.max(axis=1, keepdims=True)
    log_pi = (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]
    if weight is None:
        wg = np.ones(G)
    else:
        wg = np.zeros(G)
        wg[gi] = np.asarray(data[weight], dtype=np.float64)
    return float(np.sum(wg * log_pi))


def _group_sum(values: np.ndarray, gi: np.ndarray, G: int) -> np.ndarray:
    out = np.zeros((G, values.shape[1]))
    np.add.at(out, gi, values)
    return out
