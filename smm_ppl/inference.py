"""Bayesian inference with NumPyro: NUTS and SVI started at a warm start (SPEC section 5).

Both samplers run the model of :mod:`smm_ppl.models` and hand plain arrays to
:func:`smm_ppl.diagnostics.build_inference_data`, the only place (with the rest
of :mod:`smm_ppl.diagnostics`) where ArviZ is called.

Starting values
---------------
Every NUTS chain starts at the warm start plus a small Gaussian jitter in the
*unconstrained* space (different per chain), passed through
``MCMC.run(init_params=...)``: NumPyro's ``init_to_value`` would give all chains
the same start (numpyro issue 1615).  All chains then begin in the same
labelling, which is what makes R-hat meaningful for a mixture: from NumPyro's
default initialisation two chains can settle in different permutations of the
classes (or different local modes), and R-hat then measures the label switching,
not the mixing.

Label switching
---------------
With ``relabel=True`` (default) every draw is matched to the reference labelling
(the warm start, or ``reference``) by a Hungarian assignment on the atoms before
anything is summarised; the per-draw permutations are kept in
``idata.sample_stats["label_permutation"]`` and
:func:`smm_ppl.diagnostics.raw_posterior` returns the raw draws.

``ordered=True`` uses the model variant with the first atom coordinate ordered
(``atoms[0, 0] < atoms[1, 0] < ...``) instead.  It identifies the classes
without post-processing, but the ordering is a *prior* constraint: when two
classes are close along the first coordinate (their separation there is
comparable to its posterior standard deviation) the constraint truncates the
posterior, piles mass at the boundary ``atoms[k, 0] = atoms[k+1, 0]``, biases the
two classes apart along that coordinate and shrinks their posterior
intervals; the sampler also struggles near the boundary.  Prefer relabelling,
and use ``ordered=True`` only when the classes are well separated along the
first feature.

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

Cost
----
Every call compiles its NumPyro program (the data enter the model as
constants): on a loaded 2-core CPU about 10 s, independent of the number of
draws.  The sampling itself costs ``O(p K L)`` per gradient, independent of ``N``.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .data import SMMData, as_data
from .likelihood import log_mixture_probs_jax
from .params import SMMParams
from .validation import (
    check_bool,
    check_choice,
    check_key,
    check_n_components,
    check_nonnegative_float,
    check_params,
    check_positive_float,
    check_positive_int,
)

__all__ = ["sample_nuts", "fit_svi", "SVIResult", "resolve_init", "chain_init_params", "log_likelihood_draws"]

_INIT_NAMES = ("auto", "em", "mom", "tensor")
_GUIDES = ("delta", "normal", "mvn")
_CHAIN_METHODS = ("parallel", "vectorized", "sequential")
# Weights this close to 0 have no finite stick-breaking coordinate.
_MIN_WEIGHT = 1e-8


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
    init : SMMParams
        The warm start the guide began at.
    """

    params: SMMParams
    idata: Any
    losses: np.ndarray
    guide: Any
    guide_params: dict
    init: SMMParams


# ---------------------------------------------------------------------------
# Argument handling
# ---------------------------------------------------------------------------


def _check_progress_bar(value: Any) -> bool:
    if value is None:
        # On in a terminal, off in logs, notebooks' captured output and tests.
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return check_bool(value, "progress_bar")


def _check_open_unit(value: Any, name: str) -> float:
    value = check_positive_float(value, name)
    if value >= 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}.")
    return value


def _is_em_result(obj: Any) -> bool:
    # EMResult is itself a NamedTuple: recognise it by its .params, not by type.
    return hasattr(obj, "params") and isinstance(getattr(obj, "params"), tuple)


def resolve_init(init: Any, data: SMMData, n_components: int, seed: Any = 0, *, num_chains: int | None = None):
    """Turn ``init`` into starting parameters.

    Parameters
    ----------
    init : EM result, SMMParams, str or None
        An EM result (anything with ``.params``, optionally ``.standard_errors``);
        an :class:`SMMParams` of shape ``(K,)``/``(K, L)``, or with a leading
        ``num_chains`` axis for one start per chain; a warm-start name:
        ``"auto"``/``"em"`` (``smm_ppl.fit_em(..., init="auto")``), ``"mom"``
        (:func:`smm_ppl.mom_init`), ``"tensor"`` (:func:`smm_ppl.tensor_init`);
        or ``None`` for NumPyro's default initialisation (returns ``None``).
    data : SMMData
    n_components : int
    seed : int or jax key
        Used by the warm starts that need randomness.
    num_chains : int, optional
        Required to accept per-chain starts.

    Returns
    -------
    (params, standard_errors, description)
        ``params`` has shapes ``(C, K)`` and ``(C, K, L)`` with ``C`` = 1 for a
        single start (or ``num_chains`` for per-chain starts); ``standard_errors``
        is an SMMParams or None.
    """
    K, L = n_components, data.n_features
    if init is None:
        return None, None, "numpyro-default"
    se = None
    if isinstance(init, str):
        name = init.lower()
        if name not in _INIT_NAMES:
            raise ValueError(f"init must be one of {list(_INIT_NAMES)}, an SMMParams, an EM result or None; got {init!r}.")
        key = check_key(seed)
        if name in ("auto", "em"):
            try:
                from .em import fit_em
            except ImportError as err:  # pragma: no cover - EM lands separately
                raise ImportError("init='auto'/'em' needs smm_ppl.em.fit_em, which is not available.") from err
            res = fit_em(data.features, data.counts, K, init="auto", seed=key)
            params, se, desc = res.params, getattr(res, "standard_errors", None), "em-auto"
        else:
            from . import warmstart

            func = getattr(warmstart, f"{name}_init", None)
            if func is None:  # pragma: no cover - warm starts land separately
                raise ImportError(f"init={name!r} needs smm_ppl.warmstart.{name}_init, which is not available.")
            params, desc = func(data.features, data.counts, K, seed=key), name
    elif _is_em_result(init):
        params, se, desc = init.params, getattr(init, "standard_errors", None), "em-result"
    elif isinstance(init, tuple) and len(init) == 2:
        params, desc = init, "params"
    else:
        raise TypeError(
            "init must be an EM result (with .params), an SMMParams, one of "
            f"{list(_INIT_NAMES)} or None; got {type(init).__name__}."
        )
    w = np.asarray(params[0], dtype=np.float64)
    a = np.asarray(params[1], dtype=np.float64)
    if w.ndim == 2 and a.ndim == 3:
        if num_chains is None or w.shape[0] != num_chains:
            raise ValueError(
                f"init has a leading axis of {w.shape[0]} starts; per-chain starts need exactly num_chains="
                f"{num_chains} of them."
            )
        checked = [check_params(SMMParams(w[c], a[c]), L, name=f"init[{c}]") for c in range(w.shape[0])]
        w = np.stack([c.weights for c in checked])
        a = np.stack([c.atoms for c in checked])
    else:
        p = check_params(SMMParams(w, a), L, name="init")
        w, a = p.weights[None], p.atoms[None]
    if w.shape[-1] != K:
        raise ValueError(f"init has {w.shape[-1]} components but n_components={K}.")
    if se is not None:
        se = SMMParams(np.asarray(se[0], dtype=np.float64), np.asarray(se[1], dtype=np.float64))
    return SMMParams(w, a), se, desc


def _site_values(weights: np.ndarray, atoms: np.ndarray, ordered: bool) -> dict:
    """Constrained values of the model's sample sites for one start."""
    w = np.maximum(weights, _MIN_WEIGHT)
    w = w / w.sum()
    K = w.shape[0]
    if not ordered or K == 1:
        return {"weights": jnp.asarray(w), "atoms": jnp.asarray(atoms)}
    order = np.argsort(atoms[:, 0], kind="stable")
    first = atoms[order, 0].copy()
    # The ordered transform needs strictly increasing values (log of the gaps).
    gap = 1e-6 * max(1.0, float(np.abs(first).max()))
    for k in range(1, K):
        first[k] = max(first[k], first[k - 1] + gap)
    values = {"weights": jnp.asarray(w[order]), "atoms_first": jnp.asarray(first)}
    if atoms.shape[1] > 1:
        values["atoms_rest"] = jnp.asarray(atoms[order, 1:])
    return values


def chain_init_params(
    starts: SMMParams, num_chains: int, jitter: float, key: Any, *, model_args: tuple, model_kwargs: dict
) -> dict:
    """Per-chain *unconstrained* starting values for ``MCMC.run(init_params=...)``.

    Chain ``c`` starts at ``starts[c]`` (or the single start) mapped to the
    unconstrained space with ``numpyro.infer.util.unconstrain_fn``, plus
    ``jitter`` times a standard normal draw of its own.  The values have a
    leading ``num_chains`` axis when ``num_chains > 1`` (NumPyro's convention).
    """
    from numpyro.infer.util import unconstrain_fn

    from . import models as _models

    per_chain = []
    keys = jax.random.split(check_key(key, "key"), num_chains)
    for c in range(num_chains):
        s = c if starts.weights.shape[0] > 1 else 0
        values = _site_values(starts.weights[s], starts.atoms[s], bool(model_kwargs.get("ordered", False)))
        u = unconstrain_fn(_models.softmax_mixture, model_args, model_kwargs, values)
        leaves, treedef = jax.tree_util.tree_flatten(u)
        sub = jax.random.split(keys[c], len(leaves))
        leaves = [
            v + jitter * jax.random.normal(k, jnp.shape(v), dtype=jnp.result_type(v)) for v, k in zip(leaves, sub)
        ]
        per_chain.append(jax.tree_util.tree_unflatten(treedef, leaves))
    if num_chains == 1:
        return per_chain[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_chain)


def _model_kwargs(K: int, ordered: bool, weights_concentration: float, atoms_scale: float) -> dict:
    return {
        "n_components": K,
        "ordered": ordered,
        "weights_concentration": weights_concentration,
        "atoms_scale": atoms_scale,
    }


def log_likelihood_draws(features: Any, weights: Any, atoms: Any, items: Any, *, chunk: int | None = None):
    """``log pi_j`` of the given items for every draw, vectorised with ``jax.vmap``.

    Parameters
    ----------
    features : (p, L)
    weights : (..., K) draws
    atoms : (..., K, L) draws
    items : int array (m,)
        Items to return (the observed ones).
    chunk : int, optional
        Draws per vectorised batch (bounds the ``chunk x p x K`` intermediate).

    Returns
    -------
    ndarray of shape (..., m)
    """
    x = jnp.asarray(features)
    w = np.asarray(weights)
    a = np.asarray(atoms)
    batch = w.shape[:-1]
    K = w.shape[-1]
    w2 = w.reshape(-1, K)
    a2 = a.reshape((-1,) + a.shape[-2:])
    idx = jnp.asarray(items)
    if chunk is None:
        chunk = max(1, int(2e7 // max(1, x.shape[0] * K)))
    f = jax.jit(jax.vmap(lambda ww, aa: log_mixture_probs_jax(x, ww, aa)[idx]))
    out = [np.asarray(f(jnp.asarray(w2[s : s + chunk]), jnp.asarray(a2[s : s + chunk]))) for s in range(0, w2.shape[0], chunk)]
    return np.concatenate(out, axis=0).reshape(batch + (idx.shape[0],))


def _reference_from_draws(weights: np.ndarray, atoms: np.ndarray) -> SMMParams:
    """A labelling when there is no warm start: chain 0's mean, refined once on all draws."""
    from .diagnostics import relabel_draws

    ref = atoms[0].mean(axis=0)
    for _ in range(2):
        _, a_rel, _ = relabel_draws(weights, atoms, ref)
        ref = a_rel.reshape((-1,) + ref.shape).mean(axis=0)
    w_rel, _, _ = relabel_draws(weights, atoms, ref)
    w_mean = w_rel.reshape(-1, ref.shape[0]).mean(axis=0)
    return SMMParams(w_mean / w_mean.sum(), ref)


def _finish_idata(data, weights, atoms, *, relabel, reference, sample_stats, attrs):
    """Relabel, compute the pointwise log-likelihood with vmap, build the InferenceData."""
    from .diagnostics import build_inference_data, relabel_draws

    weights = np.asarray(weights, dtype=np.float64)
    atoms = np.asarray(atoms, dtype=np.float64)
    items = data.observed_items
    # The mixture is permutation invariant, so the raw draws give the same log pi.
    ll = log_likelihood_draws(data.features, weights, atoms, items)
    perm = None
    if relabel:
        weights, atoms, perm = relabel_draws(weights, atoms, reference.atoms)
    return build_inference_data(
        weights,
        atoms,
        features=data.features,
        counts=data.counts,
        log_likelihood=ll,
        observed_items=items,
        reference=reference,
        permutation=perm,
        sample_stats=sample_stats,
        attrs=attrs,
    )


# ---------------------------------------------------------------------------
# NUTS
# ---------------------------------------------------------------------------


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
    weights_concentration: float = 1.0,
    atoms_scale: float = 3.0,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: str | None = None,
    progress_bar: bool | None = None,
):
    """NUTS on the softmax mixture, every chain started from the warm start.

    Parameters
    ----------
    features : array (p, L)
    counts : array (p,)
    n_components : int
        Number of classes ``K``.
    init : EM result, SMMParams, str or None, default "auto"
        The warm start (see :func:`resolve_init`): an EM result, an SMMParams
        (or one per chain with a leading ``num_chains`` axis), ``"auto"``/``"em"``,
        ``"mom"``, ``"tensor"``; ``None`` uses NumPyro's default initialisation
        (uniform in ``[-2, 2]`` unconstrained, each chain elsewhere), for
        comparison only.
    num_chains, num_warmup, num_samples : int
        ``num_warmup`` may be 0.
    seed : int or jax key
    jitter : float, default 0.02
        Standard deviation of the Gaussian jitter added, per chain, to the
        unconstrained starting values (0 starts every chain at the same point).
    relabel : bool, default True
        Match every draw to the reference labelling (Hungarian on the atoms).
    reference : SMMParams, optional
        The labelling to match to; default the warm start (chain 0's start), or,
        with ``init=None``, the mean of chain 0 refined on all draws.
    ordered : bool, default False
        Use the ordered-first-coordinate model variant (see the module notes on
        when it distorts the posterior).
    weights_concentration, atoms_scale : float
        Prior hyper-parameters of the model.
    target_accept_prob, max_tree_depth, dense_mass :
        NUTS settings.
    chain_method : {"parallel", "vectorized", "sequential"}, optional
        Default: "parallel" when JAX has ``num_chains`` devices, else "vectorized".
    progress_bar : bool, optional
        Default: on when standard error is a terminal.

    Returns
    -------
    az.InferenceData
        posterior ``weights`` (chain, draw, component) and ``atoms`` (chain,
        draw, component, feature); sample_stats; log_likelihood ``counts``
        (chain, draw, item) of the observed items; observed_data;
        constant_data (features and the reference labelling).
        ``posterior.attrs`` records the init, the chain method and the
        sampling wall time (``sampling_time``, seconds, compilation included).
    """
    import time

    from numpyro.infer import MCMC, NUTS

    from . import models as _models

    data = as_data(features, counts)
    K = check_n_components(n_components, data.n_items)
    num_chains = check_positive_int(num_chains, "num_chains")
    num_warmup = check_positive_int(num_warmup, "num_warmup", minimum=0)
    num_samples = check_positive_int(num_samples, "num_samples")
    jitter = check_nonnegative_float(jitter, "jitter")
    relabel = check_bool(relabel, "relabel")
    ordered = check_bool(ordered, "ordered")
    dense_mass = check_bool(dense_mass, "dense_mass")
    weights_concentration = check_positive_float(weights_concentration, "weights_concentration")
    atoms_scale = check_positive_float(atoms_scale, "atoms_scale")
    target_accept_prob = _check_open_unit(target_accept_prob, "target_accept_prob")
    max_tree_depth = check_positive_int(max_tree_depth, "max_tree_depth")
    progress_bar = _check_progress_bar(progress_bar)
    if chain_method is None:
        chain_method = "parallel" if num_chains > 1 and jax.local_device_count() >= num_chains else "vectorized"
    else:
        chain_method = check_choice(chain_method, "chain_method", _CHAIN_METHODS)
    if reference is not None:
        reference = check_params(reference, data.n_features, name="reference")
        if reference.weights.shape[0] != K:
            raise ValueError(f"reference has {reference.weights.shape[0]} components but n_components={K}.")
    key = check_key(seed)
    key_init, key_jitter, key_mcmc = jax.random.split(key, 3)

    starts, _, init_desc = resolve_init(init, data, K, key_init, num_chains=num_chains)
    model = _models.softmax_mixture
    model_args = (jnp.asarray(data.features), jnp.asarray(data.counts))
    model_kwargs = _model_kwargs(K, ordered, weights_concentration, atoms_scale)

    init_params = None
    if starts is not None:
        init_params = chain_init_params(
            starts, num_chains, jitter, key_jitter, model_args=model_args, model_kwargs=model_kwargs
        )
        if reference is None:
            reference = SMMParams(starts.weights[0], starts.atoms[0])

    kernel = NUTS(
        model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth, dense_mass=dense_mass
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        progress_bar=progress_bar,
    )
    extra = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob", "adapt_state.step_size")
    t0 = time.perf_counter()
    mcmc.run(key_mcmc, *model_args, init_params=init_params, extra_fields=extra, **model_kwargs)
    samples = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(samples)
    elapsed = time.perf_counter() - t0
    fields = mcmc.get_extra_fields(group_by_chain=True)

    weights = np.asarray(samples["weights"], dtype=np.float64)
    atoms = np.asarray(samples["atoms"], dtype=np.float64)
    if reference is None:
        reference = _reference_from_draws(weights, atoms)
    stats = {
        "diverging": np.asarray(fields["diverging"], dtype=bool),
        "lp": -np.asarray(fields["potential_energy"], dtype=np.float64),
        "energy": np.asarray(fields["energy"], dtype=np.float64),
        "n_steps": np.asarray(fields["num_steps"], dtype=np.int64),
        "acceptance_rate": np.asarray(fields["accept_prob"], dtype=np.float64),
        "step_size": np.asarray(fields["adapt_state.step_size"], dtype=np.float64),
    }
    attrs = {
        "inference_library": "numpyro",
        "inference": "nuts",
        "init": init_desc,
        "chain_method": chain_method,
        "ordered": int(ordered),
        "jitter": jitter,
        "sampling_time": elapsed,
        "num_warmup": num_warmup,
    }
    return _finish_idata(data, weights, atoms, relabel=relabel, reference=reference, sample_stats=stats, attrs=attrs)


# ---------------------------------------------------------------------------
# SVI
# ---------------------------------------------------------------------------


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
        The warm start (``None`` is not allowed: a guide needs a location).
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

    from . import models as _models

    data = as_data(features, counts)
    K = check_n_components(n_components, data.n_items)
    if not isinstance(guide, str):
        raise TypeError(f"guide must be one of {list(_GUIDES)}, got {type(guide).__name__}.")
    guide_name = check_choice(guide.lower(), "guide", _GUIDES)
    num_steps = check_positive_int(num_steps, "num_steps")
    learning_rate = check_positive_float(learning_rate, "learning_rate")
    final_lr = learning_rate / 100.0 if final_learning_rate is None else check_positive_float(
        final_learning_rate, "final_learning_rate"
    )
    num_draws = check_positive_int(num_draws, "num_draws")
    init_scale = min(0.1, 1.0 / np.sqrt(data.n_obs)) if init_scale is None else check_positive_float(
        init_scale, "init_scale"
    )
    num_particles = check_positive_int(num_particles, "num_particles")
    relabel = check_bool(relabel, "relabel")
    ordered = check_bool(ordered, "ordered")
    weights_concentration = check_positive_float(weights_concentration, "weights_concentration")
    atoms_scale = check_positive_float(atoms_scale, "atoms_scale")
    progress_bar = _check_progress_bar(progress_bar)
    if init is None:
        raise ValueError("fit_svi needs a warm start: init must be an EM result, an SMMParams or a warm-start name.")
    key = check_key(seed)
    key_init, key_svi, key_draw = jax.random.split(key, 3)
    starts, _, init_desc = resolve_init(init, data, K, key_init)
    start = SMMParams(starts.weights[0], starts.atoms[0])

    model = _models.softmax_mixture
    model_args = (jnp.asarray(data.features), jnp.asarray(data.counts))
    model_kwargs = _model_kwargs(K, ordered, weights_concentration, atoms_scale)
    loc_fn = init_to_value(values=_site_values(start.weights, start.atoms, ordered))
    if guide_name == "delta":
        g = AutoDelta(model, init_loc_fn=loc_fn)
    elif guide_name == "normal":
        g = AutoNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)
    else:
        g = AutoMultivariateNormal(model, init_loc_fn=loc_fn, init_scale=init_scale)
    decay = (final_lr / learning_rate) ** (1.0 / max(1, num_steps - 1))

    def schedule(i):
        return learning_rate * decay**i

    svi = SVI(model, g, numpyro.optim.Adam(schedule), Trace_ELBO(num_particles=num_particles))
    run = svi.run(key_svi, num_steps, *model_args, progress_bar=progress_bar, stable_update=True, **model_kwargs)
    gparams = run.params
    losses = np.asarray(run.losses, dtype=np.float64)

    median = g.median(gparams)
    draws = g.sample_posterior(key_draw, gparams, sample_shape=(num_draws,))
    w_med, a_med = _assemble(median, ordered, K, data.n_features)
    w_draws, a_draws = _assemble(draws, ordered, K, data.n_features, batch=(num_draws,))
    params = SMMParams(np.asarray(w_med, dtype=np.float64), np.asarray(a_med, dtype=np.float64))
    reference = start
    if ordered:
        # The ordered guide's classes are sorted; report them in the init's labelling.
        from .params import align_params

        params = align_params(params, start)
    attrs = {"inference_library": "numpyro", "inference": f"svi-{guide_name}", "init": init_desc, "ordered": int(ordered)}
    idata = _finish_idata(
        data,
        np.asarray(w_draws)[None],
        np.asarray(a_draws)[None],
        relabel=relabel,
        reference=reference,
        sample_stats=None,
        attrs=attrs,
    )
    return SVIResult(params=params, idata=idata, losses=losses, guide=g, guide_params=gparams, init=start)


def _assemble(values: dict, ordered: bool, K: int, L: int, batch: tuple = ()):
    """``(weights, atoms)`` from a dict of constrained site values (ordered variant included)."""
    w = np.asarray(values["weights"])
    if "atoms" in values:
        return w, np.asarray(values["atoms"])
    first = np.asarray(values["atoms_first"])
    rest = np.asarray(values["atoms_rest"]) if "atoms_rest" in values else np.zeros(batch + (K, 0))
    return w, np.concatenate([first[..., None], rest], axis=-1)
