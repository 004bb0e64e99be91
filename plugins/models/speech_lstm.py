"""LSTM over speech features with attention pooling, for utterance classification.

Mirsamadi, Barsoum and Zhang, "Automatic Speech Emotion Recognition Using Recurrent Neural
Networks with Local Attention", ICASSP 2017. https://doi.org/10.1109/ICASSP.2017.7952552
de Andrade et al., "A neural attention model for speech command recognition", 2018.
https://arxiv.org/abs/1808.08929

Feature frames (e.g. 80 log-mel bins per 10 ms) go through a (bidirectional, stacked) LSTM;
a pluggable pooling attention (`attn`: soft by default, or hard) weighs the frames into one
vector per utterance, and a linear layer classifies it. Padded batches come with their
lengths: padded frames are skipped by the LSTM and get zero attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo.attention import PoolingAttention
from zoo.registry.family import Family, SequenceInput, SequenceMap

from ..attention.functional import Pooled, padding_mask
from ..layers import LSTMEncoder

__all__ = ["SpeechLSTMAttention", "SpeechLSTMConfig", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]


class SpeechLSTMConfig(BaseModel):
    """Architecture of an LSTM utterance classifier with attention pooling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_features: Positive = Field(default=80, description="features per frame, e.g. log-mel bins")
    hidden_size: Positive = 256
    num_layers: Positive = 2
    bidirectional: bool = True
    dropout: Rate = Field(default=0.0, description="between LSTM layers")
    drop_rate: Rate = Field(default=0.0, description="before the classifier")
    num_classes: int = Field(default=35, ge=0)
    attn: PoolingAttention = Field(default="soft", validate_default=True)


class SpeechLSTMAttention(nn.Module):
    def __init__(self, config: SpeechLSTMConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        self.encoder = LSTMEncoder(
            config.in_features,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            **factory,
        )
        self.num_features = self.encoder.output_size
        self.pool = config.attn.build(self.num_features, **factory)
        self.head_drop = nn.Dropout(config.drop_rate)
        self.fc = (
            nn.Linear(self.num_features, config.num_classes, **factory)
            if config.num_classes
            else nn.Identity()
        )

    def frame_mask(self, features: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
        """(B, T), True at real frames; None without lengths."""
        if lengths is None:
            return None
        return padding_mask(torch.as_tensor(lengths, device=features.device), features.shape[1])

    def forward_features(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, in_features) frames and (B,) lengths -> LSTM outputs (B, T, num_features)."""
        return self.encoder(features, lengths)[0]

    def forward_pool(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> Pooled:
        """The pooling attention's result: `output` (B, num_features), `weights` (B, T) over
        frames and, for hard attention, the `log_prob` (B,) of the picked frame."""
        x = self.forward_features(features, lengths)
        return Pooled(*self.pool(x, self.frame_mask(features, lengths)))  # any (output, weights, log_prob)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, num_features) pooled -> (B, num_classes) logits."""
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward_attention(
        self, features: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, num_classes) and the attention weights over frames (B, T)."""
        pooled = self.forward_pool(features, lengths)
        return self.forward_head(pooled.output), pooled.weights

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (SequenceInput("features", "frames", self.config.in_features),)

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]:
        """The pooling attention's weights over the frames: one query, (B, 1, 1, T)."""
        weights = self.forward_pool(inputs["features"], lengths.get("features")).weights
        return {"pooling": SequenceMap(weights[:, None, None, :], None, "features", ("pool",))}

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, in_features) padded frames and their (B,) lengths -> (B, num_classes)."""
        return self.forward_head(self.forward_pool(features, lengths).output)


class SpeechLSTMFamily(Family):
    """Family `speech_lstm`: LSTM classifiers of speech features pooled by any pooling attention."""

    config = SpeechLSTMConfig
    tasks = ("sequence-classification",)
    test_args: ClassVar[dict[str, Any]] = {"in_features": 8, "hidden_size": 16, "num_classes": 5}

    def build(self, config: SpeechLSTMConfig, *, device=None, dtype=None) -> SpeechLSTMAttention:
        return SpeechLSTMAttention(config, device=device, dtype=dtype)

    def example_input(
        self, config: SpeechLSTMConfig, *, batch: int = 2, seq_len: int | None = None, device=None, dtype=None
    ) -> tuple[torch.Tensor, ...]:
        frames = seq_len or 50
        return (torch.randn(batch, frames, config.in_features, device=device, dtype=dtype),)


family = SpeechLSTMFamily()
build = family.build
