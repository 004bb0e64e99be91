"""Stable path for plugins: the attention interface and the typed `attn` argument.

Defined in `zoo.registry.attention` (kinds and their contracts),
`zoo.registry.attention_spec` (`ChannelAttention`, `TokenAttention`, `WindowAttention`, ...)
and `zoo.registry.flop_terms` (`flop_term`: how a variant names its terms for `zoo flops`).
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
    ConvAttention,
    LatentPoolAttention,
    MapAttention,
    MapPoolingAttention,
    PoolingAttention,
    SequenceAttention,
    TokenAttention,
    WindowAttention,
    registry_form,
)
from .registry.flop_terms import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term

__all__ = [
    "ATTENTION_AV",
    "ATTENTION_KINDS",
    "ATTENTION_QK",
    "ATTENTION_SOFTMAX",
    "AlignmentAttention",
    "AttentionKind",
    "AttentionSpec",
    "ChannelAttention",
    "ClassAttention",
    "ConvAttention",
    "IncrementalAttention",
    "MapAttention",
    "MapPoolingAttention",
    "LatentPoolAttention",
    "PoolingAttention",
    "SequenceAttention",
    "TokenAttention",
    "WindowAttention",
    "check_attention_class",
    "flop_term",
    "options_model",
    "registry_form",
]
