"""Stable path for plugins: `PluginContext`, the interface version and plugin discovery
(`zoo.registry.plugins`)."""

from __future__ import annotations

from .registry.plugins import (
    ENTRY_POINT_GROUP,
    INTERFACE_VERSION,
    PluginContext,
    PluginManager,
    PluginRecord,
    default_plugin_manager,
    default_registry,
    reset_default_plugin_manager,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "INTERFACE_VERSION",
    "PluginContext",
    "PluginManager",
    "PluginRecord",
    "default_plugin_manager",
    "default_registry",
    "reset_default_plugin_manager",
]
