"""The layout's rules, read from the source (docs/architecture.md says why):
no import cycles (imports inside functions count), no private name of one module
used in another, no module over 400 lines, no function over 60."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "picsearch"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: Each top-level module or package's layer: imports may only point to the same or a lower one.
LAYERS = {
    **dict.fromkeys(("errors", "images", "formats", "paths", "display", "version"), 0),
    "photo_info": 0,
    **dict.fromkeys(("encoders", "ann", "catalog", "concepts"), 1),
    **dict.fromkeys(("ingest", "library", "query", "query_phrases", "vector_index"), 2),
    **dict.fromkeys(("dups", "searcher", "server", "spark", "train", "samples"), 3),
    "tflite": 3,
    "cli": 4,
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    def resolve(self, node: ast.ImportFrom) -> str:
        """The absolute module an ``import from`` names (relative levels resolved)."""
        if not node.level:
            return node.module or ""
        parts = self.name.split(".")
        base = parts if self.is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)


def modules() -> dict[str, Module]:
    found = {}
    for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return found


def imports_of(module: Module, known: dict[str, Module]) -> Iterator[str]:
    """Every picsearch module this one imports, at the top or inside a function."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            target = module.resolve(node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:
                    yield submodule
                elif target in known:
                    yield target


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: set(imports_of(m, known)) - {name} for name, m in known.items()}
    assert cycles(graph) == []


def layer_of(module: str) -> int:
    """The layer of a picsearch module; the package itself (the public API) is on top."""
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else max(LAYERS.values()) + 1


def upward_imports(known: dict[str, Module]) -> list[str]:
    return [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, m in known.items()
        for target in sorted(set(imports_of(m, known)))
        if layer_of(target) > layer_of(name)
    ]


def test_every_module_has_a_layer() -> None:
    assert {name.split(".")[1] for name in modules() if "." in name} <= set(LAYERS)


def test_imports_point_down() -> None:
    assert upward_imports(modules()) == []


def private_names_defined(module: Module) -> set[str]:
    names = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if _is_private(name)}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def foreign_private_uses(module: Module, known: dict[str, Module]) -> Iterator[str]:
    own = private_names_defined(module)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.ImportFrom) and module.resolve(node).startswith(PACKAGE):
            for alias in node.names:
                if _is_private(alias.name):
                    yield f"{module.name}:{node.lineno} imports {alias.name}"
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            if node.attr not in own:
                yield f"{module.name}:{node.lineno} uses .{node.attr}"


def test_no_module_uses_another_modules_private_names() -> None:
    known = modules()
    uses = [use for m in known.values() for use in foreign_private_uses(m, known)]
    assert uses == []


def test_modules_stay_small() -> None:
    long = {
        name: lines
        for name, m in modules().items()
        if (lines := len(m.path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_functions_stay_short() -> None:
    long = [
        f"{m.name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for m in modules().values()
        for node in ast.walk(m.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list) -> None:
    assert cycles(graph) == expected


def report() -> None:
    """``python tests/test_architecture.py``: every finding, one a line."""
    known = modules()
    graph = {name: set(imports_of(m, known)) - {name} for name, m in known.items()}
    for cycle in cycles(graph):
        print("cycle:", " <-> ".join(cycle))
    for upward in upward_imports(known):
        print("upward:", upward)
    for m in known.values():
        for use in foreign_private_uses(m, known):
            print("private:", use)
        lines = len(m.path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            print(f"module: {m.name} has {lines} lines")
        for node in ast.walk(m.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                if (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    print(f"function: {m.name}.{node.name} has {length} lines")


if __name__ == "__main__":
    report()
