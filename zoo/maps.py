"""Stable path: `zoo.tasks.maps`."""

from __future__ import annotations

from .tasks.maps import (
    HasAttentionMaps,
    attention_maps,
    attention_rollout,
    class_token_attention,
    colorize,
    overlay,
)

__all__ = [
    "HasAttentionMaps",
    "attention_maps",
    "attention_rollout",
    "class_token_attention",
    "colorize",
    "overlay",
]
