"""The layers of the package point down: no import cycle among the core modules, none hidden.

The import graph is read from the source with ``ast``: every ``import`` counts, at module
level, inside functions and under ``if TYPE_CHECKING:``. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aleph_alpha_client

PACKAGE = Path(aleph_alpha_client.__file__).parent
NAME = "aleph_alpha_client"

#: The pure core: no sockets, no sleeping; below the transports and the client shells.
CORE = {
    "_request",
    "_exceptions",
    "_headers",
    "_json",
    "_partial_json",
    "_sse",
    "_http11",
    "_retry",
    "_config",
    "_wire",
    "_attempt",
    "_streaming",
    "_endpoints",
    "_base",
    "_tracing",
    "_mocks",
    "_hooks",
    "_multipart",
    "_raw",
    "_validation",
}
#: The network layer, above the core.
TRANSPORTS = {
    "_transport",
    "_net",
    "_proxy",
    "_socks",
    "_tls",
    "_sync_http",
    "_async_http",
    "_compat_transport",
    "transport",
}
#: The two client shells, on top.
SHELLS = {"_client", "_async_client"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool]]:
    """The package modules ``path`` imports, each with "inside a function or class"."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
            )
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                hits = [
                    f"{target}.{a.name}" for a in child.names if f"{target}.{a.name}" in modules
                ]
                if target in modules and len(hits) < len(child.names):
                    hits.append(target)
                found.extend((hit, inner) for hit in hits)
            elif isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names if a.name in modules)
            visit(child, inner)

    visit(tree, False)
    return [(target, nested) for target, nested in found if target != name]


def _graph(names: set[str]) -> dict[str, set[str]]:
    modules = _all_modules()
    graph: dict[str, set[str]] = {}
    for short in names:
        path = modules[f"{NAME}.{short}"]
        graph[short] = {
            target.removeprefix(f"{NAME}.")
            for target, _ in _imports(path, modules)
            if target.removeprefix(f"{NAME}.") in names
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = walk(target)
                if cycle is not None:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = walk(node)
            if cycle is not None:
                return cycle
    return None


def test_the_layer_lists_name_real_modules() -> None:
    modules = _all_modules()
    for short in CORE | TRANSPORTS | SHELLS:
        assert f"{NAME}.{short}" in modules, short
    private = {m.removeprefix(f"{NAME}.") for m in modules if m.count(".") == 1}
    unplaced = {m for m in private if m.startswith("_")} - CORE - TRANSPORTS - SHELLS - {"__main__"}
    assert not unplaced, f"put new private modules in a layer of this test: {sorted(unplaced)}"


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_finds_function_level_imports() -> None:
    modules = _all_modules()
    imports = _imports(modules[f"{NAME}._transport"], modules)
    assert (f"{NAME}._sync_http", True) in imports  # built lazily, at the first request
    assert (f"{NAME}._request", False) in imports


def test_core_transports_and_shells_have_no_import_cycle() -> None:
    assert find_cycle(_graph(CORE | TRANSPORTS | SHELLS)) is None


def test_the_request_value_is_a_leaf() -> None:
    assert _graph(CORE)["_request"] == set()


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_imports_no_core_module_inside_functions(module: str) -> None:
    modules = _all_modules()
    hidden = [
        target
        for target, nested in _imports(modules[f"{NAME}.{module}"], modules)
        if nested and target.removeprefix(f"{NAME}.") in CORE
    ]
    assert hidden == [], f"{module} imports {hidden} inside a function: import at the top"


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_imports_neither_transports_nor_shells(module: str) -> None:
    upward = _graph(CORE | TRANSPORTS | SHELLS)[module] & (TRANSPORTS | SHELLS)
    assert upward == set(), f"{module} imports {sorted(upward)} from a layer above the core"
