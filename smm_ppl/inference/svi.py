"""Variational inference with an autoguide started at the warm start (docs/math.md#bayesian-model).

The optimisation runs in one compiled loop (:func:`_svi_loop`), kept per
model settings and guide and called on the layout padded to its shape bucket
(the model masks units rather than slicing them out, as for NUTS).  So a
second fit on data of the same bucket, or with other step counts, learning
rates or starts, compiles nothing: NumPyro's ``SVI.run`` jits a fresh loop
body on every call.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax import lax

from .. import models
from ..choice import ChoiceData, LatentClassResult
from ..choice.bayes import (
    DEFAULT_PRIOR_SCALE,
    FALLBACK_JITTER_SD,
    derived_draws,
    prior_scales,
    resolve_result,
    start_covariance,
)
from ..core.params import SMMParams, align_params
from ..core.prior import Prior
from ..core.programs import jit_program
from ..core.progress import Progress, check_progress_bar
from ..core.validation import (
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
from ..em import EMResult
from ..em.driver import iterations_bucket
from ..layouts import as_layout, bucketed
from ..models.latent_class import latent_class_model
from .idata import inference_data, latent_class_inference_data
from .init import model_kwargs, resolve_init, sampler_prior, site_values
from .nuts import _all_units
from .predictive import with_posterior_predictive

__all__ = [
    "fit_svi",
    "fit_latent_class_svi",
    "svi_from_fit",
    "run_svi",
    "SVIResult",
    "GUIDES",
    "LATENT_CLASS_GUIDES",
    "SVI_CONSTRAINTS",
]

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
    "prior": Constraint(sampler_prior, "None or an smm_ppl.Prior"),
}


class SVIResult(NamedTuple):
    """Result of :func:`fit_svi` and :func:`fit_latent_class_svi`: one result type for every model.

    Attributes
    ----------
    params : SMMParams
        The guide's median (the MAP for ``guide="delta"``), in the init's
        labelling: the weights and atoms of the mixture, or for the
        latent-class logit the class shares and every class's coefficients
        (fixed ones included) at the median of the free parameters, as
        :class:`smm_ppl.LatentClassResult`'s ``weights`` and ``atoms``.
    idata : xarray.DataTree
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
    z : pandas.Series or None
        The latent-class logit only: the guide's median of the free
        parameters, by name (``LatentClassResult.names``); ``None`` for the
        mixture.
    """

    params: SMMParams
    idata: Any
    losses: np.ndarray
    guide: Any
    guide_params: dict
    init: str
    init_params: SMMParams
    z: Any = None


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
    prior: Prior | None = None,
    progress_bar: bool | None = None,
    posterior_predictive: bool = False,
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
    seed, relabel, ordered, prior, progress_bar :
        As in :func:`sample_nuts`.
    posterior_predictive : bool, default False
        Add the ``posterior_predictive`` group to ``idata``
        (:func:`smm_ppl.posterior_predictive`).

    Returns
    -------
    SVIResult

    Notes
    -----
    **Its intervals are too narrow: do not read uncertainty off them.**
    Simulation-based calibration (``benchmarks/bench_sbc.py``: parameters
    from the prior, p = 40 items, L = 2, K = 2, 100 data sets per N) finds
    every guide over-confident at every N tried, 100 to 10,000 choices, so
    this is not a small-sample effect that more data removes: the
    mean-field ``"normal"`` guide's posterior sd is about 0.5-0.6 of the
    posterior's for every weight and atom coordinate (its 90 % intervals
    hold the truth 57-68 % of the time), ``"mvn"``'s 0.6-0.8 (68-82 %).
    A longer optimisation (``"mvn"``, 10,000 steps, 4 particles: 20 times
    the work) narrows the gap at N = 100 without closing it (0.73-0.85,
    77-84 %), so the defaults stay.  ``"delta"`` is a point.  The guides' centres are unbiased (ranks centred): ``params`` is
    a good point estimate.  For intervals use :func:`smm_ppl.sample_nuts`
    (calibrated in the same check) or :func:`smm_ppl.laplace` (close to
    calibrated where the Hessian exists); check another size with
    ``smm.sbc_mixture(X, N, K, method="svi-mvn")``.
    """
    layout = as_layout(features, counts)
    K = check_n_components(n_components, layout.n_rows)
    o = _options(
        SVI_CONSTRAINTS,
        GUIDES,
        guide,
        num_steps=num_steps,
        learning_rate=learning_rate,
        final_learning_rate=final_learning_rate,
        num_draws=num_draws,
        num_particles=num_particles,
        relabel=relabel,
        progress_bar=progress_bar,
        init_scale=init_scale,
        ordered=ordered,
        prior=prior,
    )
    guide_name, num_steps, learning_rate, ordered = o["guide"], o["num_steps"], o["learning_rate"], o["ordered"]
    init_scale = min(0.1, 1.0 / np.sqrt(layout.n_obs)) if o["init_scale"] is None else o["init_scale"]
    if init is None:
        raise ValueError("fit_svi needs a warm start: init must be an EM result, an SMMParams or a start name.")
    key = check_key(seed)
    key_init, key_svi, key_draw = jax.random.split(key, 3)
    starts, _, init_name = resolve_init(init, layout, K, key_init, prior=o["prior"])
    start = SMMParams(starts.weights[0], starts.atoms[0])

    kwargs = _all_units(model_kwargs(K, ordered, o["prior"]))
    g = _guide(
        guide_name,
        functools.partial(models.mixture_model, **kwargs),
        site_values(start.weights, start.atoms, ordered),
        init_scale,
    )
    gparams, losses, _ = run_svi(models.mixture_model, (bucketed(layout),), g, key_svi, o, kwargs=kwargs)

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
        "weights_concentration": o["prior"].weights_concentration,
        "atoms_scale": o["prior"].atoms_scale,
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
    idata = with_posterior_predictive(idata, layout, posterior_predictive, jax.random.fold_in(key, 1))
    return SVIResult(
        params=params, idata=idata, losses=losses, guide=g, guide_params=gparams, init=init_name, init_params=start
    )


def _options(constraints: dict, guides: tuple, guide: Any, **values) -> dict:
    """The validated settings of an SVI entry point (``final_learning_rate`` defaults to ``learning_rate / 100``)."""
    if not isinstance(guide, str):
        raise TypeError(f"guide must be one of {list(guides)}, got {type(guide).__name__}.")
    o = validate_params(constraints, dict(guide=guide.lower(), **values))
    if o["final_learning_rate"] is None:
        o["final_learning_rate"] = o["learning_rate"] / 100.0
    return o


def _guide(name: str, model, values: dict, init_scale: float):
    from numpyro.infer import init_to_value
    from numpyro.infer.autoguide import AutoDelta, AutoMultivariateNormal, AutoNormal

    loc_fn = init_to_value(values=values)
    if name == "delta":
        return AutoDelta(model, init_loc_fn=loc_fn)
    if name == "normal":
        return AutoNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)
    return AutoMultivariateNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)


def _shapes(layout) -> tuple:
    leaves, tree = jax.tree_util.tree_flatten(layout)
    return tree, tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves)


def run_svi(model, args: tuple, guide, key, options: dict, *, kwargs=None, init_params=None, caller: str = "fit_svi"):
    """Adam on the ELBO of a NumPyro model program and a guide: the one SVI program of the package.

    Parameters
    ----------
    model : callable
        The model program, ``model(*args, **kwargs)`` (:func:`smm_ppl.models.mixture_model`,
        :func:`smm_ppl.models.latent_class.latent_class_model`).
    args : tuple
        Its data (the layout first), arguments of the compiled loop.
    guide : numpyro AutoGuide
        Of ``functools.partial(model, **kwargs)``.
    key : jax.random key
        Of the guide's set-up and the ELBO's draws.
    options : dict
        The validated :data:`OPTIMISER_CONSTRAINTS` and ``guide`` (its name):
        ``num_steps`` stable Adam updates at a step size decaying
        exponentially from ``learning_rate`` to ``final_learning_rate``,
        ``num_particles`` draws per ELBO gradient, ``progress_bar``.
    kwargs : dict, optional
        The model's settings (keys of the compiled loop).
    init_params : dict, optional
        Values of the guide's parameters to start at (its location and scales), instead of its own.
    caller : str
        Names the progress lines.

    Returns
    -------
    guide_params : dict
        The guide's optimised parameters.
    losses : ndarray (num_steps,)
        The negative ELBO per step.
    elapsed : float
        Seconds, compilation included.
    """
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO

    kwargs = dict(kwargs or {})
    guide_name, num_steps, learning_rate = options["guide"], options["num_steps"], options["learning_rate"]
    num_particles = options["num_particles"]
    # The guide's structure (and the optimiser state's) comes from this eager init; the step size
    # schedule is the compiled loop's argument, so the optimiser here only shapes that state.
    svi = SVI(
        functools.partial(model, **kwargs),
        guide,
        numpyro.optim.Adam(learning_rate),
        Trace_ELBO(num_particles=num_particles),
    )
    state = svi.init(key, *args, init_params=init_params)
    # A name the guide does not have would be ignored silently, and the guide start elsewhere.
    unknown = set(init_params or ()) - set(svi.get_params(state))
    if unknown:
        raise RuntimeError(f"the {type(guide).__name__} guide has no parameters {sorted(unknown)} to start at.")
    decay = (options["final_learning_rate"] / learning_rate) ** (1.0 / max(1, num_steps - 1))
    loop = _svi_loop(model, tuple(sorted(kwargs.items())), guide_name, num_particles)
    loop.guides.setdefault(_shapes(args), (guide, svi.constrain_fn))
    say = Progress(options["progress_bar"], caller)
    buffer = iterations_bucket(num_steps)
    first = not loop.is_compiled(state, args, learning_rate, decay, num_steps, buffer=buffer)
    say(
        f"{num_steps} Adam steps, guide {guide_name!r}"
        + (": compiling the loop for these settings first" if first else "")
    )
    t0 = time.perf_counter()
    state, losses = loop(state, args, learning_rate, decay, num_steps, buffer=buffer)
    gparams = svi.get_params(state)
    losses = np.asarray(losses, dtype=np.float64)[:num_steps]
    elapsed = time.perf_counter() - t0
    say(f"fitted in {elapsed:.1f} s, final loss {losses[-1]:.6g}")
    return gparams, losses, elapsed


@functools.lru_cache(maxsize=8)
def _svi_loop(model, kwargs: tuple, guide_name: str, num_particles: int):
    """The compiled optimisation loop of a model program, its settings and a guide, kept across calls.

    Returns ``loop(state, args, learning_rate, decay, num_steps, *, buffer)
    -> (state, losses)``: ``num_steps`` stable Adam updates at step size
    ``learning_rate * decay**i``, the losses in a buffer of ``buffer`` entries
    (NaN past ``num_steps``).  Everything but ``buffer`` is traced; ``args``
    are the model's positional arguments (its data).

    An update uses the guide's structure (sites, shapes, transforms: fixed by
    the model settings and the data's shapes) and the parameters in
    ``state``, never the values the guide was started at.  So the loop runs
    with the first guide set up on each shape and its parameters' constraints
    (``loop.guides``, filled by :func:`run_svi` before the call) and serves
    every later start.
    """
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO

    model = functools.partial(model, **dict(kwargs))
    guides: dict = {}

    def loop(state, args, learning_rate, decay, num_steps, *, buffer):
        optim = numpyro.optim.Adam(lambda i: learning_rate * decay**i)
        guide, constrain_fn = guides[_shapes(args)]
        svi = SVI(model, guide, optim, Trace_ELBO(num_particles=num_particles))
        svi.constrain_fn = constrain_fn  # what SVI.init sets: the parameters' constraints, from the structure

        def step(i, carry):
            state, losses = carry
            state, loss = svi.stable_update(state, *args)
            return state, losses.at[i].set(loss)

        losses = jnp.full((buffer,), jnp.nan, dtype=jnp.result_type(float))
        return lax.fori_loop(0, num_steps, step, (state, losses))

    program = jit_program(loop, static_argnames=("buffer",), name="svi")
    program.guides = guides
    return program


def _assemble(values: dict, ordered: bool, K: int, L: int, batch: tuple = ()):
    """``(weights, atoms)`` from a dict of constrained site values (ordered variant included)."""
    w = np.asarray(values["weights"])
    if "atoms" in values:
        return w, np.asarray(values["atoms"])
    first = np.asarray(values["atoms_first"])
    rest = np.asarray(values["atoms_rest"]) if "atoms_rest" in values else np.zeros(batch + (K, 0))
    return w, np.concatenate([first[..., None], rest], axis=-1)


#: Guides of :func:`fit_latent_class_svi`: mean field, or full covariance.
LATENT_CLASS_GUIDES = ("normal", "mvn")

#: Declarative argument constraints of :func:`fit_latent_class_svi`.
LATENT_CLASS_SVI_CONSTRAINTS = {**OPTIMISER_CONSTRAINTS, "guide": Options(LATENT_CLASS_GUIDES)}


def fit_latent_class_svi(
    result_or_data: LatentClassResult | ChoiceData,
    n_components: int | None = None,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    guide: str = "normal",
    num_steps: int = 1000,
    learning_rate: float = 0.01,
    final_learning_rate: float | None = None,
    num_draws: int = 1000,
    num_particles: int = 1,
    seed: Any = 0,
    relabel: bool = True,
    prior_scale: Any = DEFAULT_PRIOR_SCALE,
    progress_bar: bool | None = None,
):
    """Variational inference on the latent-class logit, the guide started at the EM estimate.

    The guide begins at the Laplace approximation of the EM fit: its location
    at the MLE and its scales at the standard errors (``"normal"``) or its
    covariance at the inverse observed information (``"mvn"``), so Adam only
    refines it (the prior's pull, the skewness a Gaussian guide can absorb).

    Parameters
    ----------
    result_or_data, n_components, shared, fixed :
        As in :func:`sample_latent_class`.
    guide : {"normal", "mvn"}, default "normal"
        ``AutoNormal`` (mean field) or ``AutoMultivariateNormal`` (full covariance).
    num_steps : int, default 1000
    learning_rate : float, default 0.01
        Initial Adam step size, decaying exponentially to ``final_learning_rate``
        (default ``learning_rate / 100``) so that the last steps move the
        guide by much less than a posterior sd.
    num_draws : int, default 1000
        Draws from the fitted guide in the DataTree (one chain).
    num_particles : int, default 1
        Monte Carlo draws per ELBO gradient.
    seed, relabel, prior_scale, progress_bar :
        As in :func:`sample_latent_class`.

    Returns
    -------
    SVIResult
        As :func:`fit_svi` returns: ``params`` the class shares and
        coefficients at the guide's median, ``z`` the median of the free
        parameters by name, ``idata`` the ``num_draws`` draws from the guide
        (one chain, as :func:`smm_ppl.sample_latent_class`'s DataTree, no
        sample_stats unless relabelled; ``posterior.attrs`` holds
        ``final_loss``, the negative ELBO averaged over the last tenth of the
        steps, and ``initial_loss``), ``losses``, the guide and its
        parameters, ``init="em"`` and ``init_params`` the EM estimate's shares
        and coefficients.
    """
    given = locals()
    o = _options(
        LATENT_CLASS_SVI_CONSTRAINTS, LATENT_CLASS_GUIDES, guide, **{k: given[k] for k in OPTIMISER_CONSTRAINTS}
    )
    key_svi, key_draw = jax.random.split(check_key(seed))
    result = resolve_result(result_or_data, n_components, shared, fixed, seed)
    pmap, layout = result.parameter_map, result.data.layout
    z_hat = jnp.asarray(result.z, dtype=jnp.float64)
    cov = start_covariance(result)
    if cov is None:
        cov = np.eye(pmap.n_params) * FALLBACK_JITTER_SD**2
    # The guide starts at the Laplace approximation of the EM fit: its location and its scales.
    if o["guide"] == "normal":
        init_params = {"z_auto_loc": z_hat, "z_auto_scale": jnp.sqrt(jnp.asarray(np.diag(cov)))}
    else:
        init_params = {"auto_loc": z_hat, "auto_scale_tril": jnp.asarray(np.linalg.cholesky(cov))}
    g = _guide(o["guide"], latent_class_model, {"z": z_hat}, 0.1)
    gparams, losses, elapsed = run_svi(
        latent_class_model,
        (layout, pmap, jnp.asarray(prior_scales(prior_scale, pmap.names))),
        g,
        key_svi,
        o,
        init_params=init_params,
        caller="fit_latent_class_svi",
    )
    draws = np.asarray(g.sample_posterior(key_draw, gparams, sample_shape=(o["num_draws"],))["z"], dtype=np.float64)
    median = np.asarray(g.median(gparams)["z"], dtype=np.float64)
    coefficients, shares, _ = derived_draws(layout, pmap, median[None])
    tail = max(1, losses.shape[0] // 10)
    attrs = {
        "inference_library": "numpyro",
        "inference": f"svi-{o['guide']}",
        "init": "em",
        "num_steps": o["num_steps"],
        "initial_loss": float(losses[0]),
        "final_loss": float(np.mean(losses[-tail:])),
        "sampling_time": elapsed,
    }
    idata = latent_class_inference_data(result, draws[None], relabel=o["relabel"], sample_stats=None, attrs=attrs)
    return SVIResult(
        params=SMMParams(shares[0], coefficients[0]),
        idata=idata,
        losses=losses,
        guide=g,
        guide_params=gparams,
        init="em",
        init_params=SMMParams(np.asarray(result.weights), np.asarray(result.atoms)),
        z=pd.Series(median, index=pd.Index(pmap.names, name="parameter"), name="median"),
    )


@functools.singledispatch
def svi_from_fit(fit: Any, **kwargs: Any) -> SVIResult:
    """SVI with the guide started at an EM fit, whichever model it is of: the fit chooses the entry point.

    An :class:`smm_ppl.EMResult` runs :func:`fit_svi` on its data
    (``init=fit``), a :class:`smm_ppl.LatentClassResult`
    :func:`fit_latent_class_svi`; ``kwargs`` go to it (``guide``,
    ``num_steps``, ``seed``, ...).  Both return an :class:`SVIResult`.
    """
    raise TypeError(
        f"fit must be an EM result (smm.fit_em, smm.fit_latent_class) to start SVI at, got {type(fit).__name__}."
    )


@svi_from_fit.register(EMResult)
def _svi_from_em(fit: EMResult, **kwargs: Any) -> SVIResult:
    return fit_svi(fit.data.layout, None, fit.n_components, init=fit, **kwargs)


svi_from_fit.register(LatentClassResult, fit_latent_class_svi)
