"""The class names a weight tag's outputs follow (the label sets are `zoo.registry.labels`)."""

from __future__ import annotations

from ..registry import Registry, Resolved, default_registry
from ..registry.labels import LabelSet, label_set
from ..weights.resolve import resolve

__all__ = ["labels_for"]


def labels_for(name_or_tag: str | Resolved, *, registry: Registry | None = None) -> LabelSet | None:
    """The label set of a weight tag (a name without tag: its default tag), or None.

    None when the tag names no label set (a checkpoint without head, say) or the name has
    no published weights. Takes every name form (see `zoo.weights.resolve`).
    """
    resolved = resolve(name_or_tag, registry if registry is not None else default_registry())
    tag = resolved.tag or resolved.entry.default_weight_tag
    if tag is None:
        return None
    labels = getattr(resolved.entry.weights[tag], "labels", None)
    return label_set(labels) if labels else None
