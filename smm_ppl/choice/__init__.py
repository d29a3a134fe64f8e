"""The latent-class logit on choice situations and panels (docs/math.md#choice-situations-and-panels).

:func:`choice_data` validates long-format choice data into a
:class:`ChoiceData` (its layout is :class:`smm_ppl.layouts.ChoiceSituations`);
:class:`ChoiceModel` specifies the classes' utilities and the membership
model with named parameters (or ``shared=``/``fixed=`` for short);
:func:`latent_class_log_likelihood` evaluates it at given values;
:func:`fit_latent_class` fits the model by EM safeguarded into Newton, with
classical and robust standard errors, class probabilities and predictions.
Its NUTS and SVI (:func:`smm_ppl.sample_latent_class`,
:func:`smm_ppl.fit_latent_class_svi`) are the package's one sampler and SVI
program in :mod:`smm_ppl.inference`; :mod:`.bayes` holds what they need of
the choice model (its start, prior scales by name, the relabelling).
"""

from .api import DEFAULT_STARTS, LatentClassResult, fit_latent_class, latent_class_log_likelihood
from .bayes import latent_class_log_likelihood_draws, relabel_latent_class_draws
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
    "relabel_latent_class_draws",
    "latent_class_log_likelihood_draws",
]
