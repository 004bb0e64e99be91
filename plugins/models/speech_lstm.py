"""LSTM over speech features with attention pooling, for utterance classification.

Mirsamadi, Barsoum and Zhang, "Automatic Speech Emotion Recognition Using Recurrent Neural
Networks with Local Attention", ICASSP 2017. https://doi.org/10.1109/ICASSP.2017.7952552
de Andrade et al., "A neural attention model for speech command recognition", 2018.
https://arxiv.org/abs/1808.08929

Chan et al., "Listen, Attend and Spell", ICASSP 2016. https://arxiv.org/abs/1508.01211

Feature frames (e.g. 80 log-mel bins per 10 ms) go through a (bidirectional, stacked) LSTM;
an attention weighs the frames into one vector per utterance, and a linear layer classifies
it. The attention (`attn`) is a pooling attention (soft by default, or hard), which scores
the frames alone, or an alignment attention (additive), which scores them against a query:
the last hidden state of the LSTM (both directions of the top layer), as a listen-attend
decoder's state would. Padded batches come with their lengths, or with an `attention_mask`
(B, T), 1 at real frames, right-padded: padded frames are skipped by the LSTM and get zero
attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from torch import nn

from zoo.attention import AlignmentAttention, AttentionSpec, PoolingAttention
from zoo.errors import ZooError
from zoo.registry.family import Family, SequenceInput, SequenceMap

from ..attention.functional import Pooled, padding_mask, sequence_lengths
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
    attn: PoolingAttention | AlignmentAttention = Field(default="soft", validate_default=True)
    """A pooling attention, or an alignment attention queried with the last hidden state."""

    @field_validator("attn", mode="before")
    @classmethod
    def _as_its_kind(cls, value: Any, info: ValidationInfo) -> Any:
        """Validate `attn` as the kind of attention it names, so that an error is that kind's."""
        if isinstance(value, AttentionSpec):
            return value
        registry = _registry(info)
        kind = _kind_of(value, registry)
        spec = AlignmentAttention if kind == "alignment" else PoolingAttention
        try:
            return spec.model_validate(value, context=info.context)
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            if kind not in ("pooling", "alignment"):
                aligning = [v.name for v in registry.components("attention") if v.kind.name == "alignment"]
                message += f"; or an alignment attention: {', '.join(aligning) or 'none'}"
            raise ValueError(message) from None


def _registry(info: ValidationInfo) -> Any:
    """The registry this validation runs against: the one given, or the installed one."""
    import zoo

    return (info.context or {}).get("registry") or zoo.default_registry()


def _kind_of(value: Any, registry: Any) -> str | None:
    """The kind of the attention `value` names, if the registry knows it."""
    name = value.get("name") if isinstance(value, dict) else value
    try:
        return registry.attention(name).kind.name if isinstance(name, str) else None
    except ZooError:
        return None


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
        self.queried = isinstance(config.attn, AlignmentAttention)
        if self.queried:  # query: the last hidden state, as wide as the frames it is scored against
            self.pool = config.attn.build(self.num_features, self.num_features, **factory)
        else:
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

    def _encode(
        self, features: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """LSTM outputs (B, T, num_features) and the last hidden state (B, num_features): the
        top layer's final state of each direction, at each sequence's own end."""
        outputs, (h_n, _) = self.encoder(features, lengths)
        directions = 2 if self.config.bidirectional else 1
        return outputs, torch.cat(h_n[-directions:].unbind(0), dim=-1)

    def forward_features(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, in_features) frames, with (B,) lengths or a (B, T) attention_mask -> LSTM
        outputs (B, T, num_features)."""
        lengths = sequence_lengths(lengths=lengths, attention_mask=attention_mask)
        return self._encode(features, lengths)[0]

    def forward_pool(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> Pooled:
        """The attention's result: `output` (B, num_features), `weights` (B, T) over frames
        and, for hard attention, the `log_prob` (B,) of the picked frame."""
        lengths = sequence_lengths(lengths=lengths, attention_mask=attention_mask)
        x, last_state = self._encode(features, lengths)
        mask = self.frame_mask(features, lengths)
        if self.queried:
            return Pooled(*self.pool(last_state, x, mask))  # (context, weights)
        return Pooled(*self.pool(x, mask))  # any (output, weights, log_prob)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, num_features) pooled -> (B, num_classes) logits."""
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward_attention(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, num_classes) and the attention weights over frames (B, T)."""
        pooled = self.forward_pool(features, lengths, attention_mask)
        return self.forward_head(pooled.output), pooled.weights

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (SequenceInput("features", "frames", self.config.in_features),)

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]:
        """The pooling attention's weights over the frames: one query, (B, 1, 1, T)."""
        weights = self.forward_pool(inputs["features"], lengths.get("features")).weights
        return {"pooling": SequenceMap(weights[:, None, None, :], None, "features", ("pool",))}

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, in_features) padded frames, with their (B,) lengths or a (B, T)
        attention_mask (1 at real frames) -> (B, num_classes)."""
        return self.forward_head(self.forward_pool(features, lengths, attention_mask).output)


class SpeechLSTMFamily(Family):
    """Family `speech_lstm`: LSTM classifiers of speech features pooled by any pooling
    attention, or by any alignment attention queried with the last hidden state."""

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
