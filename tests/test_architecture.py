"""The repository's structure: no import cycles inside the package, and no private names used from outside.

Both checks read the source with ``ast`` (nothing is imported), so they see modules that no test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "smm_ppl"
# models/ is installed as smm_ppl.models through the package-dir mapping of pyproject.toml.
SOURCES = {PACKAGE: ROOT / "smm_ppl", f"{PACKAGE}.models": ROOT / "models"}


def _modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([prefix, *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[str]:
    """The package modules an import statement loads (a name imported from a package may be a submodule)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = _resolve(module, node)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def _edges(module_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node):
                    # A package re-exporting its own submodules is not a cycle with them.
                    if target != module and not (_is_package(module) and target.startswith(module + ".")):
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


def _private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            parts = node.module.split(".")
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if any(p.startswith("_") for p in parts[1:]) and not parts[-1].startswith("__"):
                found.append(node.module)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in {"smm", "em", "D", "diagnostics", "inference", "ws"}:
                found.append(f"{base.id}.{node.attr}")
    return found


#: Private modules that tests and benchmarks may use: ArviZ's lazy import is the package's own.
ALLOWED_PRIVATE = {"smm_ppl.diagnostics._arviz"}


def test_tests_and_benchmarks_use_no_private_names():
    offenders = {}
    for folder in (ROOT / "tests", ROOT / "benchmarks"):
        for path in folder.rglob("*.py"):
            if "_peers" in path.parts:
                continue
            bad = [name for name in _private_imports(path) if name not in ALLOWED_PRIVATE]
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, offenders


def test_every_subpackage_is_installed():
    """A regular (non-editable) install ships exactly the packages pyproject.toml lists."""
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {PACKAGE} | {
        ".".join([PACKAGE, *p.parent.relative_to(ROOT / "smm_ppl").parts])
        for p in (ROOT / "smm_ppl").rglob("__init__.py")
        if p.parent != ROOT / "smm_ppl"
    }
    assert found | {f"{PACKAGE}.models"} == listed
