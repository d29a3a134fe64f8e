"""The documentation's examples run as written, each page in a fresh interpreter, and show what they say.

Every ```python block of a page under ``docs/`` runs, in order, in one namespace, from the repository
root (where the choice example's data path points), in a new process as a user's script would (the
compilation guide times a first fit and clears the compiled programs).  After chosen blocks, a check
asserts what the page claims of its output.  Blocks fenced as ``{code-block} python`` are shown, not run
(a sampler that compiles for half a minute; the notebooks' tests run the same calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

#: Heavy integration test (runs every guide's example): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _pages() -> list[Path]:
    skip = {"_build", "tutorials", "_templates"}
    return sorted(
        p for p in DOCS.rglob("*.md") if not skip & set(p.relative_to(DOCS).parts) and BLOCK.search(p.read_text())
    )


#: ``{(page, block index): check}``: code run right after that block, in the page's namespace.
CHECKS = {
    ("getting-started.md", 0): """
assert res.converged and res.stop_reason == "tol"
assert smm.parameter_error(res.params, truth)["atoms"] < 0.1
""",
    ("guides/warm-starts.md", 0): """
assert U.shape == (4, 3)
assert res.assumptions.hold  # "diffuse classes: the moments apply"
assert smm.parameter_error(res.params, truth)["atoms"] < 0.05
""",
    ("guides/em-and-map.md", 0): """
assert mle.stop_reason == "no_maximum" and not mle.converged
assert any(w.category is smm.ConvergenceWarning and "no maximum" in str(w.message) for w in caught)
assert mode.stop_reason == "tol" and mode.converged and mode.is_map and mode.objective == "log_posterior"
assert np.all(np.isfinite(mode.params.atoms)) and np.linalg.norm(mode.params.atoms, axis=1).max() < 100
assert np.isclose(mode.log_posterior, mode.log_likelihood + mode.prior.log_density(*mode.params))
assert np.all(np.diff(mode.trace) >= -1e-9 * abs(mode.trace[-1]))
assert np.all(np.isfinite(mode.standard_errors.atoms))
""",
    ("guides/bayesian.md", 0): """
assert smm.rhat(idata)["max"] < 1.05
assert table.attrs["estimate"] == "MAP" and table["inside_hdi"].all()
assert lap.posterior.attrs["inference"] == "laplace"
assert abs(smm.loo(idata).elpd - smm.loo(lap).elpd) < 5.0  # the same model, two approximations
""",
    ("guides/checking.md", 0): """
assert prior_pred["prior_predictive"]["counts"].shape == (1, 200, 60)  # "chain, draw, item"
assert np.all(idata["posterior_predictive"]["counts"].values.sum(-1) == counts.sum())
assert np.all((pit >= 0) & (pit <= 1)) and 0 <= np.mean(replicated_max >= counts.max()) <= 1
assert table.attrs["n_simulations"] + tree.attrs["failures"] == 40 and set(table.index) >= {"weights[0]", "atoms[1, 1]"}
""",
    ("guides/choice-models.md", 0): """
assert round(fit.log_likelihood, 3) == -5208.498  # "as published"
assert round(fit.weights_table.loc["weight[1]", "estimate"], 3) == 0.251
""",
    ("guides/choice-models.md", 1): """
assert fit3.converged and round(fit3.log_likelihood, 3) == -4264.415
assert fit3.names == ("asc_car", "asc_train", "b_cost", "b_time", "b_time_3", "s2", "s2_commuter", "s3", "s3_commuter")
assert round(smm.latent_class_log_likelihood(panel, model, values), 3) == -4265.817
assert abs(per_person.sum() - smm.latent_class_log_likelihood(panel, model, values)) < 1e-8
assert again.converged and abs(again.log_likelihood - fit3.log_likelihood) < 1e-6
""",
    ("guides/choice-models.md", 2): """
assert mode.is_map and mode.converged and mode.stop_reason == "tol"
assert fit.log_likelihood - 1.0 < mode.log_likelihood <= fit.log_likelihood + 1e-6  # a wide prior: close to the MLE, never above it
assert np.isclose(mode.log_posterior, mode.log_likelihood - 0.5 * np.sum((mode.z / 10.0) ** 2)
                  - len(mode.z) * np.log(10.0 * np.sqrt(2 * np.pi)))
""",
    ("guides/large-problems.md", 0): """
plain = smm.fit_em(X, n, 2, init=truth)  # items split over devices give the fit of one device
assert res.log_likelihood == plain.log_likelihood
assert smm.parameter_error(res.params, truth)["atoms"] < 0.15
""",
    ("guides/large-problems.md", 1): """
assert abs(half.log_likelihood - full.log_likelihood) <= 1e-8 * abs(full.log_likelihood)
assert np.max(np.abs(half.params.atoms - full.params.atoms) / full.standard_errors.atoms) < 0.05
""",
    ("guides/compilation.md", 0): """
assert sum(smm.compiled_programs().values()) == 0
""",
}


def _script(page: Path) -> str:
    name = page.relative_to(DOCS).as_posix()
    parts = []
    for i, block in enumerate(BLOCK.findall(page.read_text())):
        parts.append(block)
        parts.append(CHECKS.get((name, i), ""))
    return "\n".join(parts)


def test_every_check_names_a_block():
    pages = {p.relative_to(DOCS).as_posix(): p for p in _pages()}
    for name, i in CHECKS:
        assert name in pages, f"{name} has no python example"
        assert i < len(BLOCK.findall(pages[name].read_text())), f"{name} has no block {i}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_docs_page_examples_run(page):
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-c", _script(page)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{page.relative_to(ROOT)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
