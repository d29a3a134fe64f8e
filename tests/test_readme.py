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
