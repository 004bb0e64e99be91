"""`import zoo` is cheap: every public name is there, imported on first use."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import zoo

REEXPORTS = ["zoo.attention", "zoo.bench", "zoo.labels", "zoo.maps", "zoo.plugins", "zoo.predict"]
PLUGIN_GUIDE = Path(__file__).parents[2] / "docs" / "plugins.md"


def stable_paths() -> list[tuple[str, str]]:
    """(path, name) for every name of the stable API table in docs/plugins.md."""
    section = PLUGIN_GUIDE.read_text().split("## The stable API for plugins")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return [
        (path.strip("| `"), name)
        for path, names, _ in rows
        for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", names)
    ]


def test_import_zoo_imports_none_of_its_layers_nor_their_dependencies():
    script = (
        "import sys, zoo, zoo.registry; print(zoo.__version__); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pydantic', 'yaml', 'click')"
        " or m.startswith(('zoo.registry.', 'zoo.weights', 'zoo.tasks'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [metadata.version("zoo"), "[]"]


def test_the_public_names_are_the_lazy_export_table_and_what_type_checkers_see():
    tree = ast.parse(Path(zoo.__file__).read_text())
    [guarded] = [
        node for node in tree.body if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    ]
    seen_by_type_checkers = {
        alias.name for node in ast.walk(guarded) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert set(zoo.__all__) == {"INTERFACE_VERSION", *zoo._LOCATIONS}
    assert seen_by_type_checkers == set(zoo._LOCATIONS)


@pytest.mark.parametrize("name", zoo.__all__)
def test_every_public_name_is_importable_from_zoo_and_listed_by_dir(name):
    namespace: dict[str, object] = {}
    exec(f"from zoo import {name}", namespace)
    assert namespace[name] is getattr(zoo, name)
    assert name in dir(zoo)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        zoo.nothing_here  # noqa: B018
    with pytest.raises(ImportError):
        exec("from zoo import nothing_here", {})


@pytest.mark.parametrize(("path", "name"), stable_paths())
def test_every_name_the_plugin_guide_declares_stable_imports_from_its_path(path, name):
    assert hasattr(importlib.import_module(path), name)


def test_the_stable_table_covers_every_reexport_module():
    assert set(REEXPORTS) <= {path for path, _ in stable_paths()}


@pytest.mark.parametrize("module", REEXPORTS)
def test_the_stable_reexport_modules_still_hold_their_names(module):
    imported = importlib.import_module(module)
    assert all(hasattr(imported, name) for name in imported.__all__)


def test_the_registry_package_resolves_its_names_lazily_too():
    import zoo.registry

    assert all(hasattr(zoo.registry, name) for name in zoo.registry.__all__)
    assert zoo.registry.Registry is importlib.import_module("zoo.registry.registry").Registry
