"""A scikit-learn-style estimator over :func:`smm_ppl.fit_em`.

scikit-learn is not a dependency: the class follows its conventions
(``__init__`` only stores hyper-parameters, ``fit`` validates and returns
``self``, fitted attributes end in ``_``, ``get_params``/``set_params``) so
that it composes with sklearn tools where those are installed, without
importing sklearn.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax.numpy as jnp
import numpy as np

from .core.params import n_free_parameters
from .core.validation import check_features
from .em import EMResult, fit_em
from .layouts import as_data, class_log_posteriors, item_counts

__all__ = ["SoftmaxMixture", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit`` (same bases as sklearn's)."""


class SoftmaxMixture:
    """Softmax mixture (latent-class multinomial logit) fitted by EM.

    Parameters
    ----------
    n_components : int, default 2
        Number of classes ``K``.
    init : str or SMMParams, default "auto"
        Start of EM: ``"auto"``, ``"mom"``, ``"tensor"``, ``"subspace"``,
        ``"random"`` or an ``SMMParams`` (see :func:`smm_ppl.fit_em`).
    n_starts : int, optional
        Random starts for the multi-start inits.
    seed : int or jax.random key, default 0
    max_iter : int, default 2000
    tol : float, default 1e-12
    m_step : {"gradient", "newton"}, default "gradient"
    step_size : float, default 1.0
    acceleration : {"auto", "lbfgs", "squarem", "none"} or None, default "auto"
    compute_standard_errors : bool, default True

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
    atoms_ : ndarray of shape (K, L)
    params_ : SMMParams
    log_likelihood_ : float
        ``sum_j n_j log pi_j`` at the estimate.
    n_iter_ : int
    converged_ : bool
    init_ : str
        The start that won.
    standard_errors_ : SMMParams or None
    n_features_in_ : int
    n_obs_ : int
    result_ : EMResult
        Everything :func:`smm_ppl.fit_em` returned (trace, starts, ...).

    Examples
    --------
    >>> model = SoftmaxMixture(n_components=2).fit(features, counts)   # doctest: +SKIP
    >>> model.weights_, model.atoms_, model.bic(features, counts)      # doctest: +SKIP
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        init: Any = "auto",
        n_starts: int | None = None,
        seed: Any = 0,
        max_iter: int = 2000,
        tol: float = 1e-12,
        m_step: str = "gradient",
        step_size: float = 1.0,
        acceleration: Any = "auto",
        compute_standard_errors: bool = True,
    ) -> None:
        self.n_components = n_components
        self.init = init
        self.n_starts = n_starts
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.m_step = m_step
        self.step_size = step_size
        self.acceleration = acceleration
        self.compute_standard_errors = compute_standard_errors

    # -- sklearn plumbing ---------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [name for name in sig.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters as a dict (sklearn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> SoftmaxMixture:
        """Set hyper-parameters (sklearn convention); unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for SoftmaxMixture; valid: {sorted(valid)}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {k: v.default for k, v in inspect.signature(type(self).__init__).parameters.items() if k != "self"}
        shown = [
            f"{k}={getattr(self, k)!r}"
            for k in self._param_names()
            if k == "n_components" or not _same(getattr(self, k), defaults[k])
        ]
        return f"SoftmaxMixture({', '.join(shown)})"

    # -- fitting ------------------------------------------------------------
    def fit(self, features: Any, counts: Any) -> SoftmaxMixture:
        """Fit by EM; returns ``self``.

        Parameters
        ----------
        features : array of shape (p, L)
        counts : array of shape (p,)
            Non-negative integer counts of the choices of each item.
        """
        result = fit_em(
            features,
            counts,
            self.n_components,
            init=self.init,
            n_starts=self.n_starts,
            seed=self.seed,
            max_iter=self.max_iter,
            tol=self.tol,
            m_step=self.m_step,
            step_size=self.step_size,
            acceleration=self.acceleration,
            compute_standard_errors=self.compute_standard_errors,
        )
        self._set_fitted(result, np.shape(features)[1])
        return self

    def _set_fitted(self, result: EMResult, n_features: int) -> None:
        self.result_ = result
        self.params_ = result.params
        self.weights_ = result.params.weights
        self.atoms_ = result.params.atoms
        self.log_likelihood_ = result.log_likelihood
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.init_ = result.init
        self.standard_errors_ = result.standard_errors
        self.n_features_in_ = int(n_features)
        self.n_obs_ = result.n_obs

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this SoftmaxMixture is not fitted yet; call fit(features, counts) first.")

    def _check_features(self, features: Any) -> np.ndarray:
        self._check_fitted()
        x = check_features(features, check_rank=False)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"features has {x.shape[1]} columns but the model was fitted with {self.n_features_in_}.")
        return x

    def _check_data(self, features: Any, counts: Any):
        self._check_fitted()
        data = as_data(features, counts, check_rank=False)
        if data.n_features != self.n_features_in_:
            raise ValueError(
                f"features has {data.n_features} columns but the model was fitted with {self.n_features_in_}."
            )
        return data

    # -- predictions --------------------------------------------------------
    def predict_proba(self, features: Any) -> np.ndarray:
        """Class responsibilities of each item: ``P(class k | item j chosen)``.

        Follows scikit-learn's mixture models (``predict_proba`` gives the
        posterior membership); the item-level choice probabilities are
        :meth:`choice_probabilities`.

        Returns
        -------
        ndarray of shape (p, K), rows summing to one.
        """
        x = self._check_features(features)
        layout = item_counts(x, np.zeros(x.shape[0]))
        return np.exp(np.asarray(class_log_posteriors(layout, jnp.asarray(self.weights_), jnp.asarray(self.atoms_))))

    def predict(self, features: Any) -> np.ndarray:
        """Most probable class of a chooser of each item, shape ``(p,)``."""
        return np.argmax(self.predict_proba(features), axis=1)

    def choice_probabilities(self, features: Any) -> np.ndarray:
        """Mixture choice probabilities ``pi_j`` over the items of ``features``, shape ``(p,)``.

        The softmax normalises over the rows given, so pass the whole choice set.
        """
        x = self._check_features(features)
        layout = item_counts(x, np.zeros(x.shape[0]))
        log_pi = layout.log_mixture_probs(jnp.asarray(self.weights_), jnp.asarray(self.atoms_))
        return np.exp(np.asarray(log_pi))

    # -- scores -------------------------------------------------------------
    def _total_log_likelihood(self, features: Any, counts: Any) -> tuple[float, int]:
        data = self._check_data(features, counts)
        layout = item_counts(data.features, data.counts)
        ll = float(layout.log_likelihood(jnp.asarray(self.weights_), jnp.asarray(self.atoms_)))
        return ll, data.n_obs

    def score(self, features: Any, counts: Any) -> float:
        """Mean log-likelihood per observation, ``sum_j n_j log pi_j / N`` (higher is better)."""
        ll, n_obs = self._total_log_likelihood(features, counts)
        return ll / n_obs

    def n_parameters(self) -> int:
        """Free parameters: ``(K - 1)`` weights plus ``K L`` atom coordinates."""
        self._check_fitted()
        return n_free_parameters(*np.shape(self.atoms_))

    def bic(self, features: Any, counts: Any) -> float:
        """Bayesian information criterion ``-2 ell + d log N`` (lower is better)."""
        ll, n_obs = self._total_log_likelihood(features, counts)
        return -2.0 * ll + self.n_parameters() * np.log(n_obs)

    def aic(self, features: Any, counts: Any) -> float:
        """Akaike information criterion ``-2 ell + 2 d`` (lower is better)."""
        ll, _ = self._total_log_likelihood(features, counts)
        return -2.0 * ll + 2.0 * self.n_parameters()


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b
