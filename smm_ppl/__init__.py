"""smm-ppl: softmax mixture models with warm-start EM, NumPyro and ArviZ.

Importing this package turns on JAX's float64 mode (see :mod:`smm_ppl.core.config`).
"""

from . import layouts  # noqa: I001
from .choice import (
    ChoiceData,
    ChoiceModel,
    LatentClassResult,
    LatentClassSpec,
    choice_data,
    fit_latent_class,
    latent_class_log_likelihood,
)
from .core import config  # noqa: F401  (must run before any JAX array is created)
from .core.params import SMMParams, align_params, match_components, parameter_error
from .core.prior import Prior
from .core.programs import clear_programs, compiled_programs
from .data.likelihood import log_likelihood, log_mixture_probs
from .data.simulate import simulate_counts, simulate_features, simulate_params
from .diagnostics import (
    LabelSwitchingWarning,
    compare,
    compare_latent_class_posterior,
    compare_point_to_posterior,
    ess,
    label_switching,
    load_inference_data,
    loo,
    plot_forest_comparison,
    plot_posterior_vs_point,
    plot_sbc,
    plot_trace,
    raw_posterior,
    relabel_draws,
    rhat,
    save_inference_data,
    sbc_latent_class,
    sbc_mixture,
    sbc_statistics,
    summary,
    waic,
)
from .em import ConvergenceWarning, EMResult, MomentAssumptions, fit_em
from .em.stderr import observed_information, parameter_covariance, standard_errors
from .estimator import SoftmaxMixture
from .inference import (
    SVIResult,
    fit_latent_class_svi,
    fit_svi,
    laplace,
    loo_pit_data,
    posterior_predictive,
    sample_latent_class,
    sample_nuts,
    sample_prior_predictive,
)
from .io import load_data, load_params, save_params
from .layouts import ChoiceSituations, ItemCounts, Layout, as_data, as_layout, counts_from_draws
from .selection import compare_components
from .warmstart import (
    WarmStartDiagnostics,
    check_gaussian_design,
    estimate_subspace,
    mom_init,
    subspace_random_inits,
    tensor_init,
)

__version__ = "0.1.0"

__all__ = [
    "Prior",
    "laplace",
    "ChoiceData",
    "choice_data",
    "ChoiceModel",
    "LatentClassSpec",
    "LatentClassResult",
    "fit_latent_class",
    "latent_class_log_likelihood",
    "sample_latent_class",
    "fit_latent_class_svi",
    "compare_latent_class_posterior",
    "ChoiceSituations",
    "SMMParams",
    "as_data",
    "counts_from_draws",
    "layouts",
    "Layout",
    "ItemCounts",
    "as_layout",
    "log_likelihood",
    "log_mixture_probs",
    "align_params",
    "match_components",
    "parameter_error",
    "simulate_features",
    "simulate_counts",
    "simulate_params",
    "estimate_subspace",
    "mom_init",
    "tensor_init",
    "subspace_random_inits",
    "WarmStartDiagnostics",
    "check_gaussian_design",
    "fit_em",
    "EMResult",
    "MomentAssumptions",
    "ConvergenceWarning",
    "SoftmaxMixture",
    "observed_information",
    "parameter_covariance",
    "standard_errors",
    "sample_nuts",
    "fit_svi",
    "SVIResult",
    "compare_point_to_posterior",
    "compare_components",
    "loo",
    "waic",
    "compare",
    "raw_posterior",
    "relabel_draws",
    "plot_posterior_vs_point",
    "plot_forest_comparison",
    "plot_trace",
    "rhat",
    "ess",
    "summary",
    "save_inference_data",
    "load_inference_data",
    "load_data",
    "save_params",
    "load_params",
    "posterior_predictive",
    "sample_prior_predictive",
    "loo_pit_data",
    "sbc_mixture",
    "sbc_latent_class",
    "sbc_statistics",
    "plot_sbc",
    "label_switching",
    "LabelSwitchingWarning",
    "compiled_programs",
    "clear_programs",
]
