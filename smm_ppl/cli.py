"""The ``smm`` command line."""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .choice import LatentClassResult
from .em import EMResult
from .em.starts import INIT_NAMES
from .inference import GUIDES


def _cmd_simulate(args: argparse.Namespace) -> int:
    import smm_ppl as smm

    X = smm.simulate_features(args.seed, args.n_items, args.n_features)
    params = smm.simulate_params(
        args.seed + 1,
        args.n_components,
        args.n_features,
        atoms_scale=args.atoms_scale,
        min_separation=args.min_separation,
    )
    counts = smm.simulate_counts(args.seed + 2, X, params, args.n_obs)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, features=X, counts=counts, weights=params.weights, atoms=params.atoms)
    print(
        f"wrote {out}: features {X.shape}, counts (N={counts.sum()}), true weights {np.round(params.weights, 3).tolist()}"
    )
    return 0


@contextlib.contextmanager
def _cpu_devices(n: int):
    """Let NUTS chains run in parallel on the host's cores, for the command's duration.

    Only effective before JAX initialises its backend, i.e. before the first
    array is created; the CLI enters it first thing.  ``XLA_FLAGS`` is restored
    afterwards, so that the flag never leaks into a later child process (a test
    calling the CLI in-process, then a subprocess).
    """
    import numpyro

    before = os.environ.get("XLA_FLAGS")
    numpyro.set_host_device_count(max(1, min(n, os.cpu_count() or 1)))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = before


_TABLE_COLUMNS = [
    "truth",
    "warm_start",
    "em_estimate",
    "em_se",
    "post_mean",
    "post_sd",
    "hdi_low",
    "hdi_high",
    "inside_hdi",
    "r_hat",
    "ess_bulk",
]


def _cmd_demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from .demo import run_demo

    out = Path(args.out)
    print(f"smm demo: writing to {out.resolve()}")
    res = run_demo(
        out,
        seed=args.seed,
        n_items=args.n_items,
        n_obs=args.n_obs,
        num_chains=args.num_chains,
        num_warmup=args.num_warmup,
        num_samples=args.num_samples,
        progress_bar=None if not args.no_progress else False,
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print()
        print("truth | method-of-moments warm start | EM (standard error) | NUTS posterior (mean, sd, 94% HDI)")
        print(res.table[_TABLE_COLUMNS].to_string())
    print()
    print(f"EM: log-likelihood {res.em.log_likelihood:.3f}, {res.em.n_iter} iterations, start '{res.em.init}'")
    print(
        f"max R-hat {res.max_rhat:.4f} ({'< 1.01: chains agree' if res.max_rhat < 1.01 else '>= 1.01: NOT converged'}); "
        f"EM estimate inside every 94% HDI: {res.all_inside_hdi}"
    )
    print("files:")
    for name, path in res.files.items():
        print(f"  {name:15s} {path}")
    return 0


#: ``--fixed`` specifications: ``name=value`` or ``name[k]=value``.
_FIXED_SPEC = re.compile(r"^\s*(?P<name>[^\[\]=]+?)\s*(?:\[(?P<k>[^\]]*)\])?\s*=(?P<value>.*)$")

#: The choice-data options (``dest`` names) that only apply with ``--situation``.
_CHOICE_OPTIONS = (
    "alternative",
    "choice",
    "features",
    "availability",
    "person",
    "covariates",
    "shared",
    "fixed",
    "n_starts",
    "max_iter",
)


def parse_fixed_specs(specs, features=None, n_components: int | None = None) -> dict:
    """Turn ``--fixed`` specifications into the ``fixed`` argument of ``fit_latent_class``.

    Each spec is ``name=value`` (the coefficient of feature ``name`` fixed in
    every class) or ``name[k]=value`` (in class ``k``, numbered from 1); specs
    of one feature in several classes combine.  ``features`` and ``n_components``,
    when given, are checked too.  Errors name the offending spec.
    """
    fixed: dict = {}
    for spec in specs or ():
        m = _FIXED_SPEC.match(spec)
        if m is None:
            raise ValueError(
                f"--fixed {spec!r}: expected name=value (every class) or name[k]=value (class k, numbered from 1)."
            )
        name, k, value = m.group("name"), m.group("k"), m.group("value").strip()
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"--fixed {spec!r}: the value {value!r} is not a number.") from None
        if not math.isfinite(v):
            raise ValueError(f"--fixed {spec!r}: the value must be finite, got {value!r}.")
        if features is not None and name not in features:
            raise ValueError(f"--fixed {spec!r}: {name!r} is not one of the --features {list(features)}.")
        if k is None:
            if isinstance(fixed.get(name), dict):
                raise ValueError(
                    f"--fixed {spec!r}: {name!r} is already fixed in class(es) {sorted(fixed[name])}; "
                    "fix it in every class (name=value) or per class (name[k]=value), not both."
                )
            if name in fixed:
                raise ValueError(f"--fixed {spec!r}: {name!r} is fixed more than once.")
            fixed[name] = v
            continue
        k = k.strip()
        top = "K" if n_components is None else str(n_components)
        if not k.isdigit() or not 1 <= int(k) <= (n_components or int(k)):
            raise ValueError(f"--fixed {spec!r}: the class {k!r} must be a whole number 1 .. {top}.")
        per_class = fixed.setdefault(name, {})
        if not isinstance(per_class, dict):
            raise ValueError(f"--fixed {spec!r}: {name!r} is already fixed in every class.")
        if int(k) in per_class:
            raise ValueError(f"--fixed {spec!r}: {name!r} in class {int(k)} is fixed more than once.")
        per_class[int(k)] = v
    return fixed


def _choice_input(args: argparse.Namespace):
    """``smm fit DATA --situation ...``: the long-format choice table as ChoiceData and its fit's arguments."""
    from .choice import DEFAULT_STARTS, choice_data
    from .io import read_table

    if args.counts is not None or args.draws is not None:
        raise ValueError(
            "--counts and --draws are for the softmax mixture on items, not for choice data (--situation)."
        )
    missing = [f"--{o}" for o in ("alternative", "choice", "features") if not getattr(args, o)]
    if missing:
        raise ValueError(f"choice data (--situation) also need {', '.join(missing)}.")
    features = list(args.features)
    K = args.n_components
    for name in args.shared or ():
        if name not in features:
            raise ValueError(f"--shared {name!r} is not one of the --features {features}.")
    fixed = parse_fixed_specs(args.fixed, features, K)

    frame = read_table(args.data, name="data")
    wanted = [
        ("--situation", [args.situation]),
        ("--alternative", [args.alternative]),
        ("--choice", [args.choice]),
        ("--features", features),
        ("--availability", [args.availability] if args.availability else []),
        ("--person", [args.person] if args.person else []),
        ("--covariates", list(args.covariates or ())),
    ]
    absent = [f"{opt} {c!r}" for opt, cols in wanted for c in cols if c not in frame.columns]
    if absent:
        raise ValueError(f"{args.data} has no column {', '.join(absent)}; its columns are {list(frame.columns)}.")
    data = choice_data(
        frame,
        situation=args.situation,
        alternative=args.alternative,
        choice=args.choice,
        features=features,
        availability=args.availability,
        person=args.person,
        covariates=args.covariates,
        panel=False if args.cross_sectional else None,
    )
    n_starts = DEFAULT_STARTS if args.n_starts is None else args.n_starts
    fit_kwargs = dict(
        shared=tuple(args.shared or ()),
        fixed=fixed,
        init=args.init,
        n_starts=n_starts,
        max_iter=500 if args.max_iter is None else args.max_iter,
    )
    return data, None, fit_kwargs, f"{data!r}; latent-class logit, K={K}, EM from {n_starts} starts"


def _items_input(args: argparse.Namespace):
    """``smm fit DATA``: features and counts of items, and their fit's arguments."""
    from .io import load_data

    given = [f"--{o.replace('_', '-')}" for o in _CHOICE_OPTIONS if getattr(args, o) not in (None, [])]
    given += ["--cross-sectional"] if args.cross_sectional else []
    if given:
        raise ValueError(f"{', '.join(given)} describe long-format choice data: give --situation COL too.")
    data = load_data(args.data, counts=args.counts, draws=args.draws)
    what = f"p={data.n_items} items, L={data.n_features} features, N={data.n_obs} draws, K={args.n_components}"
    return data.features, data.counts, {"init": args.init}, what


@functools.singledispatch
def _write_fit(result, out: Path, args: argparse.Namespace) -> dict:
    """Write an EM fit's files, say what it found; returns its part of summary.json."""
    raise TypeError(f"no output for a {type(result).__name__}.")


@_write_fit.register(EMResult)
def _write_em(em, out: Path, args: argparse.Namespace) -> dict:
    from .io import save_params

    summary = {"log_likelihood": em.log_likelihood, "n_iter": em.n_iter, "converged": em.converged, "init": em.init}
    save_params(out / "em_fit.json", em.params, em.standard_errors, **summary)
    print(
        f"EM: log-likelihood {em.log_likelihood:.3f}, {em.n_iter} iterations, converged={em.converged}, "
        f"start '{em.init}' -> {out / 'em_fit.json'}"
    )
    return {"em": summary}


@_write_fit.register(LatentClassResult)
def _write_latent_class(result, out: Path, args: argparse.Namespace) -> dict:
    from .choice import DEFAULT_STARTS

    data = result.data
    files = {
        "params": out / "params.csv",
        "weights": out / "weights.csv",
        "class_probabilities": out / "class_probabilities.csv",
    }
    result.params.to_csv(files["params"])
    result.weights_table.to_csv(files["weights"])
    probs = result.class_probabilities
    probs.rename(columns=lambda k: f"class_{k}").rename_axis(columns=None).to_csv(files["class_probabilities"])
    print()
    print(result.summary())
    print()
    print("files:")
    for name, path in files.items():
        print(f"  {name:20s} {path}")
    return {
        "model": "latent-class logit",
        "method": "em",
        "log_likelihood": result.log_likelihood,
        "aic": result.aic,
        "bic": result.bic,
        "n_params": result.n_params,
        "converged": result.converged,
        "n_iter": result.n_iter,
        "n_components": result.n_components,
        "n_starts": DEFAULT_STARTS if args.n_starts is None else args.n_starts,
        "seed": args.seed,
        "shared": list(args.shared or ()),
        "fixed": parse_fixed_specs(args.fixed),
        "data": {
            "path": str(args.data),
            "situation": args.situation,
            "alternative": args.alternative,
            "choice": args.choice,
            "features": list(data.feature_names),
            "availability": args.availability,
            "person": args.person,
            "membership_covariates": list(data.covariate_names),
            "panel": data.panel,
            "unit": "person" if data.panel else "situation",
            "robust_se_clusters": args.person,
            "n_obs": data.n_obs,
            "n_situations": data.n_situations,
            "n_units": data.n_units,
            "n_available_alternatives": data.layout.n_rows,
        },
    }


@functools.singledispatch
def _against_fit(fit, idata, save_plot) -> Any:
    """The EM fit against a posterior: the table (one row per scalar), and the model's plots of them."""
    raise TypeError(f"no comparison for a {type(fit).__name__}.")


@_against_fit.register(EMResult)
def _against_em(em, idata, save_plot):
    from . import diagnostics

    save_plot(diagnostics.plot_posterior_vs_point(idata, em), "nuts_posterior.png")
    return diagnostics.compare_point_to_posterior(idata, em)


@_against_fit.register(LatentClassResult)
def _against_latent_class(result, idata, save_plot):
    from . import diagnostics

    return diagnostics.compare_latent_class_posterior(idata, result)


@functools.singledispatch
def _forest(fit, posteriors: dict, save_plot) -> None:
    """The posteriors side by side against the EM fit, for a model that has the plot (the mixture)."""


@_forest.register(EMResult)
def _forest_em(em, posteriors: dict, save_plot) -> None:
    from . import diagnostics

    save_plot(diagnostics.plot_forest_comparison(posteriors, em), "forest.png")


def _jsonable(value):
    """Plain Python values for ``json.dumps`` (NumPy scalars become floats, ints, bools)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cmd_fit(args: argparse.Namespace) -> int:
    """``smm fit``: EM, then NUTS and SVI from it, on items (features and counts) or choice data (--situation).

    Reading the input is the one step that depends on its format; the data then choose the model
    (:func:`smm_ppl.em.fit_components`) and the fit the samplers (:func:`smm_ppl.inference.nuts_from_fit`,
    :func:`smm_ppl.inference.svi_from_fit`).
    """
    import json

    from . import diagnostics
    from .demo import figure_of
    from .em import fit_components
    from .inference import nuts_from_fit, svi_from_fit
    from .io import save_params

    read = _choice_input if args.situation is not None else _items_input
    features, counts, fit_kwargs, what = read(args)
    K = args.n_components
    out = Path(args.out)
    methods = ["em", "nuts", "svi"] if args.method == "all" else [args.method]
    print(f"smm fit: {what}; methods {methods}; writing to {out.resolve()}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save_plot(obj, name):
        fig = figure_of(obj)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)

    progress = None if not args.no_progress else False
    em = fit_components(features, counts, K, seed=args.seed, progress_bar=progress, **fit_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    summary = _write_fit(em, out, args)
    posteriors = {}
    if "nuts" in methods:
        idata = nuts_from_fit(
            em,
            num_chains=args.num_chains,
            num_warmup=args.num_warmup,
            num_samples=args.num_samples,
            seed=args.seed,
            progress_bar=None if not args.no_progress else False,
        )
        diagnostics.save_inference_data(idata, out / "nuts.nc")
        _against_fit(em, idata, save_plot).to_csv(out / "nuts_vs_em.csv")
        max_rhat = diagnostics.rhat(idata)["max"]
        summary["nuts"] = {"max_rhat": max_rhat, "loo": float(diagnostics.loo(idata).elpd)}
        save_plot(diagnostics.plot_trace(idata), "nuts_trace.png")
        posteriors["NUTS"] = idata
        print(f"NUTS: max R-hat {max_rhat:.4f} -> {out / 'nuts.nc'}, {out / 'nuts_vs_em.csv'}")
    if "svi" in methods:
        svi = svi_from_fit(em, guide=args.guide, num_steps=args.svi_steps, seed=args.seed)
        final_loss = float(svi.losses[-1])
        save_params(out / "svi_fit.json", svi.params, guide=args.guide, final_loss=final_loss)
        diagnostics.save_inference_data(svi.idata, out / "svi.nc")
        posteriors[f"SVI ({args.guide})"] = svi.idata
        summary["svi"] = {"guide": args.guide, "final_loss": final_loss}
        print(f"SVI ({args.guide}): final loss {final_loss:.3f} -> {out / 'svi_fit.json'}")
    if posteriors:
        _forest(em, posteriors, save_plot)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smm",
        description="Softmax mixture models: simulate, warm-start EM, NUTS/SVI and ArviZ diagnostics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser(
        "simulate",
        help="simulate a Gaussian design and counts, write .npz",
        description="Simulate features ~ N(0, I), random atoms, uniform weights and "
        "multinomial counts; write features, counts, weights, atoms to .npz.",
    )
    sim.add_argument("--n-items", "-p", type=int, default=2000, help="number of items p (default 2000)")
    sim.add_argument("--n-features", "-L", type=int, default=3, help="number of features L (default 3)")
    sim.add_argument("--n-components", "-K", type=int, default=2, help="number of classes K (default 2)")
    sim.add_argument("--n-obs", "-N", type=int, default=20000, help="number of draws N (default 20000)")
    sim.add_argument("--atoms-scale", type=float, default=1.0, help="sd of the random atoms (default 1.0)")
    sim.add_argument("--min-separation", type=float, default=1.0, help="least distance between atoms (default 1.0)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument("--out", "-o", default="smm-simulated.npz", help="output .npz path")
    sim.set_defaults(func=_cmd_simulate)

    demo = sub.add_parser(
        "demo",
        help="simulate, warm start, EM and NUTS; print the comparison, write plots",
        description="Simulate a K = 2 problem, run the method-of-moments warm start, EM "
        "(init='auto') and NUTS started from EM; print truth, warm start, EM with "
        "standard errors and posterior mean/sd/HDI with R-hat and ESS; write plots "
        "(PNG), the fit (JSON) and the posterior (netCDF).",
    )
    demo.add_argument("--out", "-o", default="smm-demo-output", help="output folder (default smm-demo-output)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--n-items", "-p", type=int, default=1000, help="number of items (default 1000)")
    demo.add_argument("--n-obs", "-N", type=int, default=20000, help="number of draws (default 20000)")
    demo.add_argument("--num-chains", type=int, default=4, help="NUTS chains (default 4)")
    demo.add_argument("--num-warmup", type=int, default=500, help="NUTS warm-up steps per chain (default 500)")
    demo.add_argument("--num-samples", type=int, default=500, help="NUTS draws per chain (default 500)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)

    fit = sub.add_parser(
        "fit",
        help="fit features and counts, or a latent-class logit to choice data (EM, NUTS, SVI)",
        description="Fit a K-class softmax mixture to data files. DATA is an .npz holding "
        "'features' and 'counts' (or 'draws'), or a .npy/.csv feature matrix "
        "with --counts or --draws. With --situation, DATA is instead a long-format "
        "table of choices (.csv, .csv.gz, .parquet; one row per situation and "
        "alternative) and a latent-class logit is fitted (EM, and NUTS or SVI from it); the output folder "
        "gets params.csv, weights.csv, class_probabilities.csv and summary.json.",
    )
    fit.add_argument(
        "data",
        help="features file (.npy, .csv) or .npz with features and counts/draws; "
        "with --situation a long-format table (.csv, .csv.gz, .parquet)",
    )
    fit.add_argument("--counts", help="counts file (.npy, .csv, .npz), one count per item")
    fit.add_argument("--draws", help="raw draws file: one chosen item index per observation")
    fit.add_argument("-K", "--n-components", type=int, required=True, help="number of classes K")
    fit.add_argument(
        "--method",
        choices=["em", "nuts", "svi", "all"],
        default="em",
        help="em (default), nuts (EM then NUTS from EM), svi (EM then SVI from EM), or all",
    )
    fit.add_argument("--init", default="auto", choices=list(INIT_NAMES), help="EM start (default auto)")
    fit.add_argument("--out", "-o", default="smm-fit-output", help="output folder (default smm-fit-output)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--num-chains", type=int, default=4, help="NUTS chains (default 4)")
    fit.add_argument("--num-warmup", type=int, default=500, help="NUTS warm-up steps (default 500)")
    fit.add_argument("--num-samples", type=int, default=500, help="NUTS draws per chain (default 500)")
    fit.add_argument("--guide", choices=list(GUIDES), default="normal", help="SVI guide (default normal)")
    fit.add_argument("--svi-steps", type=int, default=2000, help="SVI optimisation steps (default 2000)")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    choice = fit.add_argument_group(
        "choice data",
        "A latent-class logit on a long-format table (one row per situation and alternative), fitted by EM "
        "and, with --method nuts, svi or all, NUTS or SVI started at the EM estimate. "
        "-K is the number of classes. Options taking several columns go after DATA.",
    )
    choice.add_argument("--situation", metavar="COL", help="column of the choice-situation id (selects this mode)")
    choice.add_argument("--alternative", metavar="COL", help="column of the alternative id")
    choice.add_argument("--choice", metavar="COL", help="column of the chosen flag (0/1) or count")
    choice.add_argument("--features", metavar="COL", nargs="+", help="feature columns (one coefficient each)")
    choice.add_argument("--availability", metavar="COL", help="column of 0/1 availability (0: dropped)")
    choice.add_argument(
        "--person", metavar="COL", help="column of the person id: a panel, the class drawn once per person"
    )
    choice.add_argument(
        "--covariates", metavar="COL", nargs="+", help="person covariates of the class-membership model"
    )
    choice.add_argument(
        "--cross-sectional",
        action="store_true",
        help="with --person: the class drawn per situation; robust standard errors still cluster by person",
    )
    choice.add_argument("--shared", metavar="COL", nargs="+", help="features with one coefficient for all classes")
    choice.add_argument(
        "--fixed",
        metavar="SPEC",
        nargs="+",
        help="fixed coefficients: name=value (every class) or name[k]=value (class k, from 1); quote them in a shell",
    )
    choice.add_argument("--n-starts", type=int, metavar="N", help="EM starts (default 10)")
    choice.add_argument("--max-iter", type=int, metavar="N", help="EM iterations per start (default 500)")
    fit.set_defaults(func=_cmd_fit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    devices = contextlib.nullcontext()
    if args.command in ("demo", "fit"):
        import logging

        devices = _cpu_devices(getattr(args, "num_chains", 1))
        # ArviZ asks for a font weight DejaVu lacks; matplotlib's fallback is fine, its log line is noise.
        logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    try:
        with devices:
            return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"smm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
