"""Item 4: accuracy of the warm-started EM (docs/math.md#accuracy-yardsticks), over at least 20 seeds per setting.

Part ``rate`` (fixed design ``X`` and truth; ``--seeds`` count vectors per ``N``):

* ``ratio``: error of ``fit_em(init="auto")`` over the error of the oracle
  (EM started at the truth) on the same counts; error = ``max_k |theta_hat_k -
  theta_k|`` after Hungarian matching. Reported as the median of the per-seed
  ratios and as the ratio of the mean errors.
* ``efficiency``: mean squared error over the trace of the Cramer-Rao bound,
  ``E|d|^2 / tr(I(theta)^{-1})`` with ``d = (alpha_1..alpha_{K-1}, theta)`` minus
  the truth (the simplex's last weight is implied) and ``I = N * sum_j pi_j
  s_j s_j^T``, ``s_j = grad log pi_j`` at the truth (jax.jacobian): the exact
  Fisher information of ``N`` multinomial draws, in the same coordinates as the
  error. Near 1: efficient.
* ``slope``: least-squares slope of ``log(mean error)`` against ``log N``
  (docs/math.md#accuracy-yardsticks: near ``-1/2``).

Part ``success`` (``K`` from 2 to 10, ``--seeds`` designs per ``K``): EM from
each warm start, and from random starts in the full space at equal compute,
is a success when its final log-likelihood is within ``--ll-tol`` of the
oracle's (or above it): it landed in the oracle's basin. Starts:

* ``mom``, ``tensor``: one start each; their equal-compute comparator is
  ``random x1`` (one random start in the full space, same EM budget);
* ``subspace xS``: ``S`` random starts in the estimated subspace, short runs,
  the best continued; comparator ``random xS`` (the same number of starts and
  iterations, in the full space).

Usage::

    python benchmarks/bench_accuracy.py                  # both parts, defaults below (~15 min on 2 idle cores)
    python benchmarks/bench_accuracy.py --parts rate     # one part
    python benchmarks/bench_accuracy.py --smoke          # seconds
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import harness  # isort: skip  (first: it puts the repository on sys.path)
import jax
import jax.numpy as jnp
import numpy as np

import smm_ppl as smm
from smm_ppl.layouts.items import log_mixture_probs

# --------------------------------------------------------------------------- #
# Fisher information at the truth
# --------------------------------------------------------------------------- #


def _log_pi_free(z, X, K, L):
    """``log pi`` (p,) from the free coordinates ``z = (alpha_1..alpha_{K-1}, vec theta)``."""
    a = z[: K - 1]
    weights = jnp.concatenate([a, 1.0 - jnp.sum(a, keepdims=True)])
    atoms = z[K - 1 :].reshape(K, L)
    return log_mixture_probs(X, weights, atoms)


def free_coords(params: smm.SMMParams) -> np.ndarray:
    w = np.asarray(params.weights, dtype=np.float64)
    return np.concatenate([w[:-1], np.asarray(params.atoms, dtype=np.float64).ravel()])


def fisher_per_observation(X: np.ndarray, truth: smm.SMMParams) -> np.ndarray:
    """``sum_j pi_j s_j s_j^T`` at the truth: the information of one multinomial draw."""
    K, L = np.shape(truth.atoms)
    z = jnp.asarray(free_coords(truth))
    Xj = jnp.asarray(X)
    J = jax.jacobian(_log_pi_free)(z, Xj, K, L)  # (p, d)
    pi = jnp.exp(_log_pi_free(z, Xj, K, L))
    return np.asarray(J.T @ (pi[:, None] * J))


# --------------------------------------------------------------------------- #
# Part 1: ratio to the oracle, efficiency, rate
# --------------------------------------------------------------------------- #


def part_rate(args, fit_em) -> dict:
    p, L, K = args.rate_p, args.rate_L, args.rate_K
    X = smm.simulate_features(100, p, L)
    truth = smm.simulate_params(
        101, K, L, atoms_scale=args.rate_atoms_scale, min_separation=args.rate_min_sep, weights_concentration=None
    )
    w = np.linspace(1.0, 2.0, K)
    truth = smm.SMMParams(w / w.sum(), truth.atoms)
    I1 = fisher_per_observation(X, truth)
    crb1 = np.linalg.inv(I1)  # times 1/N
    d_w = K - 1
    z_true = free_coords(truth)
    rows = []
    for N in args.N:
        e_auto, e_orc, sq_auto, sq_orc, ratio, inits, ll_gap = [], [], [], [], [], [], []
        failures = 0
        for s in range(args.seeds):
            n = smm.simulate_counts(1000 * s + 7, X, truth, N)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ra = fit_em(X, n, K, init="auto", seed=s, compute_standard_errors=False)
                    ro = fit_em(X, n, K, init=truth, seed=s, compute_standard_errors=False)
            except Exception as err:  # a failed fit is reported, not fatal
                failures += 1
                print(f"    seed {s}: {type(err).__name__}: {err}")
                continue
            ea = smm.parameter_error(ra.params, truth)["atoms"]
            eo = smm.parameter_error(ro.params, truth)["atoms"]
            e_auto.append(ea)
            e_orc.append(eo)
            ratio.append(ea / eo if eo > 0 else np.nan)
            inits.append(ra.init)
            ll_gap.append(ra.log_likelihood - ro.log_likelihood)
            sq_auto.append(np.sum((free_coords(smm.align_params(ra.params, truth)) - z_true) ** 2))
            sq_orc.append(np.sum((free_coords(smm.align_params(ro.params, truth)) - z_true) ** 2))
        tr = np.trace(crb1) / N
        tr_atoms = np.trace(crb1[d_w:, d_w:]) / N
        row = {
            "N": N,
            "n_seeds": len(e_auto),
            "failures": failures,
            "error_auto_mean": float(np.mean(e_auto)),
            "error_oracle_mean": float(np.mean(e_orc)),
            "error_auto_median": float(np.median(e_auto)),
            "error_oracle_median": float(np.median(e_orc)),
            "ratio_median": float(np.nanmedian(ratio)),
            "ratio_of_means": float(np.mean(e_auto) / np.mean(e_orc)),
            "ratio_max": float(np.nanmax(ratio)),
            "share_within_5pct_of_oracle": float(np.mean(np.asarray(ratio) <= 1.05)),
            "mse_auto": float(np.mean(sq_auto)),
            "mse_oracle": float(np.mean(sq_orc)),
            "trace_crb": float(tr),
            "trace_crb_atoms": float(tr_atoms),
            "efficiency_auto": float(np.mean(sq_auto) / tr),
            "efficiency_oracle": float(np.mean(sq_orc) / tr),
            "ll_auto_minus_oracle_min": float(np.min(ll_gap)),
            "winning_inits": {k: int(v) for k, v in zip(*np.unique(inits, return_counts=True))},
        }
        rows.append(row)
        harness.progress(f"rate, N = {N:,}", row, "error_auto_mean", "ratio_median", "efficiency_auto", "failures")
    logN = np.log([r["N"] for r in rows])
    slopes = {}
    for key in ("error_auto_mean", "error_oracle_mean"):
        y = np.log([r[key] for r in rows])
        slopes[key.replace("error_", "slope_").replace("_mean", "")] = float(np.polyfit(logN, y, 1)[0])
    rmse_crb = np.sqrt([r["trace_crb"] for r in rows])
    slopes["slope_sqrt_trace_crb"] = float(np.polyfit(logN, np.log(rmse_crb), 1)[0])
    return {
        "design": {"p": p, "L": L, "K": K, "truth": truth.to_dict(), "seeds": args.seeds, "N": args.N},
        "rows": rows,
        **slopes,
    }


# --------------------------------------------------------------------------- #
# Part 2: success rate of each warm start against K
# --------------------------------------------------------------------------- #


def _success_design(K, seed, args):
    L, p = args.succ_L, args.succ_p
    X = smm.simulate_features(10_000 + 97 * K + seed, p, L)
    truth = smm.simulate_params(
        20_000 + 97 * K + seed, K, L, atoms_scale=args.succ_atoms_scale, min_separation=args.succ_min_sep
    )
    n = smm.simulate_counts(30_000 + 97 * K + seed, X, truth, args.succ_N)
    return X, n, truth


def part_success(args, fit_em) -> dict:
    S = args.succ_starts
    methods = {
        "mom": dict(init="mom"),
        "tensor": dict(init="tensor"),
        "random x1": dict(init="random", n_starts=1),
        f"subspace x{S}": dict(init="subspace", n_starts=S),
        f"random x{S}": dict(init="random", n_starts=S),
    }
    if getattr(args, "methods", None):
        methods = {m: kw for m, kw in methods.items() if m in args.methods}
    common = dict(max_iter=args.succ_max_iter, compute_standard_errors=False)
    rows = []
    for K in args.K:
        t0 = time.perf_counter()
        hits = {m: [] for m in methods}
        errs = {m: [] for m in methods}
        dist = {m: [] for m in methods}
        reasons = {m: [] for m in methods}
        for s in range(args.seeds):
            X, n, truth = _success_design(K, s, args)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                oracle = fit_em(X, n, K, init=truth, seed=s, **common)
            for m, kw in methods.items():
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = fit_em(X, n, K, seed=s, **kw, **common)
                except Exception as err:  # e.g. a warm start that cannot be computed at this K
                    hits[m].append(False)
                    reasons[m].append(f"{type(err).__name__}: {str(err)[:160]}")
                    continue
                ok = bool(np.isfinite(r.log_likelihood) and r.log_likelihood >= oracle.log_likelihood - args.ll_tol)
                hits[m].append(ok)
                errs[m].append(smm.parameter_error(r.params, truth)["atoms"])
                dist[m].append(smm.parameter_error(r.params, oracle.params)["atoms"])
        row = {"K": K, "n_designs": args.seeds, "time_s": time.perf_counter() - t0}
        for m in methods:
            row[m] = {
                "success_rate": float(np.mean(hits[m])),
                "n_failed_to_start": len(reasons[m]),
                "median_error": float(np.median(errs[m])) if errs[m] else None,
                "median_distance_to_oracle_fit": float(np.median(dist[m])) if dist[m] else None,
                "failure_examples": sorted(set(reasons[m]))[:2],
            }
        rows.append(row)
        harness.progress(f"success, K = {K}", {m: row[m]["success_rate"] for m in methods}, *methods)
    return {
        "design": {
            "p": args.succ_p,
            "L": args.succ_L,
            "N": args.succ_N,
            "atoms_scale": args.succ_atoms_scale,
            "min_separation": args.succ_min_sep,
            "seeds": args.seeds,
            "n_starts": S,
            "max_iter": args.succ_max_iter,
            "ll_tol": args.ll_tol,
        },
        "methods": list(methods),
        "rows": rows,
    }


# --------------------------------------------------------------------------- #


def plot_rate(rate: dict, folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rate["rows"]
    N = np.array([r["N"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(
        N, [r["error_auto_mean"] for r in rows], "o-", label=f"fit_em(init='auto')  slope {rate['slope_auto']:.2f}"
    )
    ax.loglog(
        N,
        [r["error_oracle_mean"] for r in rows],
        "s--",
        label=f"oracle (start at truth)  slope {rate['slope_oracle']:.2f}",
    )
    ax.loglog(N, np.sqrt([r["trace_crb_atoms"] for r in rows]), ":", color="gray", label="sqrt(trace CRB), atoms")
    ax.set_xlabel("N (observations)")
    ax.set_ylabel("mean of max_k |theta_hat_k - theta_k|")
    d = rate["design"]
    ax.set_title(f"Error against N (p={d['p']}, L={d['L']}, K={d['K']}, {d['seeds']} seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return harness.save_figure(fig, folder, "accuracy_rate.png", dpi=110)


def plot_success(succ: dict, folder: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = succ["rows"]
    Ks = [r["K"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {"mom": "o-", "tensor": "s-", "random x1": "x:"}
    for m in succ["methods"]:
        st = styles.get(m, "d-" if m.startswith("subspace") else "^:")
        ax.plot(Ks, [r[m]["success_rate"] for r in rows], st, label=m)
    ax.set_xlabel("K (classes)")
    ax.set_ylabel("share of designs reaching the oracle's basin")
    d = succ["design"]
    ax.set_title(f"Warm-start success (p={d['p']}, L={d['L']}, N={d['N']:,}, {d['seeds']} designs per K)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return harness.save_figure(fig, folder, "accuracy_success.png", dpi=110)


def measure(args) -> dict:
    t0 = time.perf_counter()
    result = {"name": "accuracy", "smoke": bool(args.smoke)}
    if "rate" in args.parts:
        result["rate"] = part_rate(args, smm.fit_em)
    if "success" in args.parts:
        result["success"] = part_success(args, smm.fit_em)
    result["wall_s"] = time.perf_counter() - t0
    if not args.smoke:
        if "rate" in result:
            result["rate"]["plot"] = plot_rate(result["rate"], args.out.parent)
        if "success" in result:
            result["success"]["plot"] = plot_success(result["success"], args.out.parent)
    return result


def report(d) -> tuple[str, list[str]]:
    txt, head = [], []
    if "rate" in d:
        r = d["rate"]
        des = r["design"]
        txt += [
            f"**Oracle ratio, efficiency, rate** (`p = {des['p']}`, `L = {des['L']}`, `K = {des['K']}`, fixed "
            f"design and truth, {des['seeds']} count vectors per N). Error = `max_k |theta_hat_k - theta_k|` "
            "after matching; oracle = EM started at the truth; efficiency = MSE of "
            "`(alpha_1..alpha_{K-1}, theta)` / trace of the inverse Fisher information of N draws at the truth.",
            "",
        ]
        rows = [
            [
                f"{x['N']:,}",
                harness.fmt(x["error_auto_mean"], "{:.4f}"),
                harness.fmt(x["error_oracle_mean"], "{:.4f}"),
                harness.fmt(x["ratio_median"], "{:.3f}"),
                harness.fmt(x["ratio_of_means"], "{:.3f}"),
                harness.fmt(x["ratio_max"], "{:.2f}"),
                harness.fmt(100 * x["share_within_5pct_of_oracle"], "{:.0f}%"),
                harness.fmt(x["efficiency_auto"], "{:.2f}"),
                harness.fmt(x["efficiency_oracle"], "{:.2f}"),
                f"{x['n_seeds']}" + (f" ({x['failures']} failed)" if x["failures"] else ""),
            ]
            for x in r["rows"]
        ]
        txt += [
            harness.table(
                "N | error auto | error oracle | ratio (median) | ratio of means | ratio max | within 5% of oracle | MSE/tr(CRB) auto | oracle | seeds",
                rows,
            ),
            "",
        ]
        txt += [
            f"Log-log slope of the mean error against N: auto **{r['slope_auto']:.3f}**, oracle "
            f"{r['slope_oracle']:.3f}, sqrt(trace CRB) {r['slope_sqrt_trace_crb']:.3f} (target −0.5)."
        ]
        if r.get("plot"):
            txt += ["", f"![error against N](results/{r['plot']})"]
        last = r["rows"][-1]
        effs = [x["efficiency_auto"] for x in r["rows"]]
        head.append(
            f"fit_em(init='auto') error / oracle error: median {min(x['ratio_median'] for x in r['rows']):.3f}–"
            f"{max(x['ratio_median'] for x in r['rows']):.3f} over N = {r['rows'][0]['N']:,}–{last['N']:,}; "
            f"log-log slope of the error {r['slope_auto']:.2f}; MSE / tr(CRB) "
            f"{min(effs):.2f}–{max(effs):.2f} (`python benchmarks/bench_accuracy.py --parts rate`)"
        )
    if "success" in d:
        s = d["success"]
        des = s["design"]
        txt += [
            "",
            f"**Success rate of each start against K** (`p = {des['p']}`, `L = {des['L']}`, `N = {des['N']:,}`, "
            f"{des['seeds']} designs per K; success = EM from that start ends within {des['ll_tol']} "
            f"log-likelihood units of the oracle (or above); at most {des['max_iter']} iterations; "
            "`random` = random starts in the full space; `random x1` has the compute of one warm start, "
            f"`random x{des['n_starts']}` that of `subspace x{des['n_starts']}`).",
            "",
        ]
        rows = []
        for x in s["rows"]:
            rows.append(
                [x["K"]]
                + [
                    harness.fmt(x[m]["success_rate"], "{:.2f}")
                    + (f" ({x[m]['n_failed_to_start']} no start)" if x[m]["n_failed_to_start"] else "")
                    for m in s["methods"]
                ]
                + [harness.fmt(x["time_s"], "{:.0f}")]
            )
        txt += [harness.table(["K"] + s["methods"] + ["time s"], rows)]
        ex = {m: x[m]["failure_examples"] for x in s["rows"] for m in s["methods"] if x[m]["failure_examples"]}
        if ex:
            txt += [
                "",
                "Starts that could not be computed, e.g.: "
                + "; ".join(f"{m}: {v[0]}" for m, v in ex.items()).replace("|", "/"),
            ]
        if s.get("plot"):
            txt += ["", f"![success against K](results/{s['plot']})"]
        Ks = [x["K"] for x in s["rows"]]
        summary = "; ".join(f"{m} " + "/".join(f"{x[m]['success_rate']:.2f}" for x in s["rows"]) for m in s["methods"])
        head.append(
            "success rate of EM from each start (landing in the oracle's basin), K = "
            + "/".join(str(k) for k in Ks)
            + f": {summary} (`python benchmarks/bench_accuracy.py --parts success`)"
        )
    return "\n".join(txt), head


BENCHMARK = harness.Benchmark(
    name="accuracy",
    measure=measure,
    report=report,
    options=(
        harness.option("--parts", nargs="+", default=["rate", "success"], choices=["rate", "success"]),
        harness.option("--seeds", type=int, default=20),
        # rate
        harness.option("--N", type=int, nargs="+", default=[1_000, 3_000, 10_000, 30_000, 100_000]),
        harness.option("--rate-p", type=int, default=500),
        harness.option("--rate-L", type=int, default=4),
        harness.option("--rate-K", type=int, default=3),
        harness.option("--rate-atoms-scale", type=float, default=1.0),
        harness.option("--rate-min-sep", type=float, default=1.5),
        # success
        harness.option("--K", type=int, nargs="+", default=list(range(2, 11))),
        harness.option("--succ-p", type=int, default=500),
        harness.option("--succ-L", type=int, default=20),
        harness.option("--succ-N", type=int, default=100_000),
        harness.option("--succ-atoms-scale", type=float, default=0.4),
        harness.option("--succ-min-sep", type=float, default=1.2),
        harness.option("--succ-starts", type=int, default=8),
        harness.option("--succ-max-iter", type=int, default=1000),
        harness.option("--ll-tol", type=float, default=0.5),
    ),
    # The success part with the rate part's shapes and max_iter, so that the compiled EM programs are shared.
    smoke={
        "seeds": 2,
        "N": [2_000, 8_000],
        "rate_p": 200,
        "rate_L": 3,
        "rate_K": 2,
        "K": [2],
        "succ_p": 200,
        "succ_L": 3,
        "succ_N": 5_000,
        "succ_starts": 2,
        "succ_max_iter": 2000,
        "methods": ["tensor", "random x2"],
    },
    timeout=2400,
    required=True,
    smoke_fields=True,
    heading="## 4. Accuracy",
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
