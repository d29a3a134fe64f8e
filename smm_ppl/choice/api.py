"""``fit_latent_class``: the latent-class logit on choice data, with standard errors and predictions;
``latent_class_log_likelihood``: its log-likelihood at given parameter values."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from ..core.prior import Prior, check_prior
from ..core.progress import Progress, check_progress_bar
from ..core.validation import check_positive_float, check_positive_int
from ..em import INIT_NAMES, ConvergenceWarning, fit_components, run_starts
from .data import ChoiceData
from .fit import NEWTON_EM, derivatives, newton_decrement, partition_starts
from .spec import ChoiceModel, LatentClassSpec, ParameterMap, model_map, shorthand_model

__all__ = ["LatentClassResult", "fit_latent_class", "latent_class_log_likelihood", "DEFAULT_STARTS"]

#: Starts tried by ``init="auto"``.
DEFAULT_STARTS = 10
#: The SMM's starts (the registry's names), which build on counts over one set of items.
_SMM_INITS = ("moments", *(name for name in INIT_NAMES if name != "auto"))
#: A start that did not converge and ended this far below the best log-likelihood is reported.
START_GAP = 1e-3
#: A class's terms are collinear when the smallest eigenvalue of their correlation (within situations) is below it.
COLLINEAR_TOL = 1e-9


def _p_values(t: np.ndarray) -> np.ndarray:
    return 2.0 * stats.norm.sf(np.abs(t))


def _invert(info: np.ndarray) -> np.ndarray | None:
    if not np.all(np.isfinite(info)):
        return None
    lam, vec = np.linalg.eigh(info)
    if lam[0] <= 1e-10 * max(lam[-1], 1e-300):
        return None
    return (vec / lam) @ vec.T


@dataclass(frozen=True, eq=False)
class LatentClassResult:
    """A fitted latent-class logit (from :func:`fit_latent_class`).

    Attributes
    ----------
    data : ChoiceData
    parameter_map : ParameterMap
    z : (P,) ndarray
        The free parameters at the estimate, in the order of ``names``.
    log_likelihood : float
        At the estimate (for a MAP fit too; ``log_posterior`` adds the prior).
    converged : bool
    n_iter : int
    starts : pandas.DataFrame
        One row per start: its log-likelihood, iterations and convergence.
    information : (P, P) ndarray
        The observed information at the estimate.
    unit_scores : (U, P) ndarray
        Each unit's score at the estimate (the robust standard errors' meat).
    trace : ndarray
        The winning start's log-likelihood after each iteration (non-decreasing).
    model : ChoiceModel
        The specification with named parameters (the shorthand's names for
        ``n_components``, ``shared=`` and ``fixed=``).
    prior : Prior or None
        The prior of a MAP fit (``Normal(0, atoms_scale^2)`` on every free
        parameter), ``None`` for maximum likelihood.
    stop_reason : str
        ``"tol"`` (the Newton decrement fell below ``tol``), ``"max_iter"``,
        or ``"no_maximum"``: a maximum likelihood fit in which a parameter
        runs off and the log-likelihood still rises along it
        (docs/math.md#no-maximum).

    The shared vocabulary of the package's results (``n_components``,
    ``log_likelihood``, ``weights``, ``atoms``, ``log_posterior``, as
    :class:`smm_ppl.EMResult`) names the same things here; what is
    specific to the choice model is added: ``names``, ``params`` and
    ``weights_table`` (estimates with classical and robust standard errors),
    ``coefficients``, ``class_probabilities``, ``aic``, ``bic``.
    """

    data: ChoiceData
    parameter_map: ParameterMap
    z: np.ndarray
    log_likelihood: float
    converged: bool
    n_iter: int
    starts: pd.DataFrame
    information: np.ndarray
    unit_scores: np.ndarray
    trace: np.ndarray
    model: ChoiceModel | None = None
    prior: Prior | None = None
    stop_reason: str = "tol"

    # ---- parameters --------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.parameter_map.names

    @property
    def n_components(self) -> int:
        return self.parameter_map.n_components

    @property
    def n_params(self) -> int:
        return self.parameter_map.n_params

    @property
    def is_map(self) -> bool:
        """Whether the estimate is the posterior mode (a fit with ``prior=``) rather than the MLE."""
        return self.prior is not None

    @property
    def prior_precision(self) -> np.ndarray:
        """(P,) the prior's precision of each free parameter (zeros for maximum likelihood)."""
        return np.zeros(self.n_params) if self.prior is None else np.full(self.n_params, self.prior.atoms_scale**-2)

    @property
    def log_posterior(self) -> float | None:
        """``log_likelihood`` plus the log prior density (normalised) at the estimate; ``None`` for maximum
        likelihood (as :class:`smm_ppl.EMResult`'s)."""
        if self.prior is None:
            return None
        quadratic = 0.5 * float(np.sum((self.z / self.prior.atoms_scale) ** 2))
        return self.log_likelihood - quadratic + _log_prior_constant(self.prior, self.parameter_map)

    @cached_property
    def covariance(self) -> np.ndarray:
        """The inverse of the observed information, plus the prior's curvature for a MAP fit (NaN where it is
        singular: an unidentified model)."""
        cov = _invert(self.information + np.diag(self.prior_precision))
        return np.full_like(self.information, np.nan) if cov is None else cov

    @cached_property
    def robust_covariance(self) -> np.ndarray:
        """The sandwich ``I^-1 B I^-1``, ``B`` the outer products of the scores summed by person."""
        s = self.unit_scores
        clusters = self.data.clusters
        if clusters is not None and not self.data.panel:
            summed = np.zeros((int(clusters.max()) + 1, s.shape[1]))
            np.add.at(summed, clusters, s)
            s = summed
        return self.covariance @ (s.T @ s) @ self.covariance

    def _table(self, values, cov, robust_cov, index) -> pd.DataFrame:
        se = np.sqrt(np.diag(cov))
        rse = np.sqrt(np.diag(robust_cov))
        with np.errstate(divide="ignore", invalid="ignore"):
            t, rt = values / se, values / rse
        return pd.DataFrame(
            {
                "estimate": values,
                "std_err": se,
                "t_stat": t,
                "p_value": _p_values(t),
                "robust_std_err": rse,
                "robust_t_stat": rt,
                "robust_p_value": _p_values(rt),
            },
            index=pd.Index(index, name="parameter"),
        )

    @cached_property
    def params(self) -> pd.DataFrame:
        """Estimates with classical and robust standard errors, t statistics and p-values."""
        return self._table(self.z, self.covariance, self.robust_covariance, self.names)

    def _share_fn(self):
        pmap = self.parameter_map
        return lambda z: jnp.mean(jnp.exp(pmap.log_class_probs(z)), axis=0)

    @cached_property
    def weights_table(self) -> pd.DataFrame:
        """The class weights (shares: the mean prior class probability over units) with standard errors by the
        delta method, one row ``weight[k]`` per class."""
        f = self._share_fn()
        z = jnp.asarray(self.z)
        jac = np.asarray(jax.jacfwd(f)(z))
        values = np.asarray(f(z))
        names = [f"weight[{k}]" for k in range(1, self.n_components + 1)]
        return self._table(values, jac @ self.covariance @ jac.T, jac @ self.robust_covariance @ jac.T, names)

    @property
    def weights(self) -> np.ndarray:
        """(K,) the class weights: the class shares, the mean prior class probability over units."""
        return self.weights_table["estimate"].to_numpy()

    @property
    def atoms(self) -> np.ndarray:
        """(K, L) every class's coefficients, fixed ones included."""
        return np.asarray(self.parameter_map.atoms(jnp.asarray(self.z)))

    @property
    def coefficients(self) -> pd.DataFrame:
        """Coefficients by feature (rows) and class (columns), fixed ones included."""
        return pd.DataFrame(
            self.atoms.T,
            index=pd.Index(self.data.feature_names, name="feature"),
            columns=pd.Index(range(1, self.n_components + 1), name="class"),
        )

    # ---- model comparison --------------------------------------------------
    @property
    def aic(self) -> float:
        return -2.0 * self.log_likelihood + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``-2 ll + P log n`` with ``n`` the number of units (persons in a panel, else situations)."""
        return -2.0 * self.log_likelihood + self.n_params * np.log(self.data.n_units)

    # ---- classes and predictions ------------------------------------------
    def _unit_frame(self, values: np.ndarray, data: ChoiceData) -> pd.DataFrame:
        return pd.DataFrame(
            values,
            index=pd.Index(data.units, name="person" if data.panel else "situation"),
            columns=pd.Index(range(1, self.n_components + 1), name="class"),
        )

    @cached_property
    def class_probabilities(self) -> pd.DataFrame:
        """Posterior class probabilities of each unit (person in a panel), given its choices."""
        layout = self.data.layout
        pmap = self.parameter_map
        z = jnp.asarray(self.z)
        joint = layout.log_component_probs(pmap.atoms(z)).T + pmap.log_class_probs(z)
        post = np.asarray(jax.nn.softmax(joint, axis=1))
        return self._unit_frame(post, self.data)

    def prior_class_probabilities(self, data: ChoiceData | None = None) -> pd.DataFrame:
        """Class probabilities of each unit from the membership model alone (before its choices)."""
        data = self._check_new(data)
        lp = self.parameter_map.log_class_probs(jnp.asarray(self.z), data.covariates)
        return self._unit_frame(np.exp(np.asarray(lp)), data)

    def _check_new(self, data: ChoiceData | None) -> ChoiceData:
        if data is None:
            return self.data
        if not isinstance(data, ChoiceData):
            raise TypeError(f"data must be a ChoiceData (build it with smm.choice_data), got {type(data).__name__}.")
        if data.feature_names != self.data.feature_names:
            raise ValueError(
                f"data has features {list(data.feature_names)}, the model {list(self.data.feature_names)}; "
                "build it with the same feature columns in the same order."
            )
        if data.covariate_names != self.data.covariate_names:
            raise ValueError(
                f"data has membership covariates {list(data.covariate_names)}, the model "
                f"{list(self.data.covariate_names)}; pass the same covariates."
            )
        return data

    def predict_proba(self, data: ChoiceData | None = None, *, per_class: bool = False) -> pd.DataFrame:
        """Choice probabilities of every available alternative in ``data`` (default: the fitted data).

        The mixture over classes uses each unit's prior class probabilities
        (new situations, no choices seen).  One row per available
        alternative, with the situation and alternative ids;
        ``per_class=True`` adds each class's probability (``class 1`` ..).
        """
        data = self._check_new(data)
        layout = data.layout
        z = jnp.asarray(self.z)
        log_rows = layout.log_row_probs(self.parameter_map.atoms(z) @ layout.features_t)  # (K, R)
        prior = np.exp(np.asarray(self.parameter_map.log_class_probs(z, data.covariates)))  # (U, K)
        row_unit = np.asarray(layout.row_unit)
        per = np.exp(np.asarray(log_rows))  # (K, R)
        mix = np.sum(prior[row_unit].T * per, axis=0)
        out = pd.DataFrame(
            {
                "situation": data.situations[np.asarray(layout.situation)],
                "alternative": data.alternatives,
                "probability": mix,
            }
        )
        if per_class:
            for k in range(self.n_components):
                out[f"class {k + 1}"] = per[k]
        return out

    def summary(self) -> str:
        d = self.data
        head = (
            f"Latent-class logit: {self.n_components} classes, {d.n_obs} choices in {d.n_situations} situations"
            + (f", {d.n_units} persons (panel)" if d.panel else "")
            + f"\nlog-likelihood {self.log_likelihood:.3f}, {self.n_params} parameters, AIC {self.aic:.2f}, BIC {self.bic:.2f}, "
            + ("converged" if self.converged else "NOT converged")
            + f" in {self.n_iter} iterations\n"
        )
        return (
            head
            + self.params.to_string(float_format=lambda v: f"{v:.4g}")
            + "\n"
            + self.weights_table.to_string(float_format=lambda v: f"{v:.4g}")
        )

    def __repr__(self) -> str:
        return f"LatentClassResult(n_components={self.n_components}, log_likelihood={self.log_likelihood:.3f}, n_params={self.n_params})"


def _resolve_model(data: ChoiceData, n_components: Any, shared: Any, fixed: Any) -> tuple[ChoiceModel, ParameterMap]:
    """The named model and its map: a :class:`ChoiceModel`, or the shorthand ``n_components``, ``shared``, ``fixed``."""
    if not isinstance(data, ChoiceData):
        raise TypeError(
            f"data must be a ChoiceData; build it from a long-format DataFrame with smm.choice_data, got "
            f"{type(data).__name__}."
        )
    if isinstance(n_components, ChoiceModel):
        if (shared is not None and len(shared)) or fixed:
            raise ValueError(
                "shared= and fixed= are shorthands for an integer n_components; with a ChoiceModel, tie parameters "
                "by using one name in several classes and fix them with ChoiceModel(fixed={name: value})."
            )
        model, order = n_components, None
    else:
        if not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool):
            raise TypeError(
                f"n_components must be the number of classes (int) or a smm.ChoiceModel, got {type(n_components).__name__} "
                f"{n_components!r}."
            )
        K = check_positive_int(n_components, "n_components")
        if shared is None:
            shared = ()
        spec = LatentClassSpec(shared=tuple([shared] if isinstance(shared, str) else shared), fixed=dict(fixed or {}))
        model, order = shorthand_model(spec, data.feature_names, K)
    pmap = model_map(model, data.feature_names, data.covariates, data.covariate_names, order)
    return model, pmap


def _values_by_name(values: Any, pmap: ParameterMap, model: ChoiceModel, arg: str, *, partial: bool) -> np.ndarray:
    """(P,) parameter values from a dict or Series by name (others 0 when ``partial``) or an array in ``names`` order."""
    if isinstance(values, pd.DataFrame):
        if "estimate" not in values.columns:
            raise TypeError(f"{arg} is a DataFrame without an 'estimate' column; pass a dict {{parameter: value}}.")
        values = values["estimate"]
    if isinstance(values, (Mapping, pd.Series)):
        given = {}
        for name, value in values.items():
            try:
                given[name] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{arg}[{name!r}] must be a number, got {value!r}.") from None
        known = set(pmap.names)
        for name, value in given.items():
            if name in known:
                continue
            if name in model.fixed:
                if value != model.fixed[name]:
                    raise ValueError(
                        f"{arg}[{name!r}] = {value!r}, but {name!r} is fixed at {model.fixed[name]} in the model; "
                        "drop it (or leave it out of fixed= to estimate it)."
                    )
                continue
            raise ValueError(f"{arg} names unknown parameter {name!r}; the parameters are {list(pmap.names)}.")
        missing = [n for n in pmap.names if n not in given]
        if missing and not partial:
            raise ValueError(f"{arg} has no value for parameter(s) {missing}; give every one of {list(pmap.names)}.")
        z = np.array([given.get(name, 0.0) for name in pmap.names])
    else:
        if isinstance(values, str):
            raise TypeError(f"{arg} must be a dict {{parameter: value}} or an array, got the str {values!r}.")
        try:
            z = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{arg} must be a dict {{parameter: value}} or an array of numbers, got {type(values).__name__}."
            ) from None
        if z.shape != (pmap.n_params,):
            raise ValueError(
                f"{arg} must have {pmap.n_params} values (parameters {list(pmap.names)}), got shape {z.shape}; "
                "or pass a dict {parameter: value}."
            )
    if not np.all(np.isfinite(z)):
        bad = [n for n, v in zip(pmap.names, z, strict=True) if not np.isfinite(v)]
        raise ValueError(f"{arg} has NaN or infinite values for {bad}.")
    return z


def _check_init(init: Any, pmap: ParameterMap, model: ChoiceModel) -> np.ndarray | None:
    if isinstance(init, str):
        if init == "auto":
            return None
        if init in _SMM_INITS:
            raise ValueError(
                f"init={init!r} builds starts from counts over one set of items (the SMM); it does not apply to "
                "choice situations. Use init='auto' or starting values (a dict {parameter: value})."
            )
        raise ValueError(f"init must be 'auto' or starting values (dict or array), got {init!r}.")
    if isinstance(init, (Mapping, pd.Series, pd.DataFrame)):
        return _values_by_name(init, pmap, model, "init", partial=True)[None]
    if isinstance(init, (list, tuple)) and init and all(isinstance(i, (Mapping, pd.Series)) for i in init):
        return np.stack([_values_by_name(i, pmap, model, f"init[{j}]", partial=True) for j, i in enumerate(init)])
    z = np.asarray(init, dtype=np.float64)
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != pmap.n_params:
        raise ValueError(
            f"init must have {pmap.n_params} values per start (parameters {list(pmap.names)}), got shape {z.shape}."
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("init contains NaN or infinite values.")
    return z


def _situation_demeaned(layout) -> np.ndarray:
    """(R, L) the features minus their mean over each situation's available alternatives."""
    x = np.asarray(layout.features, dtype=np.float64)
    sit = np.asarray(layout.situation)
    sums = np.zeros((layout.n_situations, x.shape[1]))
    np.add.at(sums, sit, x)
    return x - (sums / np.bincount(sit, minlength=layout.n_situations)[:, None])[sit]


def collinear_terms(pmap: ParameterMap, layout) -> list[tuple[int, list[str], list[str]]]:
    """Per class, the free parameters whose terms are linearly dependent within situations.

    A class's logit sees its features only through their differences within
    each situation, so its parameters are identified only where those
    differences have full rank (identical columns, one a combination of
    others, or constants for every alternative are not).  Returns
    ``(class, parameters, columns)`` for every dependent set.
    """
    xd = _situation_demeaned(layout)
    gram = xd.T @ xd
    A = np.asarray(pmap.coefficient_map())  # (K, L, P)
    out = []
    for k in range(pmap.n_components):
        params = np.flatnonzero(A[k].any(axis=0))
        if params.size == 0:
            continue
        Ak = A[k][:, params]
        g = Ak.T @ gram @ Ak
        d = np.sqrt(np.maximum(np.diag(g), 0.0))
        scale = np.where(d > 0, d, 1.0)
        lam, vec = np.linalg.eigh(g / np.outer(scale, scale))  # a zero column (constant differences) gives 0
        involved = (np.abs(vec[:, lam < COLLINEAR_TOL]) > 1e-4).any(axis=1)
        if involved.any():
            names = [pmap.names[p] for p in params[involved]]
            cols = [pmap.feature_names[j] for j in np.flatnonzero(Ak[:, involved].any(axis=1))]
            out.append((k + 1, names, cols))
    return out


def warn_collinear(pmap: ParameterMap, layout) -> None:
    for k, names, cols in collinear_terms(pmap, layout):
        warnings.warn(
            f"in class {k}, the terms of parameter(s) {names} (column(s) {cols}) are linearly dependent within "
            "the choice situations (identical columns, one a combination of others, or constants for every "
            "alternative): these parameters are not separately identified. Drop a column from that class's "
            "utility, or fix one of the parameters.",
            UserWarning,
            stacklevel=3,
        )


#: A parameter whose term can move a logit by more than this is examined as a runaway (exp(25) ~ 7e10).
RUNAWAY_LOGIT = 25.0
#: Multiples of a runaway candidate's value tried along its ray (doubled, then four times).
RUNAWAY_RAY = (2.0, 4.0)


def _log_prior_constant(prior: Prior, pmap: ParameterMap) -> float:
    """The Normal prior's normalising constant over the free parameters (added to the loop's objective)."""
    return -pmap.n_params * float(np.log(prior.atoms_scale * np.sqrt(2.0 * np.pi)))


def _reach(z: np.ndarray, pmap: ParameterMap, layout) -> np.ndarray:
    """(P,) how far each free parameter moves a logit: ``|z_p|`` times the largest ``|column|`` it multiplies."""
    A = np.abs(np.asarray(pmap.coefficient_map(jnp.float64)))  # (K, L, P_coef)
    columns = np.max(np.abs(np.asarray(layout.features_t)), axis=1)  # (L,)
    coef = np.max(A * columns[None, :, None], axis=(0, 1)) if A.size else np.zeros(0)
    B = np.abs(np.asarray(pmap.membership_map(jnp.float64)))  # (C, K, P_mem)
    covariates = np.max(np.abs(np.asarray(pmap.covariates)), axis=0) if np.size(pmap.covariates) else np.zeros(0)
    mem = np.max(B * covariates[:, None, None], axis=(0, 1)) if B.size else np.zeros(0)
    return np.abs(z) * np.concatenate([coef, mem])[: len(z)]


def runaway_parameters(
    z: np.ndarray, pmap: ParameterMap, layout, log_likelihood: float
) -> list[tuple[str, float, float]]:
    """The free parameters of a maximum likelihood estimate that run off: ``(name, value, gain)``.

    A parameter whose term moves a logit by more than :data:`RUNAWAY_LOGIT`
    is followed along its own ray (its value doubled, then four times): at
    a maximum the log-likelihood falls; if it rises, or stays flat within
    rounding, the supremum lies beyond every finite value
    (docs/math.md#no-maximum).
    """
    slack = 1e-10 * abs(log_likelihood) + 1e-8
    w = np.asarray(layout.unit_weights, dtype=np.float64)
    plain = pmap.without_names()

    def ll(v):
        lu = np.asarray(_unit_log_likelihoods(jnp.asarray(v), plain, layout))
        return float(np.sum(np.where(w > 0, w * lu, 0.0)))

    found = []
    for p in np.flatnonzero(_reach(z, pmap, layout) > RUNAWAY_LOGIT):
        gains = []
        for factor in RUNAWAY_RAY:
            moved = np.array(z, dtype=np.float64)
            moved[p] *= factor
            gains.append(ll(moved) - log_likelihood)
        if gains[0] > -slack and all(b > a - slack for a, b in zip(gains, gains[1:])):
            found.append((pmap.names[p], float(z[p]), float(gains[-1])))
    return found


def runaway_message(runaways: list[tuple[str, float, float]]) -> str:
    """The warning: which parameters ran off, how far, and the remedy."""
    listed = "; ".join(
        f"{name!r} reached {value:.4g} and the log-likelihood still rises (by {gain:+.3g}) as it grows "
        f"{RUNAWAY_RAY[-1]:g}-fold"
        for name, value, gain in runaways
    )
    return (
        f"The likelihood has no maximum at finite parameters: {listed}. A class's choices (or its membership) are "
        "predicted perfectly in the limit, so this estimate is where the fit stopped, not a maximum "
        "(stop_reason='no_maximum'); its standard errors mean nothing. Fit the posterior mode instead, "
        "fit_latent_class(..., prior=smm.Prior(atoms_scale=...)), with a scale in the units of the columns, or "
        "drop the term or class that separates the data."
    )


def warn_unconverged_starts(table: pd.DataFrame, best: int, max_iter: int) -> None:
    """One warning for the starts that stopped short of a maximum well below the best (none is harmless)."""
    lls = table["log_likelihood" if "log_likelihood" in table else "log_posterior"].to_numpy()
    gaps = np.where(np.isfinite(lls), lls[best] - lls, np.inf)
    failed = ~table["converged"].to_numpy() & (gaps > START_GAP)
    failed[best] = False
    if not failed.any():
        return
    its = table["iterations"].to_numpy()[failed]
    g = gaps[failed]
    span = lambda a, f: f(a.min()) if a.min() == a.max() else f"{f(a.min())} to {f(a.max())}"  # noqa: E731
    warnings.warn(
        f"{failed.sum()} of {len(lls)} starts did not converge (they stopped after {span(its, str)} iterations: "
        f"no ascent step was found, or max_iter={max_iter} was reached) and ended {span(g, lambda v: f'{v:.4g}')} "
        "below the best log-likelihood (see result.starts). The estimate is the best start's; if a better "
        "maximum may lie where they stopped, raise n_starts or max_iter, or give starting values with init=.",
        ConvergenceWarning,
        stacklevel=3,
    )


def fit_latent_class(
    data: ChoiceData,
    n_components: int | ChoiceModel,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    init: Any = "auto",
    n_starts: int = DEFAULT_STARTS,
    seed: Any = 0,
    max_iter: int = 500,
    tol: float = 1e-9,
    prior: Prior | None = None,
    progress_bar: bool | None = None,
) -> LatentClassResult:
    """Maximum likelihood, or the posterior mode, of the latent-class logit on choice data
    (docs/math.md#choice-situations-and-panels).

    Parameters
    ----------
    data : ChoiceData
        From :func:`smm_ppl.choice_data`.
    n_components : int or ChoiceModel
        A :class:`~smm_ppl.ChoiceModel` (named parameters, tied and fixed as
        it says), or the number of classes for the shorthand below.
    shared : list of str
        Shorthand: features whose coefficient is the same in every class
        (named after the feature; the others are named ``"feature[k]"``).
    fixed : dict, optional
        Shorthand: ``{feature: value}`` (every class) or
        ``{feature: {class: value}}`` (classes ``1 .. K``); 0 removes a
        feature from a class.
    init : "auto", dict or array
        ``"auto"``: ``n_starts`` starts from partitions of the persons
        along their taste scores (the first deterministic), each run to
        convergence; the best wins.  A dict ``{parameter: value}`` by name
        (others 0; ``result.names`` or ``smm.ChoiceModel`` give the names), a
        list of such dicts, or an array (P,) or (n, P): those starts.
    n_starts : int
    seed : int or jax.random key
    max_iter : int
        Iterations per start.
    tol : float
        Stop when the Newton decrement (the log-likelihood still to gain) is below it.
    prior : Prior, optional
        ``smm.Prior(atoms_scale=s)`` maximises the log posterior under a
        ``Normal(0, s^2)`` prior on every free parameter, utility and
        membership alike, in the units of their columns: the posterior mode,
        finite where the likelihood has no maximum.  Its
        ``weights_concentration`` must be 1 (class shares come from the
        membership model, which the Normal covers).  ``None`` (default):
        maximum likelihood.
    progress_bar : bool, optional
        Progress lines on standard error (building the starts, compiling,
        running them, the estimate), as :func:`smm_ppl.fit_em` prints them.
        ``None``: on when standard error is a terminal.

    Returns
    -------
    LatentClassResult

    Warns
    -----
    ConvergenceWarning
        A maximum likelihood fit in which a parameter runs off while the
        log-likelihood still rises along it (``stop_reason="no_maximum"``,
        naming the parameter); the best start did not converge; the information is singular at the
        estimate; or starts other than the best stopped without converging
        more than ``START_GAP`` below the best log-likelihood (how many, and
        how far below).  Starts that converged to other local maxima are
        listed in ``result.starts`` without a warning.
    UserWarning
        Terms of one class's utility that are linearly dependent within the
        choice situations (identical or collinear columns), naming them.
    """
    model, pmap = _resolve_model(data, n_components, shared, fixed)
    K = pmap.n_components
    if K > data.n_units:
        raise ValueError(f"n_components={K} exceeds the number of units ({data.n_units}).")
    n_starts = check_positive_int(n_starts, "n_starts")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive_float(tol, "tol")
    if pmap.n_params == 0:
        raise ValueError("every parameter is fixed: nothing to estimate (latent_class_log_likelihood evaluates it).")
    prior = check_prior(prior, for_mode=True)
    if prior is not None and prior.weights_concentration != 1.0:
        raise ValueError(
            f"prior.weights_concentration={prior.weights_concentration:g}: the latent-class logit's class shares "
            "come from its membership model, whose parameters take the Normal prior of atoms_scale; use "
            "smm.Prior(atoms_scale=...) (weights_concentration=1)."
        )
    precision = None if prior is None else np.full(pmap.n_params, prior.atoms_scale**-2)
    say = Progress(check_progress_bar(progress_bar), "fit_latent_class")
    layout = data.layout
    say(f"{data.n_units} units, {pmap.n_params} free parameters, K = {K}: building the starts")
    warn_collinear(pmap, layout)
    starts = _check_init(init, pmap, model)
    if starts is None:
        if K == 1:
            starts = np.zeros((1, pmap.n_params))
        else:
            starts = partition_starts(n_starts, pmap, layout, seed)
    plain = pmap.without_names()
    out = run_starts(
        (plain, layout),
        (starts,),
        tol=tol,
        max_iter=max_iter,
        step_size=1.0,
        short_iter=max_iter,
        algorithm=NEWTON_EM,
        penalty=np.zeros(pmap.n_params) if precision is None else precision,
        halving=False,
        dtype=np.float64,
        progress=say,
    )
    say(f"EM: start {out.best} won after {out.n_iter} iterations, converged: {out.converged}; the information")
    lls = out.ll_short  # the objective: the log posterior (up to its constant) for a MAP fit
    best = out.best
    (z,) = out.params
    table = pd.DataFrame(
        {
            "log_likelihood" if prior is None else "log_posterior": lls
            if prior is None
            else lls + _log_prior_constant(prior, pmap),
            "iterations": out.iterations,
            "converged": out.starts_converged,
        },
        index=pd.Index(range(len(lls)), name="start"),
    )
    table["won"] = table.index == best
    at_estimate = _derivatives(jnp.asarray(z), plain, layout)
    info = np.asarray(at_estimate.information)
    scores = np.asarray(at_estimate.unit_scores)
    converged = out.converged
    trace = out.trace
    if prior is not None:
        trace = trace + _log_prior_constant(prior, pmap)
    log_likelihood = float(at_estimate.ll)
    runaways = [] if prior is not None else runaway_parameters(z, pmap, layout, log_likelihood)
    stop_reason = "no_maximum" if runaways else ("tol" if converged else "max_iter")
    result = LatentClassResult(
        data=data,
        parameter_map=pmap,
        z=z,
        log_likelihood=log_likelihood,
        converged=converged and not runaways,
        n_iter=out.n_iter,
        starts=table,
        information=info,
        unit_scores=scores,
        trace=trace[np.isfinite(trace)],
        model=model,
        prior=prior,
        stop_reason=stop_reason,
    )
    if runaways:
        warnings.warn(runaway_message(runaways), ConvergenceWarning, stacklevel=2)
    elif not converged:
        decrement = newton_decrement(at_estimate, z, np.zeros(pmap.n_params) if precision is None else precision)
        reason = (
            f"Newton decrement {decrement:.3g} > tol={tol:g}"
            if np.isfinite(decrement)
            else "the observed information is not positive definite at the last iterate, so the Newton step is "
            "undefined (two classes merging, a share going to 0, or an unidentified coefficient)"
        )
        warnings.warn(
            f"the latent-class fit did not converge in max_iter={max_iter} iterations ({reason}); raise max_iter, "
            "or check for a class whose share or coefficients run off (see result.params), or fewer classes.",
            ConvergenceWarning,
            stacklevel=2,
        )
    warn_unconverged_starts(table, best, max_iter)
    if not runaways and _invert(info + np.diag(result.prior_precision)) is None:
        warnings.warn(
            "the observed information is singular at the estimate: some parameters are not identified "
            "(a class with no share, a feature absent from a class's choices, or more classes than the data "
            "support); their standard errors are NaN.",
            ConvergenceWarning,
            stacklevel=2,
        )
    say("done")
    return result


_derivatives = jax.jit(derivatives)


@jax.jit
def _unit_log_likelihoods(z, pmap: ParameterMap, layout):
    return pmap.unit_log_likelihoods(z, layout)


def latent_class_log_likelihood(
    data: ChoiceData,
    model: int | ChoiceModel,
    params: Any,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    per_unit: bool = False,
) -> float | pd.Series:
    """The log-likelihood of a latent-class logit at given parameter values (no estimation).

    Parameters
    ----------
    data : ChoiceData
    model : ChoiceModel or int
        The specification, as in :func:`fit_latent_class` (an int with
        ``shared=`` and ``fixed=`` for the shorthand).
    params : dict, pandas.Series or array
        A value for every free parameter: ``{name: value}`` (a fixed
        parameter may be given at its fixed value), a Series by name (e.g.
        ``result.params["estimate"]``), or an array in the order of
        ``result.names``.
    shared, fixed :
        The shorthand's, as in :func:`fit_latent_class`.
    per_unit : bool, default False
        Return each unit's ``log L_u`` (person in a panel, else situation)
        as a Series indexed by its id, instead of their sum.

    Returns
    -------
    float or pandas.Series
    """
    mdl, pmap = _resolve_model(data, model, shared, fixed)
    z = _values_by_name(params, pmap, mdl, "params", partial=False)
    ll = np.asarray(_unit_log_likelihoods(jnp.asarray(z), pmap.without_names(), data.layout))
    w = np.asarray(data.layout.unit_weights, dtype=np.float64)
    if per_unit:
        return pd.Series(
            ll, index=pd.Index(data.units, name="person" if data.panel else "situation"), name="log_likelihood"
        )
    return float(np.sum(np.where(w > 0, w * ll, 0.0)))


@fit_components.register(ChoiceData)
def _fit_choice_data(data: ChoiceData, counts: Any, n_components: int, **kwargs: Any) -> LatentClassResult:
    """:func:`smm_ppl.em.fit_components` on choice data: :func:`fit_latent_class`."""
    if counts is not None:
        raise ValueError("counts must be None when the data are ChoiceData (they carry their choices).")
    return fit_latent_class(data, n_components, **kwargs)
