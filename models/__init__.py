"""NumPyro model programs of smm-ppl (installed as ``smm_ppl.models``)."""

from .softmax_mixture import (
    DEFAULT_ATOMS_SCALE,
    DEFAULT_WEIGHTS_CONCENTRATION,
    softmax_mixture,
)

__all__ = ["softmax_mixture", "DEFAULT_ATOMS_SCALE", "DEFAULT_WEIGHTS_CONCENTRATION"]
