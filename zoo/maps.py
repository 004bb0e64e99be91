"""Stable path: `zoo.tasks.maps` (images), `zoo.tasks.sequence_maps` (sequences) and
`zoo.tasks.heatmaps` (the pictures of sequence maps and masks).

Each name is imported from its module on first use, so that a family importing one of them
(to offer attention maps) does not import the picture code, PIL among it, to build a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

_LOCATIONS: dict[str, str] = {
    "Grid": "zoo.tasks.heatmaps",
    "HasAttentionMaps": "zoo.tasks.maps",
    "HasSequenceMaps": "zoo.tasks.sequence_maps",
    "Heatmap": "zoo.tasks.heatmaps",
    "SequenceInput": "zoo.tasks.sequence_maps",
    "SequenceMap": "zoo.tasks.sequence_maps",
    "attention_heatmap": "zoo.tasks.heatmaps",
    "attention_maps": "zoo.tasks.maps",
    "attention_rollout": "zoo.tasks.maps",
    "axis_labels": "zoo.tasks.sequence_maps",
    "class_token_attention": "zoo.tasks.maps",
    "colorize": "zoo.tasks.maps",
    "draw_sequence_map": "zoo.tasks.sequence_maps",
    "flatness": "zoo.tasks.maps",
    "map_matrix": "zoo.tasks.sequence_maps",
    "mask_heatmap": "zoo.tasks.heatmaps",
    "mask_picture": "zoo.tasks.sequence_maps",
    "masks": "zoo.tasks.sequence_maps",
    "overlay": "zoo.tasks.maps",
    "read_features": "zoo.tasks.sequence_maps",
    "read_vocabulary": "zoo.tasks.sequence_maps",
    "sequence_maps": "zoo.tasks.sequence_maps",
    "uniformity": "zoo.tasks.sequence_maps",
}

__all__ = sorted(_LOCATIONS)

__getattr__, __dir__ = lazy_exports(__name__, _LOCATIONS, __all__)

if TYPE_CHECKING:
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
