"""NumPyro model programs of smm-ppl (installed as ``smm_ppl.models``)."""

from .mixture import (
    DEFAULT_ATOMS_SCALE,
    DEFAULT_WEIGHTS_CONCENTRATION,
    mixture_model,
    sample_class_parameters,
)
from .softmax_mixture import softmax_mixture

__all__ = [
    "softmax_mixture",
    "mixture_model",
    "sample_class_parameters",
    "DEFAULT_ATOMS_SCALE",
    "DEFAULT_WEIGHTS_CONCENTRATION",
]
