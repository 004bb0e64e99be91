"""The registry layer: what the zoo knows by name, and the contracts plugins fill.

- `schema`: the shape of registry data (entries, weight tags);
- `source`: registry YAML files read with every problem located;
- `attention`: the attention kinds and the interface a variant's class follows;
- `attention_spec`: the typed `attn` argument of family configs;
- `registry`: the `Registry` of builders, attention variants, key adapters and entries;
- `plugins`: entry-point discovery, `PluginContext`, the default registry;
- `labels`: the label sets that ship with the zoo;
- `discovery`: the installed plugins' entry points, in load order;
- `names`: the rule by which a pattern picks model names;
- `snapshot`: the cached listing `zoo list` prints.

Nothing here downloads or loads weights; that is `zoo.weights`, one layer up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first access, so that `zoo list` can use `names` and `snapshot` without pydantic.
_LOCATIONS: dict[str, str] = {
    "default_plugin_manager": ".plugins",
    "default_registry": ".plugins",
    **dict.fromkeys(
        ("AttentionVariant", "Builder", "KeyAdapter", "ModelSource", "Registry", "Resolved"),
        ".registry",
    ),
    "validate_files": ".registry",
}

__all__ = [
    "AttentionVariant",
    "Builder",
    "KeyAdapter",
    "ModelSource",
    "Registry",
    "Resolved",
    "default_plugin_manager",
    "default_registry",
    "validate_files",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access, then keep it here."""
    location = _LOCATIONS.get(name)
    if location is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(location, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from .plugins import default_plugin_manager, default_registry
    from .registry import (
        AttentionVariant,
        Builder,
        KeyAdapter,
        ModelSource,
        Registry,
        Resolved,
        validate_files,
    )
