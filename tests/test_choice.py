"""The latent-class logit on choice data: validation, specification, the published Swissmetro model,
recovery against the truth and an oracle, monotone iterations, standard errors, predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _choice_problems import Oracle, simulate_panel, swissmetro_long
from scipy import optimize

import smm_ppl as smm

ATOMS = np.array([[1.5, -1.0, 0.5], [-1.0, 0.8, 1.5]])
FEATURES = ["x1", "x2", "x3"]


def _data(frame, **kw):
    args = dict(situation="situation", alternative="alternative", choice="chosen", features=FEATURES)
    args.update(kw)
    return smm.choice_data(frame, **args)


@pytest.fixture(scope="module")
def small():
    frame, _ = simulate_panel(1, ATOMS, n_persons=30, n_situations=3)
    return frame


# --------------------------------------------------------------------------- #
# Validation: each error names the rows, situations or columns
# --------------------------------------------------------------------------- #


def test_a_situation_without_a_choice_is_named(small):
    bad = small.copy()
    bad.loc[bad["situation"] == 4, "chosen"] = 0
    with pytest.raises(ValueError, match=r"situation\(s\) 4 have no chosen alternative"):
        _data(bad)


def test_a_situation_without_an_available_alternative_is_named(small):
    bad = small.copy()
    bad.loc[bad["situation"] == 7, "available"] = 0
    bad.loc[bad["situation"] == 7, "chosen"] = 0
    with pytest.raises(ValueError, match=r"situation\(s\) 7 have no available alternative"):
        _data(bad, availability="available")


def test_a_chosen_unavailable_alternative_names_its_row(small):
    bad = small.copy()
    row = bad.index[(bad["situation"] == 2) & (bad["chosen"] == 1)][0]
    bad.loc[row, "available"] = 0
    with pytest.raises(ValueError, match=rf"chosen alternative is unavailable in 1 row\(s\) \(index {row}\)"):
        _data(bad, availability="available")


def test_a_person_changing_within_a_situation_is_named(small):
    bad = small.copy()
    bad.loc[bad.index[(bad["situation"] == 5)][1], "person"] = "someone else"
    with pytest.raises(ValueError, match=r"person id changes within situation\(s\) 5"):
        _data(bad, person="person")


def test_duplicated_rows_are_named(small):
    bad = pd.concat([small, small.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicated \(situation, alternative\) pairs in 2 row\(s\) \(index 3, 270\)"):
        _data(bad)


def test_non_numeric_and_nan_features_are_named(small):
    bad = small.copy()
    bad["x2"] = bad["x2"].astype(str)
    with pytest.raises(TypeError, match="features column 'x2' is not numeric"):
        _data(bad)
    bad = small.copy()
    bad.loc[[5, 8], "x3"] = np.nan
    with pytest.raises(ValueError, match=r"'x3' has NaN or infinite values in 2 row\(s\) \(index 5, 8\)"):
        _data(bad)


def test_a_feature_constant_within_every_situation_is_unidentified(small):
    bad = small.copy()
    bad["x1"] = bad["situation"] * 0.5  # varies across situations only
    with pytest.raises(ValueError, match=r"feature\(s\) \['x1'\] are constant within every situation"):
        _data(bad)


def test_wrong_arguments_are_named(small):
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame"):
        smm.choice_data(small.to_numpy(), situation="s", alternative="a", choice="c", features=["x"])
    with pytest.raises(ValueError, match=r"choice='picked' is not a column"):
        _data(small, choice="picked")
    with pytest.raises(ValueError, match="covariate 'x1' changes within a person"):
        _data(small, person="person", covariates=["x1"])
    data = _data(small)
    with pytest.raises(ValueError, match="shared names 'x9', which is not a feature"):
        smm.fit_latent_class(data, 2, shared=["x9"])
    with pytest.raises(ValueError, match=r"fixed\['x1'\] names class 3; classes are numbered 1 .. 2"):
        smm.fit_latent_class(data, 2, fixed={"x1": {3: 0.0}})
    with pytest.raises(ValueError, match="does not apply to choice situations"):
        smm.fit_latent_class(data, 2, init="moments")
    with pytest.raises(TypeError, match="build it from a long-format DataFrame with smm.choice_data"):
        smm.fit_latent_class(small, 2)


def test_parameter_names_come_from_the_columns(small):
    data = _data(small, person="person", covariates=["income"])
    pmap = smm.choice.parameter_map(
        smm.LatentClassSpec(shared=("x1",), fixed={"x3": {1: 0.0}}),
        data.feature_names,
        data.covariates,
        data.covariate_names,
        2,
    )
    assert pmap.names == ("x1", "x2[1]", "x2[2]", "x3[2]", "membership[2]:const", "membership[2]:income")
    z = np.arange(1.0, 7.0)
    atoms = np.asarray(pmap.atoms(z))
    np.testing.assert_array_equal(atoms, [[1.0, 2.0, 0.0], [1.0, 3.0, 4.0]])
    np.testing.assert_allclose(pmap.pack(atoms, np.asarray(pmap.membership(z))), z)


# --------------------------------------------------------------------------- #
# The published model: biogeme's example 07discreteMixture on Swissmetro
# --------------------------------------------------------------------------- #


def test_swissmetro_two_class_model_reproduces_biogeme():
    """Bierlaire's published latent-class model: log-likelihood -5208.498 and the table of estimates."""
    frame = swissmetro_long()
    data = smm.choice_data(
        frame,
        situation="obs",
        alternative="alternative",
        choice="chosen",
        features=["asc_car", "asc_train", "cost", "time"],
        availability="available",
    )
    assert data.n_obs == 6768
    fit = smm.fit_latent_class(data, 2, shared=["asc_car", "asc_train", "cost"], fixed={"time": {1: 0.0}})
    assert fit.converged
    assert round(fit.log_likelihood, 3) == -5208.498
    est, se = fit.params["estimate"], fit.params["std_err"]
    published = {  # parameter: (estimate, standard error), to the published digits
        "asc_car": (0.125, 0.0505),
        "asc_train": (-0.398, 0.0608),
        "cost": (-1.26, 0.0612),
        "time[2]": (-2.80, 0.176),
    }
    for name, (value, error) in published.items():
        digits = len(str(value).split(".")[1])
        assert round(est[name], digits) == value, name
        assert float(f"{se[name]:.3g}") == error, name
    share = fit.weights_table.loc["weight[1]"]
    assert round(share["estimate"], 3) == 0.251
    assert round(share["std_err"], 4) == 0.0219
    # Every start of init="auto" reached the same optimum.
    assert np.ptp(fit.starts["log_likelihood"]) < 1e-6


# --------------------------------------------------------------------------- #
# Recovery: panels with a covariate in the membership model
# --------------------------------------------------------------------------- #

MEMBERSHIP = np.array([[0.0, 0.3], [0.0, 1.2]])  # [const, income] x class


@pytest.fixture(scope="module")
def covariate_panel():
    frame, classes = simulate_panel(7, ATOMS, n_persons=400, n_situations=6, membership=MEMBERSHIP, unavailable=0.2)
    data = _data(frame, person="person", covariates=["income"], availability="available")
    fit = smm.fit_latent_class(data, 2, seed=0)
    return frame, classes, data, fit


def _aligned(fit):
    """The fit's classes ordered like the truth (labels are arbitrary without a constraint)."""
    return smm.match_components(fit.atoms, ATOMS)


def test_panel_with_covariates_recovers_the_truth(covariate_panel):
    _, classes, data, fit = covariate_panel
    assert fit.converged
    order = _aligned(fit)
    se = fit.params["std_err"].to_numpy()
    np.testing.assert_array_less(np.abs(fit.atoms[order] - ATOMS), 4 * se[: fit.parameter_map.n_coefficients].max())
    # The membership coefficient of income, in the truth's labelling: the 2-vs-1 log-odds slope.
    gamma = np.asarray(fit.parameter_map.membership(fit.z))[:, order]
    slope = gamma[1, 1] - gamma[1, 0]
    assert abs(slope - 1.2) < 4 * fit.params.loc["membership[2]:income", "std_err"]
    # Posterior class probabilities per person identify most persons' classes.
    post = fit.class_probabilities.to_numpy()[:, order]
    assert np.allclose(post.sum(axis=1), 1.0)
    assert np.mean(post.argmax(axis=1) == classes) > 0.8


def test_panel_fit_is_the_oracle_maximum(covariate_panel):
    """SciPy BFGS on the NumPy oracle likelihood, started at our estimate, finds nothing better."""
    frame, _, data, fit = covariate_panel
    pmap = fit.parameter_map
    oracle = Oracle(frame, FEATURES)
    income = frame.groupby("person", sort=False)["income"].first().to_numpy()
    n_coef = pmap.n_coefficients

    def negll(z):  # the parametrisation written out: x1[1], x1[2], x2[1], ..., membership[2]:const, :income
        atoms = z[:n_coef].reshape(3, 2).T
        score2 = z[n_coef] + z[n_coef + 1] * income
        log_cp = -np.logaddexp(0.0, np.column_stack([score2, -score2]))
        return -oracle.unit_loglik(atoms, log_cp).sum()

    assert -negll(fit.z) == pytest.approx(fit.log_likelihood, abs=1e-8)
    res = optimize.minimize(negll, fit.z + 0.05, method="BFGS", options={"gtol": 1e-6})
    assert -res.fun <= fit.log_likelihood + 1e-6
    np.testing.assert_allclose(res.x, fit.z, atol=5e-3)


def test_iterations_are_monotone(covariate_panel):
    *_, fit = covariate_panel
    assert fit.trace.size >= 2
    assert np.all(np.diff(fit.trace) >= -1e-9 * np.abs(fit.trace[:-1]))
    assert fit.trace[-1] == pytest.approx(fit.log_likelihood)


def test_progress_lines_say_what_runs(small, capsys):
    """As fit_em's: the starts, each run to convergence, the winner; nothing with progress_bar=False."""
    data = _data(small, person="person")
    fit = smm.fit_latent_class(data, 2, n_starts=3, progress_bar=True)
    err = capsys.readouterr().err
    assert "[fit_latent_class" in err and "building the starts" in err
    assert "3 start(s), each to convergence" in err and f"start {fit.starts['won'].idxmax()} won" in err
    smm.fit_latent_class(data, 2, n_starts=3, progress_bar=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress_bar"):
        smm.fit_latent_class(data, 2, progress_bar="yes")


def test_robust_standard_errors_are_the_sandwich(covariate_panel):
    *_, fit = covariate_panel
    cov = fit.covariance
    meat = fit.unit_scores.T @ fit.unit_scores
    np.testing.assert_allclose(fit.robust_covariance, cov @ meat @ cov, rtol=1e-10)
    # Under the true model the sandwich and the inverse information agree to sampling error.
    ratio = fit.params["robust_std_err"] / fit.params["std_err"]
    assert ratio.between(0.8, 1.25).all()
    # The scores sum to the gradient, zero at the maximum.
    assert np.abs(fit.unit_scores.sum(axis=0)).max() < 1e-4


def test_predictions_mix_the_classes(covariate_panel):
    frame, _, data, fit = covariate_panel
    pred = fit.predict_proba(per_class=True)
    assert len(pred) == data.layout.n_rows
    np.testing.assert_allclose(pred.groupby("situation")["probability"].sum(), 1.0, rtol=1e-12)
    prior = fit.prior_class_probabilities().to_numpy()
    unit_of_row = np.asarray(data.layout.row_unit)
    mixed = (prior[unit_of_row] * pred[["class 1", "class 2"]].to_numpy()).sum(axis=1)
    np.testing.assert_allclose(pred["probability"], mixed, rtol=1e-12)
    # New situations for the same persons: prediction on a subset is the same numbers.
    sub = frame[frame["situation"] < 60]
    new = _data(sub, person="person", covariates=["income"], availability="available")
    pred_new = fit.predict_proba(new)
    merged = pred_new.merge(pred, on=["situation", "alternative"], suffixes=("", "_all"))
    np.testing.assert_allclose(merged["probability"], merged["probability_all"], rtol=1e-12)
    with pytest.raises(ValueError, match="membership covariates"):
        fit.predict_proba(_data(sub, person="person", availability="available"))


@pytest.mark.integration
def test_standard_errors_match_the_monte_carlo_spread():
    """Over 40 simulated panels, the spread of the estimates matches the mean standard error."""
    truth = np.array([[1.0, -0.5], [-0.7, 1.0]])
    shares = np.array([0.4, 0.6])
    estimates, errors = [], []
    for rep in range(40):
        frame, _ = simulate_panel(100 + rep, truth, n_persons=150, n_situations=5, shares=shares)
        data = smm.choice_data(
            frame,
            situation="situation",
            alternative="alternative",
            choice="chosen",
            features=["x1", "x2"],
            person="person",
        )
        start = np.concatenate([truth.ravel(order="F"), [np.log(shares[1] / shares[0])]])
        fit = smm.fit_latent_class(data, 2, init=start)
        estimates.append(fit.z)
        errors.append(fit.params["std_err"].to_numpy())
    spread = np.std(estimates, axis=0, ddof=1)
    mean_se = np.mean(errors, axis=0)
    # 40 replications: the sd of an sd estimate is about 11 %; allow 35 %.
    np.testing.assert_array_less(np.abs(spread / mean_se - 1.0), 0.35)
    np.testing.assert_array_less(np.abs(np.mean(estimates, axis=0) - start), 3 * mean_se / np.sqrt(40) + 0.02)


def test_analytic_derivatives_equal_automatic_differentiation(small):
    """Louis' identity in `derivatives` against JAX's Hessian of the one likelihood, with shared,
    fixed and covariate terms and three classes."""
    import jax
    import jax.numpy as jnp

    from smm_ppl.choice import fit as lc_fit

    data = _data(small, person="person", covariates=["income"], availability="available")
    pmap = smm.choice.parameter_map(
        smm.LatentClassSpec(shared=("x1",), fixed={"x3": {1: 0.0}}),
        data.feature_names,
        data.covariates,
        data.covariate_names,
        3,
    )
    z = jnp.asarray(np.random.default_rng(0).normal(size=pmap.n_params) * 0.5)
    d = lc_fit.derivatives(z, pmap, data.layout)
    ll = lc_fit.total_ll(z, pmap, data.layout)
    assert float(d.ll) == pytest.approx(float(ll), rel=1e-13)
    np.testing.assert_allclose(d.grad, jax.grad(lc_fit.total_ll)(z, pmap, data.layout), atol=1e-11)
    np.testing.assert_allclose(-d.information, jax.hessian(lc_fit.total_ll)(z, pmap, data.layout), atol=1e-10)
    per_unit = jax.jacfwd(lambda zz: pmap.unit_log_likelihoods(zz, data.layout))(z)
    np.testing.assert_allclose(d.unit_scores, per_unit, atol=1e-12)
    h = jax.nn.softmax(data.layout.log_component_probs(pmap.atoms(z)) + pmap.log_class_probs(z).T, axis=0)
    hess_q = jax.hessian(lc_fit.complete_ll)(z, h, pmap, data.layout)
    np.testing.assert_allclose(-d.complete_information, hess_q, atol=1e-10)


def test_swissmetro_panel_model_matches_biogeme():
    """The same model with the class drawn once per respondent (752 persons), against biogeme 3.3's
    panel fit (``PanelLikelihoodTrajectory``; ``benchmarks/peers/run_biogeme_lc.py``, results in
    ``benchmarks/results/biogeme_swissmetro.json``): log-likelihood, estimates, and classical and
    robust (per-respondent sandwich) standard errors."""
    frame = swissmetro_long()
    data = smm.choice_data(
        frame,
        situation="obs",
        alternative="alternative",
        choice="chosen",
        features=["asc_car", "asc_train", "cost", "time"],
        availability="available",
        person="person",
    )
    assert data.panel and data.n_units == 752
    fit = smm.fit_latent_class(data, 2, shared=["asc_car", "asc_train", "cost"], fixed={"time": {1: 0.0}})
    assert fit.log_likelihood == pytest.approx(-4623.248405605, abs=1e-6)
    biogeme = {  # name: (estimate, classical se, robust se)
        "asc_car": (0.25765033399977955, 0.04523631927205471, 0.08878846654957372),
        "asc_train": (-0.26479816899433684, 0.05264302074600566, 0.10485840936818486),
        "cost": (-1.411648992697156, 0.06733576270117823, 0.2613115473650351),
        "time[2]": (-3.589411857699045, 0.10035075721854765, 0.16547352674082794),
    }
    for name, (value, se, robust) in biogeme.items():
        row = fit.params.loc[name]
        assert row["estimate"] == pytest.approx(value, abs=1e-5), name
        assert row["std_err"] == pytest.approx(se, rel=1e-3), name
        assert row["robust_std_err"] == pytest.approx(robust, rel=1e-3), name
    share = fit.weights_table.loc["weight[1]"]
    assert share["estimate"] == pytest.approx(0.26918204968248816, abs=1e-6)
    assert share["std_err"] == pytest.approx(0.019149171110563593, rel=1e-3)
    assert share["robust_std_err"] == pytest.approx(0.020276942876707896, rel=1e-3)


def test_compare_components_ranks_the_number_of_classes(covariate_panel):
    """BIC across K on choice data: the two-class truth beats one class, and each row is its own fit."""
    _, _, data, fit = covariate_panel
    table, fits = smm.compare_components(data, None, [1, 2], method="bic", return_fits=True)
    assert list(table.index) == [2, 1]
    assert table.loc[2, "log_likelihood"] == pytest.approx(fit.log_likelihood, abs=1e-6)
    assert table.loc[1, "n_params"] == 3 and table.loc[2, "n_params"] == 8
    assert table.loc[1, "bic"] == pytest.approx(-2 * fits[1].log_likelihood + 3 * np.log(data.n_units))


def test_row_order_unbalanced_panels_and_covariate_tables_do_not_matter():
    """Shuffled rows, persons with different numbers of situations, and covariates from a person table:
    the same log-likelihood as the oracle, and the same data as the column form."""
    frame, _ = simulate_panel(11, ATOMS, n_persons=40, n_situations=5, membership=MEMBERSHIP, unavailable=0.3)
    rng = np.random.default_rng(0)
    drop = rng.choice(frame["situation"].unique(), size=60, replace=False)  # unbalanced panel
    frame = frame[~frame["situation"].isin(drop)]
    shuffled = frame.sample(frac=1.0, random_state=1)
    table = frame.groupby("person")[["income"]].first()
    a = _data(frame, person="person", covariates=["income"], availability="available")
    b = _data(shuffled, person="person", availability="available", covariates=table)
    z = np.array([1.2, -0.7, -0.9, 0.6, 0.4, 1.1, 0.2, 0.9])
    pmap_a = smm.choice.parameter_map(smm.LatentClassSpec(), a.feature_names, a.covariates, a.covariate_names, 2)
    pmap_b = smm.choice.parameter_map(smm.LatentClassSpec(), b.feature_names, b.covariates, b.covariate_names, 2)
    ll_a = np.asarray(pmap_a.unit_log_likelihoods(z, a.layout))
    ll_b = np.asarray(pmap_b.unit_log_likelihoods(z, b.layout))
    order_b = pd.Index(b.units).get_indexer(a.units)
    np.testing.assert_allclose(ll_b[order_b], ll_a, rtol=1e-12)
    oracle = Oracle(frame, FEATURES)  # units in order of first appearance, as choice_data keeps them
    np.testing.assert_allclose(ll_a, oracle.unit_loglik(pmap_a.atoms(z), pmap_a.log_class_probs(z)), rtol=1e-12)
    assert sorted(np.bincount(np.asarray(a.layout.unit))) != [5] * 40  # really unbalanced


def test_counts_are_repeated_choices(small):
    """A situation whose chosen count is 2 is the same person choosing twice in two copies of it."""
    twice = small.copy()
    twice["chosen"] *= 2
    copy = small.copy()
    copy["situation"] += small["situation"].max() + 1
    doubled = pd.concat([small, copy], ignore_index=True)
    a = _data(twice, person="person")
    b = _data(doubled, person="person")
    assert a.n_obs == b.n_obs == 2 * small["chosen"].sum()
    weights, atoms = np.array([0.3, 0.7]), ATOMS
    ll_a = float(a.layout.log_likelihood(weights, atoms))
    assert ll_a == pytest.approx(float(b.layout.log_likelihood(weights, atoms)), rel=1e-12)


def test_electricity_panel_matches_biogeme_and_lcl_choice():
    """Train's Electricity panel (361 persons x 12 situations), two classes, six class-specific
    coefficients: biogeme 3.3.2 and lcl-choice 0.1.46 reach log-likelihood -4526.829029
    (``benchmarks/results/electricity_peers.json``); biogeme's classical and robust errors agree."""
    frame = pd.read_csv(Path(__file__).parent / "data" / "electricity.csv.gz")
    data = smm.choice_data(
        frame,
        situation="chid",
        alternative="alt",
        choice="choice",
        features=["pf", "cl", "loc", "wk", "tod", "seas"],
        person="id",
    )
    assert (data.n_units, data.n_situations) == (361, 4308)
    fit = smm.fit_latent_class(data, 2, n_starts=2)
    assert fit.log_likelihood == pytest.approx(-4526.829028773465, abs=1e-6)
    k = int(np.argmax(-fit.atoms[:, 4]))  # biogeme's class 0: the one with the larger time-of-day penalty
    biogeme = {  # feature: (estimate, classical se, robust se) in that class
        "pf": (-0.7477018138172741, 0.04038257379332553, 0.09326560179657556),
        "tod": (-8.474357178071967, 0.42208076072624706, 1.0436467596167682),
        "seas": (-7.6551849255583475, 0.3522930776671772, 0.7918532553392494),
    }
    for name, (value, se, robust) in biogeme.items():
        row = fit.params.loc[f"{name}[{k + 1}]"]
        assert row["estimate"] == pytest.approx(value, abs=1e-4), name
        assert row["std_err"] == pytest.approx(se, rel=2e-3), name
        assert row["robust_std_err"] == pytest.approx(robust, rel=2e-3), name
    assert fit.weights[k] == pytest.approx(0.48652095980450194, abs=1e-5)
