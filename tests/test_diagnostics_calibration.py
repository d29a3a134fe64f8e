"""Simulation-based calibration (smm_ppl.diagnostics.calibration): the loop, the statistics, and a test that can fail.

The conjugate Normal model checks the machinery without a sampler (an exact posterior passes, a posterior
half as wide fails).  Then NUTS on the softmax mixture: the sampler as users run it passes a small SBC,
and the same sampler with the likelihood deliberately mis-scaled fails it.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import smm_ppl as smm
from smm_ppl.diagnostics.calibration import SBC_GROUP, sbc_ranks


def _normal_sbc(width: float, num_simulations: int = 300, seed: int = 0):
    """theta ~ N(0, 1), y | theta ~ N(theta, 1): the posterior is N(y / 2, 1/2); ``width`` scales its sd."""

    def simulate(s):
        rng = np.random.default_rng(s)
        theta = rng.normal()
        return theta, theta + rng.normal()

    def fit(y, s):
        rng = np.random.default_rng(s)
        return rng.normal(y / 2, width * np.sqrt(0.5), size=(2, 100))

    def quantities(draws, theta, y):
        return {"theta": draws}, {"theta": np.asarray(theta)}

    return sbc_ranks(simulate, fit, quantities, num_simulations=num_simulations, num_ranks=99, seed=seed)


def test_an_exact_posterior_passes_and_its_ranks_are_in_simuks_format():
    tree = _normal_sbc(1.0)
    assert isinstance(tree, xr.DataTree)
    ranks = tree[SBC_GROUP]["theta"]
    assert ranks.dims == ("chain", "draw") and ranks.shape == (1, 300)
    assert ranks.values.min() >= 0 and ranks.values.max() <= 99
    table = smm.sbc_statistics(tree)
    assert table.attrs["all_uniform"] and table.attrs["max_rank"] == 99
    row = table.loc["theta"]
    assert abs(row["mean_rank"] - 0.5) < 0.05 and abs(row["rank_var_ratio"] - 1) < 0.2
    assert abs(row["coverage_90"] - 0.9) < 0.05 and 0.8 < row["sd_ratio"] < 1.25


def test_a_posterior_too_narrow_fails_and_the_table_says_by_how_much():
    table = smm.sbc_statistics(_normal_sbc(0.5))
    assert not table.attrs["all_uniform"]
    row = table.loc["theta"]
    assert row["p_bonferroni"] < 1e-3 and row["rank_var_ratio"] > 1.5  # ranks pile at both ends: a U
    assert 0.35 < row["sd_ratio"] < 0.65  # the intervals are about half as wide as they should be
    wide = smm.sbc_statistics(_normal_sbc(2.0)).loc["theta"]
    assert wide["rank_var_ratio"] < 0.6 and wide["sd_ratio"] > 1.5


def test_a_failing_fit_is_counted_not_hidden():
    def simulate(s):
        return float(s), float(s)

    def fit(y, s):
        if int(y) % 3 == 0:
            raise ValueError("no Gaussian approximation here")
        return np.random.default_rng(s).normal(size=(1, 30))

    tree = sbc_ranks(
        simulate, fit, lambda d, t, y: ({"x": d}, {"x": np.asarray(0.0)}), num_simulations=9, num_ranks=29, seed=0
    )
    assert tree.attrs["failures"] == 3 and "no Gaussian" in tree.attrs["failure_messages"]
    assert tree[SBC_GROUP]["x"].shape == (1, 6)
    with pytest.raises(ValueError, match="Gaussian"):
        sbc_ranks(
            simulate, fit, lambda d, t, y: ({"x": d}, {"x": 0.0}), num_simulations=3, num_ranks=9, on_error="raise"
        )


def test_sbc_mixture_validates_its_arguments():
    X = smm.simulate_features(0, 10, 2)
    with pytest.raises(ValueError, match="labels"):
        smm.sbc_mixture(X, 50, 2, labels="sorted")
    with pytest.raises(ValueError, match="method"):
        smm.sbc_mixture(X, 50, 2, method="hmc")


# --------------------------------------------------------------------------- #
# NUTS: passes as it is, fails with the likelihood mis-scaled
# --------------------------------------------------------------------------- #

#: Small sizes (seconds per replication): p = 20 items, L = 2, K = 2, N = 200; 2 chains x (100 + 60) draws
#: thinned to 19 (ranks 0 .. 19, 5 bins of 4 values); 60 replications.
SMALL = dict(num_simulations=60, num_ranks=19, seed=3)
NUTS = dict(num_chains=2, num_warmup=100, num_samples=60)


def _scaled_nuts(scale):
    def fit(features, counts, n_components, *, prior, seed, **kwargs):
        return smm.sample_nuts(features, scale * np.asarray(counts), n_components, prior=prior, seed=seed, **kwargs)

    return fit


@pytest.fixture(scope="module")
def small_design():
    return smm.simulate_features(1, 20, 2)


def test_nuts_passes_a_small_sbc(small_design):
    """Under calibration each scalar's Bonferroni-corrected p-value is below 0.001 with probability <= 0.001/6
    (6 scalars): the family fails with probability <= 0.001."""
    kw = dict(NUTS, ordered=True, init="auto", progress_bar=False)
    tree = smm.sbc_mixture(small_design, 200, 2, method=_scaled_nuts(1), fit_kwargs=kw, **SMALL)
    table = smm.sbc_statistics(tree, bins=5)
    assert table.attrs["n_simulations"] == 60 and tree.attrs["failures"] == 0
    assert table.attrs["all_uniform"], table


def test_nuts_with_the_likelihood_mis_scaled_fails_sbc(small_design):
    """The counts times 16 in the fit: the posterior's sd shrinks about 4-fold.

    For a Gaussian posterior the normalised rank is then ``u = Phi(4 Z)``: 5 equal bins get probabilities
    0.417, 0.058, 0.050, 0.058, 0.417, a chi-square non-centrality of 0.785 per replication, 47 over 60.  The
    test needs chi2_4 > 22.3 (p < 0.001 / 6) for one scalar: about 0.98 for each of the 6 (mean 51, sd 14),
    so the broken sampler passes with probability well under 1 %.
    """
    kw = dict(NUTS, ordered=True, init="auto", progress_bar=False)
    tree = smm.sbc_mixture(small_design, 200, 2, method=_scaled_nuts(16), fit_kwargs=kw, **SMALL)
    table = smm.sbc_statistics(tree, bins=5)
    assert not table.attrs["all_uniform"]
    failing = table[~table["uniform"]]
    assert (failing["rank_var_ratio"] > 1.5).all()  # too narrow: U-shaped ranks
    assert (table["sd_ratio"] < 0.7).all()


# --------------------------------------------------------------------------- #
# Label switching: reported, not averaged away silently
# --------------------------------------------------------------------------- #


def _posterior(atoms_mean, sd, perm_swapped_share, seed=0, draws=400):
    rng = np.random.default_rng(seed)
    K, L = np.shape(atoms_mean)
    atoms = np.asarray(atoms_mean)[None, None] + sd * rng.normal(size=(1, draws, K, L))
    weights = np.full((1, draws, K), 1.0 / K)
    perm = np.tile(np.arange(K), (1, draws, 1))
    swap = rng.random(draws) < perm_swapped_share
    perm[0, swap, :2] = [1, 0]
    return xr.DataTree.from_dict(
        {
            "/posterior": xr.Dataset(
                {
                    "weights": (("chain", "draw", "component"), weights),
                    "atoms": (("chain", "draw", "component", "feature"), atoms),
                }
            ),
            "/sample_stats": xr.Dataset({"label_permutation": (("chain", "draw", "component"), perm)}),
        }
    )


def test_label_switching_flags_close_and_switched_classes():
    apart = _posterior([[2.0, 0.0], [-2.0, 0.0]], 0.1, 0.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = smm.label_switching(apart)
    assert not table["ambiguous"].any() and table.loc["0-1", "separation"] > 20
    assert table.attrs["relabelled_share"] == 0.0
    close = _posterior([[0.1, 0.0], [-0.1, 0.0]], 0.2, 0.3)
    with pytest.warns(smm.LabelSwitchingWarning, match="classes 0 and 1"):
        table = smm.label_switching(close)
    row = table.loc["0-1"]
    assert row["ambiguous"] and row["separation"] < 2 and 0.2 < row["switched_share"] < 0.4


def test_label_switching_between_far_classes_is_no_ambiguity():
    """Whole chains in swapped orders, classes far apart: the matching undoes it exactly, no warning."""
    import warnings

    swapped = _posterior([[2.0, 0.0], [-2.0, 0.0]], 0.1, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = smm.label_switching(swapped)
    assert not table["ambiguous"].any() and 0.4 < table.loc["0-1", "switched_share"] < 0.6
