"""The latent-class logit on choice situations and panels (docs/math.md#choice-situations-and-panels).

:func:`choice_data` validates long-format choice data into a
:class:`ChoiceData` (its layout is :class:`smm_ppl.layouts.ChoiceSituations`);
:class:`ChoiceModel` specifies the classes' utilities and the membership
model with named parameters (or ``shared=``/``fixed=`` for short);
:func:`latent_class_log_likelihood` evaluates it at given values;
:func:`fit_latent_class` fits the model by EM safeguarded into Newton, with
classical and robust standard errors, class probabilities and predictions;
:func:`sample_latent_class` (NUTS) and :func:`fit_latent_class_svi` start at
that estimate and return an ``xarray.DataTree`` (ArviZ 1).
"""

from .api import DEFAULT_STARTS, LatentClassResult, fit_latent_class, latent_class_log_likelihood
from .bayes import (
    compare_latent_class_posterior,
    fit_latent_class_svi,
    latent_class_log_likelihood_draws,
    relabel_latent_class_draws,
    sample_latent_class,
)
from .data import CONSTANT, ChoiceData, choice_data
from .spec import ChoiceModel, LatentClassSpec, ParameterMap, parameter_map

__all__ = [
    "ChoiceData",
    "choice_data",
    "CONSTANT",
    "ChoiceModel",
    "LatentClassSpec",
    "ParameterMap",
    "parameter_map",
    "LatentClassResult",
    "fit_latent_class",
    "latent_class_log_likelihood",
    "DEFAULT_STARTS",
    "sample_latent_class",
    "fit_latent_class_svi",
    "compare_latent_class_posterior",
    "relabel_latent_class_draws",
    "latent_class_log_likelihood_draws",
]
