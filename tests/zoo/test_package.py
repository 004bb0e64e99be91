"""`import zoo` is cheap: every public name is there, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import zoo

REEXPORTS = ["zoo.attention", "zoo.bench", "zoo.labels", "zoo.maps", "zoo.plugins", "zoo.predict"]


def test_import_zoo_imports_none_of_its_layers_nor_their_dependencies():
    script = (
        "import sys, zoo, zoo.registry; print(zoo.__version__); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pydantic', 'yaml', 'click')"
        " or m.startswith(('zoo.registry.', 'zoo.weights', 'zoo.tasks'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["0.1.0", "[]"]


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


@pytest.mark.parametrize("module", REEXPORTS)
def test_the_stable_reexport_modules_still_hold_their_names(module):
    imported = importlib.import_module(module)
    assert all(hasattr(imported, name) for name in imported.__all__)


def test_the_registry_package_resolves_its_names_lazily_too():
    import zoo.registry

    assert all(hasattr(zoo.registry, name) for name in zoo.registry.__all__)
    assert zoo.registry.Registry is importlib.import_module("zoo.registry.registry").Registry
