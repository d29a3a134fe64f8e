"""The latent-class logit on choice situations and panels (SPEC section 10).

:func:`choice_data` validates long-format choice data into a
:class:`ChoiceData` (its layout is :class:`smm_ppl.layouts.ChoiceSituations`);
:func:`fit_latent_class` fits the model by EM safeguarded into Newton, with
classical and robust standard errors, class probabilities and predictions.
"""

from .api import DEFAULT_STARTS, LatentClassResult, fit_latent_class
from .data import CONSTANT, ChoiceData, choice_data
from .spec import LatentClassSpec, ParameterMap, parameter_map

__all__ = [
    "ChoiceData",
    "choice_data",
    "CONSTANT",
    "LatentClassSpec",
    "ParameterMap",
    "parameter_map",
    "LatentClassResult",
    "fit_latent_class",
    "DEFAULT_STARTS",
]
