"""Coordinate attention for the zoo.

The zoo calls `register` through the `zoo.plugins` entry point declared in pyproject.toml.
Targets are named as strings, so nothing here imports torch until a model is built.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["register"]


def register(zoo) -> None:
    zoo.add_attention("coord", f"{__name__}.attention:CoordinateAttention", kind="channel")
    zoo.add_models(files(__name__) / "registry.yaml")
