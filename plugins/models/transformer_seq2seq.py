"""Transformer encoder-decoder for sequence-to-sequence tasks.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
Xiong et al., "On Layer Normalization in the Transformer Architecture" (pre-norm), ICML 2020.
https://arxiv.org/abs/2002.04745
Press and Wolf, "Using the Output Embedding to Improve Language Models" (tied embeddings),
EACL 2017. https://arxiv.org/abs/1608.05859

An encoder of self-attention and feed-forward layers reads the embedded source; a decoder of
masked self-attention, cross-attention over the encoder's output (the memory) and
feed-forward layers reads the target shifted right and predicts each next token:

    memory = Encoder(sqrt(d) E_src[x] + P)
    h = Decoder(sqrt(d) E_tgt[bos, y_1 .. y_{T-1}] + P, memory)
    p(y_t | y_<t, x) = softmax(h_t W_out)

Positions `P` are sinusoidal or learned (`pos_embed`). Each sublayer is post-norm,
`norm(x + f(x))` as in the paper, or pre-norm, `x + f(norm(x))` with a final norm
(`norm_first`). `tie_embeddings` makes the output projection read the target embedding
(`W_out = E_tgt^T`), and `share_embeddings` gives source and target one table (equal
vocabularies): tied tensors are one parameter, saved once.

Masks are boolean, True = may attend: the encoder's self-attention and the decoder's
cross-attention skip padded source positions, `(B, 1, 1, S)`; the decoder's self-attention
is causal, `(T, T)`, and skips padded target positions where a target mask is given.

Self- and cross-attention are pluggable sequence attentions (`attn`, and `cross_attn`, by
default the same variant). `generate` decodes greedily or with a beam, one token per step
with a cache per decoder layer: self-attention keys and values are appended step by step,
the memory's cross-attention keys and values are computed once. A variant with a key-value
cache (`zoo.attention.IncrementalAttention`, as `mha`) caches its projected keys and values;
for any other the cache holds the sublayer's inputs, projected again at every step.

Token ids: `pad_id` pads both sides, the decoder starts from `bos_id` and a target ends with
`eos_id`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import IncrementalAttention, SequenceAttention
from zoo.registry.family import Family, SequenceInput, SequenceMap

from ..attention.functional import causal_mask, check_token_batch, padding_mask
from ..layers import Mlp, sinusoidal_positions

__all__ = [
    "Generated",
    "LayerCache",
    "Search",
    "TransformerSeq2Seq",
    "TransformerSeq2SeqConfig",
    "build",
]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]
TokenId = Annotated[int, Field(ge=0)]


class TransformerSeq2SeqConfig(BaseModel):
    """Architecture of a Transformer encoder-decoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    src_vocab_size: Positive = 32000
    tgt_vocab_size: Positive = 32000
    max_len: Positive = Field(default=512, description="longest source or target, in tokens")
    embed_dim: Positive = 512
    encoder_depth: Positive = 6
    decoder_depth: Positive = 6
    num_heads: Positive = 8
    mlp_ratio: float = Field(default=4.0, gt=0)
    act_layer: Literal["relu", "gelu"] = "relu"
    bias: bool = True
    pos_embed: Literal["sinusoidal", "learned"] = "sinusoidal"
    norm_first: bool = Field(default=False, description="pre-norm sublayers (False: post-norm, the paper's)")
    tie_embeddings: bool = Field(default=True, description="the output projection is the target embedding")
    share_embeddings: bool = Field(default=False, description="one embedding for source and target")
    drop_rate: Rate = 0.0
    attn_drop_rate: Rate = 0.0
    pad_id: TokenId = 0
    bos_id: TokenId = 1
    eos_id: TokenId = 2
    attn: SequenceAttention = Field(default="mha", validate_default=True)
    cross_attn: SequenceAttention | None = Field(default=None, description="None: the variant of attn")

    @model_validator(mode="after")
    def _fits_together(self) -> TransformerSeq2SeqConfig:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                f"share_embeddings needs one vocabulary; src_vocab_size {self.src_vocab_size} "
                f"!= tgt_vocab_size {self.tgt_vocab_size}"
            )
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


# ---------------------------------------------------------------------------------------------
# Attention through a cache


KeyValues = tuple[torch.Tensor, torch.Tensor]  # batch first, key positions along dim -2


def keys_values(attn: nn.Module, key: torch.Tensor, value: torch.Tensor) -> KeyValues:
    """What a cache keeps of keys and values: the variant's projections when it has a
    key-value cache, else the inputs themselves (both batch first, positions along dim -2)."""
    if isinstance(attn, IncrementalAttention):
        return attn.project_kv(key, value)
    return key, value


def attend(
    attn: nn.Module, query: torch.Tensor, kv: KeyValues, mask: torch.Tensor | None, need_weights: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`query` over keys and values from `keys_values` -> output, and weights (B, heads, Lq, Lk)
    or None."""
    if isinstance(attn, IncrementalAttention):
        result = attn.attend(query, *kv, mask, need_weights=need_weights)
    else:
        result = attn(query, *kv, mask, need_weights=need_weights)
    return result if need_weights else (result, None)


@dataclass
class LayerCache:
    """One decoder layer's keys and values between decoding steps."""

    self_kv: KeyValues | None = None
    """Self-attention over the steps so far: appended at every step."""
    cross_kv: KeyValues | None = None
    """Cross-attention over the memory: computed at the first step."""

    def extend(self, kv: KeyValues) -> KeyValues:
        if self.self_kv is not None:
            kv = (torch.cat([self.self_kv[0], kv[0]], dim=-2), torch.cat([self.self_kv[1], kv[1]], dim=-2))
        self.self_kv = kv
        return kv

    def keep(self, rows: torch.Tensor) -> None:
        """Keep the hypotheses `rows` (beam search). The cross-attention cache stays: the beams
        of one source are rows of the same memory."""
        if self.self_kv is not None:
            self.self_kv = (self.self_kv[0].index_select(0, rows), self.self_kv[1].index_select(0, rows))


# ---------------------------------------------------------------------------------------------
# Layers


def attention_slot(
    spec: SequenceAttention, config: TransformerSeq2SeqConfig, *, device=None, dtype=None
) -> nn.Module:
    dim = config.embed_dim
    return spec.build(
        dim,
        num_heads=config.num_heads,
        kdim=dim,
        vdim=dim,
        out_dim=dim,
        dropout=config.attn_drop_rate,
        bias=config.bias,
        device=device,
        dtype=dtype,
    )


class Sublayers(nn.Module):
    """Residual sublayers, post-norm `norm(x + f(x))` or pre-norm `x + f(norm(x))`."""

    def __init__(self, config: TransformerSeq2SeqConfig) -> None:
        super().__init__()
        self.norm_first = config.norm_first
        self.drop = nn.Dropout(config.drop_rate)

    def inputs(self, x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """What the sublayer reads."""
        return norm(x) if self.norm_first else x

    def add(self, x: torch.Tensor, branch: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        """The residual stream after the sublayer's output `branch`."""
        return x + self.drop(branch) if self.norm_first else norm(x + self.drop(branch))


class EncoderLayer(Sublayers):
    """Self-attention over the source, then a feed-forward."""

    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__(config)
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.self_attn = attention_slot(config.attn, config, **factory)
        self.norm1 = nn.LayerNorm(dim, **factory)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate, config.act_layer, **factory)
        self.norm2 = nn.LayerNorm(dim, **factory)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, S, D), key mask (B, 1, 1, S) -> (B, S, D), weights (B, heads, S, S) or None."""
        h = self.inputs(x, self.norm1)
        attended, weights = attend(self.self_attn, h, keys_values(self.self_attn, h, h), mask, need_weights)
        x = self.add(x, attended, self.norm1)
        return self.add(x, self.mlp(self.inputs(x, self.norm2)), self.norm2), weights


class DecoderLayer(Sublayers):
    """Masked self-attention over the target so far, cross-attention over the memory, then a
    feed-forward."""

    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__(config)
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.self_attn = attention_slot(config.attn, config, **factory)
        self.norm1 = nn.LayerNorm(dim, **factory)
        self.cross_attn = attention_slot(config.cross_attn or config.attn, config, **factory)
        self.norm2 = nn.LayerNorm(dim, **factory)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate, config.act_layer, **factory)
        self.norm3 = nn.LayerNorm(dim, **factory)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
        cache: LayerCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) over memory (B, S, D) -> (B, T, D), cross weights (B, heads, T, S) or None.

        With a cache, `x` holds only the new steps and attends over the cached ones too.
        """
        h = self.inputs(x, self.norm1)
        self_kv = keys_values(self.self_attn, h, h)
        if cache is not None:
            self_kv = cache.extend(self_kv)
        attended, _ = attend(self.self_attn, h, self_kv, self_mask, need_weights=False)
        x = self.add(x, attended, self.norm1)

        if cache is None or cache.cross_kv is None:
            cross_kv = keys_values(self.cross_attn, memory, memory)
            if cache is not None:
                cache.cross_kv = cross_kv
        else:
            cross_kv = cache.cross_kv
        h = self.inputs(x, self.norm2)
        attended, weights = attend(self.cross_attn, h, cross_kv, memory_mask, need_weights)
        x = self.add(x, attended, self.norm2)
        return self.add(x, self.mlp(self.inputs(x, self.norm3)), self.norm3), weights


class Positions(nn.Module):
    """Adds positions to `sqrt(d)`-scaled token embeddings: sinusoidal, or a learned table."""

    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__()
        self.max_len = config.max_len
        self.scale = math.sqrt(config.embed_dim)
        self.drop = nn.Dropout(config.drop_rate)
        self.table = None  # sinusoidal: computed for the input's length, so nothing to load
        if config.pos_embed == "learned":
            self.table = nn.Parameter(
                torch.empty(config.max_len, config.embed_dim, device=device, dtype=dtype)
            )

    def forward(self, embedded: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, L, D) embeddings of positions `offset .. offset + L - 1` -> (B, L, D)."""
        end = offset + embedded.shape[1]
        if end > self.max_len:
            raise ValueError(f"a sequence of {end} tokens is longer than this model's max_len {self.max_len}")
        if self.table is not None:
            positions = self.table[offset:end]
        else:
            positions = sinusoidal_positions(
                end, embedded.shape[2], device=embedded.device, dtype=embedded.dtype
            )
            positions = positions[offset:]
        return self.drop(embedded * self.scale + positions)


class Encoder(nn.Module):
    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.positions = Positions(config, **factory)
        self.layers = nn.ModuleList(EncoderLayer(config, **factory) for _ in range(config.encoder_depth))
        self.norm = nn.LayerNorm(config.embed_dim, **factory) if config.norm_first else nn.Identity()

    def forward(
        self, embedded: torch.Tensor, key_mask: torch.Tensor | None, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, S, D) source embeddings, (B, 1, 1, S) mask -> memory (B, S, D), and with
        `need_weights` each layer's self-attention weights (B, heads, S, S)."""
        x, weights = self.positions(embedded), []
        for layer in self.layers:
            x, layer_weights = layer(x, key_mask, need_weights)
            if need_weights:
                weights.append(layer_weights)
        return self.norm(x), weights


class Decoder(nn.Module):
    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.positions = Positions(config, **factory)
        self.layers = nn.ModuleList(DecoderLayer(config, **factory) for _ in range(config.decoder_depth))
        self.norm = nn.LayerNorm(config.embed_dim, **factory) if config.norm_first else nn.Identity()

    def forward(
        self,
        embedded: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
        caches: list[LayerCache] | None = None,
        offset: int = 0,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, T, D) target embeddings of positions `offset ..` -> (B, T, D), and with
        `need_weights` each layer's cross-attention weights (B, heads, T, S)."""
        x, weights = self.positions(embedded, offset), []
        for index, layer in enumerate(self.layers):
            cache = caches[index] if caches is not None else None
            x, layer_weights = layer(x, memory, self_mask, memory_mask, cache, need_weights)
            if need_weights:
                weights.append(layer_weights)
        return self.norm(x), weights


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Generated:
    """What `generate` returns."""

    tokens: torch.Tensor
    """(B, T) generated ids, `bos_id` left out; a row that ends has `eos_id`, then `pad_id`s."""
    scores: torch.Tensor
    """(B,) the log-probability of each row's tokens (to its `eos_id`), divided by their number
    to the power `length_penalty`: what the beams are ranked by."""
    cross_attentions: tuple[torch.Tensor, ...] | None = None
    """With `output_attentions`: each decoder layer's cross-attention weights (B, heads, T, S),
    `[:, h, t, s]` how much head h of output step t attends to source position s; zeros after
    a row's `eos_id`."""


class TransformerSeq2Seq(nn.Module):
    def __init__(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.config = config
        self.src_embed = nn.Embedding(config.src_vocab_size, dim, padding_idx=config.pad_id, **factory)
        self.tgt_embed = (
            None
            if config.share_embeddings
            else nn.Embedding(config.tgt_vocab_size, dim, padding_idx=config.pad_id, **factory)
        )
        self.encoder = Encoder(config, **factory)
        self.decoder = Decoder(config, **factory)
        self.head = (
            None if config.tie_embeddings else nn.Linear(dim, config.tgt_vocab_size, bias=False, **factory)
        )
        self.reset_parameters()

    @property
    def target_embedding(self) -> nn.Embedding:
        return self.src_embed if self.tgt_embed is None else self.tgt_embed

    def reset_parameters(self) -> None:
        """Xavier-uniform linear weights and zero biases; embeddings and learned positions
        normal with std `embed_dim ** -0.5` (unit variance once scaled by `sqrt(embed_dim)`),
        the padding row zero."""
        if self.src_embed.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        std = self.config.embed_dim**-0.5
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                with torch.no_grad():
                    module.weight[self.config.pad_id].zero_()
            elif isinstance(module, Positions) and module.table is not None:
                nn.init.normal_(module.table, std=std)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Decoder states (..., D) -> logits (..., tgt_vocab_size)."""
        weight = self.target_embedding.weight if self.head is None else self.head.weight
        return F.linear(h, weight)

    def source_mask(
        self, src: torch.Tensor, src_lengths: torch.Tensor | None = None, src_mask: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """(B, S), True at real source tokens, from lengths or a mask; None: nothing is padded."""
        if src_lengths is not None and src_mask is not None:
            raise ValueError("give src_lengths or src_mask, not both")
        if src_lengths is not None:
            return padding_mask(torch.as_tensor(src_lengths, device=src.device), src.shape[1])
        if src_mask is not None:
            if src_mask.shape != src.shape:
                raise ValueError(
                    f"src_mask {tuple(src_mask.shape)} must have the shape of src {tuple(src.shape)}"
                )
            return src_mask.to(device=src.device, dtype=torch.bool)
        return None

    def encode(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        *,
        src_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, S) source ids -> memory (B, S, D) and the source mask (B, S) (None: no padding)."""
        check_token_batch(src, "src")
        mask = self.source_mask(src, src_lengths, src_mask)
        memory, _ = self.encoder(self.src_embed(src), _keys(mask))
        return memory, mask

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        src_mask: torch.Tensor | None,
        *,
        tgt_mask: torch.Tensor | None = None,
        caches: list[LayerCache] | None = None,
        offset: int = 0,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Decoder inputs (B, T) (`bos_id` first) over memory -> logits (B, T, V), and with
        `need_weights` each layer's cross-attention weights (B, heads, T, S).

        With `caches`, `tgt_in` holds the steps from `offset` on, the earlier ones cached.
        `tgt_mask` (B, T) is True at the inputs that may be attended to.
        """
        if tgt_mask is not None and caches is not None:
            raise ValueError("tgt_mask is for teacher forcing; cached decoding has no target padding")
        self_mask = _causal(tgt_in.shape[1], offset if caches is not None else 0, tgt_in.device)
        if tgt_mask is not None:
            keys = tgt_mask[:, None, None, :]  # (B, 1, 1, T)
            self_mask = keys if self_mask is None else self_mask & keys  # (B, 1, T, T)
        h, weights = self.decoder(
            self.target_embedding(tgt_in), memory, self_mask, _keys(src_mask), caches, offset, need_weights
        )
        return self.logits(h), weights

    def forward_attention(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        *,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Teacher-forced logits (B, T, V) and each decoder layer's cross-attention weights
        (B, heads, T, S); weights on padded source positions are 0."""
        return self._teacher_forced(src, tgt, src_lengths, src_mask, tgt_mask, need_weights=True)

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (
            SequenceInput("source", "tokens", self.config.src_vocab_size, self.config.max_len),
            SequenceInput("target", "tokens", self.config.tgt_vocab_size, self.config.max_len),
        )

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]:
        """Each decoder layer's cross-attention over the source, teacher-forced, last layer first."""
        _, weights = self.forward_attention(inputs["source"], inputs["target"], lengths.get("source"))
        maps = {f"cross{i}": SequenceMap(w, "target", "source") for i, w in enumerate(weights, 1)}
        return dict(reversed(maps.items()))

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        *,
        src_mask: torch.Tensor | None = None,
        tgt_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher forcing: (B, S) source and (B, T) target ids -> logits (B, T, tgt_vocab_size).

        The decoder reads `bos_id` then `tgt[:, :-1]`, so `logits[:, t]` predicts `tgt[:, t]`:
        `cross_entropy(logits.transpose(1, 2), tgt, ignore_index=pad_id)` is the loss.

        Args:
            src_lengths: (B,) real tokens of each source row; the rest is padding.
            src_mask: (B, S), True at real source tokens: padding anywhere (not with lengths).
            tgt_mask: (B, T), True at real target tokens. Right-padded targets need none, as
                no step attends to a later one; where given, no step attends to padding.
        """
        return self._teacher_forced(src, tgt, src_lengths, src_mask, tgt_mask, need_weights=False)[0]

    def _teacher_forced(self, src, tgt, src_lengths, src_mask, tgt_mask, *, need_weights: bool):
        memory, mask = self.encode(src, src_lengths, src_mask=src_mask)
        tgt_in = torch.cat([tgt.new_full((tgt.shape[0], 1), self.config.bos_id), tgt[:, :-1]], dim=1)
        if tgt_mask is not None:  # input t reads target t - 1; bos is always there
            tgt_mask = torch.cat([tgt_mask.new_ones(tgt.shape[0], 1), tgt_mask[:, :-1]], dim=1).bool()
        logits, weights = self.decode(tgt_in, memory, mask, tgt_mask=tgt_mask, need_weights=need_weights)
        return logits, tuple(weights)

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor | None = None,
        *,
        src_mask: torch.Tensor | None = None,
        max_new_tokens: int | None = None,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        bos_id: int | None = None,
        eos_id: int | None = None,
        output_attentions: bool = False,
        use_cache: bool = True,
    ) -> Generated:
        """Decode (B, S) sources: greedily (`num_beams=1`) or with a beam of `num_beams`.

        Args:
            src_lengths, src_mask: The source's padding, as for `forward`.
            max_new_tokens: Most tokens per row (default and at most: `max_len`).
            num_beams: Hypotheses kept per source; 1 is greedy decoding.
            length_penalty: Hypotheses are ranked by log-probability / length ** length_penalty
                (0: raw log-probability; higher favours longer outputs).
            bos_id, eos_id: The ids decoding starts from and stops at (default: the config's).
            output_attentions: Also return the cross-attention weights of the tokens returned.
            use_cache: Keep keys and values between steps (False: run the decoder over the
                whole prefix at every step; same tokens, slower).

        Decoding stops when every row (every beam) has produced `eos_id`. Call `model.eval()`
        first, or dropout stays on.
        """
        config = self.config
        max_new_tokens = config.max_len if max_new_tokens is None else max_new_tokens
        if not 1 <= max_new_tokens <= config.max_len:
            raise ValueError(
                f"max_new_tokens must be from 1 to max_len {config.max_len}, not {max_new_tokens}"
            )
        if num_beams < 1:
            raise ValueError(f"num_beams must be at least 1, not {num_beams}")
        bos_id = config.bos_id if bos_id is None else bos_id
        eos_id = config.eos_id if eos_id is None else eos_id
        for what, token in (("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= token < config.tgt_vocab_size:
                raise ValueError(
                    f"{what} {token} is not a target token id (0 to {config.tgt_vocab_size - 1})"
                )
        memory, mask = self.encode(src, src_lengths, src_mask=src_mask)
        search = Search(
            self,
            memory,
            mask,
            beams=num_beams,
            bos_id=bos_id,
            eos_id=eos_id,
            length_penalty=length_penalty,
            output_attentions=output_attentions,
            use_cache=use_cache,
        )
        return search.greedy(max_new_tokens) if num_beams == 1 else search.beam(max_new_tokens)


def _causal(length: int, offset: int, device: torch.device) -> torch.Tensor | None:
    """(T, offset + T): new step i, at position offset + i, sees the positions up to its own;
    None for a single new step, which sees every cached one."""
    if length == 1:
        return None
    if offset == 0:
        return causal_mask(length, device=device)
    return torch.ones(length, offset + length, dtype=torch.bool, device=device).tril(diagonal=offset)


def _keys(mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) real positions -> (B, 1, 1, S), over heads and queries."""
    return None if mask is None else mask[:, None, None, :]


class Search:
    """Greedy and beam search from an encoded source, one decoder step at a time, over
    `B * beams` hypotheses (the beams of a source in consecutive rows). `generate` makes one;
    `greedy` and `beam` each run once."""

    def __init__(
        self,
        model: TransformerSeq2Seq,
        memory: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        beams: int,
        bos_id: int,
        eos_id: int,
        length_penalty: float,
        output_attentions: bool,
        use_cache: bool,
    ) -> None:
        self.model, self.beams = model, beams
        self.batch = memory.shape[0]
        self.memory = memory.repeat_interleave(beams, dim=0)  # (B * K, S, D): beams of a row together
        self.mask = None if mask is None else mask.repeat_interleave(beams, dim=0)
        self.eos_id, self.pad_id = eos_id, model.config.pad_id
        self.length_penalty = length_penalty
        self.output_attentions = output_attentions
        self.caches = [LayerCache() for _ in model.decoder.layers] if use_cache else None
        rows = self.batch * beams
        self.tokens = memory.new_full((rows, 1), bos_id, dtype=torch.long)  # (rows, 1 + t)
        self.attentions: list[torch.Tensor] = []  # per step: (rows, layers, heads, 1, S)

    def step(self) -> torch.Tensor:
        """Log-probabilities (rows, V) of the next token of every hypothesis."""
        offset = self.tokens.shape[1] - 1
        inputs = self.tokens[:, -1:] if self.caches is not None else self.tokens
        logits, weights = self.model.decode(
            inputs,
            self.memory,
            self.mask,
            caches=self.caches,
            offset=offset if self.caches is not None else 0,
            need_weights=self.output_attentions,
        )
        if self.output_attentions:
            self.attentions.append(torch.stack([w[:, :, -1:] for w in weights], dim=1))
        return logits[:, -1].float().log_softmax(dim=-1)

    def append(self, tokens: torch.Tensor, finished: torch.Tensor) -> None:
        """Next tokens (rows,), for hypotheses `finished` before this step (their attention is 0)."""
        self.tokens = torch.cat([self.tokens, tokens[:, None]], dim=1)
        if self.output_attentions:
            self.attentions[-1] = self.attentions[-1].masked_fill(finished[:, None, None, None, None], 0.0)

    def keep(self, rows: torch.Tensor) -> None:
        self.tokens = self.tokens.index_select(0, rows)
        self.attentions = [a.index_select(0, rows) for a in self.attentions]
        for cache in self.caches or ():
            cache.keep(rows)

    def result(self, rows: torch.Tensor, scores: torch.Tensor) -> Generated:
        attentions = None
        if self.output_attentions:
            stacked = torch.cat(self.attentions, dim=3).index_select(0, rows)  # (B, layers, heads, T, S)
            attentions = tuple(stacked.unbind(1))
        return Generated(self.tokens.index_select(0, rows)[:, 1:], scores, attentions)

    def normalized(self, log_prob: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return log_prob / length.to(log_prob.dtype) ** self.length_penalty

    @torch.no_grad()
    def greedy(self, max_new_tokens: int) -> Generated:
        finished = torch.zeros(self.batch, dtype=torch.bool, device=self.memory.device)
        log_prob = torch.zeros(self.batch, device=self.memory.device)
        length = torch.zeros(self.batch, dtype=torch.long, device=self.memory.device)
        for _ in range(max_new_tokens):
            step = self.step()
            tokens = step.argmax(dim=-1).masked_fill(finished, self.pad_id)
            log_prob = log_prob + step.gather(1, tokens[:, None])[:, 0].masked_fill(finished, 0.0)
            length = length + (~finished).long()
            self.append(tokens, finished)
            finished = finished | (tokens == self.eos_id)
            if bool(finished.all()):
                break
        every = torch.arange(self.batch, device=self.memory.device)
        return self.result(every, self.normalized(log_prob, length))

    @torch.no_grad()
    def beam(self, max_new_tokens: int) -> Generated:
        """Beam search, a finished hypothesis keeping its place (extended by `pad_id` at no
        cost) and competing with the live ones by its length-normalised score."""
        batch, beams, device = self.batch, self.beams, self.memory.device
        log_prob = torch.full((batch, beams), float("-inf"), device=device)
        log_prob[:, 0] = 0.0  # one hypothesis to start from, not `beams` copies of it
        length = torch.zeros(batch, beams, dtype=torch.long, device=device)
        finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
        first_row = (torch.arange(batch, device=device) * beams)[:, None]  # (B, 1)
        for _ in range(max_new_tokens):
            step = self.step().view(batch, beams, -1)  # (B, K, V)
            vocab = step.shape[-1]
            only_pad = torch.full_like(step[0, 0], float("-inf"))
            only_pad[self.pad_id] = 0.0
            step = torch.where(finished[..., None], only_pad, step)
            candidates = log_prob[..., None] + step  # (B, K, V)
            new_length = length + (~finished).long()
            ranked = self.normalized(candidates, new_length[..., None]).view(batch, -1)
            _, best = ranked.topk(beams, dim=-1)  # (B, K), best first
            beam, tokens = best // vocab, best % vocab
            log_prob = candidates.view(batch, -1).gather(1, best)
            length = new_length.gather(1, beam)
            was_finished = finished.gather(1, beam)
            rows = (first_row + beam).view(-1)
            self.keep(rows)
            self.append(tokens.view(-1), was_finished.view(-1))
            finished = was_finished | (tokens == self.eos_id)
            if bool(finished.all()):
                break
        return self.result(first_row[:, 0], self.normalized(log_prob[:, 0], length[:, 0]))


class TransformerSeq2SeqFamily(Family):
    """Family `transformer_seq2seq`: Transformer encoder-decoders, any sequence attention in
    their self- and cross-attention."""

    config = TransformerSeq2SeqConfig
    tasks = ("sequence-to-sequence",)
    test_args: ClassVar[dict[str, Any]] = {
        "src_vocab_size": 20,
        "tgt_vocab_size": 24,
        "share_embeddings": False,  # two vocabularies, on top of any entry
        "max_len": 32,
        "embed_dim": 16,
        "encoder_depth": 2,
        "decoder_depth": 2,
        "num_heads": 2,
    }

    def build(self, config: TransformerSeq2SeqConfig, *, device=None, dtype=None) -> TransformerSeq2Seq:
        return TransformerSeq2Seq(config, device=device, dtype=dtype)

    def example_input(
        self,
        config: TransformerSeq2SeqConfig,
        *,
        batch: int = 2,
        seq_len: int | None = None,
        device=None,
        dtype=None,
    ) -> tuple[torch.Tensor, ...]:
        length = min(seq_len or 12, config.max_len)
        src = torch.randint(0, config.src_vocab_size, (batch, length), device=device)
        tgt = torch.randint(0, config.tgt_vocab_size, (batch, length), device=device)
        return src, tgt


family = TransformerSeq2SeqFamily()
build = family.build
