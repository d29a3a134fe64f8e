"""The README's API example runs as written."""

import re
from pathlib import Path

import pytest

#: Heavy integration test (runs the README's example): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    # The example fits the simulated truth: check it got there.
    smm = namespace["smm"]
    assert smm.parameter_error(namespace["res"].params, namespace["truth"])["atoms"] < 0.15
    assert namespace["table"]["inside_hdi"].all()


def test_readme_choice_example_reproduces_biogeme(capsys, monkeypatch):
    """The latent-class example (run from the repository root, where its data path points)."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "fit_latent_class" in b]
    assert len(blocks) == 1, "README has no latent-class example"
    monkeypatch.chdir(README.parent)
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert round(namespace["fit"].loglik, 3) == -5208.498
    assert round(namespace["fit"].shares.loc["share[1]", "estimate"], 3) == 0.251
