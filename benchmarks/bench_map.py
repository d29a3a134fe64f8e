"""MAP fits on real designs: ``fit_em(init="auto", prior=smm.Prior())`` against the labelled MAP polished.

The MAP cases of ``bench_real.py`` (same designs and case names: ``lang<K>``, ``planted<K>@<scale>``,
``langsub<K>``, ``gauss<K>``; see its docstring).  On real vocabulary counts the likelihood has no
maximum (a class runs off towards a face of the items' convex hull), so the point estimate is the
posterior mode under the model's prior.  For each case, in the same run:

1. the labelled MAP: one MAP MNL per class (``fit_em(class counts, 1, prior=prior)``), its wall time the
   "labelled" time;
2. ``fit_em(init="auto", prior=prior, compute_standard_errors=False)``: log posterior, convergence, wall
   time with compilation (``*``: the first call of its shape in the process) and its ratio to the labelled
   time (target <= 10);
3. the ORACLE: the best of (a) ``fit_em(init=labelled MAP, prior=prior)`` and (b) SciPy L-BFGS-B on the
   exact log posterior (NumPy, analytic gradient) from the labelled MAP;
4. the gap ``lp_auto - lp_oracle`` (pass: >= -1), and the confusion of class against language: the share
   of each language's tokens that each fitted class takes (responsibilities times the class counts);
5. the maximum likelihood fit ``fit_em(init="auto")`` on the same data: its stop reason and wall time
   (the acceptance: ``no_maximum`` or converged, in no more time than the MAP fit).

Log posteriors are ``log_likelihood + prior.log_density(params)``, as ``EMResult.log_posterior``.

Usage::

    python benchmarks/bench_map.py --cases langsub2 planted2@1 lang2 lang3     # a few cases
    python benchmarks/bench_map.py --smoke                                      # langsub2, gauss2, small N

Results: ``benchmarks/results/map.json`` (after every case) and a table on standard output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_real  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

import smm_ppl as smm  # noqa: E402

import _common  # noqa: E402

NAME = "map"
GAP_PASS = -1.0
RATIO_TARGET = 10.0


def log_posterior_and_grad(z: np.ndarray, X: np.ndarray, n: np.ndarray, K: int, prior: smm.Prior):
    """Minus the log posterior and its gradient in ``z = (eta (K,), vec B)``, ``alpha = softmax(eta)``.

    The Dirichlet term is the density on the simplex (no Jacobian of the logits), so the optimum is the
    simplex mode that ``fit_em`` reports; the constant is ``prior.log_normaliser``.
    """
    nll, grad = bench_real.mixture_nll_and_grad(z, X, n, K)
    eta, B = z[:K], z[K:]
    alpha = np.exp(eta - logsumexp(eta))
    a0, s0 = prior.weights_concentration, prior.atoms_scale
    lp_prior = (a0 - 1.0) * float(np.sum(np.log(alpha))) - 0.5 * float(B @ B) / s0**2
    g_eta = (a0 - 1.0) * (1.0 - K * alpha)  # d/d eta_k of sum_j log alpha_j
    g_B = -B / s0**2
    return nll - lp_prior, grad - np.concatenate([g_eta, g_B])


def lbfgs_polish(X, n, weights, atoms, prior, maxiter=3000) -> dict:
    K = len(weights)
    z0 = np.concatenate([np.log(np.maximum(np.asarray(weights, dtype=np.float64), 1e-300)), np.ravel(atoms)])
    t0 = time.perf_counter()
    res = minimize(log_posterior_and_grad, z0, args=(X, n, K, prior), jac=True, method="L-BFGS-B",
                   options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-8})  # fmt: skip
    eta = res.x[:K]
    w = np.exp(eta - logsumexp(eta))
    a = res.x[K:].reshape(K, -1)
    return {
        "log_posterior": -float(res.fun) + prior.log_normaliser(K, a.shape[1]),
        "weights": w,
        "atoms": a,
        "n_iter": int(res.nit),
        "message": str(res.message),
        "seconds": time.perf_counter() - t0,
    }


def confusion(X, class_counts, weights, atoms) -> np.ndarray:
    """(classes, languages): the share of each language's tokens that each fitted class takes."""
    S = X @ np.asarray(atoms).T
    log_sigma = S - logsumexp(S, axis=0)
    joint = log_sigma + np.log(np.maximum(weights, 1e-300))
    gamma = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))  # (p, K)
    cc = np.asarray(class_counts, dtype=np.float64)
    return (gamma.T @ cc.T) / cc.sum(axis=1)[None, :]


def _fit(fn):
    """``(result, seconds, warnings)`` of ``fn()`` (bench_real's recorder; a failure stops the run)."""
    res, secs, msgs, err = bench_real.record_fit(fn)
    if err is not None:
        raise RuntimeError(err)
    return res, secs, msgs


def run_case(name: str, args, seen: set, prior: smm.Prior) -> dict:
    d = bench_real.make_case(name, args)
    X, counts, cc, K, p, L, N = bench_real.case_arrays(d)
    row = {"case": name, "K": K, "p": p, "L": L, "N": N, "langs": d["langs"], "prior": list(prior)}
    print(f"-- {name}: p={p} L={L} K={K} N={N:,}", flush=True)

    # 1. labelled MAP: one MAP MNL per class (the K = 1 shape compiles once; timed as a user meets it)
    t0 = time.perf_counter()
    lab = [smm.fit_em(X, cc[k], 1, prior=prior, compute_standard_errors=False) for k in range(K)]
    row["labelled_s"] = time.perf_counter() - t0
    w_lab = cc.sum(axis=1) / float(N)
    atoms_lab = np.concatenate([r.params.atoms for r in lab])

    # 2. the MAP fit from the package's starts
    first = (p, L, K) not in seen
    seen.add((p, L, K))
    kw = {"compute_standard_errors": False, "max_iter": args.max_iter}
    ra, secs, msgs = _fit(lambda: smm.fit_em(X, counts, K, init="auto", seed=args.seed, prior=prior, **kw))
    row.update(lp_auto=ra.log_posterior, ll_auto=ra.log_likelihood, converged=bool(ra.converged),
               stop_reason=ra.stop_reason, n_iter=int(ra.n_iter), init=ra.init, wall_auto_s=secs, first_call=first,
               warnings=msgs, atom_norms_auto=np.linalg.norm(ra.params.atoms, axis=1))  # fmt: skip
    row["ratio"] = secs / row["labelled_s"]
    print(f"   MAP auto: {secs:.1f} s{'*' if first else ''}, lp {ra.log_posterior:.3f}, converged {ra.converged}")

    # 3. the oracle: the labelled MAP polished, by MAP-EM and by SciPy on the exact log posterior
    ro, secs_o, _ = _fit(lambda: smm.fit_em(X, counts, K, init=smm.SMMParams(w_lab, atoms_lab), prior=prior, **kw))
    lb = lbfgs_polish(X, counts.astype(np.float64), w_lab, atoms_lab, prior, maxiter=args.lbfgs_maxiter)
    candidates = [("em", ro.log_posterior, ro.params.weights, ro.params.atoms), ("lbfgs", lb["log_posterior"],
                  lb["weights"], lb["atoms"])]  # fmt: skip
    src, lp_o, w_o, a_o = max(candidates, key=lambda c: c[1])
    row.update(lp_oracle=lp_o, oracle_source=src, oracle_em_s=secs_o, oracle_lbfgs_s=lb["seconds"],
               oracle_spread=abs(candidates[0][1] - candidates[1][1]), lbfgs_message=lb["message"])  # fmt: skip
    row["gap"] = ra.log_posterior - lp_o
    row["pass"] = bool(row["gap"] >= GAP_PASS and ra.converged)
    aligned = smm.align_params(ra.params, smm.SMMParams(w_o, a_o))
    row["confusion_auto"] = confusion(X, cc, aligned.weights, aligned.atoms)
    row["confusion_oracle"] = confusion(X, cc, w_o, a_o)
    print(f"   oracle {lp_o:.3f} ({src}); gap {row['gap']:.3f}; confusion (auto)\n{np.round(row['confusion_auto'], 3)}")

    # 5. the maximum likelihood fit on the same data
    rm, secs_m, _ = _fit(lambda: smm.fit_em(X, counts, K, init="auto", seed=args.seed, **kw))
    row.update(mle_stop_reason=rm.stop_reason, mle_converged=bool(rm.converged), wall_mle_s=secs_m,
               atom_norms_mle=np.linalg.norm(rm.params.atoms, axis=1))  # fmt: skip
    print(f"   MLE auto: {secs_m:.1f} s, stop {rm.stop_reason}, norms {np.round(row['atom_norms_mle'], 1)}")
    return row


def table(rows: list[dict]) -> str:
    head = (
        f"{'case':<12} {'K':>2} {'p':>6} {'L':>4} {'N':>8} {'lp_oracle':>15} {'gap':>8} {'conv':>5} {'n_iter':>6} "
        f"{'wall_s':>8} {'labelled_s':>10} {'ratio':>6} {'pass':>5} {'MLE stop':>10} {'MLE_s':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        star = "*" if r["first_call"] else " "
        lines.append(
            f"{r['case']:<12} {r['K']:>2} {r['p']:>6} {r['L']:>4} {r['N']:>8} {r['lp_oracle']:>15.3f} "
            f"{r['gap']:>8.3f} {str(r['converged']):>5} {r['n_iter']:>6} {r['wall_auto_s']:>7.1f}{star} "
            f"{r['labelled_s']:>10.1f} {r['ratio']:>6.1f} {'yes' if r['pass'] else 'NO':>5} "
            f"{r['mle_stop_reason']:>10} {r['wall_mle_s']:>7.1f}"
        )
    lines.append(
        f"gap = lp_auto - lp_oracle (pass: >= {GAP_PASS:g} and converged); ratio = wall / labelled MAP MNL fits "
        f"(target <= {RATIO_TARGET:g}); * first fit of that (p, L, K) in the process (compilation included)"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["langsub2", "lang2", "lang3", "planted2@1"])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-obs", type=int, default=200_000)
    ap.add_argument("--max-iter", type=int, default=2000)
    ap.add_argument("--lbfgs-maxiter", type=int, default=3000)
    ap.add_argument("--weights-concentration", type=float, default=1.0)
    ap.add_argument("--atoms-scale", type=float, default=3.0)
    ap.add_argument("--gauss-p", type=int, default=2000)
    ap.add_argument("--gauss-L", type=int, default=16)
    ap.add_argument("--gauss-N", type=int, default=100_000)
    ap.add_argument("--gauss-atoms-scale", type=float, default=1.5)
    ap.add_argument("--sub-tokens", type=int, default=2000)
    ap.add_argument("--sub-features", type=int, default=16)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.cases, args.n_obs, args.gauss_N, args.gauss_p = ["langsub2", "gauss2"], 20_000, 20_000, 2000
    cases = bench_real.expand_cases(args.cases)
    ok, why = bench_real.real_data_available()
    if not ok:
        print(f"real-data packages missing ({why}): real cases skipped")
        cases = [c for c in cases if c.startswith("gauss")]
    prior = smm.Prior(args.weights_concentration, args.atoms_scale)
    rows, seen = [], set()
    out = args.out or (_common.SMOKE_RESULTS / f"{NAME}.json" if args.smoke else None)
    for name in cases:
        rows.append(run_case(name, args, seen, prior))
        _common.save_json({"args": vars(args), "rows": rows, "environment": _common.environment()}, NAME, out)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
