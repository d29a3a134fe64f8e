"""The API reference of the documentation site lists exactly the public names of ``smm_ppl``."""

import re
from pathlib import Path

import smm_ppl

API = Path(__file__).resolve().parents[1] / "docs" / "api" / "index.md"


def test_api_reference_lists_every_public_name():
    listed = re.findall(r"^   (\w+)$", API.read_text(), re.M)  # the entries of its autosummary tables
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert set(listed) == set(smm_ppl.__all__), (
        f"missing: {sorted(set(smm_ppl.__all__) - set(listed))}, not public: {sorted(set(listed) - set(smm_ppl.__all__))}"
    )
