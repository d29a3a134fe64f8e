"""``fit_em``: a thin driver over validation, the start registry, the runner and result assembly."""

from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import numpy as np

from ..core.params import WEIGHT_FLOOR, SMMParams, n_free_parameters
from ..core.prior import Prior, check_prior
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
from ..data.likelihood import layout_log_likelihood
from ..data.prepared import Prepared, prepare
from ..layouts import row_mesh
from ..warmstart.report import prefetch_effective_items
from .assumptions import MOMENT_STARTS, check_moment_assumptions
from .driver import (
    ACCELERATIONS,
    DEFAULT_MAP_MAX_ITER,
    DEFAULT_MAX_ITER,
    StartsOutcome,
    batch_size,
    em_algorithm,
    run_starts,
)
from .driver import prefetch as prefetch_em
from .kernel import M_STEPS
from .runaway import runaway_classes, runaway_message, trend_runaways
from .starts import Starts, build_starts, check_init
from .stderr import prefetch_information, whitened_standard_errors

__all__ = ["fit_em", "fit_components", "EMResult", "ConvergenceWarning"]

DEFAULT_TOL = 1e-12
DEFAULT_N_STARTS = 16
#: Subspace random starts under ``init="auto"`` when the design is far from Gaussian.
FEW_STARTS = 4


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting the tolerance."""


class EMResult(NamedTuple):
    """Result of :func:`fit_em`.

    Attributes
    ----------
    params : SMMParams
        The estimate (NumPy float64, original coordinates): the maximum
        likelihood estimate, or with a prior the posterior mode (MAP) on the
        simplex.
    log_likelihood : float
        ``sum_u n_u log pi_u`` at ``params`` (no multinomial coefficient).
    trace : ndarray of shape (n_iter + 1,)
        The objective after each iteration (the log-likelihood, or with a
        prior the log posterior), starting with the value at the start (for
        multi-start inits, the winning start's short run followed by its
        continuation).  With ``acceleration="squarem"`` one iteration is one
        SQUAREM cycle.
    n_iter : int
        Iterations run (including the short run of the winning start).
    converged : bool
    stop_reason : str
        ``"tol"`` (the stopping rule held), ``"max_iter"``, or ``"no_maximum"``:
        a maximum likelihood fit in which a class's atom runs off, either
        seen as EM ran (its norm kept growing at a steady pace while the
        log-likelihood's gains shrank: EM stopped there) or at the estimate
        (the likelihood still does not fall along the atom's way out;
        :mod:`smm_ppl.em.runaway`), so the maximum is at infinity or out of
        reach; ``converged`` is then ``False`` and a
        :class:`ConvergenceWarning` names the class, its norm, the evidence,
        the items it concentrates on and the remedy (``prior=``).
    init : str
        The start that won: ``"mom"``, ``"tensor"``, ``"subspace[i]"``,
        ``"random[i]"``, ``"user"`` or ``"user[i]"``; in a MAP fit with
        several starts, ``"<start>@annealed"`` when it won after the path of
        priors (docs/math.md#multiple-starts).
    init_params : SMMParams
        That start's parameters, before any EM iteration (for an annealed
        winner, before its path of priors).
    standard_errors : SMMParams or None
        From the observed information (see :func:`smm_ppl.standard_errors`);
        ``None`` when not requested, NaN where the information is singular.
    n_obs : int
        Number of observations ``N``.
    starts : list of dict
        One row per start: ``name``, ``log_likelihood_start``,
        ``log_likelihood_short`` (when the start stopped in the selection;
        NaN with a single start), ``iterations`` (run in the selection),
        ``outcome`` (won, or why it was dropped) and ``error`` (why a start
        could not be computed or does not apply, else ``None``).  For a MAP
        fit the two values are the log posterior (the objective compared).
    collapsed : tuple of int
        Classes whose weight fell below ``WEIGHT_FLOOR`` (atoms frozen).
    m_step, acceleration : str
        The variant that ran.
    selection : str
        Why the winning start won (successive halving among several starts).
    assumptions : MomentAssumptions or None
        Whether the latent-moment starts' assumptions (a Gaussian design,
        diffuse classes) hold at the estimate: effective items per class and
        the Gaussianity check of the design (``None`` for layouts without
        counts over one set of items).
    prior : Prior or None
        The prior of a MAP fit; ``None`` for maximum likelihood.
    objective : {"log_likelihood", "log_posterior"}
        What the fit maximised.
    log_posterior : float or None
        ``log_likelihood + prior.log_density(params)`` (the normalised prior
        density, the likelihood without its multinomial coefficient) for a MAP
        fit, else ``None``.  The trace ends at it.
    data : Prepared or None
        The validated data the fit ran on (what :func:`smm_ppl.laplace` and
        the standard errors use).
    """

    params: SMMParams
    log_likelihood: float
    trace: np.ndarray
    n_iter: int
    converged: bool
    stop_reason: str
    init: str
    init_params: SMMParams
    standard_errors: SMMParams | None
    n_obs: int
    starts: list
    collapsed: tuple
    m_step: str
    acceleration: str
    selection: str = ""
    assumptions: Any = None
    prior: Prior | None = None
    objective: str = "log_likelihood"
    log_posterior: float | None = None
    data: Any = None

    @property
    def is_map(self) -> bool:
        """Whether this is a posterior mode (a fit with a prior) rather than a maximum likelihood estimate."""
        return self.prior is not None

    @property
    def n_components(self) -> int:
        return int(np.shape(self.params.weights)[0])

    @property
    def n_params(self) -> int:
        """The free parameters of a ``K``-class mixture over ``L`` features: ``(K - 1) + K L``."""
        return n_free_parameters(*np.shape(self.params.atoms))

    @property
    def aic(self) -> float:
        return -2.0 * self.log_likelihood + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``-2 ll + k log N`` with ``N`` the number of observations."""
        return -2.0 * self.log_likelihood + self.n_params * np.log(self.n_obs)


def _check_acceleration(value: Any, name: str) -> str:
    if value is None or value is False:
        return "none"
    if value is True:
        return "squarem"
    if isinstance(value, str) and value.lower() in ACCELERATIONS + ("auto",):
        return value.lower()
    raise ValueError(
        f"{name} must be 'auto' or one of {list(ACCELERATIONS)} (or None/False for none, True for squarem), "
        f"got {value!r}."
    )


def resolve_acceleration(acceleration: str, m_step: str) -> str:
    """``"auto"``: the quasi-Newton acceleration with the gradient M-step, SQUAREM with the Newton M-step."""
    if acceleration != "auto":
        return acceleration
    return "lbfgs" if m_step == "gradient" else "squarem"


def _check_dtype(value: Any, name: str) -> str:
    """``"float64"`` or ``"float32"``, also given as a NumPy dtype or type."""
    if value is not None:
        try:
            value = np.dtype(value).name
        except TypeError:
            pass
    if value not in ("float64", "float32"):
        raise ValueError(f"{name} must be 'float64' or 'float32', got {value!r}.")
    return value


#: Declarative argument constraints of :func:`fit_em` (scikit-learn style).
PARAMETER_CONSTRAINTS = {
    "max_iter": Optional(Integer(1)),
    "tol": Real(strict=False),
    "m_step": Options(M_STEPS),
    "step_size": Real(strict=True),
    "acceleration": Constraint(_check_acceleration, f"'auto', one of {list(ACCELERATIONS)}, None or a bool"),
    "short_iter": Integer(1),
    "n_starts": Optional(Integer(1)),
    "compute_standard_errors": Boolean(),
    "progress_bar": Constraint(check_progress_bar, "None or a bool"),
    "dtype": Constraint(_check_dtype, "'float64' or 'float32'"),
    "devices": Constraint(lambda v, n: row_mesh(v), "None, an int, a sequence of jax devices or a Mesh"),
    "prior": Constraint(lambda v, n: check_prior(v, n, for_mode=True), "None or an smm_ppl.Prior with a0 >= 1"),
}


def fit_em(
    features: Any,
    counts: Any,
    n_components: int,
    init: Any = "auto",
    n_starts: int | None = None,
    seed: Any = 0,
    max_iter: int | None = None,
    tol: float = DEFAULT_TOL,
    m_step: str = "gradient",
    step_size: float = 1.0,
    acceleration: Any = "auto",
    *,
    short_iter: int = 20,
    compute_standard_errors: bool = True,
    progress_bar: bool | None = None,
    devices: Any = None,
    dtype: str = "float64",
    prior: Prior | None = None,
) -> EMResult:
    """Fit a softmax mixture by EM: the maximum likelihood estimate, or with ``prior`` the posterior mode.

    Parameters
    ----------
    features : array (p, L), or a data layout (then ``counts=None``)
    counts : array (p,) of non-negative integers, or None
    n_components : int
        Number of classes ``K``.
    init : str, SMMParams or EMResult, default "auto"
        A name from :data:`smm_ppl.em.INIT_NAMES`.  ``"auto"``: the MoM start
        when ``K <= 3``, the tensor start and ``n_starts`` random starts in the
        estimated subspace (those that apply: ``K <= L``, counts over items;
        else random starts in the full space) and the data-driven ``"split"``
        and ``"clusters"`` starts, chosen among by successive halving (every
        start ``short_iter`` iterations, then the better half twice as long,
        ...; ``selection`` says why the winner won), the winner continued.
        With ``K = 1`` (a concave problem) one start, the plain MNL fit.
        With a ``prior`` (and ``max_iter >= 600``) every start also enters the
        selection after a path of priors (100, then 10 times the prior's
        precision; named ``"<start>@annealed"``), which tracks a mode as the
        classes sharpen (docs/math.md#multiple-starts).
        ``"mom"``/``"tensor"``/``"split"``/``"clusters"``: that start;
        ``"subspace"``/``"random"``: ``n_starts`` random starts in the
        subspace / full space.  Parameters (optionally with a leading starts
        axis) or an :class:`EMResult` start there.
    n_starts : int, optional
        Random starts for ``"auto"``, ``"subspace"``, ``"random"`` (default 16; 4 under
        ``"auto"`` when the design is far from Gaussian, where the subspace is poorly estimated).
    seed : int or jax.random key
        All randomness derives from it: same seed, same result.
    max_iter : int, optional
        Iterations in total, short runs included (with SQUAREM, cycles).
        Default 2000, and 5000 with a ``prior``: on real designs the
        posterior mode's sharp classes converge slowly, and the mode is the
        estimate there.
    tol : float, default 1e-12
        Stop when the projected (Aitken) remaining gain of the log-likelihood
        is ``< tol * |ll|`` and the projected parameter change ``< sqrt(tol)``
        (whitened, relative to ``max(1, max |atom|)``), confirmed by the
        gradient: the second-order gain one more step could make, in
        whitened units, ``< tol * |objective|`` (docs/math.md#stopping-rule).
        0 runs ``max_iter``.
    m_step : {"gradient", "newton"}
        One gradient step in whitened coordinates (the paper's), or one Newton
        step (with ``acceleration="squarem"`` or ``"none"``).
    step_size : float, default 1.0
        Any positive value keeps the likelihood monotone (steps are halved).
    acceleration : {"auto", "lbfgs", "squarem", "none"}, None or bool, default "auto"
        ``"auto"``: ``"lbfgs"`` with the gradient M-step, ``"squarem"`` with
        the Newton one.  ``"lbfgs"``: L-BFGS on the observed log-likelihood with the EM step as
        its preconditioner and a monotone line search (see
        :mod:`smm_ppl.em.lbfgs`); ``"squarem"``: SQUAREM around the EM map.
    short_iter : int, default 20
        Length of the short runs of a multi-start init.
    compute_standard_errors : bool, default True
        From the observed information.
    progress_bar : bool, optional
        Progress lines on standard error (building the starts, compiling,
        iterating, standard errors).  ``None``: on in a terminal, off
        otherwise (NumPyro's convention).
    devices : int, sequence of jax devices or Mesh, optional
        Split the items over these devices (a one-axis mesh; an int ``n``: the
        first ``n`` of ``jax.devices()``).  EM and the standard errors then run
        partitioned: each device works on its block of items, and only the
        per-class sums cross devices.  ``None``: JAX's default device.  The
        result is the same to round-off.
    dtype : {"float64", "float32"}, default "float64"
        Precision of EM's arrays.  ``"float32"`` halves the memory of the
        features and of every per-item array and suits accelerators at large
        ``p``; the log-likelihood is still summed in float64, and the
        reported log-likelihood, the standard errors and the moment checks
        are computed in float64 at the estimate.  A float32 fit also stops
        when its parameters only move in their last digits.  It costs
        accuracy: see ``docs/guides/large-problems.md`` for measured
        figures.
    prior : Prior, optional
        ``None``: maximum likelihood.  A :class:`smm_ppl.Prior`: the posterior
        mode (MAP) under the NumPyro model's prior, by MAP-EM (the E-step is
        unchanged, the M-step adds the log prior; monotone in the log
        posterior, and every start, the selection and the trace compare the
        log posterior).  On real designs the likelihood may have no maximum
        (a class runs off towards a face of the items' convex hull); the
        posterior always has one.  Needs ``weights_concentration >= 1``.

    Returns
    -------
    EMResult

    Warns
    -----
    ConvergenceWarning
        ``tol > 0`` and ``max_iter`` was reached first, or the likelihood has
        no maximum (``stop_reason="no_maximum"``).
    UserWarning
        A class collapsed, or a start failed under ``"auto"`` (also in ``starts``).
    """
    opts = validate_params(
        PARAMETER_CONSTRAINTS,
        dict(
            max_iter=max_iter,
            tol=tol,
            m_step=m_step,
            step_size=step_size,
            acceleration=acceleration,
            short_iter=short_iter,
            n_starts=n_starts,
            compute_standard_errors=compute_standard_errors,
            progress_bar=progress_bar,
            devices=devices,
            dtype=dtype,
            prior=prior,
        ),
    )
    if opts["max_iter"] is None:
        opts["max_iter"] = DEFAULT_MAX_ITER if opts["prior"] is None else DEFAULT_MAP_MAX_ITER
    prepared = prepare(features, counts, opts["devices"], opts["dtype"])
    K = check_n_components(n_components, prepared.layout.n_rows)
    opts["init"] = init
    opts["acceleration"] = resolve_acceleration(opts["acceleration"], opts["m_step"])
    say = Progress(opts["progress_bar"], "fit_em")
    check_init(init)
    if prepared.process_local and isinstance(init, str):
        raise ValueError(
            f"init={init!r}: the warm starts read every item, and with devices over several processes each process "
            "holds only its own. Give init as parameters (SMMParams or an EMResult, the same in every process), "
            "e.g. a fit of a subsample."
        )
    key = check_key(seed)
    n_random = DEFAULT_N_STARTS if opts["n_starts"] is None else opts["n_starts"]
    if opts["n_starts"] is None and init == "auto" and _far_from_gaussian(prepared):
        n_random = FEW_STARTS  # random starts in a subspace the moments estimate poorly: spend less on them
    layout = prepared.layout
    algorithm = em_algorithm(opts["m_step"], opts["acceleration"])
    penalty = None if opts["prior"] is None else opts["prior"].penalty(prepared.whitening, prepared.total_weight)
    _prefetch(prepared, K, opts, algorithm, penalty)
    say(f"{layout.n_rows} rows, L = {layout.n_features}, K = {K}: building the starts (init={init!r})")
    starts = build_starts(init, prepared, K, key, n_random, penalty)
    _warn_starts(starts, init)
    outcome = run_starts(
        prepared.em_layout,
        (starts.params.weights, prepared.whitening.to_whitened(starts.params.atoms)),
        tol=opts["tol"],
        max_iter=opts["max_iter"],
        step_size=opts["step_size"],
        short_iter=opts["short_iter"],
        algorithm=algorithm,
        progress=say,
        n_obs=prepared.total_weight,
        penalty=penalty,
        # Where the moment assumptions hold the landscape is benign and the path would only cost time
        # (5-10x on a small fit); on real designs the log posterior has many local modes.
        prior_path=_far_from_gaussian(prepared),
        batch=_batch(prepared, K, opts["dtype"]),
    )
    say(f"EM: {outcome.n_iter} iterations, converged: {outcome.converged}")
    if opts["compute_standard_errors"]:
        say("standard errors from the observed information")
    result = _assemble(prepared, starts, outcome, opts)
    say("done")
    return result


def _prefetch(prepared: Prepared, K: int, opts: dict, algorithm, penalty) -> None:
    """Compile what the fit will run after its starts (EM, then the standard errors and the moment checks)
    in the background while the starts are built (see :mod:`smm_ppl.core.programs` for what that saves)."""
    prefetch_em(prepared.em_layout, K, max_iter=opts["max_iter"], tol=opts["tol"], step_size=opts["step_size"],
                algorithm=algorithm, penalty=penalty)  # fmt: skip
    if opts["compute_standard_errors"]:
        prefetch_information(prepared, K)
    if getattr(prepared.white, "supports_moments", False) and not prepared.process_local:
        prefetch_effective_items(prepared.em_layout, K)


def _batch(prepared: Prepared, K: int, dtype: str) -> int:
    """The starts the selection runs at once (:func:`~smm_ppl.em.driver.batch_size`): on one device only
    (items split over devices run one start at a time, each over every device)."""
    if prepared.mesh is not None:
        return 0
    return batch_size(K, prepared.em_layout.n_rows, prepared.n_features, np.dtype(dtype).itemsize)


def _far_from_gaussian(prepared: Prepared) -> bool:
    return bool(getattr(prepared.white, "supports_moments", False) and not prepared.gaussianity.ok)


def _warn_starts(starts: Starts, init: Any) -> None:
    for message in starts.warnings:
        if init == "auto" and "far from Gaussian" in message:
            continue  # said once, with its consequence for the fit, by the assumptions check
        warnings.warn(f"init={init!r} warm start: {message}", UserWarning, stacklevel=3)
    failed = [f for f in starts.failed if not f["skipped"]]
    if failed:
        warnings.warn(
            f"init={init!r}: warm start(s) failed and were skipped: "
            + "; ".join(f"{f['name']} ({f['error']})" for f in failed),
            UserWarning,
            stacklevel=3,
        )


def _assemble(prepared: Prepared, starts: Starts, outcome: StartsOutcome, opts: dict) -> EMResult:
    """Map back to original coordinates, warn, add standard errors: the :class:`EMResult`."""
    N = prepared.total_weight
    white_weights, white_atoms = outcome.params
    weights = white_weights / white_weights.sum()
    collapsed = tuple(int(k) for k in np.flatnonzero(weights < WEIGHT_FLOOR))
    if collapsed:
        warnings.warn(
            f"class(es) {list(collapsed)} collapsed to weight < {WEIGHT_FLOOR:g}; their atoms were frozen and are "
            "not estimates (standard errors NaN). Consider fewer components.",
            UserWarning,
            stacklevel=3,
        )
    prior = opts["prior"]
    # Without a prior, a class that ran off means there is no maximum: say so, whether EM stopped on the
    # trend (the driver's stopping test), at max_iter, or where the gains fell below the tolerance.
    runaways = []
    if prior is None:
        runaways = trend_runaways(prepared, white_atoms, outcome.memory, N)
        if not runaways and not prepared.process_local:
            runaways = runaway_classes(prepared, weights, white_atoms)
    stop_reason = "no_maximum" if runaways else ("tol" if outcome.converged else "max_iter")
    if runaways:
        warnings.warn(runaway_message(runaways), ConvergenceWarning, stacklevel=3)
    elif not outcome.converged and opts["tol"] > 0:
        hint = "" if opts["acceleration"] == "lbfgs" else ", or use acceleration='lbfgs'"
        warnings.warn(
            f"EM did not converge in max_iter={opts['max_iter']} iterations (tol={opts['tol']:g}); raise max_iter "
            f"or loosen tol{hint}. (Slow convergence can also mean too many components: a flat likelihood.)",
            ConvergenceWarning,
            stacklevel=3,
        )
    S = len(outcome.ll_start)
    origin = outcome.origin
    names = [starts.names[o] + ("@annealed" if a else "") for o, a in zip(origin, outcome.annealed)]
    # A MAP fit's values are the log posterior per observation up to the prior's normalising constant.
    shift = 0.0 if prior is None else prior.log_normaliser(*white_atoms.shape)
    rows = [
        {
            "name": names[i],
            "log_likelihood_start": float(outcome.ll_start[i] * N + shift),
            "log_likelihood_short": float(outcome.ll_short[i] * N + shift),
            "iterations": int(outcome.iterations[i]),
            "outcome": outcome.outcomes[i],
            "error": None,
        }
        for i in range(S)
    ] + [
        {
            "name": f["name"],
            "log_likelihood_start": np.nan,
            "log_likelihood_short": np.nan,
            "iterations": 0,
            "outcome": "not run",
            "error": f["error"],
        }
        for f in starts.failed
    ]
    se = None
    if opts["compute_standard_errors"] and runaways:  # no maximum, no curvature to speak of: said above
        se = SMMParams(np.full(weights.shape, np.nan), np.full(white_atoms.shape, np.nan))
    elif opts["compute_standard_errors"]:
        se = whitened_standard_errors(prepared, weights, white_atoms, prior=prior)
    trace = outcome.trace * N
    atoms = prepared.whitening.to_original(white_atoms)
    log_likelihood = float(trace[-1])
    log_posterior = None
    if prior is not None:
        # The trace holds the log posterior per observation up to the prior's normalising constant.
        log_likelihood = float(layout_log_likelihood(prepared.em_layout, weights, white_atoms))
        log_posterior = log_likelihood + prior.log_density(weights, atoms)
        trace = trace + shift
    elif prepared.em_layout.features.dtype != np.float64:
        # The trace is in the fit's precision; the reported value is exact to float64 at the estimate.
        log_likelihood = float(layout_log_likelihood(prepared.em_layout, weights, white_atoms))
    best = outcome.best
    start = int(origin[best])
    # The moment checks look at every item: not where each process holds only its own.
    assumptions = None if prepared.process_local else check_moment_assumptions(prepared, weights, white_atoms)
    _warn_assumptions(assumptions, starts.names[start], opts["init"])
    return EMResult(
        params=SMMParams(weights, atoms),
        log_likelihood=log_likelihood,
        trace=trace,
        n_iter=int(outcome.n_iter),
        converged=outcome.converged and not runaways,
        stop_reason=stop_reason,
        init=names[best],
        init_params=SMMParams(starts.params.weights[start].copy(), starts.params.atoms[start].copy()),
        standard_errors=se,
        n_obs=int(round(N)) if prepared.process_local else prepared.layout.n_obs,
        starts=rows,
        collapsed=collapsed,
        m_step=opts["m_step"],
        acceleration=opts["acceleration"],
        selection=outcome.selection.replace(f"start {best} ", f"{names[best]} ", 1),
        assumptions=assumptions,
        prior=prior,
        objective="log_likelihood" if prior is None else "log_posterior",
        log_posterior=log_posterior,
        data=prepared,
    )


def _warn_assumptions(assumptions, winner: str, init: Any) -> None:
    """Say when the moment starts were out of their depth, and what that means for this fit.

    A moment start chosen by name: whenever an assumption fails.  Under
    ``"auto"``, which also runs the data-driven starts: when the design is far
    from Gaussian (concentrated classes alone are recorded in the result, not
    warned about: on small ``p`` they are the rule).
    """
    if assumptions is None or assumptions.hold or not isinstance(init, str):
        return
    if init in MOMENT_STARTS:
        why = "; ".join(assumptions.reasons)
        consequence = (
            f"the {init!r} start can land far from the optimum: compare with init='auto', which also tries "
            "the data-driven starts 'split' and 'clusters'"
        )
    elif init == "auto" and not assumptions.gaussianity.ok:
        why = assumptions.reasons[0]
        rests = winner.split("[")[0] in MOMENT_STARTS
        consequence = (
            "the moment starts (mom, tensor, subspace) are unreliable here, so init='auto' ran fewer of them beside "
            f"the data-driven starts; the winner, {winner}, "
            + (
                "rests on the moments: check it against more starts (n_starts=...)"
                if rests
                else "does not rest on them"
            )
        )
    else:
        return
    warnings.warn(
        f"The latent-moment warm starts' assumptions fail: {why}. Consequence: {consequence}.",
        UserWarning,
        stacklevel=4,
    )


@functools.singledispatch
def fit_components(data: Any, counts: Any, n_components: int, **kwargs: Any):
    """The EM estimate of ``n_components`` classes on any data the package models: the data choose the model.

    Features and counts (or a layout) fit the softmax mixture (:func:`fit_em`); a kind of data with a model
    of its own registers its fit (``fit_components.register(ChoiceData)``: :func:`smm_ppl.fit_latent_class`,
    ``counts=None``).  Every result has ``n_components``, ``log_likelihood``, ``n_params``, ``aic``, ``bic``
    and ``converged``: what model selection and the command line read.

    ``kwargs`` go to the model's fit (``seed``, ``init``, ``max_iter``, ...).
    """
    return fit_em(data, counts, n_components, **kwargs)
