"""Bayesian inference with NumPyro: NUTS and SVI started at a warm start (docs/math.md#bayesian-model).

One idea per module, re-exported here name by name:

- :mod:`.init` — starting values, one per chain, in one labelling; one vocabulary of start names.
- :mod:`.idata` — the pointwise log-likelihood through the layout and the posterior DataTree.
- :mod:`.nuts` — :func:`sample_nuts` and :func:`sample_latent_class`: one sampler (:func:`.nuts.run_chains`).
- :mod:`.svi` — :func:`fit_svi` and :func:`fit_latent_class_svi`: one SVI program (:func:`.svi.run_svi`).

:func:`nuts_from_fit` and :func:`svi_from_fit` start either at an EM fit of any model (the fit's type
chooses the entry point): what model selection and the command line call.
- :mod:`.laplace` — :func:`laplace`, the Gaussian at a MAP fit's mode.
- :mod:`.predictive` — :func:`posterior_predictive` and :func:`sample_prior_predictive`: replicated data, batched.

The samplers run a model program (:func:`smm_ppl.models.mixture_model` on the
data layout, :func:`smm_ppl.models.latent_class.latent_class_model` on choice
situations and their parameter map) and hand plain arrays to
:func:`smm_ppl.diagnostics.assemble_inference_data`.
"""

from .idata import inference_data as inference_data
from .idata import latent_class_inference_data as latent_class_inference_data
from .idata import log_likelihood_draws as log_likelihood_draws
from .idata import unit_log_likelihood_draws as unit_log_likelihood_draws
from .init import chain_init_params as chain_init_params
from .init import model_kwargs as model_kwargs
from .init import resolve_init as resolve_init
from .laplace import laplace as laplace
from .nuts import CHAIN_METHODS as CHAIN_METHODS
from .nuts import nuts_from_fit as nuts_from_fit
from .nuts import sample_latent_class as sample_latent_class
from .nuts import sample_nuts as sample_nuts
from .predictive import loo_pit_data as loo_pit_data
from .predictive import posterior_predictive as posterior_predictive
from .predictive import sample_prior_predictive as sample_prior_predictive
from .svi import GUIDES as GUIDES
from .svi import SVIResult as SVIResult
from .svi import fit_latent_class_svi as fit_latent_class_svi
from .svi import fit_svi as fit_svi
from .svi import svi_from_fit as svi_from_fit

__all__ = [
    "sample_nuts",
    "sample_latent_class",
    "fit_svi",
    "fit_latent_class_svi",
    "nuts_from_fit",
    "svi_from_fit",
    "laplace",
    "SVIResult",
    "resolve_init",
    "chain_init_params",
    "model_kwargs",
    "log_likelihood_draws",
    "unit_log_likelihood_draws",
    "inference_data",
    "latent_class_inference_data",
    "GUIDES",
    "CHAIN_METHODS",
    "posterior_predictive",
    "sample_prior_predictive",
    "loo_pit_data",
]
