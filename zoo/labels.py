"""Stable path: label sets (`zoo.registry.labels`) and a weight tag's (`zoo.tasks.labels`).

>>> import zoo.labels
>>> zoo.labels.label_set("imagenet-1k")[281]
'tabby'
>>> zoo.labels.labels_for("vit_base_patch16_224").name
'imagenet-1k'
"""

from __future__ import annotations

from .registry.labels import LABEL_SETS, LabelSet, label_set, read_labels_file
from .tasks.labels import labels_for

__all__ = ["LABEL_SETS", "LabelSet", "label_set", "labels_for", "read_labels_file"]
