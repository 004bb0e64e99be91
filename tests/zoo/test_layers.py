"""The core's layers: each imports only the layers below it, and no module imports itself back.

Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zoo

PACKAGE = Path(zoo.__file__).parent

# Lowest first. The top-level modules not named here are the base (errors, files, devices)
# or re-exports kept for the paths plugins import (zoo.attention, zoo.maps, ...).
LAYERS = ("zoo.registry", "zoo.weights", "zoo.tasks", "zoo.cli")
REEXPORTS = {"zoo", "zoo.attention", "zoo.bench", "zoo.labels", "zoo.maps", "zoo.plugins", "zoo.predict"}
# `python -m zoo` runs the command line: it sits at the top, with zoo.cli.
ENTRY_POINTS = {"zoo.__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The zoo modules `path` imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imported_modules(path, set(paths)) for name, path in paths.items()}


def layer_of(module: str) -> int:
    if module in ENTRY_POINTS:
        return len(LAYERS)
    for index, layer in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return index + 1
    return 0


def test_no_module_of_the_core_imports_a_module_that_imports_it_back():
    graph = import_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))
        return False

    cycles = sorted(
        f"{module} <-> {target}"
        for module, targets in graph.items()
        for target in targets
        if module < target and reaches(target, module)
    )
    assert cycles == []


def test_each_layer_imports_only_the_layers_below_it():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module not in REEXPORTS
        for target in targets
        if target not in REEXPORTS and layer_of(target) > layer_of(module)
    )
    assert upward == []


def test_the_core_uses_its_layers_not_the_reexports():
    through_reexports = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module not in REEXPORTS
        for target in targets
        if target in REEXPORTS
    )
    assert through_reexports == []
