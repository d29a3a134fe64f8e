"""``fit_latent_class``: the latent-class logit on choice data, with standard errors and predictions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from ..em import INIT_NAMES, ConvergenceWarning
from ..validation import check_positive_float, check_positive_int
from .data import ChoiceData
from .fit import partition_starts, run_starts
from .spec import LatentClassSpec, ParameterMap, parameter_map

__all__ = ["LatentClassResult", "fit_latent_class", "DEFAULT_STARTS"]

#: Starts tried by ``init="auto"``.
DEFAULT_STARTS = 10
#: The SMM's starts (the registry's names), which build on counts over one set of items.
_SMM_INITS = ("moments", *(name for name in INIT_NAMES if name != "auto"))


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
    loglik : float
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
    """

    data: ChoiceData
    parameter_map: ParameterMap
    z: np.ndarray
    loglik: float
    converged: bool
    n_iter: int
    starts: pd.DataFrame
    information: np.ndarray
    unit_scores: np.ndarray
    trace: np.ndarray

    # ---- parameters --------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return self.parameter_map.names

    @property
    def n_classes(self) -> int:
        return self.parameter_map.n_classes

    @property
    def n_params(self) -> int:
        return self.parameter_map.n_params

    @cached_property
    def covariance(self) -> np.ndarray:
        """The inverse observed information (NaN where it is singular: an unidentified model)."""
        cov = _invert(self.information)
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
    def shares(self) -> pd.DataFrame:
        """Class shares (the mean prior class probability over units) by the delta method."""
        f = self._share_fn()
        z = jnp.asarray(self.z)
        jac = np.asarray(jax.jacfwd(f)(z))
        values = np.asarray(f(z))
        names = [f"share[{k}]" for k in range(1, self.n_classes + 1)]
        return self._table(values, jac @ self.covariance @ jac.T, jac @ self.robust_covariance @ jac.T, names)

    @property
    def weights(self) -> np.ndarray:
        """(K,) the class shares."""
        return self.shares["estimate"].to_numpy()

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
            columns=pd.Index(range(1, self.n_classes + 1), name="class"),
        )

    # ---- model comparison --------------------------------------------------
    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``-2 ll + P log n`` with ``n`` the number of units (persons in a panel, else situations)."""
        return -2.0 * self.loglik + self.n_params * np.log(self.data.n_units)

    # ---- classes and predictions ------------------------------------------
    def _unit_frame(self, values: np.ndarray, data: ChoiceData) -> pd.DataFrame:
        return pd.DataFrame(
            values,
            index=pd.Index(data.units, name="person" if data.panel else "situation"),
            columns=pd.Index(range(1, self.n_classes + 1), name="class"),
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
            for k in range(self.n_classes):
                out[f"class {k + 1}"] = per[k]
        return out

    def summary(self) -> str:
        d = self.data
        head = (
            f"Latent-class logit: {self.n_classes} classes, {d.n_obs} choices in {d.n_situations} situations"
            + (f", {d.n_units} persons (panel)" if d.panel else "")
            + f"\nlog-likelihood {self.loglik:.3f}, {self.n_params} parameters, AIC {self.aic:.2f}, BIC {self.bic:.2f}, "
            + ("converged" if self.converged else "NOT converged")
            + f" in {self.n_iter} iterations\n"
        )
        return (
            head
            + self.params.to_string(float_format=lambda v: f"{v:.4g}")
            + "\n"
            + self.shares.to_string(float_format=lambda v: f"{v:.4g}")
        )

    def __repr__(self) -> str:
        return f"LatentClassResult(n_classes={self.n_classes}, loglik={self.loglik:.3f}, n_params={self.n_params})"


def _check_init(init: Any, pmap: ParameterMap) -> np.ndarray | None:
    if isinstance(init, str):
        if init == "auto":
            return None
        if init in _SMM_INITS:
            raise ValueError(
                f"init={init!r} builds starts from counts over one set of items (the SMM); it does not apply to "
                "choice situations. Use init='auto' or starting values (a dict {parameter: value})."
            )
        raise ValueError(f"init must be 'auto' or starting values (dict or array), got {init!r}.")
    if isinstance(init, dict):
        unknown = [n for n in init if n not in pmap.names]
        if unknown:
            raise ValueError(f"init names unknown parameter(s) {unknown}; the parameters are {list(pmap.names)}.")
        z = np.zeros(pmap.n_params)
        for i, n in enumerate(pmap.names):
            if n in init:
                z[i] = float(init[n])
        return z[None]
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


def fit_latent_class(
    data: ChoiceData,
    n_classes: int,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    init: Any = "auto",
    n_starts: int = DEFAULT_STARTS,
    seed: Any = 0,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> LatentClassResult:
    """Maximum likelihood for the latent-class logit on choice data (docs/math.md#choice-situations-and-panels).

    Parameters
    ----------
    data : ChoiceData
        From :func:`smm_ppl.choice_data`.
    n_classes : int
    shared : list of str
        Features whose coefficient is the same in every class.
    fixed : dict, optional
        ``{feature: value}`` (every class) or ``{feature: {class: value}}``
        (classes ``1 .. K``); 0 removes a feature from a class.
    init : "auto", dict or array
        ``"auto"``: ``n_starts`` starts from partitions of the persons
        along their taste scores (the first deterministic), each run to
        convergence; the best wins.  A dict ``{parameter: value}`` (others 0)
        or an array (P,) or (n, P): those starts.
    n_starts : int
    seed : int or jax.random key
    max_iter : int
        Iterations per start.
    tol : float
        Stop when the Newton decrement (the log-likelihood still to gain) is below it.

    Returns
    -------
    LatentClassResult
    """
    if not isinstance(data, ChoiceData):
        raise TypeError(
            f"data must be a ChoiceData; build it from a long-format DataFrame with smm.choice_data, got "
            f"{type(data).__name__}."
        )
    K = check_positive_int(n_classes, "n_classes")
    if K > data.n_units:
        raise ValueError(f"n_classes={K} exceeds the number of units ({data.n_units}).")
    n_starts = check_positive_int(n_starts, "n_starts")
    max_iter = check_positive_int(max_iter, "max_iter")
    tol = check_positive_float(tol, "tol")
    spec = LatentClassSpec(shared=tuple([shared] if isinstance(shared, str) else shared), fixed=dict(fixed or {}))
    pmap = parameter_map(spec, data.feature_names, data.covariates, data.covariate_names, K)
    if pmap.n_params == 0:
        raise ValueError("every coefficient is fixed and there is one class: nothing to estimate.")
    layout = data.layout
    starts = _check_init(init, pmap)
    if starts is None:
        if K == 1:
            starts = np.zeros((1, pmap.n_params))
        else:
            pooled = parameter_map(LatentClassSpec(), data.feature_names, data.covariates[:, :1], ("const",), 1)
            starts = partition_starts(n_starts, pmap, pooled, layout, seed)
    out, at_estimate = run_starts(starts, pmap, layout, max_iter=max_iter, tol=tol)
    lls = np.asarray(out.ll)
    lls_rank = np.where(np.isfinite(lls), lls, -np.inf)
    best = int(np.argmax(lls_rank))
    z = np.asarray(out.z)[best]
    table = pd.DataFrame(
        {
            "loglik": lls,
            "iterations": np.asarray(out.iterations),
            "converged": np.asarray(out.converged),
        },
        index=pd.Index(range(len(lls)), name="start"),
    )
    table["won"] = table.index == best
    info = np.asarray(at_estimate.information)
    scores = np.asarray(at_estimate.unit_scores)
    converged = bool(np.asarray(out.converged)[best])
    trace = np.asarray(out.trace)[best]
    result = LatentClassResult(
        data=data,
        parameter_map=pmap,
        z=z,
        loglik=float(lls[best]),
        converged=converged,
        n_iter=int(np.asarray(out.iterations)[best]),
        starts=table,
        information=info,
        unit_scores=scores,
        trace=trace[np.isfinite(trace)],
    )
    if not converged:
        decrement = float(np.asarray(out.decrement)[best])
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
    if _invert(info) is None:
        warnings.warn(
            "the observed information is singular at the estimate: some parameters are not identified "
            "(a class with no share, a feature absent from a class's choices, or more classes than the data "
            "support); their standard errors are NaN.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result
