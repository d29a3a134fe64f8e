"""The ``smm`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _cmd_simulate(args: argparse.Namespace) -> int:
    import smm_ppl as smm

    X = smm.simulate_features(args.seed, args.n_items, args.n_features)
    params = smm.simulate_params(args.seed + 1, args.n_components, args.n_features,
                                 atoms_scale=args.atoms_scale, min_separation=args.min_separation)
    counts = smm.simulate_counts(args.seed + 2, X, params, args.n_obs)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, features=X, counts=counts, weights=params.weights, atoms=params.atoms)
    print(f"wrote {out}: features {X.shape}, counts (N={counts.sum()}), true weights {np.round(params.weights, 3).tolist()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smm",
        description="Softmax mixture models: simulate, warm-start EM, NUTS/SVI and ArviZ diagnostics.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser("simulate", help="simulate a Gaussian design and counts, write .npz",
                         description="Simulate features ~ N(0, I), random atoms, uniform weights and "
                                     "multinomial counts; write features, counts, weights, atoms to .npz.")
    sim.add_argument("--n-items", "-p", type=int, default=2000, help="number of items p (default 2000)")
    sim.add_argument("--n-features", "-L", type=int, default=3, help="number of features L (default 3)")
    sim.add_argument("--n-components", "-K", type=int, default=2, help="number of classes K (default 2)")
    sim.add_argument("--n-obs", "-N", type=int, default=20000, help="number of draws N (default 20000)")
    sim.add_argument("--atoms-scale", type=float, default=1.0, help="sd of the random atoms (default 1.0)")
    sim.add_argument("--min-separation", type=float, default=1.0, help="least distance between atoms (default 1.0)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument("--out", "-o", default="smm-simulated.npz", help="output .npz path")
    sim.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"smm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
