"""The repository's structure: the layers in order, no import cycles, and no private names used from outside.

- **Layers**: the table of ``docs/architecture.md`` (read from there, so the two cannot drift) puts every
  module of ``smm_ppl/`` and ``models/`` in a layer; no module imports one of a higher layer, at module
  level or inside a function.
- **Cycles**: none among the package's modules, even through imports inside functions.
- **Privacy**: tests and benchmarks use public names only; a test file may also use the private names of
  the module it mirrors (``tests/test_em_greedy.py``: ``smm_ppl.em.greedy``), its white-box unit test.

Every check reads the source with ``ast`` (nothing is imported), so it sees modules that no test imports;
the checkers are themselves tested on small planted trees and files, so that each can fail.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "smm_ppl"
# models/ is installed as smm_ppl.models through the package-dir mapping of pyproject.toml.
SOURCES = {PACKAGE: ROOT / "smm_ppl", f"{PACKAGE}.models": ROOT / "models"}


def _modules(sources: dict[str, Path]) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module under the folders of ``sources`` (``{prefix: folder}``)."""
    out = {}
    for prefix, folder in sources.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _modules(SOURCES)


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom, modules: dict[str, Path]) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if _is_package(module, modules) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The package modules an import statement loads (a name imported from a package may be a submodule)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = _resolve(module, node, modules)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    found = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def _edges(module_level_only: bool, modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """``{module: the package modules it imports}``, at module level only or anywhere (inside functions too)."""
    modules = MODULES if modules is None else modules
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node, modules):
                    # A package re-exporting its own submodules is not a cycle with them.
                    if target != module and not (_is_package(module, modules) and target.startswith(module + ".")):
                        graph[module].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_scan_sees_the_package():
    assert {"smm_ppl", "smm_ppl.em.kernel", "smm_ppl.layouts.items", "smm_ppl.models.mixture"} <= set(MODULES)
    assert "smm_ppl.layouts._base" in _edges(True)["smm_ppl.layouts.items"]


def test_no_import_cycle_among_module_level_imports():
    assert _cycle(_edges(module_level_only=True)) is None


def test_no_import_cycle_even_through_imports_inside_functions():
    """A function-level import only hides a cycle from the interpreter; the layers must not have one."""
    assert _cycle(_edges(module_level_only=False)) is None


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# --------------------------------------------------------------------------------------------------
# ArviZ: smm_ppl.diagnostics is the one subpackage that imports it
# --------------------------------------------------------------------------------------------------

#: ArviZ, 0.x (``arviz``) and 1 (``arviz_base``, ``arviz_stats``, ``arviz_plots``).
ARVIZ = re.compile(r"^arviz(_base|_stats|_plots)?(\.|$)")


def _arviz_imports(source: str) -> list[str]:
    """The ArviZ modules a source file imports, anywhere in it (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if ARVIZ.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and ARVIZ.match(node.module or ""):
            found.append(node.module)
    return found


def test_only_diagnostics_imports_arviz():
    outside = {
        module: _arviz_imports(path.read_text())
        for module, path in MODULES.items()
        if not module.startswith(f"{PACKAGE}.diagnostics")
    }
    assert {m: found for m, found in outside.items() if found} == {}
    assert _arviz_imports(MODULES[f"{PACKAGE}.diagnostics._arviz"].read_text())  # the scan sees imports


def test_the_arviz_scan_finds_every_spelling():
    planted = (
        "import arviz as az\nfrom arviz_stats import loo\ndef f():\n    import arviz_plots.style\nimport arvizzz\n"
    )
    assert _arviz_imports(planted) == ["arviz", "arviz_stats", "arviz_plots.style"]


# --------------------------------------------------------------------------------------------------
# Layers: read from the table of docs/architecture.md
# --------------------------------------------------------------------------------------------------

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _layer_table(text: str, package: str = PACKAGE) -> dict[str, tuple[int, str]]:
    """``{dotted name: (rank, label)}`` from the layer table of an architecture document.

    A table row is ``| <label>. <title> | <modules> | ... |`` with ``label`` a number and an optional
    letter (``4b``); rows go bottom to top, and ``rank`` is the row's position.  In the modules column
    every name in backquotes outside parentheses counts: ``name/`` is a subpackage (every module under
    it), ``__init__`` the package itself, anything else one module of the package.
    """
    table: dict[str, tuple[int, str]] = {}
    rank = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        label = re.fullmatch(r"(\d+[a-z]?)\.\s.*", cells[0]) if line.lstrip().startswith("|") else None
        if label is None or len(cells) < 2:
            continue
        rank += 1
        for token in re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", cells[1])):
            token = token.strip().rstrip("/")
            name = package if token == "__init__" else f"{package}.{token.replace('/', '.')}"
            assert name not in table, f"{name} is in two rows of the layer table"
            table[name] = (rank, label.group(1))
    return table


def _layer_of(module: str, table: dict[str, tuple[int, str]], package: str = PACKAGE) -> tuple[int, str] | None:
    """The layer of ``module``: its own row, else its innermost subpackage's (the package's own row is
    ``__init__`` alone, so an unlisted module has none)."""
    name = module
    while name:
        if name in table and (name != package or module == package):
            return table[name]
        name = name.rpartition(".")[0]
    return None


def _upward_imports(graph: dict[str, set[str]], table: dict[str, tuple[int, str]], package: str = PACKAGE) -> list[str]:
    """Every import of a module of a higher layer than the importer's, as a sentence naming both."""
    found = []
    for module in sorted(graph):
        low = _layer_of(module, table, package)
        for target in sorted(graph[module]):
            high = _layer_of(target, table, package)
            if low and high and high[0] > low[0]:
                found.append(f"{module} (layer {low[1]}) imports {target} (layer {high[1]})")
    return found


LAYERS = _layer_table(ARCHITECTURE.read_text())


def test_the_layer_table_is_read_in_order():
    assert LAYERS["smm_ppl.core"][1] == "1" and LAYERS["smm_ppl.models"][1] == "4"
    assert LAYERS["smm_ppl"][1] == "5" and LAYERS["smm_ppl.choice"][1] == "3b"
    labels = sorted({layer for layer in LAYERS.values()})  # by rank, i.e. by row
    keys = [(int(re.match(r"\d+", label).group()), label) for _, label in labels]
    assert keys == sorted(keys), f"the rows of the layer table are not bottom to top: {labels}"


def test_every_module_has_a_layer_and_every_listed_name_exists():
    unplaced = sorted(m for m in MODULES if _layer_of(m, LAYERS) is None)
    assert not unplaced, f"add these modules to the layer table of docs/architecture.md: {unplaced}"
    stale = sorted(name for name in LAYERS if name not in MODULES)
    assert not stale, f"the layer table of docs/architecture.md names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_layer():
    """Imports inside functions count: they only defer the dependency."""
    upward = _upward_imports(_edges(module_level_only=False), LAYERS)
    assert not upward, "imports of a higher layer (docs/architecture.md):\n" + "\n".join(upward)


TINY_TABLE = """
| layer | modules | what |
|---|---|---|
| 1. bottom | `low`, `util/` | |
| 2. middle | `mid` (not `high`) | |
| 3. top | `high`, `__init__` | |
"""

TINY_TREE = {
    "__init__.py": "from . import high\n",
    "low.py": "import math\n",
    "util/__init__.py": "from .helpers import twice\n",
    "util/helpers.py": "from ..low import math\n\ndef twice(x):\n    return 2 * x\n",
    "mid.py": "from .low import math\nfrom .util import twice\n",
    "high.py": "from . import mid\nfrom tiny.util.helpers import twice\n",
}


def _tiny_tree(root: Path, plant: dict[str, str] | None = None) -> dict[str, Path]:
    """The tiny package ``tiny`` written under ``root``, with ``plant`` appended to some of its files."""
    for rel, text in TINY_TREE.items():
        path = root / "tiny" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + (plant or {}).get(rel, ""))
    return _modules({"tiny": root / "tiny"})


def _tiny_check(modules: dict[str, Path], table_text: str = TINY_TABLE) -> list[str]:
    return _upward_imports(_edges(False, modules), _layer_table(table_text, "tiny"), "tiny")


def test_the_layer_check_passes_a_clean_tree(tmp_path):
    modules = _tiny_tree(tmp_path)
    table = _layer_table(TINY_TABLE, "tiny")
    assert table == {
        "tiny.low": (1, "1"),
        "tiny.util": (1, "1"),
        "tiny.mid": (2, "2"),
        "tiny.high": (3, "3"),
        "tiny": (3, "3"),
    }
    assert _layer_of("tiny.util.helpers", table, "tiny") == (1, "1")
    assert _tiny_check(modules) == []


@pytest.mark.parametrize(
    "plant, message",
    [
        # inside a function, relative
        ({"low.py": "\ndef late():\n    from .mid import math\n"}, "tiny.low (layer 1) imports tiny.mid (layer 2)"),
        # at module level, absolute, from a subpackage's module
        ({"util/helpers.py": "import tiny.high\n"}, "tiny.util.helpers (layer 1) imports tiny.high (layer 3)"),
        # a submodule named in a from-import of its package
        ({"mid.py": "from . import high\n"}, "tiny.mid (layer 2) imports tiny.high (layer 3)"),
        # the package itself is the top layer
        ({"low.py": "import tiny\n"}, "tiny.low (layer 1) imports tiny (layer 3)"),
    ],
)
def test_the_layer_check_fails_on_a_planted_upward_import(tmp_path, plant, message):
    assert _tiny_check(_tiny_tree(tmp_path, plant)) == [message]


def test_a_module_missing_from_the_table_has_no_layer(tmp_path):
    modules = _tiny_tree(tmp_path)
    (tmp_path / "tiny" / "stray.py").write_text("")
    table = _layer_table(TINY_TABLE, "tiny")
    modules = _modules({"tiny": tmp_path / "tiny"})
    assert [m for m in modules if _layer_of(m, table, "tiny") is None] == ["tiny.stray"]


# --------------------------------------------------------------------------------------------------
# Privacy: tests and benchmarks use public names, and a test file its own module's private ones
# --------------------------------------------------------------------------------------------------

#: Private modules that every test and benchmark may use: ArviZ's lazy import is the package's own.
ALLOWED_PRIVATE = {"smm_ppl.diagnostics._arviz"}

#: Methods of named tuples: public API spelled with an underscore (so as not to clash with field names).
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}

#: Calls that reach an attribute by its name as a string.
ATTRIBUTE_CALLS = {"getattr", "setattr", "delattr", "hasattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _within(name: str, owner: str | None) -> bool:
    return owner is not None and (name == owner or name.startswith(owner + "."))


def _mirror(path: Path) -> str | None:
    """The package module a test file mirrors, ``tests/test_em_greedy.py`` -> ``smm_ppl.em.greedy``."""
    if path.parent != ROOT / "tests" or not path.stem.startswith("test_"):
        return None
    names = {m.removeprefix(PACKAGE + ".").replace(".", "_").lstrip("_"): m for m in MODULES if m != PACKAGE}
    return names.get(path.stem.removeprefix("test_"))


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of attributes on a name, else ``None``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _private_uses(source: str, mirror: str | None = None, package: str = PACKAGE) -> list[str]:
    """The private names a file outside the package uses, but those of ``mirror`` and :data:`ALLOWED_PRIVATE`.

    Private: a ``_name`` (not a dunder) imported from the package or through a ``_module`` of it, an
    attribute ``x._name`` (also as a string in ``getattr``/``setattr``/...) of anything but ``self``, ``cls``
    and named tuples' methods.  Names bound to the package's modules by imports are followed, so that
    ``from smm_ppl.em import greedy; greedy._x`` is ``smm_ppl.em.greedy._x``, which ``mirror =
    "smm_ppl.em.greedy"`` allows.
    """
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> the package module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == package:
                    bound[a.asname or package] = a.name if a.asname else package
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == package:
            for a in node.names:
                bound[a.asname or a.name] = f"{node.module}.{a.name}"

    def qualified(chain: str) -> str:
        head, _, rest = chain.partition(".")
        return bound[head] + ("." + rest if rest else "") if head in bound else chain

    def allowed(name: str) -> bool:
        return _within(name, mirror) or any(_within(name, a) for a in ALLOWED_PRIVATE)

    found = []
    for node in ast.walk(tree):
        names: list[tuple[str, str]] = []  # (the private name as written, qualified)
        if isinstance(node, ast.Import):
            names = [(a.name, a.name) for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == package:
            names = [(node.module, node.module)] + [(f"{node.module}.{a.name}",) * 2 for a in node.names]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in NAMEDTUPLE_API:
            owner = _dotted(node.value)
            if owner not in {"self", "cls"}:
                written = f"{owner or '<expression>'}.{node.attr}"
                names = [(written, qualified(written) if owner else written)]
        elif (
            isinstance(node, ast.Call)
            and (_dotted(node.func) or "").rpartition(".")[2] in ATTRIBUTE_CALLS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            owner = _dotted(node.args[0])
            if owner not in {"self", "cls"}:
                written = f"{owner or '<expression>'}.{node.args[1].value}"
                names = [(written, qualified(written) if owner else written)]
        for written, name in names:
            if any(_private(part) for part in name.split(".")) and not allowed(name):
                found.append(f"line {node.lineno}: {written}")
    # By line, then name: a set has no order.
    return sorted(set(found), key=lambda s: (int(s.split()[1].rstrip(":")), s))


#: Folders outside the rule: the smoke runs' scratch output (``_peers``), and the scripts that run the
#: peer tools in their own environments (``peers``), where patching a peer's internals is the measurement.
UNWATCHED = {"_peers", "peers"}


def test_tests_and_benchmarks_use_no_private_names():
    offenders = {}
    for folder in (ROOT / "tests", ROOT / "benchmarks"):
        for path in folder.rglob("*.py"):
            if UNWATCHED & set(path.relative_to(folder).parts):
                continue
            bad = _private_uses(path.read_text(), _mirror(path))
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, offenders


def test_a_test_file_mirrors_its_module():
    assert _mirror(ROOT / "tests" / "test_em_greedy.py") == "smm_ppl.em.greedy"
    assert _mirror(ROOT / "tests" / "test_core_config.py") == "smm_ppl.core.config"
    assert _mirror(ROOT / "tests" / "test_warmstart_random_starts.py") == "smm_ppl.warmstart.random_starts"
    assert _mirror(ROOT / "tests" / "test_hardening.py") is None
    assert _mirror(ROOT / "benchmarks" / "bench_em.py") is None


PLANTED = """
import argparse
import smm_ppl as smm
from smm_ppl.core import programs
from smm_ppl.em import greedy
from smm_ppl.em.greedy import _split_scores
from smm_ppl.layouts._base import accumulator
from smm_ppl.diagnostics._arviz import arviz_stats

def f(parser, state, monkeypatch):
    greedy._log_sigma(1, 2)
    smm.core.config._x64_requested()
    parser._subparsers
    state._replace(a=1)
    self._x, cls._y, programs.__name__
    monkeypatch.setattr(programs, "_PROGRAMS", {})
    getattr(parser, "_actions")
"""


def test_the_privacy_check_finds_private_names_and_allows_the_mirrored_module():
    everything = [
        "line 6: smm_ppl.em.greedy._split_scores",
        "line 7: smm_ppl.layouts._base",
        "line 7: smm_ppl.layouts._base.accumulator",
        "line 11: greedy._log_sigma",
        "line 12: smm.core.config._x64_requested",
        "line 13: parser._subparsers",
        "line 16: programs._PROGRAMS",
        "line 17: parser._actions",
    ]
    assert _private_uses(PLANTED) == everything
    # The white-box test of smm_ppl.em.greedy may reach its private names, and only those.
    assert _private_uses(PLANTED, mirror="smm_ppl.em.greedy") == [e for e in everything if "greedy" not in e]
    assert _private_uses(PLANTED, mirror="smm_ppl.core.config") == [e for e in everything if "_x64" not in e]


def test_every_subpackage_is_installed():
    """A regular (non-editable) install ships exactly the packages pyproject.toml lists."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {PACKAGE} | {
        ".".join([PACKAGE, *p.parent.relative_to(ROOT / "smm_ppl").parts])
        for p in (ROOT / "smm_ppl").rglob("__init__.py")
        if p.parent != ROOT / "smm_ppl"
    }
    assert found | {f"{PACKAGE}.models"} == listed
