"""NUTS on the softmax mixture, every chain started from the warm start (docs/math.md#bayesian-model).

Chains in parallel
------------------
``chain_method=None`` picks ``"parallel"`` when JAX sees at least
``num_chains`` devices (on CPU call ``numpyro.set_host_device_count(n)`` before
JAX is first used, i.e. before ``import smm_ppl``), and ``"vectorized"``
otherwise, silently (rather than through NumPyro's fallback warning on every
call).  On the 2-core CPU this was written on, vectorised and sequential chains
took the same time within noise (4 chains, p = 300, K = 2: 44 s against 43 s
including compilation); vectorised chains compile one program for all chains
and need no Python loop over chains, so they are the default.

The ordered variant
-------------------
``ordered=True`` uses the model variant with the first atom coordinate ordered
(``atoms[0, 0] < atoms[1, 0] < ...``) instead of relabelling.  It identifies the
classes without post-processing, but the ordering is a *prior* constraint: when
two classes are close along the first coordinate (their separation there is
comparable to its posterior standard deviation) the constraint truncates the
posterior, piles mass at the boundary ``atoms[k, 0] = atoms[k+1, 0]``, biases
the two classes apart along that coordinate and shrinks their posterior
intervals; the sampler also struggles near the boundary.  Prefer relabelling,
and use ``ordered=True`` only when the classes are well separated along the
first feature.

Cost
----
The first call for a model, its settings and a shape bucket compiles the
sampler (on a 2-core CPU about 10 s, independent of the number of draws).
The sampler is NumPyro's NUTS kernel pair (``numpyro.infer.hmc.hmc``) in
one jitted scan over warmup and sampling; the data are an argument of a
model that masks unobserved and padding items, and the program is kept, so
later calls on data of the same bucket (see
:func:`smm_ppl.layouts.rows_bucket`) do not compile.  The sampling itself costs ``O(p K L)`` per gradient, independent of ``N``.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import models
from ..choice import ChoiceData, LatentClassResult
from ..choice.bayes import (
    DEFAULT_PRIOR_SCALE,
    chain_starts,
    prior_scales,
    resolve_result,
    start_covariance,
)
from ..core.params import SMMParams
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
    check_params,
    check_positive_float,
    validate_params,
)
from ..diagnostics import label_switching
from ..em import EMResult
from ..layouts import as_layout, bucketed, row_mesh
from ..models.latent_class import latent_class_model
from .idata import inference_data, latent_class_inference_data, reference_from_draws
from .init import chain_init_params, model_kwargs, resolve_init, sampler_prior
from .predictive import with_posterior_predictive

__all__ = [
    "sample_nuts",
    "sample_latent_class",
    "nuts_from_fit",
    "nuts_chains",
    "run_chains",
    "default_chain_method",
    "sample_stats",
    "NUTS_CONSTRAINTS",
    "CHAIN_METHODS",
    "check_progress_bar",
    "check_open_unit",
]

CHAIN_METHODS = ("parallel", "vectorized", "sequential")


def check_open_unit(value: Any, name: str) -> float:
    value = check_positive_float(value, name)
    if value >= 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}.")
    return value


def _all_units(kwargs: dict) -> dict:
    return {**kwargs, "units": "all"}


_FIELDS = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob", "step_size")


def sample_stats(fields: tuple) -> dict:
    """The ArviZ ``sample_stats`` of the per-draw fields a :func:`nuts_chains` program returns."""
    f = dict(zip(_FIELDS, fields))
    return {
        "diverging": np.asarray(f["diverging"], dtype=bool),
        "lp": -np.asarray(f["potential_energy"], dtype=np.float64),
        "energy": np.asarray(f["energy"], dtype=np.float64),
        "n_steps": np.asarray(f["num_steps"], dtype=np.int64),
        "acceptance_rate": np.asarray(f["accept_prob"], dtype=np.float64),
        "step_size": np.asarray(f["step_size"], dtype=np.float64),
    }


def nuts_chains(potential, collect, settings: dict, name: str = "nuts"):
    """A NUTS program over chains for any potential: NumPyro's ``hmc`` kernels inside one ``lax.scan``.

    ``potential(data, z)`` is the potential energy at unconstrained ``z``,
    ``collect(data, z)`` what each draw records.  Warmup and sampling are one
    scan (one copy of the NUTS step in the program), ``vmap``-ed, ``pmap``-ed
    or mapped over chains by ``settings["chain_method"]``.  Returns
    ``program(data, z0, inverse_mass, keys) -> (collected, fields)`` with a
    leading chain axis (``inverse_mass``: the first mass matrix, or ``None``),
    a :class:`~smm_ppl.core.programs.Program` registered under ``name``.
    """
    from numpyro.infer.hmc import hmc

    o = dict(settings)
    num_warmup, num_samples = o["num_warmup"], o["num_samples"]

    def one_chain(data, z0, inverse_mass, key):
        init_kernel, sample_kernel = hmc(potential_fn=lambda z: potential(data, z), algo="NUTS")
        state = init_kernel(
            z0,
            num_warmup,
            inverse_mass_matrix=inverse_mass,
            target_accept_prob=o["target_accept_prob"],
            max_tree_depth=o["max_tree_depth"],
            dense_mass=o["dense_mass"],
            rng_key=key,
        )

        def step(state, _):
            state = sample_kernel(state)
            fields = (
                state.diverging,
                state.potential_energy,
                state.energy,
                state.num_steps,
                state.accept_prob,
                state.adapt_state.step_size,
            )
            return state, (collect(data, state.z), fields)

        _, out = lax.scan(step, state, None, length=num_warmup + num_samples)
        return jax.tree_util.tree_map(lambda x: x[num_warmup:], out)

    if o["chain_method"] == "parallel":
        return jit_program(one_chain, name=name, transform=functools.partial(jax.pmap, in_axes=(None, 0, None, 0)))
    if o["chain_method"] == "sequential":

        def chains(data, z0, inverse_mass, keys):
            return lax.map(lambda a: one_chain(data, a[0], inverse_mass, a[1]), (z0, keys))

        return jit_program(chains, name=name)
    return jit_program(jax.vmap(one_chain, in_axes=(None, 0, None, 0)), name=name)


@functools.lru_cache(maxsize=8)
def _sampler(model, kwargs: tuple, settings: tuple, sites: tuple):
    """The compiled NUTS program of a model program, its keyword arguments and settings, kept across calls.

    ``model(*args, **kwargs)`` is a NumPyro program (:func:`smm_ppl.models.mixture_model`,
    :func:`smm_ppl.models.latent_class.latent_class_model`) whose positional arguments are the
    program's data: the layout masks rather than slices, so data of the same shape bucket rerun the
    compiled program.  Returns ``run(args, init_params, inverse_mass, keys) -> ({site: draws}, fields)``
    (:func:`nuts_chains`), the draws of the (constrained or deterministic) ``sites``.
    """
    from numpyro.infer.util import constrain_fn, potential_energy

    model = functools.partial(model, **dict(kwargs))

    def collect(args, z):
        values = constrain_fn(model, args, {}, z, return_deterministic=True)
        return {k: values[k] for k in sites}

    return nuts_chains(lambda args, z: potential_energy(model, args, {}, z), collect, dict(settings), "nuts")


#: The settings of a compiled sampler (its cache key).
_SETTINGS = ("num_warmup", "num_samples", "target_accept_prob", "max_tree_depth", "dense_mass", "chain_method")


def default_chain_method(chain_method: str | None, num_chains: int, mesh: Any = None) -> str:
    """``chain_method``, or by default ``"parallel"`` when JAX has a device per chain (and no mesh), else
    ``"vectorized"``."""
    if chain_method is not None:
        return chain_method
    parallel = mesh is None and num_chains > 1 and jax.local_device_count() >= num_chains
    return "parallel" if parallel else "vectorized"


def run_chains(
    model,
    args: tuple,
    init_params: dict,
    keys,
    options: dict,
    sites: tuple,
    *,
    kwargs: dict | None = None,
    inverse_mass: Any = None,
    caller: str = "sample_nuts",
):
    """NUTS chains on a NumPyro model program: the one sampler of the package.

    Parameters
    ----------
    model : callable
        The model program, ``model(*args, **kwargs)``.
    args : tuple
        Its data (the layout first); arguments of the compiled program.
    init_params : dict
        Every chain's unconstrained start, ``{site: array (chains, ...)}``.
    keys : array (chains, 2)
    options : dict
        The validated :data:`SAMPLER_CONSTRAINTS` (``num_warmup``,
        ``num_samples``, ``target_accept_prob``, ``max_tree_depth``,
        ``dense_mass``, ``jitter``, ``progress_bar``), ``chain_method`` resolved
        (:func:`default_chain_method`).
    sites : tuple of str
        The sites every draw records.
    kwargs : dict, optional
        The model's settings (keys of the compiled program).
    inverse_mass : array, optional
        The warmup's first inverse mass matrix (default the identity).
    caller : str
        Names the progress lines.

    Returns
    -------
    samples : dict of site -> array (chains, draws, ...)
    stats : dict
        The ArviZ ``sample_stats`` (:func:`sample_stats`).
    attrs : dict
        The posterior's attributes every NUTS run records (``sampling_time``:
        seconds, compilation included).
    """
    settings = {k: options[k] for k in _SETTINGS}
    run = _sampler(model, tuple(sorted((kwargs or {}).items())), tuple(sorted(settings.items())), tuple(sites))
    say = Progress(options["progress_bar"], caller)
    first = not run.is_compiled(args, init_params, inverse_mass, keys)
    say(
        f"{keys.shape[0]} chain(s) x ({settings['num_warmup']} warmup + {settings['num_samples']}) draws, "
        f"{settings['chain_method']}"
        + (": compiling the sampler for these settings (seconds to a minute), then sampling" if first else "")
    )
    t0 = time.perf_counter()
    samples, fields = jax.block_until_ready(run(args, init_params, inverse_mass, keys))
    elapsed = time.perf_counter() - t0
    say(f"sampled in {elapsed:.1f} s")
    attrs = {
        "inference_library": "numpyro",
        "inference": "nuts",
        "chain_method": settings["chain_method"],
        "jitter": options["jitter"],
        "sampling_time": elapsed,
        "num_warmup": settings["num_warmup"],
    }
    return samples, sample_stats(fields), attrs


def _default_init(kwargs: dict, layout, keys) -> dict:
    """NumPyro's default initialisation (uniform in (-2, 2) unconstrained), one per chain."""
    from numpyro.infer.util import initialize_model

    model = functools.partial(models.mixture_model, **_all_units(kwargs))
    zs = [initialize_model(k, model, model_args=(layout,)).param_info.z for k in keys]
    return jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *zs)


#: Declarative constraints of the sampler's settings, shared by every model's NUTS entry point.
SAMPLER_CONSTRAINTS = {
    "num_chains": Integer(1),
    "num_warmup": Integer(0),
    "num_samples": Integer(1),
    "jitter": Real(strict=False),
    "relabel": Boolean(),
    "dense_mass": Boolean(),
    "target_accept_prob": Constraint(check_open_unit, "in (0, 1)"),
    "max_tree_depth": Integer(1),
    "progress_bar": Constraint(check_progress_bar, "None or a bool"),
    "chain_method": Optional(Options(CHAIN_METHODS)),
}

#: Declarative argument constraints of :func:`sample_nuts`.
NUTS_CONSTRAINTS = {
    **SAMPLER_CONSTRAINTS,
    "ordered": Boolean(),
    "prior": Constraint(sampler_prior, "None or an smm_ppl.Prior"),
}


def sample_nuts(
    features: Any,
    counts: Any,
    n_components: int,
    *,
    init: Any = "auto",
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 500,
    seed: Any = 0,
    jitter: float = 0.02,
    relabel: bool = True,
    reference: SMMParams | None = None,
    ordered: bool = False,
    prior: Prior | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: str | None = None,
    progress_bar: bool | None = None,
    devices: Any = None,
    posterior_predictive: bool = False,
):
    """NUTS on the softmax mixture, every chain started from the warm start.

    Parameters
    ----------
    features : array (p, L), or a data layout (then ``counts=None``)
    counts : array (p,) or None
    n_components : int
        Number of classes ``K``.
    init : EM result, SMMParams, str or None, default "auto"
        The warm start (see :func:`resolve_init`): an EM result (its MAP, or
        its MLE, as fitted), an SMMParams
        (or one per chain with a leading ``num_chains`` axis), a start name of
        :data:`smm_ppl.em.INIT_NAMES` (the EM estimate from that start);
        ``None`` uses NumPyro's default initialisation (uniform in ``[-2, 2]``
        unconstrained, each chain elsewhere), for comparison only.
    num_chains, num_warmup, num_samples : int
        ``num_warmup`` may be 0.
    seed : int or jax key
    jitter : float, default 0.02
        Standard deviation of the Gaussian jitter added, per chain, to the
        unconstrained starting values (0 starts every chain at the same point).
    relabel : bool, default True
        Match every draw to the reference labelling (Hungarian on the atoms);
        a :class:`smm_ppl.LabelSwitchingWarning` says when that matching was
        ambiguous (:func:`smm_ppl.label_switching`: close or empty classes).
    reference : SMMParams, optional
        The labelling to match to; default the warm start (chain 0's start), or,
        with ``init=None``, the mean of chain 0 refined on all draws.
    ordered : bool, default False
        Use the ordered-first-coordinate model variant (see the module notes on
        when it distorts the posterior).
    prior : Prior, optional
        The model's prior (default ``smm.Prior()``: ``Dirichlet(1)`` weights,
        ``Normal(0, 3^2)`` atoms in the units of ``1 / features``).  A start
        name as ``init`` means the posterior mode under this prior.
    target_accept_prob, max_tree_depth, dense_mass :
        NUTS settings.
    chain_method : {"parallel", "vectorized", "sequential"}, optional
        Default: "parallel" when JAX has ``num_chains`` devices, else "vectorized".
    progress_bar : bool, optional
        Default: on when standard error is a terminal.
    devices : int, sequence of jax devices or Mesh, optional
        Split the items over these devices (see :func:`smm_ppl.fit_em`): every
        log density and gradient runs partitioned, the chains vectorised.
    posterior_predictive : bool, default False
        Add the ``posterior_predictive`` group: counts replicated from every
        draw (:func:`smm_ppl.posterior_predictive`, which says what it costs).

    Returns
    -------
    xarray.DataTree
        ArviZ 1's result: posterior ``weights`` (chain, draw, component) and ``atoms`` (chain,
        draw, component, feature); sample_stats; log_likelihood ``counts``
        (chain, draw, item) of the observed items; observed_data;
        constant_data (features and the reference labelling).
        ``posterior.attrs`` records the init, the chain method and the
        sampling wall time (``sampling_time``, seconds, compilation included).
    """
    layout = as_layout(features, counts)
    K = check_n_components(n_components, layout.n_rows)
    o = validate_params(
        NUTS_CONSTRAINTS,
        dict(
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            jitter=jitter,
            relabel=relabel,
            ordered=ordered,
            dense_mass=dense_mass,
            prior=prior,
            target_accept_prob=target_accept_prob,
            max_tree_depth=max_tree_depth,
            progress_bar=progress_bar,
            chain_method=chain_method,
        ),
    )
    num_chains, ordered, progress_bar = o["num_chains"], o["ordered"], o["progress_bar"]
    chain_method = o["chain_method"]
    mesh = row_mesh(devices)
    if mesh is not None and chain_method == "parallel":
        raise ValueError(
            "chain_method='parallel' puts one chain on each device, and devices= splits the items over them: "
            "choose one. With devices=, use chain_method='vectorized' (the default then) or 'sequential'."
        )
    chain_method = default_chain_method(chain_method, num_chains, mesh)
    if reference is not None:
        reference = check_params(reference, layout.n_features, name="reference")
        if reference.weights.shape[0] != K:
            raise ValueError(f"reference has {reference.weights.shape[0]} components but n_components={K}.")
    key = check_key(seed)
    key_init, key_jitter, key_mcmc = jax.random.split(key, 3)

    starts, _, init_name = resolve_init(init, layout, K, key_init, num_chains=num_chains, prior=o["prior"])
    kwargs = model_kwargs(K, ordered, o["prior"])
    model_args = (bucketed(layout, mesh),)

    keys = jax.random.split(key_mcmc, num_chains)
    if starts is not None:
        init_params = chain_init_params(
            starts, num_chains, o["jitter"], key_jitter, model_args=model_args, model_kwargs=_all_units(kwargs)
        )
        if num_chains == 1:
            init_params = jax.tree_util.tree_map(lambda x: x[None], init_params)
        if reference is None:
            reference = SMMParams(starts.weights[0], starts.atoms[0])
    else:
        init_params = _default_init(kwargs, model_args[0], keys)

    samples, stats, attrs = run_chains(
        models.mixture_model,
        model_args,
        init_params,
        keys,
        {**o, "chain_method": chain_method},
        ("weights", "atoms"),
        kwargs=_all_units(kwargs),
    )
    weights = np.asarray(samples["weights"], dtype=np.float64)
    atoms = np.asarray(samples["atoms"], dtype=np.float64)
    if reference is None:
        reference = reference_from_draws(weights, atoms)
    attrs.update(
        init=init_name,
        ordered=int(ordered),
        weights_concentration=o["prior"].weights_concentration,
        atoms_scale=o["prior"].atoms_scale,
    )
    idata = inference_data(
        layout, weights, atoms, relabel=o["relabel"], reference=reference, sample_stats=stats, attrs=attrs
    )
    if o["relabel"] and K > 1:
        # Says so when the relabelling had to choose between close or empty classes (never averages in silence).
        label_switching(idata, warn=True, stacklevel=3)
    return with_posterior_predictive(idata, layout, posterior_predictive, jax.random.fold_in(key, 1))


def sample_latent_class(
    result_or_data: LatentClassResult | ChoiceData,
    n_components: int | None = None,
    *,
    shared: Any = (),
    fixed: dict | None = None,
    num_chains: int = 2,
    num_warmup: int = 500,
    num_samples: int = 500,
    seed: Any = 0,
    jitter: float = 1.0,
    relabel: bool = True,
    prior_scale: Any = DEFAULT_PRIOR_SCALE,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: str | None = None,
    progress_bar: bool | None = None,
):
    """NUTS on the latent-class logit, every chain started at the EM estimate.

    Parameters
    ----------
    result_or_data : LatentClassResult or ChoiceData
        The EM fit to start from (:func:`smm_ppl.fit_latent_class`), or
        choice data, fitted first with ``n_components``, ``shared``, ``fixed``
        and ``seed``.
    n_components : int, optional
        Required with ChoiceData.
    shared, fixed :
        The specification, as in :func:`smm_ppl.fit_latent_class` (ChoiceData only).
    num_chains, num_warmup, num_samples : int
    seed : int or jax.random key
    jitter : float, default 1.0
        Chain ``c`` starts at ``z_hat + jitter * chol(cov) eps_c``, ``cov`` the
        EM covariance: with 1, a draw from the MLE's asymptotic normal; 0
        starts every chain at the MLE.  Where the covariance is singular, an
        isotropic jitter of sd ``0.05 * jitter``.
    relabel : bool, default True
        Match every draw to the EM labelling among classes with the same
        specification (see :mod:`smm_ppl.choice.bayes`); the permutations go to
        ``sample_stats["label_permutation"]``.
    prior_scale : float, array (P,) or dict, default 10
        Prior sd of the free parameters (see :mod:`smm_ppl.models.latent_class`):
        one for all, one per parameter, or ``{name: sd}`` (the others 10).
    target_accept_prob, max_tree_depth, dense_mass :
        NUTS settings.  The EM covariance (its diagonal unless ``dense_mass``)
        is the first inverse mass matrix of the warmup.
    chain_method : {"parallel", "vectorized", "sequential"}, optional
        Default: "parallel" when JAX has ``num_chains`` devices, else "vectorized".
    progress_bar : bool, optional
        Default: on when standard error is a terminal.

    Returns
    -------
    xarray.DataTree
        See :func:`smm_ppl.inference.idata.latent_class_inference_data`:
        posterior ``z``, ``coefficients``, ``shares``; sample_stats;
        log_likelihood ``obs`` (one value per unit: per person in a panel);
        observed_data; constant_data.  ``posterior.attrs`` records the
        sampling time (seconds, compilation included).

    Notes
    -----
    The sampler is :func:`run_chains`, as for :func:`sample_nuts`, on the model
    program :func:`smm_ppl.models.latent_class.latent_class_model` (one sample
    site ``"z"``, the free parameters in the order of
    ``LatentClassResult.names``, the class summed out).
    """
    given = locals()
    o = validate_params(SAMPLER_CONSTRAINTS, {name: given[name] for name in SAMPLER_CONSTRAINTS})
    key_jitter, key_mcmc = jax.random.split(check_key(seed))
    result = resolve_result(result_or_data, n_components, shared, fixed, seed)
    pmap = result.parameter_map
    starts = chain_starts(result, o["num_chains"], o["jitter"], key_jitter)
    cov = start_covariance(result)
    if cov is None:
        cov = np.eye(pmap.n_params)
    # The EM covariance as the first mass matrix: the warmup's first window then starts well scaled.
    samples, stats, attrs = run_chains(
        latent_class_model,
        (result.data.layout, pmap, jnp.asarray(prior_scales(prior_scale, pmap.names))),
        {"z": jnp.asarray(starts)},
        jax.random.split(key_mcmc, o["num_chains"]),
        {**o, "chain_method": default_chain_method(o["chain_method"], o["num_chains"])},
        ("z",),
        inverse_mass=jnp.asarray(cov if o["dense_mass"] else np.diag(cov).copy()),
        caller="sample_latent_class",
    )
    attrs["init"] = "em"
    return latent_class_inference_data(result, samples["z"], relabel=o["relabel"], sample_stats=stats, attrs=attrs)


@functools.singledispatch
def nuts_from_fit(fit: Any, **kwargs: Any):
    """NUTS started at an EM fit, whichever model it is of: the fit chooses the entry point.

    An :class:`smm_ppl.EMResult` runs :func:`sample_nuts` on its data
    (``init=fit``), a :class:`smm_ppl.LatentClassResult`
    :func:`sample_latent_class`; ``kwargs`` go to it (``num_chains``,
    ``num_warmup``, ``num_samples``, ``seed``, ``progress_bar``, ...).
    Returns the posterior ``DataTree``.
    """
    raise TypeError(
        f"fit must be an EM result (smm.fit_em, smm.fit_latent_class) to start NUTS at, got {type(fit).__name__}."
    )


@nuts_from_fit.register(EMResult)
def _nuts_from_em(fit: EMResult, **kwargs: Any):
    return sample_nuts(fit.data.layout, None, fit.n_components, init=fit, **kwargs)


nuts_from_fit.register(LatentClassResult, sample_latent_class)
