"""The registry layer: what the zoo knows by name, and the contracts plugins fill.

- `schema`: the shape of registry data (entries, weight tags);
- `source`: registry YAML files read with every problem located;
- `attention`: the attention kinds and the interface a variant's class follows;
- `attention_spec`: the typed `attn` argument of family configs;
- `registry`: the `Registry` of builders, attention variants, key adapters and entries, and
  the `Resolved` name with the weights it stands for (`SelectedWeight`);
- `plugins`: entry-point discovery, `PluginContext`, the default registry;
- `labels`: the label sets that ship with the zoo;
- `discovery`: the installed plugins' entry points, in load order;
- `names`: the forms a model name is written in, and the rule by which a pattern picks names;
- `snapshot`: the cached listing `zoo list` prints.

Nothing here downloads or loads weights; that is `zoo.weights`, one layer up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

# Imported on first access, so that `zoo list` can use `names` and `snapshot` without pydantic.
_LOCATIONS: dict[str, str] = {
    "default_plugin_manager": ".plugins",
    "default_registry": ".plugins",
    **dict.fromkeys(
        (
            "AttentionVariant",
            "Builder",
            "KeyAdapter",
            "ModelSource",
            "Registry",
            "Resolved",
            "SelectedWeight",
        ),
        ".registry",
    ),
    "validate_files": ".registry",
}

__all__ = sorted(_LOCATIONS)


__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)


if TYPE_CHECKING:
    from .plugins import default_plugin_manager, default_registry
    from .registry import (
        AttentionVariant,
        Builder,
        KeyAdapter,
        ModelSource,
        Registry,
        Resolved,
        SelectedWeight,
        validate_files,
    )
