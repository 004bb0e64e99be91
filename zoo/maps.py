"""Stable path: `zoo.tasks.maps` (images), `zoo.tasks.sequence_maps` (sequences) and
`zoo.tasks.heatmaps` (the pictures of sequence maps and masks)."""

from __future__ import annotations

from .tasks.heatmaps import Grid, Heatmap, attention_heatmap, mask_heatmap
from .tasks.maps import (
    HasAttentionMaps,
    attention_maps,
    attention_rollout,
    class_token_attention,
    colorize,
    flatness,
    overlay,
)
from .tasks.sequence_maps import (
    HasSequenceMaps,
    SequenceInput,
    SequenceMap,
    axis_labels,
    draw_sequence_map,
    map_matrix,
    mask_picture,
    masks,
    read_features,
    read_vocabulary,
    sequence_maps,
    uniformity,
)

__all__ = [
    "Grid",
    "HasAttentionMaps",
    "HasSequenceMaps",
    "Heatmap",
    "SequenceInput",
    "SequenceMap",
    "attention_heatmap",
    "attention_maps",
    "attention_rollout",
    "axis_labels",
    "class_token_attention",
    "colorize",
    "draw_sequence_map",
    "flatness",
    "map_matrix",
    "mask_heatmap",
    "mask_picture",
    "masks",
    "overlay",
    "read_features",
    "read_vocabulary",
    "sequence_maps",
    "uniformity",
]
