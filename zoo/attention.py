"""Stable path for plugins: the attention interface and the typed `attn` argument.

Defined in `zoo.registry.attention` (kinds and their contracts) and
`zoo.registry.attention_spec` (`ChannelAttention`, `TokenAttention`, `WindowAttention`, ...).
"""

from __future__ import annotations

from .registry.attention import (
    ATTENTION_KINDS,
    AttentionKind,
    IncrementalAttention,
    check_attention_class,
    options_model,
)
from .registry.attention_spec import (
    AlignmentAttention,
    AttentionSpec,
    ChannelAttention,
    ClassAttention,
    PoolingAttention,
    SequenceAttention,
    TokenAttention,
    WindowAttention,
    registry_form,
)

__all__ = [
    "ATTENTION_KINDS",
    "AlignmentAttention",
    "AttentionKind",
    "AttentionSpec",
    "ChannelAttention",
    "ClassAttention",
    "IncrementalAttention",
    "PoolingAttention",
    "SequenceAttention",
    "TokenAttention",
    "WindowAttention",
    "check_attention_class",
    "options_model",
    "registry_form",
]
