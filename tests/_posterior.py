"""Synthetic posteriors shared by the diagnostics tests (no sampler runs: fast)."""

import numpy as np
import xarray as xr

import smm_ppl as smm
from smm_ppl import diagnostics as D
from smm_ppl.inference import log_likelihood_draws


def fake_posterior(seed, X, counts, center, n_chain=2, n_draw=200, sd=0.05):
    """Draws scattered around ``center`` and the posterior DataTree built from them."""
    rng = np.random.default_rng(seed)
    K, L = center.atoms.shape
    a = center.atoms + sd * rng.standard_normal((n_chain, n_draw, K, L))
    logits = np.log(center.weights) + sd * rng.standard_normal((n_chain, n_draw, K))
    w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    items = np.flatnonzero(counts)
    ll = log_likelihood_draws(X, w, a, items)
    idata = D.build_inference_data(
        w, a, features=X, counts=counts, log_likelihood=ll, observed_items=items, reference=center
    )
    return idata, w, a


def small_design():
    truth = smm.SMMParams(np.array([0.3, 0.7]), np.array([[1.0, -0.5], [-1.0, 0.8]]))
    X = smm.simulate_features(3, 40, 2)
    n = smm.simulate_counts(4, X, truth, 300)
    return X, n, truth


def expanded_idata(idata, counts):
    """The same posterior with one log-likelihood column per observation."""
    items = idata.log_likelihood["item"].values
    rep = np.repeat(np.arange(items.size), counts[items])
    ll = idata.log_likelihood["counts"].values[:, :, rep]
    ds = xr.Dataset({"obs": (("chain", "draw", "observation"), ll)})
    return xr.DataTree.from_dict({"posterior": idata.posterior.to_dataset(), "log_likelihood": ds})


class FakeEM:
    """Anything with ``params`` and ``standard_errors`` stands for an EM result."""

    def __init__(self, params, se):
        self.params = params
        self.standard_errors = se
