"""Posterior diagnostics: every ArviZ call of the package (docs/math.md#bayesian-model).

One idea per module, re-exported here name by name:

- :mod:`.idata` — relabelled draws, the ``DataTree`` the samplers build, files.
- :mod:`.criteria` — count-weighted LOO, WAIC and ``compare``.
- :mod:`.convergence` — R-hat, ESS, summaries, HDIs.
- :mod:`.comparison` — an EM estimate against the posterior.
- :mod:`.plots` — plots.
- :mod:`.predictive` — the predictive groups (``prior``, ``prior_predictive``, ``posterior_predictive``).
- :mod:`.calibration` — simulation-based calibration in simuk's format.
- :mod:`.labels` — how ambiguous the relabelling was (label switching between close or empty classes).

ArviZ 1 (``arviz_base``, ``arviz_stats``, ``arviz_plots``) is imported on first
use (:mod:`._arviz`), so ``import smm_ppl`` stays fast.
"""

from ._arviz import check_datatree as check_datatree
from .calibration import plot_sbc as plot_sbc
from .calibration import sbc_latent_class as sbc_latent_class
from .calibration import sbc_mixture as sbc_mixture
from .calibration import sbc_ranks as sbc_ranks
from .calibration import sbc_statistics as sbc_statistics
from .comparison import compare_latent_class_posterior as compare_latent_class_posterior
from .comparison import compare_point_to_posterior as compare_point_to_posterior
from .convergence import ess as ess
from .convergence import hdi as hdi
from .convergence import rhat as rhat
from .convergence import summary as summary
from .criteria import compare as compare
from .criteria import loo as loo
from .criteria import waic as waic
from .idata import assemble_inference_data as assemble_inference_data
from .idata import build_inference_data as build_inference_data
from .idata import datatree_from_groups as datatree_from_groups
from .idata import load_inference_data as load_inference_data
from .idata import posterior_mean_params as posterior_mean_params
from .idata import raw_posterior as raw_posterior
from .idata import relabel_draws as relabel_draws
from .idata import save_inference_data as save_inference_data
from .labels import LabelSwitchingWarning as LabelSwitchingWarning
from .labels import label_switching as label_switching
from .plots import plot_forest_comparison as plot_forest_comparison
from .plots import plot_posterior_vs_point as plot_posterior_vs_point
from .plots import plot_trace as plot_trace

__all__ = [
    "relabel_draws",
    "assemble_inference_data",
    "build_inference_data",
    "datatree_from_groups",
    "check_datatree",
    "raw_posterior",
    "loo",
    "waic",
    "compare",
    "rhat",
    "ess",
    "summary",
    "hdi",
    "posterior_mean_params",
    "compare_point_to_posterior",
    "compare_latent_class_posterior",
    "plot_posterior_vs_point",
    "plot_forest_comparison",
    "plot_trace",
    "save_inference_data",
    "load_inference_data",
    "sbc_ranks",
    "sbc_mixture",
    "sbc_latent_class",
    "sbc_statistics",
    "plot_sbc",
    "label_switching",
    "LabelSwitchingWarning",
]
