"""Convergence diagnostics (smm_ppl.diagnostics.convergence): R-hat sees label switching only before
relabelling; ESS, summaries and HDIs of the relabelled draws."""

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl import diagnostics as D

from _posterior import fake_posterior, small_design


@pytest.fixture(scope="module")
def switched():
    """Two chains around the truth, the second in the swapped labelling, relabelled to the truth."""
    X, n, truth = small_design()
    _, w, a = fake_posterior(0, X, n, truth, n_chain=2, n_draw=300)
    w[1], a[1] = w[1][:, ::-1], a[1][:, ::-1]
    items = np.flatnonzero(n)
    ll = smm.inference.log_likelihood_draws(X, w, a, items)
    w_rel, a_rel, perm = D.relabel_draws(w, a, truth.atoms)
    idata = D.build_inference_data(
        w_rel, a_rel, features=X, counts=n, log_likelihood=ll, observed_items=items, reference=truth, permutation=perm
    )
    return idata, truth


def test_rhat_is_near_one_after_relabelling_and_large_before(switched):
    idata, _ = switched
    assert D.rhat(idata)["max"] < 1.01
    assert D.rhat(idata, raw=True)["max"] > 1.5


def test_ess_summary_and_hdi_of_the_relabelled_draws(switched):
    idata, truth = switched
    e = D.ess(idata)
    assert e["atoms"].shape == truth.atoms.shape and e["min"] > 100
    table = D.summary(idata)
    assert len(table) == truth.weights.size + truth.atoms.size
    h = D.hdi(idata, hdi_prob=0.9)["atoms"].values  # (K, L, 2)
    assert np.all((h[..., 0] < truth.atoms) & (truth.atoms < h[..., 1]))
    with pytest.raises(ValueError, match="hdi_prob"):
        D.hdi(idata, hdi_prob=1.2)
