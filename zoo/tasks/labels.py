"""The class names a weight tag's outputs follow (the label sets are `zoo.registry.labels`)."""

from __future__ import annotations

from ..registry import Registry, Resolved
from ..registry.labels import LabelSet, label_set
from ..weights.resolve import resolve

__all__ = ["labels_for"]


def labels_for(name_or_tag: str | Resolved, *, registry: Registry | None = None) -> LabelSet | None:
    """The label set of a weight tag (a name without tag: its default tag), or None.

    None when the tag names no label set (a checkpoint without head, say) or the name has
    no published weights of its own. Takes every name form (see `zoo.weights.resolve`).
    """
    resolved = resolve(name_or_tag, registry)
    weights = resolved.published
    return label_set(weights.labels) if weights is not None and weights.labels else None
