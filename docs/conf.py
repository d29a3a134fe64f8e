"""Sphinx configuration of the smm-ppl documentation site (``make docs``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import smm_ppl  # noqa: E402  (after the path: the checkout's package, not an installed copy)

project = "smm-ppl"
author = "smm-ppl developers"
copyright = "smm-ppl developers"
release = smm_ppl.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

# The notebooks live in notebooks/ (the tests execute them there); the site
# renders copies of them with their committed outputs.  A copy is refreshed
# only when its notebook changed, so incremental builds stay incremental.
_NOTEBOOKS = DOCS / "tutorials" / "notebooks"
_NOTEBOOKS.mkdir(parents=True, exist_ok=True)
for _source in sorted((ROOT / "notebooks").glob("*.ipynb")):
    _copy = _NOTEBOOKS / _source.name
    if not _copy.exists() or _copy.read_bytes() != _source.read_bytes():
        shutil.copyfile(_source, _copy)

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# MyST: $...$ and $$...$$ maths, ::: fences, anchors for every heading down to
# level 3 (so that ``math.md#map-em`` links work here as on GitHub).
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # rendered with their committed outputs; the test suite executes them
nb_merge_streams = True

# API reference: autosummary pages from the numpydoc docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"smm-ppl {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
}
html_context = {"default_mode": "light"}


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    """NamedTuple fields: their docstring is "Alias for field number N"; the class's Attributes section says more."""
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
