"""Transformer encoder for text classification.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
Xiong et al., "On Layer Normalization in the Transformer Architecture" (pre-norm), ICML 2020.
https://arxiv.org/abs/2002.04745

Token embeddings plus sinusoidal or learned positions, encoder blocks, and a classification
head read from a prepended class token, from the mean of the real tokens or from the last
real token. Blocks are pre-norm by default (x + attn(norm(x)), then x + mlp(norm(x)), and a
final norm); `norm_first=False` gives the original Transformer's post-norm order
(norm(x + attn(x)), then norm(x + mlp(x)), no final norm). Batches are padded: `lengths`
gives each sequence's number of real tokens, or `attention_mask` (B, L) marks them with 1 as
Hugging Face models take it (left padding too), and no attention reaches a padded position.
The attention inside each block is a pluggable sequence attention (`attn`), by default the
zoo's multi-head attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import SequenceAttention
from zoo.registry.family import Family, SequenceInput, SequenceMap

from ..attention.functional import check_token_batch, sequence_mask
from ..layers import DropPath, Mlp, drop_path_rates, sinusoidal_positions, trunc_normal_

__all__ = ["TextTransformer", "TextTransformerConfig", "build"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]


class TextTransformerConfig(BaseModel):
    """Architecture of a text transformer classifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vocab_size: Positive = 30522
    max_len: Positive = Field(default=512, description="longest input, in tokens (class token aside)")
    padding_idx: int | None = Field(default=0, ge=0, description="token id of padding (embedding kept at 0)")
    embed_dim: Positive = 768
    depth: Positive = 12
    num_heads: Positive = 12
    mlp_ratio: float = Field(default=4.0, gt=0)
    bias: bool = True
    pos_embed: Literal["sinusoidal", "learned"] = "sinusoidal"
    pool: Literal["cls", "mean", "last"] = Field(
        default="cls", description="what the head reads: a class token, the mean or the last real token"
    )
    norm_first: bool = Field(
        default=True, description="pre-norm blocks; False: post-norm, as in Vaswani et al."
    )
    num_classes: int = Field(default=2, ge=0)
    drop_rate: Rate = 0.0
    attn_drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    attn: SequenceAttention = Field(default="mha", validate_default=True)

    @model_validator(mode="after")
    def _fits_together(self) -> TextTransformerConfig:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.padding_idx is not None and self.padding_idx >= self.vocab_size:
            raise ValueError(f"padding_idx {self.padding_idx} is not below vocab_size {self.vocab_size}")
        return self


class Block(nn.Module):
    """Encoder block with a masked self-attention, pre-norm or post-norm (`norm_first`)."""

    def __init__(self, config: TextTransformerConfig, drop_path: float, *, device=None, dtype=None):
        super().__init__()
        dim = config.embed_dim
        self.norm_first = config.norm_first
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, device=device, dtype=dtype)
        self.attn = config.attn.build(
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
        self.attn_drop = nn.Dropout(config.drop_rate)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, device=device, dtype=dtype)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate, device=device, dtype=dtype)

    def forward_with_attention(
        self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's output and (with `need_weights`) its weights (B, heads, N, N)."""
        h = self.norm1(x) if self.norm_first else x
        attended = self.attn(h, h, h, mask, need_weights=need_weights)
        attended, weights = attended if need_weights else (attended, None)
        if self.norm_first:
            x = x + self.drop_path(self.attn_drop(attended))
            return x + self.drop_path(self.mlp(self.norm2(x))), weights
        x = self.norm1(x + self.drop_path(self.attn_drop(attended)))
        return self.norm2(x + self.drop_path(self.mlp(x))), weights

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_attention(x, mask, need_weights=False)[0]


class TextTransformer(nn.Module):
    def __init__(self, config: TextTransformerConfig, *, device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        dim = config.embed_dim
        self.config = config
        self.num_prefix_tokens = 1 if config.pool == "cls" else 0
        self.num_features = dim

        self.token_embed = nn.Embedding(config.vocab_size, dim, padding_idx=config.padding_idx, **factory)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, **factory)) if config.pool == "cls" else None
        if config.pos_embed == "learned":
            self.pos_embed = nn.Parameter(
                torch.zeros(1, config.max_len + self.num_prefix_tokens, dim, **factory)
            )
        else:
            self.pos_embed = None  # computed for the input's length, so not a tensor to load
        self.pos_drop = nn.Dropout(config.drop_rate)

        rates = drop_path_rates(config.drop_path_rate, config.depth)
        self.blocks = nn.ModuleList(Block(config, rate, **factory) for rate in rates)
        # Post-norm blocks end in a norm already.
        self.norm = nn.LayerNorm(dim, eps=1e-6, **factory) if config.norm_first else nn.Identity()
        self.head_drop = nn.Dropout(config.drop_rate)
        self.head = nn.Linear(dim, config.num_classes, **factory) if config.num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal (std 0.02) weights and embeddings, zero biases, zero padding row."""
        if self.token_embed.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                trunc_normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.config.padding_idx is not None:
            with torch.no_grad():
                self.token_embed.weight[self.config.padding_idx].zero_()
        for parameter in (self.cls_token, self.pos_embed):
            if parameter is not None:
                trunc_normal_(parameter, std=0.02)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, prefix + L, D) with positions added."""
        if tokens.shape[1] > self.config.max_len:
            raise ValueError(
                f"input has {tokens.shape[1]} tokens; this model takes at most {self.config.max_len}"
            )
        x = self.token_embed(tokens)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed[:, : x.shape[1]]
        else:
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], device=x.device, dtype=x.dtype)
        return self.pos_drop(x)

    def token_mask(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """(B, prefix + L), True at the class token and the real tokens; None when nothing
        says which tokens are padding."""
        mask = sequence_mask(
            tokens.shape[1], lengths=lengths, attention_mask=attention_mask, device=tokens.device
        )
        if mask is not None and self.num_prefix_tokens:
            mask = torch.cat([mask.new_ones(mask.shape[0], self.num_prefix_tokens), mask], dim=1)
        return mask

    def _run_blocks(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        check_token_batch(tokens, "tokens")
        mask = self.token_mask(tokens, lengths, attention_mask)
        x = self._embed(tokens)
        key_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, N): over heads and queries
        weights = []
        for block in self.blocks:
            x, block_weights = block.forward_with_attention(x, key_mask, need_weights=need_weights)
            if need_weights:
                weights.append(block_weights)
        return self.norm(x), weights

    def blocks_in_order(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward_features(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L) token ids, with (B,) lengths or a (B, L) attention_mask -> normed tokens
        (B, prefix + L, D)."""
        return self._run_blocks(tokens, lengths, attention_mask, need_weights=False)[0]

    def forward_attention(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normed tokens and every block's attention weights, each (B, heads, N, N), with
        N = prefix + L; weights on padded keys are 0."""
        return self._run_blocks(tokens, lengths, attention_mask, need_weights=True)

    def sequence_inputs(self) -> tuple[SequenceInput, ...]:
        return (SequenceInput("tokens", "tokens", self.config.vocab_size, self.config.max_len),)

    def sequence_maps(
        self, inputs: Mapping[str, torch.Tensor], lengths: Mapping[str, torch.Tensor]
    ) -> dict[str, SequenceMap]:
        """Each block's self-attention over the tokens (after the class token), last block first."""
        _, weights = self.forward_attention(inputs["tokens"], lengths.get("tokens"))
        prefix = ("[CLS]",) * self.num_prefix_tokens
        maps = {
            f"layer{i}": SequenceMap(w, "tokens", "tokens", prefix, prefix) for i, w in enumerate(weights, 1)
        }
        return dict(reversed(maps.items()))

    def forward_head(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        pre_logits: bool = False,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits from the normed tokens: the class token, the mean of the real ones
        or the last real one (`pool`). A sequence with no real token pools to zeros."""
        real = None
        if self.config.pool != "cls":
            real = sequence_mask(x.shape[1], lengths=lengths, attention_mask=attention_mask, device=x.device)
        x = self.pool(x, real)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def pool(self, x: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        """(B, N, D) tokens and their (B, N) real-token mask (None: all real) -> (B, D)."""
        if self.config.pool == "cls":
            return x[:, 0]
        if real is None:
            return x.mean(dim=1) if self.config.pool == "mean" else x[:, -1]
        if self.config.pool == "mean":
            weights = real.to(x.dtype)
            return (weights.unsqueeze(-1) * x).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        positions = torch.arange(1, x.shape[1] + 1, device=x.device)
        last = (real * positions).argmax(dim=1)  # the highest real position; 0 when there is none
        picked = x[torch.arange(x.shape[0], device=x.device), last]
        return picked * real.any(dim=1, keepdim=True).to(x.dtype)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L) token ids, padded, with their (B,) lengths or a (B, L) attention_mask (1 at
        real tokens), or neither when nothing is padded -> (B, num_classes)."""
        features = self.forward_features(tokens, lengths, attention_mask)
        return self.forward_head(features, lengths, attention_mask=attention_mask)


class TextTransformerFamily(Family):
    """Family `text_transformer`: transformer encoders of token sequences, any sequence attention."""

    config = TextTransformerConfig
    tasks = ("sequence-classification",)
    test_args: ClassVar[dict[str, Any]] = {
        "vocab_size": 50,
        "max_len": 32,
        "embed_dim": 32,
        "depth": 2,
        "num_heads": 2,
        "num_classes": 3,
    }

    def build(self, config: TextTransformerConfig, *, device=None, dtype=None) -> TextTransformer:
        return TextTransformer(config, device=device, dtype=dtype)

    def example_input(
        self,
        config: TextTransformerConfig,
        *,
        batch: int = 2,
        seq_len: int | None = None,
        device=None,
        dtype=None,
    ) -> tuple[torch.Tensor, ...]:
        length = min(seq_len or 16, config.max_len)
        return (torch.randint(0, config.vocab_size, (batch, length), device=device),)


family = TextTransformerFamily()
build = family.build
