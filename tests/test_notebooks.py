"""Execute every notebook at small sizes (SMM_NOTEBOOK_SMALL=1) so that they cannot rot."""

import json
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

#: Heavy integration test (executes every notebook): `make test` and CI run it, `make test-quick` does not.
pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_notebook_is_a_parameter_and_the_readme_names_no_other():
    """The parameter lists are the folder's notebooks (none: every test below would be skipped, not
    failed), and the notebooks the README names are exactly those."""
    assert NOTEBOOKS, "no notebooks/*.ipynb: the notebook tests would run nothing"
    named = set(re.findall(r"notebooks/([\w.-]+\.ipynb)", README.read_text()))
    assert named == {p.name for p in NOTEBOOKS}, f"README names {sorted(named)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_executed_and_listed(path):
    """Valid nbformat 4, every code cell executed with its outputs kept, no error output, named in the README."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code"
    assert all(c.execution_count is not None for c in code), f"{path.name} has unexecuted code cells"
    assert any(c.outputs for c in code), f"{path.name} was committed without outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], f"{path.name} has an error output"
    assert f"notebooks/{path.name}" in README.read_text(), f"the README does not list {path.name}"


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec for this interpreter, so the notebooks run in the test's environment."""
    spec = tmp_path / "jupyter" / "kernels" / "smm-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "smm-test",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "smm-test"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch, kernel_name):
    monkeypatch.setenv("SMM_NOTEBOOK_SMALL", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name=kernel_name, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: {[e.get('ename') for e in errors]}"
