"""The class names a weight tag's outputs follow (the label sets are `zoo.registry.labels`)."""

from __future__ import annotations

from ..registry import Registry, Resolved
from ..registry.labels import LabelSet, label_set
from ..weights.resolve import resolve

__all__ = ["labels_for"]


def labels_for(name_or_tag: str | Resolved, *, registry: Registry | None = None) -> LabelSet | None:
    """The label set of a weight tag (a name without tag: its default tag), or None.

    The checkpoint's own class names where its weights give them (`label_names`, a
    fine-tune's, published in a Hub repository), named after the weights. None when the tag
    names no label set (a checkpoint without head, say) or the name has no published
    weights of its own. Takes every name form (see `zoo.weights.resolve`).
    """
    resolved = resolve(name_or_tag, registry)
    weights = resolved.published
    if weights is None:
        return None
    names = getattr(weights.weights, "label_names", None)
    if names:
        descriptions = getattr(weights.weights, "label_descriptions", None)
        return LabelSet(str(weights), descriptions or names, labels=names)
    return label_set(weights.labels) if weights.labels else None
