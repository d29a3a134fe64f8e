"""Simulation-based calibration (Talts et al. 2018) of smm_ppl's samplers, in simuk's format (docs/guides/checking.md).

Prior SBC: draw parameters from the model's own prior, simulate data of the
same size, fit with the same prior, and rank every true scalar among the
fitted posterior's draws.  If the fit is the posterior, every rank is
uniform on ``0 .. M`` (``M`` thinned draws); a posterior too narrow piles
ranks at both ends (a U), one too wide in the middle, a biased one on one
side.

Why not ``simuk.SBC`` itself
----------------------------
simuk (by ArviZ developers) runs SBC for a NumPyro model by handing an
``MCMCKernel`` to ``numpyro.infer.MCMC`` with NumPyro's default
initialisation, and ranks the sample sites of chain 0 only (simuk 0.2, the
version for Python 3.11; simuk 0.3, which adds a custom ``simulator`` and a
``transform``, needs Python >= 3.12 and keeps both limits).  That cannot
test what users run: :func:`smm_ppl.sample_nuts` from the EM warm start
(``init="auto"``), its relabelling to the point estimate (a test quantity
that depends on the data through that estimate), :func:`smm_ppl.fit_svi`,
:func:`smm_ppl.laplace`, nor every chain.  So the loop here is a thin
adapter that runs the package's own samplers, and everything else is
simuk's and ArviZ's: the result is the ``DataTree`` simuk returns (group
``prior_sbc``, one variable per parameter, the replications along
``draw``), which ``arviz_plots.plot_ecdf_pit`` (simuk's documented plot)
draws with its simultaneous ECDF bands (:func:`plot_sbc`).
:func:`sbc_statistics` adds the formal test (chi-square on binned ranks,
Bonferroni over scalars) and the size of any miscalibration.

Test quantities
---------------
A mixture's classes have no names, so the ranked quantities are functions
of the parameters that fix the labels, applied alike to the true value and
to every draw (SBC holds for any such function, even one that depends on
the data; Modrak et al. 2023):

- ``labels="ordered"``: the classes sorted by their first atom coordinate
  (the ordered model's parametrisation);
- ``labels="relabel"``: the classes matched to the fit's reference
  labelling (the EM estimate, ``constant_data["reference_atoms"]``) by the
  same Hungarian assignment that relabels the draws
  (:func:`smm_ppl.relabel_draws`).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from .idata import relabel_draws

__all__ = [
    "SBC_GROUP",
    "sbc_ranks",
    "sbc_mixture",
    "sbc_latent_class",
    "sbc_statistics",
    "plot_sbc",
    "MIXTURE_METHODS",
]

#: The group simuk's ``SBC.simulations`` holds the ranks in (and ``arviz_plots.plot_ecdf_pit`` reads).
SBC_GROUP = "prior_sbc"
#: Fitting methods :func:`sbc_mixture` knows by name.
MIXTURE_METHODS = ("nuts", "svi-normal", "svi-mvn", "svi-delta", "laplace")
_LABELS = ("ordered", "relabel")


# --------------------------------------------------------------------------- #
# The loop
# --------------------------------------------------------------------------- #


def _thin(draws: np.ndarray, num_ranks: int) -> np.ndarray:
    """``num_ranks`` evenly spaced draws of (chain, draw, ...) pooled over chains (each chain alike)."""
    pooled = draws.reshape((-1,) + draws.shape[2:])
    if pooled.shape[0] < num_ranks:
        raise ValueError(f"the fit returned {pooled.shape[0]} draws; ranks need at least num_ranks={num_ranks}.")
    return pooled[np.linspace(0, pooled.shape[0] - 1, num_ranks).round().astype(int)]


def _rank(draws: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How many draws lie below the truth, ties broken at random (a point-mass fit then still gets 0 .. M)."""
    below = np.sum(draws < truth, axis=0)
    equal = np.sum(draws == truth, axis=0)
    return below + rng.integers(0, equal + 1)


def sbc_ranks(
    simulate: Callable,
    fit: Callable,
    quantities: Callable,
    *,
    num_simulations: int,
    num_ranks: int = 99,
    seed: int = 0,
    dims: Mapping[str, tuple] | None = None,
    attrs: Mapping[str, Any] | None = None,
    progress: Callable | None = None,
    on_error: str = "skip",
):
    """The SBC loop for any model and fit, returning simuk's ``DataTree``.

    Parameters
    ----------
    simulate : callable ``(seed) -> (truth, data)``
        One draw of the parameters from the prior and data simulated from them.
    fit : callable ``(data, seed) -> idata``
        The inference under test.
    quantities : callable ``(idata, truth, data) -> (draws, true_values)``
        Two dicts ``{name: array}``: the test quantities of every posterior
        draw, shaped (chain, draw, ...), and of the truth, shaped (...).
    num_simulations : int
    num_ranks : int, default 99
        Posterior draws kept per replication (evenly thinned, so that
        autocorrelated chains give nearly independent draws); ranks run
        ``0 .. num_ranks``.
    seed : int
    dims : mapping ``{name: dims}``, optional
        Names of each quantity's own dimensions (default ``dim_0``, ...).
    attrs : mapping, optional
        Recorded in the root's attributes (with ``max_rank``).
    progress : callable ``(i, seconds)``, optional
    on_error : {"skip", "raise"}, default "skip"
        A replication whose fit raises ``ValueError`` (the Laplace
        approximation at a singular Hessian) is skipped and counted in the
        root's ``failures`` attribute (its messages in ``failure_messages``):
        the ranks then condition on the fit succeeding, which the report says.

    Returns
    -------
    DataTree
        ``prior_sbc``: one variable per quantity, (chain=1, draw=replication,
        ...) integer ranks, as ``simuk.SBC(...).simulations``;
        ``sbc_stats``: per replication ``seconds``, ``warnings`` (how many
        the fit raised), and where the fit has them ``rhat_max`` (over the
        quantities), ``divergences`` and ``relabelled_share`` (the share of
        draws the sampler's relabelling permuted: the cost of the labels).
    """
    import xarray as xr

    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31 - 1, size=(num_simulations, 2))
    ranks: dict[str, list] = {}
    stats: dict[str, list] = {"seconds": [], "warnings": [], "rhat_max": [], "divergences": [], "relabelled_share": []}
    failures: list[str] = []
    for i in range(num_simulations):
        t0 = time.perf_counter()
        truth, data = simulate(int(seeds[i, 0]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                idata = fit(data, int(seeds[i, 1]))
                draws, true_values = quantities(idata, truth, data)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
                # A fit that cannot run on this data set (Laplace at a singular Hessian): counted, never hidden.
                failures.append(f"replication {i}: {type(err).__name__}: {err}")
                if on_error == "raise":
                    raise
                continue
        for name, d in draws.items():
            ranks.setdefault(name, []).append(
                _rank(_thin(np.asarray(d), num_ranks), np.asarray(true_values[name]), rng)
            )
        stats["seconds"].append(time.perf_counter() - t0)
        stats["warnings"].append(len(caught))
        stats["rhat_max"].append(_rhat_max(draws))
        stats["divergences"].append(_divergences(idata))
        stats["relabelled_share"].append(_relabelled_share(idata))
        if progress is not None:
            progress(i, stats["seconds"][-1])
    dims = dict(dims or {})
    sbc = {}
    for name, r in ranks.items():
        arr = np.stack(r)[None]
        own = tuple(dims.get(name, tuple(f"{name}_dim_{j}" for j in range(arr.ndim - 2))))
        sbc[name] = xr.DataArray(arr, dims=("chain", "draw") + own)
    if not ranks:
        raise ValueError(f"every replication failed; the first: {failures[0] if failures else '?'}")
    base = {"chain": [0], "draw": np.arange(len(stats["seconds"]))}
    stat_vars = {k: (("chain", "draw"), np.asarray(v, dtype=np.float64)[None]) for k, v in stats.items()}
    root_attrs = {
        "max_rank": int(num_ranks),
        "modeling_interface": "smm_ppl (simuk's format)",
        "failures": len(failures),
        "failure_messages": "\n".join(failures[:20]),
    }
    root_attrs.update(dict(attrs or {}))
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=root_attrs),
            f"/{SBC_GROUP}": xr.Dataset(sbc).assign_coords(base),
            "/sbc_stats": xr.Dataset(stat_vars, coords=base),
        }
    )


def _rhat_max(draws: Mapping[str, np.ndarray]) -> float:
    from arviz_stats.base import array_stats

    values = []
    for d in draws.values():
        d = np.asarray(d, dtype=np.float64)
        if d.shape[0] < 2 or d.shape[1] < 4:
            return float("nan")
        flat = np.moveaxis(d.reshape(d.shape[:2] + (-1,)), -1, 0)  # (scalar, chain, draw)
        values.append(np.asarray(array_stats.rhat(flat, chain_axis=-2, draw_axis=-1)))
    return float(np.nanmax(np.concatenate(values))) if values else float("nan")


def _divergences(idata: Any) -> float:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "diverging" not in stats:
        return float("nan")
    return float(np.sum(stats["diverging"].values))


def _relabelled_share(idata: Any) -> float:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "label_permutation" not in stats:
        return float("nan")
    perm = np.asarray(stats["label_permutation"].values)
    return float(np.mean(np.any(perm != np.arange(perm.shape[-1]), axis=-1)))


# --------------------------------------------------------------------------- #
# The softmax mixture
# --------------------------------------------------------------------------- #


def _sorted(weights: np.ndarray, atoms: np.ndarray):
    order = np.argsort(atoms[..., 0], axis=-1, kind="stable")
    return np.take_along_axis(weights, order, axis=-1), np.take_along_axis(atoms, order[..., None], axis=-2)


def _mixture_quantities(labels: str):
    def quantities(idata, truth, data):
        w = np.asarray(idata.posterior["weights"].values, dtype=np.float64)
        a = np.asarray(idata.posterior["atoms"].values, dtype=np.float64)
        tw, ta = truth
        if labels == "ordered":
            w, a = _sorted(w, a)
            tw, ta = _sorted(tw, ta)
        else:
            ref = np.asarray(idata.constant_data["reference_atoms"].values, dtype=np.float64)
            w, a, _ = relabel_draws(w, a, ref)
            tw, ta, _ = relabel_draws(tw[None], ta[None], ref)
            tw, ta = tw[0], ta[0]
        return {"weights": w, "atoms": a}, {"weights": tw, "atoms": ta}

    return quantities


def _mixture_fit(method: Any, n_components: int, prior, ordered: bool, fit_kwargs: dict) -> Callable:
    from .. import inference
    from ..em import fit_em

    if callable(method):
        return lambda data, seed: method(*data, n_components, prior=prior, seed=seed, **fit_kwargs)
    if method == "nuts":
        kw = {"num_chains": 2, "num_warmup": 400, "num_samples": 400, "init": "auto", "progress_bar": False}
        kw.update(fit_kwargs)
        return lambda data, seed: inference.sample_nuts(
            *data, n_components, prior=prior, ordered=ordered, seed=seed, **kw
        )
    if method.startswith("svi-"):
        kw = {"num_draws": 400, "progress_bar": False}
        kw.update(fit_kwargs)

        def svi(data, seed):
            mode = fit_em(*data, n_components, prior=prior, seed=seed)
            res = inference.fit_svi(
                *data, n_components, init=mode, guide=method[4:], prior=prior, ordered=ordered, seed=seed, **kw
            )
            return res.idata

        return svi
    kw = {"num_draws": 400}
    kw.update(fit_kwargs)
    return lambda data, seed: inference.laplace(fit_em(*data, n_components, prior=prior, seed=seed), seed=seed, **kw)


def sbc_mixture(
    features: Any,
    n_obs: int,
    n_components: int,
    *,
    method: Any = "nuts",
    labels: str = "ordered",
    prior: Any = None,
    num_simulations: int = 400,
    num_ranks: int = 99,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    progress: Callable | None = None,
):
    """Simulation-based calibration of a fit of the softmax mixture on a fixed design.

    Every replication draws ``(weights, atoms)`` from ``prior`` (the
    model's prior, :class:`smm_ppl.Prior`), simulates ``n_obs`` choices over
    the items of ``features``, fits them with ``method`` under the same
    prior, and ranks each true weight and atom coordinate among the fit's
    draws.

    Parameters
    ----------
    features : array (p, L)
        The design, fixed over replications.
    n_obs : int
        Choices per simulated data set (``N``).
    n_components : int
        ``K``, for the simulation and the fit.
    method : str or callable, default "nuts"
        ``"nuts"`` (:func:`smm_ppl.sample_nuts`, by default 2 chains x (400
        warmup + 400) draws from ``init="auto"``), ``"svi-normal"``,
        ``"svi-mvn"``, ``"svi-delta"`` (:func:`smm_ppl.fit_svi` from the MAP
        fit), ``"laplace"`` (:func:`smm_ppl.laplace` at the MAP fit), or any
        callable ``fit(features, counts, n_components, *, prior, seed,
        **fit_kwargs) -> idata`` (e.g. a deliberately broken sampler).
    labels : {"ordered", "relabel"}, default "ordered"
        The test quantities (see the module notes).  With ``"ordered"`` NUTS
        and SVI fit the ordered model (``ordered=True``); with ``"relabel"``
        the unordered one, its draws relabelled to the EM estimate.
    prior : Prior, optional
        Default ``smm.Prior()``.
    num_simulations : int, default 400
    num_ranks : int, default 99
        Draws kept per replication (thinned evenly); ranks run ``0 .. num_ranks``.
    seed : int
    fit_kwargs : mapping, optional
        Passed to the fitting function (e.g. ``num_samples``, ``num_steps``).
    progress : callable ``(i, seconds)``, optional

    Returns
    -------
    DataTree
        As :func:`sbc_ranks`: ``prior_sbc`` with ``weights`` (chain, draw,
        component) and ``atoms`` (chain, draw, component, feature) ranks;
        ``sbc_stats``.  Read it with :func:`sbc_statistics` and
        :func:`plot_sbc` (or ``arviz_plots.plot_ecdf_pit``).
    """
    from ..core.validation import check_features, check_n_components, check_positive_int
    from ..inference.init import sampler_prior
    from ..inference.predictive import item_count_draws, prior_draws

    x = check_features(features, check_rank=False)
    K = check_n_components(n_components, x.shape[0])
    N = check_positive_int(n_obs, "n_obs")
    if labels not in _LABELS:
        raise ValueError(f"labels must be one of {list(_LABELS)}, got {labels!r}.")
    if not callable(method) and method not in MIXTURE_METHODS:
        raise ValueError(f"method must be one of {list(MIXTURE_METHODS)} or a callable, got {method!r}.")
    prior = sampler_prior(prior)
    ordered = labels == "ordered"

    def simulate(s):
        w, a = prior_draws(prior, K, x.shape[1], 1, s)
        counts = item_count_draws(x, w, a, s + 1, n_obs=N)[0]
        return (w[0], a[0]), (x, counts)

    attrs = {
        "model": "softmax mixture",
        "method": method if isinstance(method, str) else getattr(method, "__name__", "callable"),
        "labels": labels,
        "n_items": x.shape[0],
        "n_features": x.shape[1],
        "n_components": K,
        "n_obs": N,
        "weights_concentration": prior.weights_concentration,
        "atoms_scale": prior.atoms_scale,
    }
    return sbc_ranks(
        simulate,
        _mixture_fit(method, K, prior, ordered, dict(fit_kwargs or {})),
        _mixture_quantities(labels),
        num_simulations=check_positive_int(num_simulations, "num_simulations"),
        num_ranks=check_positive_int(num_ranks, "num_ranks"),
        seed=seed,
        dims={"weights": ("component",), "atoms": ("component", "feature")},
        attrs=attrs,
        progress=progress,
    )


# --------------------------------------------------------------------------- #
# The latent-class logit
# --------------------------------------------------------------------------- #


def sbc_latent_class(
    data: Any,
    n_components: int,
    *,
    method: str = "nuts",
    prior_scale: float = 1.0,
    num_simulations: int = 400,
    num_ranks: int = 99,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    em_kwargs: Mapping[str, Any] | None = None,
    progress: Callable | None = None,
):
    """Simulation-based calibration of the latent-class logit on a fixed design of choice situations.

    Every replication draws the free parameters ``z`` from the model's prior
    ``Normal(0, prior_scale^2)``, draws each unit's class and then its
    choices (:func:`smm_ppl.inference.predictive.choice_draws`: as many per
    situation as ``data`` has), fits EM and then ``method`` with the same
    ``prior_scale``, and ranks each true parameter, relabelled to the EM
    estimate like the draws, among the fit's draws.

    Parameters
    ----------
    data : ChoiceData
        The design (features, availability, units, covariates); its choices
        only serve a first fit that gives the specification.
    n_components : int
    method : {"nuts", "svi-normal", "svi-mvn"}, default "nuts"
        :func:`smm_ppl.sample_latent_class` (2 chains x (400 + 400) draws by
        default) or :func:`smm_ppl.fit_latent_class_svi`.
    prior_scale : float, default 1.0
        The prior sd of every free parameter, in the simulation and the fit.
        The sampler's default, 10, is nearly flat; drawn from, it makes most
        choices deterministic (separation), a test of little interest.
    num_simulations, num_ranks, seed, progress :
        As in :func:`sbc_mixture`.
    fit_kwargs : mapping, optional
        Passed to the sampler.
    em_kwargs : mapping, optional
        Passed to :func:`smm_ppl.fit_latent_class` (e.g. ``starts``).

    Returns
    -------
    DataTree
        ``prior_sbc`` with ``z`` (chain, draw, parameter) ranks, coordinate
        ``parameter`` the names; ``sbc_stats``.
    """
    import dataclasses

    import jax

    from ..choice import fit_latent_class, relabel_latent_class_draws
    from ..core.validation import check_positive_int
    from ..inference import fit_latent_class_svi, sample_latent_class
    from ..inference.predictive import choice_draws

    if method not in ("nuts", "svi-normal", "svi-mvn"):
        raise ValueError(f"method must be 'nuts', 'svi-normal' or 'svi-mvn', got {method!r}.")
    em_kwargs = dict(em_kwargs or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pmap = fit_latent_class(data, n_components, seed=seed, **em_kwargs).parameter_map
    layout = data.layout
    P = pmap.n_params
    scale = float(prior_scale)

    @jax.jit
    def class_parameters(z):
        return pmap.atoms(z), pmap.log_class_probs(z)

    def simulate(s):
        z = scale * np.asarray(jax.random.normal(jax.random.PRNGKey(s), (P,)), dtype=np.float64)
        atoms, lcp = (np.asarray(v, dtype=np.float64) for v in class_parameters(z))
        counts = choice_draws(layout, lcp[None], atoms[None], s + 1)[0]
        new = dataclasses.replace(data, layout=layout._replace(counts=counts.astype(np.asarray(layout.counts).dtype)))
        return z, new

    if method == "nuts":
        kw = {"num_chains": 2, "num_warmup": 400, "num_samples": 400, "progress_bar": False}
        kw.update(dict(fit_kwargs or {}))

        def fit(d, s):
            res = fit_latent_class(d, n_components, seed=s, **em_kwargs)
            return sample_latent_class(res, prior_scale=scale, seed=s, **kw)
    else:
        kw = {"num_draws": 400, "progress_bar": False}
        kw.update(dict(fit_kwargs or {}))

        def fit(d, s):
            res = fit_latent_class(d, n_components, seed=s, **em_kwargs)
            return fit_latent_class_svi(res, guide=method[4:], prior_scale=scale, seed=s, **kw).idata

    def quantities(idata, z, d):
        ref = np.asarray(idata.constant_data["reference_coefficients"].values, dtype=np.float64)
        true_z, _ = relabel_latent_class_draws(pmap, z[None], ref)
        return {"z": np.asarray(idata.posterior["z"].values, dtype=np.float64)}, {"z": true_z[0]}

    tree = sbc_ranks(
        simulate,
        fit,
        quantities,
        num_simulations=check_positive_int(num_simulations, "num_simulations"),
        num_ranks=check_positive_int(num_ranks, "num_ranks"),
        seed=seed,
        dims={"z": ("parameter",)},
        attrs={
            "model": "latent-class logit",
            "method": method,
            "labels": "relabel",
            "n_components": int(n_components),
            "n_units": int(layout.n_units),
            "n_situations": int(layout.n_situations),
            "prior_scale": scale,
        },
        progress=progress,
    )
    tree[SBC_GROUP] = tree[SBC_GROUP].to_dataset().assign_coords(parameter=list(pmap.names))
    return tree


# --------------------------------------------------------------------------- #
# Reading the ranks
# --------------------------------------------------------------------------- #


def _scalars(tree) -> dict[str, np.ndarray]:
    """``{label: ranks (replications,)}`` for every scalar of the ``prior_sbc`` group."""
    out = {}
    ds = tree[SBC_GROUP].to_dataset()
    for name, da in ds.data_vars.items():
        da = da.isel(chain=0)
        own = [d for d in da.dims if d != "draw"]
        if not own:
            out[name] = np.asarray(da.values)
            continue
        stacked = da.stack(_scalar=own)
        for j in range(stacked.sizes["_scalar"]):
            label = stacked["_scalar"].values[j]
            label = label if isinstance(label, tuple) else (label,)
            out[f"{name}[{', '.join(str(v) for v in label)}]"] = np.asarray(stacked.isel(_scalar=j).values)
    return out


def sbc_statistics(tree, *, bins: int = 20, alpha: float = 0.001):
    """One row per scalar: the chi-square test of uniform ranks and the size of any miscalibration.

    Parameters
    ----------
    tree : DataTree
        From :func:`sbc_mixture`, :func:`sbc_latent_class` or :func:`sbc_ranks`
        (or ``simuk.SBC(...).simulations``, then with ``max_rank`` in its
        attributes or inferred as the largest rank).
    bins : int, default 20
        Rank bins of the chi-square test (``max_rank + 1`` should be a
        multiple, so that every bin holds as many rank values).
    alpha : float, default 0.001
        The family-wise level: a scalar fails when its p-value times the
        number of scalars (Bonferroni) is below ``alpha``.

    Returns
    -------
    pandas.DataFrame
        Index: the scalars (``"atoms[0, 1]"``, ``"z[x1[2]]"``, ...).
        Columns: ``chi2``, ``p_value``, ``p_bonferroni``, ``uniform``
        (``p_bonferroni >= alpha``); ``mean_rank`` (the ranks' mean over
        ``max_rank``: 0.5 when unbiased, above 0.5 when the fit's draws lie
        below the truth); ``rank_var_ratio`` (the variance of the normalised
        ranks over a uniform's, 1/12: above 1 the fit is too narrow, below
        too wide); ``coverage_50`` and ``coverage_90`` (how often the truth
        fell in the fit's central 50 % and 90 % intervals) and
        ``sd_ratio`` (the fit's posterior sd over the true posterior's
        implied by ``coverage_90`` for a Gaussian posterior: 0.5 means
        intervals half as wide as they should be).
        ``attrs`` holds ``all_uniform``, ``n_simulations``, ``max_rank``,
        ``bins`` and ``alpha``.
    """
    import pandas as pd
    from scipy import stats as st

    scalars = _scalars(tree)
    max_rank = int(tree.attrs.get("max_rank", max(int(v.max()) for v in scalars.values())))
    rows = {}
    for name, r in scalars.items():
        u = (np.asarray(r, dtype=np.float64) + 0.5) / (max_rank + 1)  # mid-bin PIT, in (0, 1)
        observed = np.bincount(np.minimum((u * bins).astype(int), bins - 1), minlength=bins)
        expected = r.shape[0] / bins
        chi2 = float(np.sum((observed - expected) ** 2) / expected)
        cov90 = float(np.mean(np.abs(u - 0.5) < 0.45))
        rows[name] = {
            "chi2": chi2,
            "p_value": float(st.chi2.sf(chi2, bins - 1)),
            "mean_rank": float(np.mean(u)),
            "rank_var_ratio": float(np.var(u) * 12.0),
            "coverage_50": float(np.mean(np.abs(u - 0.5) < 0.25)),
            "coverage_90": cov90,
            "sd_ratio": float(st.norm.ppf((1.0 + min(cov90, 0.999)) / 2.0) / st.norm.ppf(0.95)),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    m = len(table)
    table.insert(2, "p_bonferroni", np.minimum(1.0, table["p_value"] * m))
    table.insert(3, "uniform", table["p_bonferroni"] >= alpha)
    n = next(iter(scalars.values())).shape[0] if scalars else 0
    table.attrs.update(
        {
            "all_uniform": bool(table["uniform"].all()),
            "n_simulations": n,
            "max_rank": max_rank,
            "bins": bins,
            "alpha": alpha,
        }
    )
    return table


def plot_sbc(tree, *, ci_prob: float = 0.99, **kwargs):
    """The ranks' ECDF differences with simultaneous bands: ``arviz_plots.plot_ecdf_pit`` on ``prior_sbc``.

    Every panel is one scalar; its line should stay inside the band (drawn
    at ``ci_prob`` for that panel alone).  A U-shaped posterior (too narrow)
    shows as an S: below the band near 0, above it near 1.  Extra keyword
    arguments go to ``plot_ecdf_pit``.  Returns its ``PlotCollection``.
    """
    import xarray as xr

    azp = _arviz_plots()
    kwargs.setdefault("backend", "matplotlib")
    if kwargs["backend"] == "matplotlib":
        kwargs.setdefault("figure_kwargs", {"layout": "constrained"})  # two-line titles clear of the panels
    ds = tree[SBC_GROUP].to_dataset()
    max_rank = int(tree.attrs.get("max_rank", max(int(v.max()) for v in ds.data_vars.values())))
    rng = np.random.default_rng(0)
    # Randomised PIT values (rank + U(0, 1)) / (max_rank + 1): exactly uniform under calibration, so the
    # ECDF of discrete ranks is compared with the continuous band without the steps of the rank grid.
    pit = ds.map(lambda r: (r + rng.uniform(size=r.shape)) / (max_rank + 1))
    return azp.plot_ecdf_pit(xr.DataTree.from_dict({f"/{SBC_GROUP}": pit}), group=SBC_GROUP, ci_prob=ci_prob, **kwargs)


def _arviz_plots():
    # arviz-plots 0.8 reaches matplotlib.style.core, which matplotlib 3.11 no longer imports by itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import matplotlib.style.core  # noqa: F401
        except ImportError:  # pragma: no cover - a matplotlib without it has no need of it
            pass
        import arviz_plots
    return arviz_plots
