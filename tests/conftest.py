"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.plugins import PluginManager
from zoo.registry import Registry

REFERENCE = Path(__file__).parent / "data" / "reference"


@pytest.fixture
def builtin_registry() -> Registry:
    """A fresh registry holding only the built-in plugin, registered as any plugin is."""
    import zoo_plugins

    manager = PluginManager(Registry())
    record = manager.register("builtin", zoo_plugins.register, distribution="zoo")
    assert record.error is None, record.error
    return manager.registry


@pytest.fixture
def write_registry(tmp_path: Path):
    """Write registry YAML text to a file and return its path."""
    counter = iter(range(1000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"registry_{next(counter)}.yaml")
        path.write_text(text)
        return path

    return write
