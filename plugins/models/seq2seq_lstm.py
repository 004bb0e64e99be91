"""LSTM encoder-decoder with attention (RNNsearch).

Bahdanau, Cho and Bengio, "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR 2015. https://arxiv.org/abs/1409.0473

The encoder, a (bidirectional) LSTM over the embedded source, returns its output at every
source position: the memory `h`, `(B, S, memory_dim)`. The decoder starts from the
encoder's final states (through a learned bridge). At step i it aligns its previous state
`s_{i-1}` with the memory (the pluggable alignment attention `attn`, additive by default),
giving the context `c_i` and the weights `a_i` over source positions; then
`s_i = LSTM([embed(y_{i-1}); c_i], s_{i-1})` and `p(y_i) = softmax(W_o tanh(W_r [s_i; c_i;
embed(y_{i-1})]))`. `forward` is teacher-forced; `generate` decodes greedily.

Token ids: `pad_id` pads both sides, the decoder starts from `bos_id` and a target ends
with `eos_id`. Padded sources come with their lengths, or with an `attention_mask` (B, S),
1 at real tokens, right-padded, as Hugging Face models take it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import AlignmentAttention
from zoo.registry.family import Family, SequenceInput, SequenceMap

from ..attention.functional import check_token_batch, padding_mask, sequence_lengths
from ..layers import LSTMEncoder

__all__ = ["AttentionDecoder", "Seq2SeqConfig", "Seq2SeqLSTMAttention", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
TokenId = Annotated[int, Field(ge=0)]

State = list[tuple[torch.Tensor, torch.Tensor]]  # (h, c) per decoder layer, each (B, hidden_size)


class Seq2SeqConfig(BaseModel):
    """Architecture of an attentional LSTM encoder-decoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    src_vocab_size: Positive = 32000
    tgt_vocab_size: Positive = 32000
    embed_dim: Positive = 256
    hidden_size: Positive = 512
    num_layers: Positive = 1
    bidirectional: bool = True
    dropout: Rate = 0.0
    pad_id: TokenId = 0
    bos_id: TokenId = 1
    eos_id: TokenId = 2
    attn: AlignmentAttention = Field(default="additive", validate_default=True)

    @model_validator(mode="after")
    def _ids_fit(self) -> Seq2SeqConfig:
        for field in ("pad_id", "bos_id", "eos_id"):
            if getattr(self, field) >= self.tgt_vocab_size:
                raise ValueError(
                    f"{field} {getattr(self, field)} is not below tgt_vocab_size {self.tgt_vocab_size}"
                )
        if self.pad_id >= self.src_vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is not below src_vocab_size {self.src_vocab_size}")
        if self.pad_id in (self.bos_id, self.eos_id):
            raise ValueError("pad_id must differ from bos_id and eos_id")
        return self


class AttentionDecoder(nn.Module):
    """One decoding step at a time: attend with the previous state, then update it."""

    def __init__(self, config: Seq2SeqConfig, memory_dim: int, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden, embed = config.hidden_size, config.embed_dim
        self.embed = nn.Embedding(config.tgt_vocab_size, embed, padding_idx=config.pad_id, **factory)
        self.attn = config.attn.build(hidden, memory_dim, **factory)
        self.cells = nn.ModuleList(
            nn.LSTMCell(embed + memory_dim if i == 0 else hidden, hidden, **factory)
            for i in range(config.num_layers)
        )
        self.drop = nn.Dropout(config.dropout)
        self.readout = nn.Linear(hidden + memory_dim + embed, hidden, **factory)
        self.generator = nn.Linear(hidden, config.tgt_vocab_size, **factory)

    def step(
        self, previous: torch.Tensor, state: State, memory: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Previous tokens (B,), state, memory (B, S, M), source mask (B, S) ->
        logits (B, V), new state, attention weights (B, S)."""
        embedded = self.drop(self.embed(previous))  # (B, E)
        context, weights = self.attn(state[-1][0], memory, mask)  # (B, M), (B, S)
        x, new_state = torch.cat([embedded, context], dim=-1), []
        for index, cell in enumerate(self.cells):
            h, c = cell(x, state[index])
            new_state.append((h, c))
            x = self.drop(h)
        readout = torch.tanh(self.readout(torch.cat([h, context, embedded], dim=-1)))
        return self.generator(self.drop(readout)), new_state, weights


class Seq2SeqLSTMAttention(nn.Module):
    def __init__(self, config: Seq2SeqConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        self.src_embed = nn.Embedding(
            config.src_vocab_size, config.embed_dim, padding_idx=config.pad_id, **factory
        )
        self.encoder = LSTMEncoder(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            **factory,
        )
        memory_dim = self.encoder.output_size
        self.init_h = nn.Linear(
            memory_dim, config.hidden_size, **factory
        )  # final encoder states -> decoder's
        self.init_c = nn.Linear(memory_dim, config.hidden_size, **factory)
        self.decoder = AttentionDecoder(config, memory_dim, **factory)

    def encode(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """(B, S) source ids, with (B,) lengths or a (B, S) attention_mask -> memory (B, S,
        memory_dim), source mask (B, S), decoder's first state."""
        check_token_batch(src, "src")
        src_lengths = sequence_lengths(lengths=src_lengths, attention_mask=attention_mask)
        memory, (h_n, c_n) = self.encoder(self.src_embed(src), src_lengths)
        mask = None
        if src_lengths is not None:
            mask = padding_mask(torch.as_tensor(src_lengths, device=src.device), src.shape[1])
        layers, directions = self.config.num_layers, 2 if self.config.bidirectional else 1

        def per_layer(final: torch.Tensor) -> torch.Tensor:  # (L * dirs, B, H) -> (L, B, dirs * H)
            final = final.view(layers, directions, *final.shape[1:])
            return torch.cat(final.unbind(1), dim=-1)

        h0, c0 = torch.tanh(self.init_h(per_layer(h_n))), self.init_c(per_layer(c_n))
        return memory, mask, list(zip(h0.unbind(0), c0.unbind(0), strict=True))

    def forward_attention(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits (B, T, V) and the attention weights (B, T, S)."""
        memory, mask, state = self.encode(src, src_lengths, attention_mask)
        previous = torch.cat([tgt.new_full((tgt.shape[0], 1), self.config.bos_id), tgt[:, :-1]], dim=1)
        logits, weights = [], []
        for t in range(tgt.shape[1]):
            step_logits, state, step_weights = self.decoder.step(previous[:, t], state, memory, mask)
            logits.append(step_logits)
            weights.append(step_weights)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (
            SequenceInput("source", "tokens", self.config.src_vocab_size),
            SequenceInput("target", "tokens", self.config.tgt_vocab_size),
        )

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]:
        """The alignment: the decoder's weights over the source at each target step, teacher-forced."""
        _, weights = self.forward_attention(inputs["source"], inputs["target"], lengths.get("source"))
        return {"alignment": SequenceMap(weights.unsqueeze(1), "target", "source")}  # (B, 1, T, S)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: (B, S) source and (B, T) target ids -> logits (B, T, tgt_vocab_size).

        The decoder reads `bos_id` then `tgt[:, :-1]`, so `logits[:, t]` predicts `tgt[:, t]`:
        `cross_entropy(logits.transpose(1, 2), tgt, ignore_index=pad_id)` is the loss.
        """
        return self.forward_attention(src, tgt, src_lengths, attention_mask)[0]

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        *,
        attention_mask: torch.Tensor | None = None,
        max_len: int = 128,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: (B, S) source -> (B, T) tokens, each row ending with `eos_id` then
        `pad_id`s (T <= max_len; rows that hit max_len have no eos). With `return_attention`,
        also the weights (B, T, S)."""
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, not {max_len}")
        memory, mask, state = self.encode(src, src_lengths, attention_mask)
        previous = src.new_full((src.shape[0],), self.config.bos_id)
        finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, state, step_weights = self.decoder.step(previous, state, memory, mask)
            previous = logits.argmax(dim=-1).masked_fill(finished, self.config.pad_id)
            tokens.append(previous)
            weights.append(step_weights.masked_fill(finished.unsqueeze(1), 0.0))
            finished = finished | (previous == self.config.eos_id)
            if bool(finished.all()):
                break
        tokens_, weights_ = torch.stack(tokens, dim=1), torch.stack(weights, dim=1)
        return (tokens_, weights_) if return_attention else tokens_


class Seq2SeqLSTMFamily(Family):
    """Family `seq2seq_lstm`: attentional LSTM encoder-decoders, with any alignment attention."""

    config = Seq2SeqConfig
    tasks = ("sequence-to-sequence",)
    test_args: ClassVar[dict[str, Any]] = {
        "src_vocab_size": 20,
        "tgt_vocab_size": 24,
        "embed_dim": 16,
        "hidden_size": 16,
    }

    def build(self, config: Seq2SeqConfig, *, device=None, dtype=None) -> Seq2SeqLSTMAttention:
        return Seq2SeqLSTMAttention(config, device=device, dtype=dtype)

    def example_input(
        self, config: Seq2SeqConfig, *, batch: int = 2, seq_len: int | None = None, device=None, dtype=None
    ) -> tuple[torch.Tensor, ...]:
        length = seq_len or 12
        src = torch.randint(0, config.src_vocab_size, (batch, length), device=device)
        tgt = torch.randint(0, config.tgt_vocab_size, (batch, length), device=device)
        return src, tgt


family = Seq2SeqLSTMFamily()
build = family.build
