"""The README's examples (the mixture, the choice model) run as written and print what their comments say.

The guides' examples (the choice model that reproduces biogeme, the devices example, ...) live in the
documentation; ``tests/test_docs_examples.py`` runs them.
"""

import re
from pathlib import Path

import pytest

#: Heavy integration test (runs the README's example): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 2, "the README has two python examples: the mixture, then the choice model"
    return blocks


def test_readme_python_example_runs(capsys):
    blocks = _blocks()
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    smm, res = namespace["smm"], namespace["res"]
    # What the example's comments say it prints: converged, the log-likelihood to 0.1, atoms within 0.04.
    printed = re.search(r"round\(res\.log_likelihood, 1\)\)  # (True|False) (-?[0-9.]+)", blocks[0])
    assert printed, "the README's example no longer states the log-likelihood it prints"
    assert str(res.converged) == printed.group(1)
    assert round(res.log_likelihood, 1) == float(printed.group(2))
    assert "atoms within 0.04 of the truth" in blocks[0]
    assert smm.parameter_error(res.params, namespace["truth"])["atoms"] < 0.04
    # EM and the posterior agree: every EM estimate lies inside its 94% HDI, and the chains mixed.
    assert namespace["table"]["inside_hdi"].all()
    assert smm.rhat(namespace["idata"])["max"] < 1.05


def test_readme_choice_example_runs(monkeypatch):
    """The choice model with named parameters: the optimum, the log-likelihood at given values and the fit
    from given starts are what its comments say (the optimum is checked against an independent SciPy
    implementation in tests/test_choice_spec.py)."""
    block = _blocks()[1]
    monkeypatch.chdir(README.parent)  # the example's data path is relative to the repository root
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    fit, again = namespace["fit"], namespace["again"]
    printed = [float(v) for v in re.findall(r"round\((?:fit\.log_likelihood|ll), 3\)\)  # (-?[0-9.]+)", block)]
    assert printed == [round(fit.log_likelihood, 3), round(namespace["ll"], 3)]
    assert fit.converged and fit.names[:3] == ("asc_car", "asc_train", "b_cost_1")
    assert again.converged and abs(again.log_likelihood - fit.log_likelihood) < 1e-6
