"""Which plugins are installed: the entry points of the `zoo.plugins` group, in load order.

Light on purpose (only `importlib.metadata`): the listing cache reads the installed plugins
on every `zoo list` to check that its listing still holds, and must stay cheap.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["BUILTIN_DISTRIBUTION", "ENTRY_POINT_GROUP", "distribution_of", "plugin_entry_points"]

ENTRY_POINT_GROUP = "zoo.plugins"
BUILTIN_DISTRIBUTION = "zoo"


def plugin_entry_points(group: str = ENTRY_POINT_GROUP) -> list[metadata.EntryPoint]:
    """The installed entry points of `group`, the zoo's own first, then by distribution and name."""
    return sorted(
        metadata.entry_points(group=group),
        key=lambda ep: (distribution_of(ep) != BUILTIN_DISTRIBUTION, distribution_of(ep) or "", ep.name),
    )


def distribution_of(entry_point: metadata.EntryPoint) -> str | None:
    """The name of the distribution that declares `entry_point`, if it is known."""
    return entry_point.dist.name if entry_point.dist else None
