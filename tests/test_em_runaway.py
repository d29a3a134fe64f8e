"""The diagnosis of a likelihood without a maximum (smm_ppl/em/runaway.py): the trend EM watches as it
runs (``running_off``), and its verdicts on real token distributions, checked by running EM on.

The designs whose maximum is at infinity by construction (a class on a vertex of the hull) are in
tests/test_em_map.py beside the posterior mode that replaces it.
"""

import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.em.runaway import RUNAWAY_NORM, RUNAWAY_STEADY, RUNAWAY_WINDOWS, running_off

VOCAB = Path(__file__).resolve().parent / "data" / "vocab_en_de_fr.npz"


def flagged(norms, objectives, weights=(0.5, 0.5)):
    """``running_off`` for one class's norms (the second class stays short) and the objectives."""
    norms = np.stack([np.asarray(norms, float), np.full(len(norms), 1.0)], axis=1)
    return np.asarray(running_off(jnp.asarray(norms), jnp.asarray(objectives, float), jnp.asarray(weights)))


def path(first, growths):
    """Checkpoint values from the first and the changes per window."""
    return np.cumsum([first, *growths])


W = RUNAWAY_WINDOWS
STEADY = path(20.0, 3.0 * 0.8 ** np.arange(W))  # growths shrinking by a fifth a window: a steady pace
SHRINKING = path(-3.0, 0.5 ** np.arange(W))  # gains halving every window


def test_a_long_atom_growing_at_a_steady_pace_while_the_gains_shrink_is_running_off():
    assert flagged(STEADY, SHRINKING).tolist() == [True, False]


@pytest.mark.parametrize(
    "norms, objectives, why",
    [
        (path(20.0, 4.0 * 0.25 ** np.arange(W)), SHRINKING, "growths shrinking geometrically: a finite point"),
        (path(20.0, 0.5 * 4.0 ** np.arange(W)), SHRINKING, "accelerated jumps (each growth several times the last)"),
        (path(20.0, [*([3.0] * (W - 1)), -0.5]), SHRINKING, "the atom came back in the last window"),
        (STEADY, path(-3.0, [*(0.5 ** np.arange(W - 1)), 0.5]), "the gains rose in the last window"),
        (path(20.0, [1.0] * W), path(-30.0, 10.0 * 0.07 ** np.arange(W)), "gains collapsing at a steady growth"),
        (path(4.0, [1.0] * W), SHRINKING, f"an atom shorter than RUNAWAY_NORM = {RUNAWAY_NORM}"),
        (np.r_[np.nan, STEADY[1:]], np.r_[np.nan, SHRINKING[1:]], "fewer checkpoints than windows: no verdict"),
    ],
)
def test_what_is_not_running_off(norms, objectives, why):
    assert not flagged(norms, objectives).any(), why


def test_a_collapsed_class_is_not_running_off():
    assert not flagged(STEADY, SHRINKING, weights=(1e-12, 1.0 - 1e-12)).any()


def test_a_steady_pace_allows_each_growth_within_the_factor_of_the_last():
    slowly = path(-3.0, 0.9 ** np.arange(W))  # gains shrinking by a tenth a window: the slope falls by < 4
    within = RUNAWAY_STEADY * (1.0 - 1e-9)  # at the bound, up to the rounding of the differences
    assert flagged(path(20.0, 2.0 * within ** np.arange(W)), slowly)[0]
    assert flagged(path(20.0, 2.0 * within ** -np.arange(W)), SHRINKING)[0]
    faster = 2.0 * RUNAWAY_STEADY ** np.arange(W)
    faster[-1] *= 1.01
    assert not flagged(path(20.0, faster), slowly)[0]


def vocabulary_counts(languages, n_obs, seed=0):
    """Token counts of an equal mixture of real languages (the committed token distributions), as
    benchmarks/real_data.py draws them: not from the model, so nothing promises a maximum."""
    data = np.load(VOCAB)
    rng = np.random.default_rng(seed)
    probs = data["language_probs"]
    counts = sum(rng.multinomial(n_obs // len(languages), probs[j]) for j in languages)
    return data["features"], counts


def run_on(X, counts, params, n_iter=1000):
    """EM continued from ``params`` for ``n_iter`` iterations without any stopping test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smm.fit_em(X, counts, len(params.weights), init=params, max_iter=n_iter, tol=0.0,
                          compute_standard_errors=False)  # fmt: skip


def test_a_class_sliding_off_on_real_tokens_is_diagnosed_and_keeps_sliding():
    """English, German and French tokens fitted with four classes: one class slides off.  The fit says
    no_maximum, names the class, and EM run on from there confirms it (the atom keeps growing while the
    log-likelihood gains almost nothing)."""
    X, counts = vocabulary_counts((0, 1, 2), 200_000, seed=1)
    with pytest.warns(smm.ConvergenceWarning, match="no maximum") as caught:
        mle = smm.fit_em(X, counts, 4, seed=0, compute_standard_errors=False)
    assert mle.stop_reason == "no_maximum" and not mle.converged
    message = next(str(w.message) for w in caught if "no maximum" in str(w.message))
    assert "prior=smm.Prior()" in message
    k = int(message.split("class ")[1].split("'s atom")[0])
    norm = np.linalg.norm(mle.params.atoms[k])
    on = run_on(X, counts, mle.params)
    # Running on: the named atom grows by a fiftieth or more while the log-likelihood, of order 1e6,
    # moves by less than 10 (a finite maximum this far off would be approached far faster).
    assert np.linalg.norm(on.params.atoms[k]) > 1.02 * norm
    assert 0.0 <= on.log_likelihood - mle.log_likelihood < 10.0


def test_the_trend_stops_a_sliding_class_long_before_max_iter():
    """The same data, EM resumed from 300 iterations into the slide: the trend (a long atom growing at a
    steady pace while the gains shrink) stops it within a few windows, not at max_iter."""
    X, counts = vocabulary_counts((0, 1, 2), 200_000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        early = smm.fit_em(X, counts, 4, seed=0, max_iter=300, tol=0.0, compute_standard_errors=False)
    with pytest.warns(smm.ConvergenceWarning, match="keeps growing"):
        res = smm.fit_em(X, counts, 4, init=early.params, compute_standard_errors=False)
    assert res.stop_reason == "no_maximum" and not res.converged
    assert res.n_iter <= 1000


def test_a_long_class_at_a_finite_maximum_on_real_tokens_converges():
    """English and French tokens, three classes: a class goes far (norm in the hundreds), still
    growing while the gains fell over three windows, then settles at a finite maximum.  The fit
    converges there (not no_maximum), and EM run on from it stays put."""
    X, counts = vocabulary_counts((0, 2), 200_000, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", smm.ConvergenceWarning)
        mle = smm.fit_em(X, counts, 3, seed=0, compute_standard_errors=False)
    assert mle.stop_reason == "tol" and mle.converged
    assert np.linalg.norm(mle.params.atoms, axis=1).max() > 100.0
    on = run_on(X, counts, mle.params)
    np.testing.assert_allclose(on.params.atoms, mle.params.atoms, atol=1e-3 * np.abs(mle.params.atoms).max())
