"""Variational inference with an autoguide started at the warm start (SPEC section 5)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from .. import models
from ..layouts import as_layout
from ..params import SMMParams, align_params
from ..progress import check_progress_bar
from ..validation import (
    Boolean,
    Constraint,
    Integer,
    Optional,
    Options,
    Real,
    check_key,
    check_n_components,
    validate_params,
)
from .idata import inference_data
from .init import model_kwargs, resolve_init, site_values

__all__ = ["fit_svi", "SVIResult", "GUIDES", "SVI_CONSTRAINTS"]

GUIDES = ("delta", "normal", "mvn")

#: Declarative constraints of the optimiser's settings, shared by every model's SVI entry point.
OPTIMISER_CONSTRAINTS = {
    "num_steps": Integer(1),
    "learning_rate": Real(strict=True),
    "final_learning_rate": Optional(Real(strict=True)),
    "num_draws": Integer(1),
    "num_particles": Integer(1),
    "relabel": Boolean(),
    "progress_bar": Constraint(check_progress_bar, "None or a bool"),
}

#: Declarative argument constraints of :func:`fit_svi`.
SVI_CONSTRAINTS = {
    **OPTIMISER_CONSTRAINTS,
    "guide": Options(GUIDES),
    "init_scale": Optional(Real(strict=True)),
    "ordered": Boolean(),
    "weights_concentration": Real(strict=True),
    "atoms_scale": Real(strict=True),
}


class SVIResult(NamedTuple):
    """Result of :func:`fit_svi`.

    Attributes
    ----------
    params : SMMParams
        The guide's median (the MAP for ``guide="delta"``), in the init's labelling.
    idata : az.InferenceData
        ``num_draws`` draws from the guide (one chain), relabelled like NUTS
        draws, with the log_likelihood group.
    losses : ndarray (num_steps,)
        The ELBO loss (negative ELBO) per step.
    guide : numpyro AutoGuide
        The fitted guide object.
    guide_params : dict
        The guide's optimised parameters (``guide.median(guide_params)`` etc.).
    init : str
        Where the start came from (as :class:`smm_ppl.EMResult`'s ``init``):
        a start name, ``"em"`` or ``"user"``.
    init_params : SMMParams
        The warm start the guide began at.
    """

    params: SMMParams
    idata: Any
    losses: np.ndarray
    guide: Any
    guide_params: dict
    init: str
    init_params: SMMParams


def fit_svi(
    features: Any,
    counts: Any,
    n_components: int,
    *,
    init: Any = "auto",
    guide: str = "normal",
    num_steps: int = 2000,
    learning_rate: float = 0.01,
    final_learning_rate: float | None = None,
    num_draws: int = 1000,
    init_scale: float | None = None,
    num_particles: int = 1,
    seed: Any = 0,
    relabel: bool = True,
    ordered: bool = False,
    weights_concentration: float = 1.0,
    atoms_scale: float = 3.0,
    progress_bar: bool | None = None,
) -> SVIResult:
    """Variational inference with an autoguide started at the warm start.

    Parameters
    ----------
    features, counts, n_components :
        As in :func:`sample_nuts`.
    init : EM result, SMMParams or str, default "auto"
        The warm start, as in :func:`smm_ppl.sample_nuts` (``None`` is not
        allowed: a guide needs a location).
    guide : {"delta", "normal", "mvn"}, default "normal"
        ``AutoDelta`` (MAP), ``AutoNormal`` (mean field) or
        ``AutoMultivariateNormal`` (full covariance in the unconstrained space).
    num_steps : int
        Adam steps.
    learning_rate : float, default 0.01
        Initial Adam step size; it decays exponentially to
        ``final_learning_rate`` (default ``learning_rate / 100``) so that the
        last steps do not jitter the solution by more than the posterior sd.
    num_draws : int, default 1000
        Draws from the fitted guide in ``idata`` (for ``"delta"`` they all equal
        the MAP: its ``idata`` has no spread).
    init_scale : float, optional
        Initial scale of the Normal guides in the unconstrained space.  Default
        ``min(0.1, 1 / sqrt(N))``: with standardised features the posterior sd
        of every coordinate is of order ``1 / sqrt(N)``, and starting the scales
        there saves the optimiser most of its work (Adam moves a scale by about
        ``learning_rate`` per step in log space).
    num_particles : int, default 1
        Monte Carlo draws per ELBO gradient (more: smoother, slower steps).
    seed, relabel, ordered, weights_concentration, atoms_scale, progress_bar :
        As in :func:`sample_nuts`.

    Returns
    -------
    SVIResult
    """
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO, init_to_value
    from numpyro.infer.autoguide import AutoDelta, AutoMultivariateNormal, AutoNormal

    layout = as_layout(features, counts)
    K = check_n_components(n_components, layout.n_rows)
    if not isinstance(guide, str):
        raise TypeError(f"guide must be one of {list(GUIDES)}, got {type(guide).__name__}.")
    o = validate_params(
        SVI_CONSTRAINTS,
        dict(
            guide=guide.lower(),
            num_steps=num_steps,
            learning_rate=learning_rate,
            final_learning_rate=final_learning_rate,
            num_draws=num_draws,
            init_scale=init_scale,
            num_particles=num_particles,
            relabel=relabel,
            ordered=ordered,
            weights_concentration=weights_concentration,
            atoms_scale=atoms_scale,
            progress_bar=progress_bar,
        ),
    )
    guide_name, num_steps, learning_rate, ordered = o["guide"], o["num_steps"], o["learning_rate"], o["ordered"]
    final_lr = learning_rate / 100.0 if o["final_learning_rate"] is None else o["final_learning_rate"]
    init_scale = min(0.1, 1.0 / np.sqrt(layout.n_obs)) if o["init_scale"] is None else o["init_scale"]
    if init is None:
        raise ValueError("fit_svi needs a warm start: init must be an EM result, an SMMParams or a start name.")
    key = check_key(seed)
    key_init, key_svi, key_draw = jax.random.split(key, 3)
    starts, _, init_name = resolve_init(init, layout, K, key_init)
    start = SMMParams(starts.weights[0], starts.atoms[0])

    model = models.mixture_model
    model_args = (layout,)
    kwargs = model_kwargs(K, ordered, o["weights_concentration"], o["atoms_scale"])
    loc_fn = init_to_value(values=site_values(start.weights, start.atoms, ordered))
    if guide_name == "delta":
        g = AutoDelta(model, init_loc_fn=loc_fn)
    elif guide_name == "normal":
        g = AutoNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)
    else:
        g = AutoMultivariateNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)
    decay = (final_lr / learning_rate) ** (1.0 / max(1, num_steps - 1))

    def schedule(i):
        return learning_rate * decay**i

    svi = SVI(model, g, numpyro.optim.Adam(schedule), Trace_ELBO(num_particles=o["num_particles"]))
    run = svi.run(key_svi, num_steps, *model_args, progress_bar=o["progress_bar"], stable_update=True, **kwargs)
    gparams = run.params
    losses = np.asarray(run.losses, dtype=np.float64)

    median = g.median(gparams)
    draws = g.sample_posterior(key_draw, gparams, sample_shape=(o["num_draws"],))
    w_med, a_med = _assemble(median, ordered, K, layout.n_features)
    w_draws, a_draws = _assemble(draws, ordered, K, layout.n_features, batch=(o["num_draws"],))
    params = SMMParams(np.asarray(w_med, dtype=np.float64), np.asarray(a_med, dtype=np.float64))
    reference = start
    if ordered:
        # The ordered guide's classes are sorted; report them in the init's labelling.
        params = align_params(params, start)
    attrs = {
        "inference_library": "numpyro",
        "inference": f"svi-{guide_name}",
        "init": init_name,
        "ordered": int(ordered),
    }
    idata = inference_data(
        layout,
        np.asarray(w_draws)[None],
        np.asarray(a_draws)[None],
        relabel=o["relabel"],
        reference=reference,
        sample_stats=None,
        attrs=attrs,
    )
    return SVIResult(
        params=params, idata=idata, losses=losses, guide=g, guide_params=gparams, init=init_name, init_params=start
    )


def _assemble(values: dict, ordered: bool, K: int, L: int, batch: tuple = ()):
    """``(weights, atoms)`` from a dict of constrained site values (ordered variant included)."""
    w = np.asarray(values["weights"])
    if "atoms" in values:
        return w, np.asarray(values["atoms"])
    first = np.asarray(values["atoms_first"])
    rest = np.asarray(values["atoms_rest"]) if "atoms_rest" in values else np.zeros(batch + (K, 0))
    return w, np.concatenate([first[..., None], rest], axis=-1)
