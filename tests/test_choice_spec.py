"""Choice models with named parameters: the specification, its one affine map, the log-likelihood at given
values, starts by name, and the warnings a user can act on.

The 3-class Swissmetro panel model with partial ties is checked against an independent NumPy/SciPy
implementation written here from the wide data (utilities per alternative, as biogeme writes them).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _choice_problems import DATA, simulate_panel, swissmetro_long
from scipy import optimize
from scipy.special import logsumexp

import smm_ppl as smm
from smm_ppl.choice.api import START_GAP, collinear_terms, warn_unconverged_starts

FEATURES = ["asc_car", "asc_train", "cost", "time"]

#: Constants tied in classes 1 and 2 and free in class 3; time tied in classes 2 and 3 and fixed at 0 in
#: class 1; cost free in every class; membership on a commuter dummy.
MODEL3 = smm.ChoiceModel(
    utilities={
        1: {"asc_car": "asc_car", "asc_train": "asc_train", "cost": "b_cost_1", "time": "b_time_1"},
        2: {"asc_car": "asc_car", "asc_train": "asc_train", "cost": "b_cost_2", "time": "b_time"},
        3: {"asc_car": "asc_car_3", "asc_train": "asc_train_3", "cost": "b_cost_3", "time": "b_time"},
    },
    membership={2: {"const": "s2", "commuter": "s2_commuter"}, 3: {"const": "s3", "commuter": "s3_commuter"}},
    fixed={"b_time_1": 0.0},
)
FREE3 = (
    "asc_car",
    "asc_train",
    "b_cost_1",
    "b_cost_2",
    "b_time",
    "asc_car_3",
    "asc_train_3",
    "b_cost_3",
    "s2",
    "s2_commuter",
    "s3",
    "s3_commuter",
)


# --------------------------------------------------------------------------- #
# The independent implementation: from the wide file, alternative by alternative
# --------------------------------------------------------------------------- #


class WideSwissmetro:
    """The 3-class panel log-likelihood of ``MODEL3`` in NumPy, from ``swissmetro.csv.gz`` as it is stored.

    Alternatives train, Swissmetro, car; train and car available only when ``SP != 0``; cost 0 for
    train and Swissmetro with a season ticket (``GA``); time and cost in hundreds (biogeme's scaling).
    """

    def __init__(self):
        w = pd.read_csv(DATA / "swissmetro.csv.gz")
        sp, no_ga = (w.SP != 0).to_numpy(), (w.GA == 0).to_numpy()
        self.av = np.column_stack([w.TRAIN_AV * sp, w.SM_AV, w.CAR_AV * sp]).astype(bool)
        self.cost = np.column_stack([w.TRAIN_CO * no_ga, w.SM_CO * no_ga, w.CAR_CO]) / 100.0
        self.time = np.column_stack([w.TRAIN_TT, w.SM_TT, w.CAR_TT]) / 100.0
        self.choice = w.CHOICE.to_numpy() - 1
        self.person, ids = pd.factorize(w.ID)
        self.commuter = (w.groupby("ID").PURPOSE.first().loc[ids] == 1).to_numpy(dtype=float)

    def class_loglik(self, asc_train, asc_car, b_cost, b_time):
        """(persons,) the sum of a person's log logit probabilities under one class."""
        v = b_cost * self.cost + b_time * self.time + np.array([asc_train, 0.0, asc_car])
        v = np.where(self.av, v, -np.inf)
        log_p = v[np.arange(len(v)), self.choice] - logsumexp(v, axis=1)
        return np.bincount(self.person, weights=log_p)

    def log_likelihood(self, p: dict) -> float:
        classes = [
            self.class_loglik(p["asc_train"], p["asc_car"], p["b_cost_1"], 0.0),
            self.class_loglik(p["asc_train"], p["asc_car"], p["b_cost_2"], p["b_time"]),
            self.class_loglik(p["asc_train_3"], p["asc_car_3"], p["b_cost_3"], p["b_time"]),
        ]
        score = np.column_stack(
            [
                np.zeros_like(self.commuter),
                p["s2"] + p["s2_commuter"] * self.commuter,
                p["s3"] + p["s3_commuter"] * self.commuter,
            ]
        )
        log_pi = score - logsumexp(score, axis=1, keepdims=True)
        return float(np.sum(logsumexp(log_pi + np.column_stack(classes), axis=1)))


@pytest.fixture(scope="module")
def wide():
    return WideSwissmetro()


def _swissmetro(**kw):
    frame = swissmetro_long()
    purpose = pd.read_csv(DATA / "swissmetro.csv.gz").PURPOSE.to_numpy()
    frame["commuter"] = (purpose[frame["obs"].to_numpy()] == 1).astype(float)
    args = dict(situation="obs", alternative="alternative", choice="chosen", features=FEATURES)
    return smm.choice_data(frame, availability="available", **{**args, **kw})


@pytest.fixture(scope="module")
def panel():
    return _swissmetro(person="person", covariates=["commuter"])


@pytest.fixture(scope="module")
def fit3(panel):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every start converged (to its own local maximum): no warning
        return smm.fit_latent_class(panel, MODEL3)


# --------------------------------------------------------------------------- #
# The specification and its map
# --------------------------------------------------------------------------- #


def test_named_parameters_are_one_affine_map(panel):
    pmap = smm.choice.parameter_map(MODEL3, panel.feature_names, panel.covariates, panel.covariate_names)
    assert pmap.names == FREE3 and pmap.n_coefficients == 8
    z = np.arange(1.0, 13.0)
    atoms = np.asarray(pmap.atoms(z))  # features asc_car, asc_train, cost, time by class
    np.testing.assert_array_equal(atoms, [[1, 2, 3, 0], [1, 2, 4, 5], [6, 7, 8, 5]])
    member = np.asarray(pmap.membership(z))  # covariates const, commuter by class
    np.testing.assert_array_equal(member, [[0, 9, 11], [0, 10, 12]])
    np.testing.assert_allclose(pmap.pack(atoms, member + 3.0), z)  # ties averaged, membership re-referenced
    # Every atom is linear in z: the map's Jacobian is the coefficient map.
    A = np.asarray(pmap.coefficient_map())
    np.testing.assert_array_equal(np.einsum("klp,p->kl", A, z[:8]), atoms)
    assert MODEL3.n_components == 3
    assert MODEL3.parameters[:5] == ("asc_car", "asc_train", "b_cost_1", "b_time_1", "b_cost_2")


def test_the_shorthand_builds_the_same_map_and_fit():
    """``shared=``/``fixed=`` and the ChoiceModel with the shorthand's names: the same map, the same fit."""
    data = _swissmetro()
    named = smm.ChoiceModel(
        [
            {"asc_car": "asc_car", "asc_train": "asc_train", "cost": "cost"},
            {"asc_car": "asc_car", "asc_train": "asc_train", "cost": "cost", "time": "time[2]"},
        ]
    )
    short = dict(shared=["asc_car", "asc_train", "cost"], fixed={"time": {1: 0.0}})
    args = (data.feature_names, data.covariates, data.covariate_names)
    a = smm.choice.parameter_map(smm.LatentClassSpec(**short), *args, 2)
    b = smm.choice.parameter_map(named, *args)
    assert a.names == b.names == ("asc_car", "asc_train", "cost", "time[2]", "membership[2]:const")
    for field in ("index", "fixed_values", "membership_index", "membership_fixed"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    fa = smm.fit_latent_class(data, 2, n_starts=3, **short)
    fb = smm.fit_latent_class(data, named, n_starts=3)
    assert fa.log_likelihood == fb.log_likelihood and round(fb.log_likelihood, 3) == -5208.498
    np.testing.assert_array_equal(fa.z, fb.z)
    z = dict(zip(fa.names, fa.z, strict=True))
    assert smm.latent_class_log_likelihood(data, 2, z, **short) == smm.latent_class_log_likelihood(data, named, z)
    # The shorthand's model, as the result carries it.
    assert fa.model.utilities[1]["time"] == "time[2]" and fa.model.fixed == {"time[1]": 0.0}


def test_a_default_membership_and_fixed_membership_parameters(panel):
    model = smm.ChoiceModel(
        [{"cost": "b_cost", "time": "b_time"}, {"cost": "b_cost", "asc_car": "asc_car"}],
        fixed={"membership[2]:commuter": 0.5},
    )
    pmap = smm.choice.parameter_map(model, panel.feature_names, panel.covariates, panel.covariate_names)
    assert pmap.names == ("b_cost", "b_time", "asc_car", "membership[2]:const")
    np.testing.assert_array_equal(np.asarray(pmap.membership(np.array([0, 0, 0, 2.0]))), [[0, 2], [0, 0.5]])
    # A column no class uses has coefficient 0 everywhere (asc_train).
    np.testing.assert_array_equal(pmap.index[:, 1], [-1, -1])


def test_specification_errors_name_what_to_do(panel):
    with pytest.raises(TypeError, match=r"utilities maps each class \(1 .. K\)"):
        smm.ChoiceModel({"cost": "b_cost"})
    with pytest.raises(ValueError, match=r"utilities has classes \[1, 3\]; number them 1 .. 2"):
        smm.ChoiceModel({1: {}, 3: {}})
    with pytest.raises(TypeError, match=r"utilities\[2\]\['cost'\] must be a parameter name"):
        smm.ChoiceModel([{}, {"cost": 0.5}])
    with pytest.raises(ValueError, match="membership names class 3; classes are numbered 1 .. 2"):
        smm.ChoiceModel([{}, {}], membership={3: {"const": "s3"}})
    with pytest.raises(ValueError, match=r"parameter\(s\) \['b'\] appear in a utility and in the membership"):
        smm.ChoiceModel([{"cost": "b"}, {}], membership={2: {"const": "b"}})
    with pytest.raises(ValueError, match="fixed names 'b_tme', which no utility or membership score uses"):
        smm.ChoiceModel([{"time": "b_time"}], fixed={"b_tme": 0.0})
    with pytest.raises(TypeError, match=r"fixed\['b_time'\] must be a number"):
        smm.ChoiceModel([{"time": "b_time"}], fixed={"b_time": "zero"})
    with pytest.raises(ValueError, match=r"class 1 names column\(s\) \['price'\], which are not features"):
        smm.fit_latent_class(panel, smm.ChoiceModel([{"price": "b"}]))
    with pytest.raises(ValueError, match=r"class 2 names covariate\(s\) \['age'\], which the data do not have"):
        smm.fit_latent_class(panel, smm.ChoiceModel([{}, {}], membership={2: {"age": "g"}}))
    with pytest.raises(ValueError, match="every class has a membership parameter for 'const'"):
        smm.fit_latent_class(panel, smm.ChoiceModel([{}, {}], membership={1: {"const": "a"}, 2: {"const": "b"}}))
    with pytest.raises(ValueError, match="shared= and fixed= are shorthands for an integer n_components"):
        smm.fit_latent_class(panel, MODEL3, shared=["cost"])
    with pytest.raises(TypeError, match=r"n_components must be the number of classes \(int\) or a smm.ChoiceModel"):
        smm.fit_latent_class(panel, "3")
    with pytest.raises(ValueError, match="To tie a coefficient across some classes and fix it in others"):
        smm.fit_latent_class(panel, 3, shared=["asc_car"], fixed={"asc_car": {3: 0.0}})


# --------------------------------------------------------------------------- #
# The log-likelihood at given values, and starts by name
# --------------------------------------------------------------------------- #


def test_log_likelihood_at_given_values_equals_the_independent_implementation(panel, wide):
    rng = np.random.default_rng(0)
    for _ in range(3):
        params = dict(zip(FREE3, rng.normal(scale=0.7, size=len(FREE3)), strict=True))
        ours = smm.latent_class_log_likelihood(panel, MODEL3, params)
        assert ours == pytest.approx(wide.log_likelihood(params), rel=1e-12)
    per_person = smm.latent_class_log_likelihood(panel, MODEL3, params, per_unit=True)
    assert per_person.index.name == "person" and len(per_person) == 752
    assert per_person.sum() == pytest.approx(ours, rel=1e-12)
    # A fixed parameter may be given at its fixed value; an array is in the order of the names.
    assert smm.latent_class_log_likelihood(panel, MODEL3, {**params, "b_time_1": 0.0}) == ours
    assert smm.latent_class_log_likelihood(panel, MODEL3, [params[n] for n in FREE3]) == ours


def test_log_likelihood_errors_name_the_parameters(panel):
    params = dict.fromkeys(FREE3, 0.0)
    with pytest.raises(ValueError, match=r"params has no value for parameter\(s\) \['s3_commuter'\]"):
        smm.latent_class_log_likelihood(panel, MODEL3, {n: v for n, v in params.items() if n != "s3_commuter"})
    with pytest.raises(ValueError, match="params names unknown parameter 'b_tim'"):
        smm.latent_class_log_likelihood(panel, MODEL3, {**params, "b_tim": 1.0})
    with pytest.raises(ValueError, match=r"'b_time_1' is fixed at 0.0 in the model; drop it"):
        smm.latent_class_log_likelihood(panel, MODEL3, {**params, "b_time_1": -1.0})
    with pytest.raises(ValueError, match=r"params must have 12 values"):
        smm.latent_class_log_likelihood(panel, MODEL3, np.zeros(11))
    with pytest.raises(ValueError, match=r"params has NaN or infinite values for \['s2'\]"):
        smm.latent_class_log_likelihood(panel, MODEL3, {**params, "s2": np.nan})
    with pytest.raises(ValueError, match="init names unknown parameter 'asc_bus'"):
        smm.fit_latent_class(panel, MODEL3, init={"asc_bus": 0.0})


def test_three_class_panel_optimum_matches_scipy_on_the_independent_implementation(fit3, wide):
    """From ``init="auto"``: the optimum of BFGS on the NumPy likelihood started near it, to a statistical
    tolerance (log-likelihood within 1e-3, every estimate within 1 % of its standard error)."""
    assert fit3.converged and fit3.names == FREE3
    assert fit3.log_likelihood == pytest.approx(wide.log_likelihood(dict(zip(FREE3, fit3.z, strict=True))), rel=1e-12)
    se = fit3.params["std_err"].to_numpy()
    assert np.all(np.isfinite(se))

    def negll(x):
        return -wide.log_likelihood(dict(zip(FREE3, x, strict=True)))

    def grad(x, h=1e-5):  # central differences: truncation ~h^2, rounding ~1e-16 * 4000 / h, both << 1e-6
        e = np.eye(x.size) * h
        return np.array([(negll(x + d) - negll(x - d)) / (2 * h) for d in e])

    start = np.round(fit3.z, 1)  # a good start: the estimate to one decimal
    res = optimize.minimize(negll, start, jac=grad, method="BFGS", options={"gtol": 1e-5, "maxiter": 500})
    # Within 1e-3 in log-likelihood: far below any likelihood-ratio test's resolution (1.92 at 5 %), far
    # above both optimisers' remaining gain (a gradient below 1e-5 through an information of scale 1e2-1e4).
    assert abs(-res.fun - fit3.log_likelihood) < 1e-3
    assert -res.fun <= fit3.log_likelihood + 1e-6  # ours is not worse
    np.testing.assert_array_less(np.abs(res.x - fit3.z), 0.01 * se)


def test_starts_by_name_reach_the_same_optimum(panel, fit3):
    estimate = fit3.params["estimate"]  # a Series by name
    rounded = {name: round(v, 1) for name, v in estimate.items() if name != "s3_commuter"}  # partial: others 0
    again = smm.fit_latent_class(panel, MODEL3, init=[estimate, rounded])
    assert list(again.starts["iterations"] <= [2, 50]) == [True, True]
    np.testing.assert_allclose(again.starts["log_likelihood"], fit3.log_likelihood, atol=1e-6)
    assert smm.latent_class_log_likelihood(panel, MODEL3, estimate) == pytest.approx(fit3.log_likelihood, abs=1e-9)


# --------------------------------------------------------------------------- #
# Warnings a user can act on
# --------------------------------------------------------------------------- #


@pytest.mark.filterwarnings("ignore::smm_ppl.ConvergenceWarning")  # two collinear terms: a singular information
def test_collinear_terms_within_a_class_are_named():
    frame, _ = simulate_panel(3, [[1.0, -0.5], [-0.5, 1.0]], n_persons=40, n_situations=3)
    frame["x1_copy"] = frame["x1"]
    frame["x12"] = frame["x1"] - 2.0 * frame["x2"]
    columns = dict(situation="situation", alternative="alternative", choice="chosen", person="person")
    data = smm.choice_data(frame, features=["x1", "x2", "x1_copy", "x12"], **columns)
    model = smm.ChoiceModel(
        [
            {"x1": "a1", "x2": "a2"},
            {"x1": "b1", "x1_copy": "b1_copy", "x2": "b2"},
            {"x1": "c1", "x2": "c2", "x12": "c3"},
        ]
    )
    pmap = smm.choice.parameter_map(model, data.feature_names, data.covariates, data.covariate_names)
    found = collinear_terms(pmap, data.layout)
    assert found == [(2, ["b1", "b1_copy"], ["x1", "x1_copy"]), (3, ["c1", "c2", "c3"], ["x1", "x2", "x12"])]
    # One parameter on both columns is one term: identified.
    tied = smm.ChoiceModel([{"x1": "a", "x1_copy": "a"}])
    assert (
        collinear_terms(smm.choice.parameter_map(tied, data.feature_names, data.covariates, ("const",)), data.layout)
        == []
    )
    with pytest.warns(UserWarning, match=r"in class 2, the terms of parameter\(s\) \['b1', 'b1_copy'\]"):
        smm.fit_latent_class(
            data, smm.ChoiceModel([{"x1": "a1"}, {"x1": "b1", "x1_copy": "b1_copy"}]), init=np.zeros(4)
        )


def test_starts_that_did_not_converge_are_counted_with_their_gap():
    table = pd.DataFrame(
        {
            "log_likelihood": [-100.0, -100.0 - START_GAP / 2, -350.5, -4000.0, np.nan, -120.0],
            "iterations": [9, 500, 1, 1, 0, 12],
            "converged": [True, False, False, False, False, True],
        }
    )
    with pytest.warns(smm.ConvergenceWarning, match=r"3 of 6 starts did not converge") as caught:
        warn_unconverged_starts(table, 0, 500)
    message = str(caught[0].message)
    assert "stopped after 0 to 1 iterations" in message and "ended 250.5 to inf below the best" in message
    table["converged"] = [True, False, True, True, True, True]  # other local maxima, or the best's own: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unconverged_starts(table, 0, 500)
