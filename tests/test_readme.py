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


def test_readme_devices_example_matches_one_device(capsys):
    """The large-problems example: items split over devices give the fit of one device."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "devices=" in b]
    assert len(blocks) == 1, "README has no devices example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    smm, res = namespace["smm"], namespace["res"]
    plain = smm.fit_em(namespace["X"], namespace["n"], 2, init=namespace["truth"])
    assert res.log_likelihood == plain.log_likelihood
    assert smm.parameter_error(res.params, namespace["truth"])["atoms"] < 0.15
