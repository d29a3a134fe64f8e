"""Data-driven starts (smm_ppl/em/greedy.py) and init="auto" on concentrated, non-Gaussian regimes.

Each regime is one where the moment starts' assumptions fail (long atoms:
classes on a few dozen items; binary, heavy-tailed or skewed designs) and the
old defaults (SQUAREM, 20-iteration short runs) did not converge within the
budget; the oracle is EM started at the truth.
"""

from pathlib import Path

import numpy as np
import pytest

import smm_ppl as smm
from smm_ppl.data.prepared import prepare
from smm_ppl.em.greedy import clusters_start, split_start

from _em_problems import fit_quiet, max_relative_decrease

BUDGET = 600


def _regime(kind: str, scale: float, seed: int = 7, K: int = 3, p: int = 2000, L: int = 8):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        X = rng.standard_normal((p, L))
    elif kind == "binary":
        X = (rng.random((p, L)) < 0.3).astype(float)
    elif kind == "skew":
        X = rng.exponential(1.0, (p, L))
    else:
        X = rng.standard_t(4, (p, L))
    atoms = rng.standard_normal((K, L))
    atoms *= scale / np.linalg.norm(atoms, axis=1, keepdims=True)
    truth = smm.SMMParams(np.array([0.2, 0.3, 0.5]), atoms / X.std(axis=0))
    return X, smm.simulate_counts(1, X, truth, 50_000), truth


REGIMES = [("gauss", 5.0), ("binary", 5.0), ("skew", 3.0)]


@pytest.mark.parametrize("kind, scale", REGIMES)
def test_auto_reaches_the_oracle_on_concentrated_regimes(kind, scale):
    X, n, truth = _regime(kind, scale)
    oracle = fit_quiet(X, n, 3, init=truth, max_iter=BUDGET)
    assert oracle.converged
    res = fit_quiet(X, n, 3, max_iter=BUDGET)
    assert res.converged
    assert res.log_likelihood >= oracle.log_likelihood - 1.0
    assert max_relative_decrease(res.trace) <= 1e-9
    assert not res.assumptions.hold  # the regime is one the moment starts do not cover


def test_the_old_defaults_fail_on_a_concentrated_regime():
    """What the new defaults fix: SQUAREM from the old auto does not converge within the budget."""
    X, n, _ = _regime("skew", 3.0)
    old = fit_quiet(X, n, 3, acceleration="squarem", max_iter=BUDGET)
    assert not old.converged


@pytest.mark.parametrize("start", [split_start, clusters_start])
def test_data_starts_land_in_the_oracles_basin(start):
    X, n, truth = _regime("binary", 5.0)
    prep = prepare(X, n)
    params = start(prep, 3, 0, 1)
    assert params.weights.shape == (1, 3) and params.atoms.shape == (1, 3, 8)
    np.testing.assert_allclose(params.weights.sum(axis=1), 1.0)
    oracle = fit_quiet(X, n, 3, init=truth, max_iter=BUDGET)
    res = fit_quiet(X, n, 3, init=smm.SMMParams(params.weights[0], params.atoms[0]), max_iter=BUDGET)
    assert res.log_likelihood >= oracle.log_likelihood - 1.0


def test_data_starts_are_deterministic():
    X, n, _ = _regime("skew", 3.0)
    prep = prepare(X, n)
    a, b = clusters_start(prep, 3, 5, 1), clusters_start(prep, 3, 5, 1)
    np.testing.assert_array_equal(a.atoms, b.atoms)
    np.testing.assert_array_equal(split_start(prep, 3, 5, 1).atoms, split_start(prep, 3, 5, 1).atoms)


def test_auto_records_why_the_winner_won():
    X, n, _ = _regime("binary", 5.0)
    res = fit_quiet(X, n, 3, max_iter=BUDGET)
    rows = {r["name"]: r for r in res.starts}
    winner = rows[res.init]
    assert winner["outcome"].startswith("won")
    assert res.init in res.selection
    for r in res.starts:
        if r["name"] != res.init and r["error"] is None:
            assert r["outcome"].startswith(("dropped", "stopped")), r
            # nobody dropped out ahead of the winner's log-likelihood at that point
            assert r["log_likelihood_short"] <= winner["log_likelihood_short"] + 1e-6 * abs(res.log_likelihood)
    # later rounds run the survivors longer: the winner ran more iterations than the first round's losers
    assert winner["iterations"] > min(r["iterations"] for r in res.starts if r["error"] is None)


def test_the_gaussianity_check_is_public_and_validates_its_input():
    rng = np.random.default_rng(0)
    assert smm.check_gaussian_design(rng.standard_normal((4000, 3))).ok
    assert not smm.check_gaussian_design(rng.exponential(size=(4000, 3))).ok
    with pytest.raises(ValueError, match="xt must be 2-D"):
        smm.check_gaussian_design(np.ones(5))
    with pytest.raises(ValueError, match="xt"):
        smm.check_gaussian_design(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]))


VOCAB = Path(__file__).resolve().parent / "data" / "vocab_en_de_fr.npz"


@pytest.fixture(scope="module")
def vocabulary():
    """The committed real design (2,000 MiniLM-L6 tokens, 16 principal components) and one MNL per
    language fitted to its token distribution (plain K = 1 fits)."""
    data = np.load(VOCAB)
    X = data["features"]
    atoms = np.stack(
        [fit_quiet(X, np.round(pr * 1e6).astype(np.int64), 1).params.atoms[0] for pr in data["language_probs"]]
    )
    return X, atoms


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_auto_reaches_the_oracle_on_a_real_design_with_a_small_sharp_class(vocabulary, scale):
    """Planted languages on real token embeddings (the paper's vocabulary case, where a maximum
    exists): weights .6/.3/.1 and each language's fitted MNL atom times ``scale`` (at 5, classes on a
    few dozen tokens).  Auto must reach EM from the planted truth and recover the weights."""
    X, mnl = vocabulary
    truth = smm.SMMParams(np.array([0.6, 0.3, 0.1]), scale * mnl)
    n = smm.simulate_counts(11, X, truth, 200_000)
    auto = fit_quiet(X, n, 3, seed=0, compute_standard_errors=False)
    oracle = fit_quiet(X, n, 3, init=truth, compute_standard_errors=False)
    assert auto.converged and oracle.converged
    assert auto.log_likelihood >= oracle.log_likelihood - 1.0
    aligned = smm.align_params(auto.params, truth)
    np.testing.assert_allclose(aligned.weights, truth.weights, atol=0.01)


@pytest.mark.parametrize("K, alive", [(2, 1), (3, 2), (4, 2)])
def test_split_distances_are_scored_by_the_mixture_log_likelihood(K, alive):
    """All split distances scored at once (in batches) equal the package's log-likelihood of each split,
    inert classes (weight 0) included."""
    from smm_ppl.em import greedy

    rng = np.random.default_rng(K)
    p, L = 300, 4
    x = rng.normal(size=(p, L))
    counts = rng.poisson(0.7, size=p).astype(float)
    atoms = rng.normal(size=(K, L))
    weights = np.zeros(K)
    weights[:alive] = rng.dirichlet(np.ones(alive))
    d = rng.normal(size=L)
    d /= np.linalg.norm(d)
    k, new = 0, alive
    trial = weights.copy()
    trial[k] = trial[new] = weights[k] / 2
    deltas = np.geomspace(0.05, 20.0, 7)
    scores = greedy._split_scores(x, counts, trial, greedy._log_sigma(x, atoms), atoms[k], d, k, new, deltas)
    for delta, score in zip(deltas, scores):
        a = atoms.copy()
        a[k], a[new] = atoms[k] + delta * d, atoms[k] - delta * d
        live = trial > 0
        oracle = smm.log_likelihood(x, counts, smm.SMMParams(trial[live], a[live]))
        assert score == pytest.approx(oracle, rel=1e-12)
