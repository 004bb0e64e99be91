"""The registry's entries, a few of each kind, for contracts that build or run a model.

What is cheap is checked for every name and tag; what builds and runs a model is checked for two
entries of each kind (its builder and its task): the smallest, and the one with the most
builder arguments, with their tags, so that the suite stays fast with the whole catalogue
registered. tests/test_catalogue.py builds every catalogue architecture on `meta` against its
checkpoint layout.
"""

from __future__ import annotations

from functools import cache

import zoo
from zoo.registry import default_registry


def stated_size(name: str) -> int:
    """The parameters the entry's selected weights state (0 when none do)."""
    selected = default_registry().resolve(name).selected
    return (selected.weights.num_params or 0) if selected is not None else 0


def kind_of_entry(name: str) -> tuple[str, str | None]:
    registry = default_registry()
    resolved = registry.resolve(name)
    return resolved.entry.builder, registry.task(resolved)


def arguments_of(name: str) -> int:
    return len(default_registry().resolve(name).entry.args)


@cache
def entries_of_each_kind() -> list[str]:
    """Of each kind, the smallest entry and the one with the most builder arguments."""
    kinds: dict[tuple, list[str]] = {}
    for name in zoo.list_models():
        kinds.setdefault(kind_of_entry(name), []).append(name)
    chosen = set()
    for names in kinds.values():
        chosen.add(min(names, key=lambda name: (stated_size(name), name)))
        chosen.add(max(names, key=lambda name: (arguments_of(name), -stated_size(name), name)))
    return sorted(chosen)


@cache
def tags_of_each_kind() -> list[str]:
    kinds = set(entries_of_each_kind())
    return [tag for tag in zoo.list_pretrained() if tag.split(".", 1)[0] in kinds]


@cache
def smallest_of_each_builder() -> dict[str, str]:
    """Of each builder, the entry whose weights state the fewest parameters (entries without
    weights, whose size is not stated, last; ties by name)."""
    registry = default_registry()
    builders: dict[str, list[str]] = {}
    for name in zoo.list_models():
        builders.setdefault(registry.resolve(name).entry.builder, []).append(name)
    return {
        builder: min(names, key=lambda name: (stated_size(name) == 0, stated_size(name), name))
        for builder, names in sorted(builders.items())
    }
