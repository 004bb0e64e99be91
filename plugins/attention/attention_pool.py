"""Attention pooling of a feature map, as CLIP's ResNets pool their last map.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
ICML 2021. https://arxiv.org/abs/2103.00020

The map's positions become tokens, and their mean is put in front as a query token; learned
absolute position embeddings (`pos_embed`, for the grid of `feat_size`, resampled bicubically
for any other) are added to all of them; multi-head attention from every token over every
token, and the query token's output, projected (`proj`) to `out_features`, is the pooled
vector. Separate query, key and value projections (`q`, `k`, `v`) with biases; the names are
timm's `AttentionPool2d`, which loads the OpenAI checkpoints.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..layers import resample_pos_embed, trunc_normal_

__all__ = ["AttentionPool2d"]


class AttentionPool2d(nn.Module):
    def __init__(
        self,
        in_features: int,
        *,
        out_features: int,
        feat_size: tuple[int, int],
        num_heads: Annotated[int, Field(gt=0)] | None = None,
        qkv_bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads or max(1, in_features // 64)  # CLIP's: 64 channels per head
        if in_features % self.num_heads:
            raise ValueError(f"{in_features} channels do not split into {self.num_heads} heads")
        self.feat_size = tuple(feat_size)
        self.in_features = in_features
        self.out_features = out_features or in_features
        self.pos_embed = nn.Parameter(torch.zeros(feat_size[0] * feat_size[1] + 1, in_features, **factory))
        self.q = nn.Linear(in_features, in_features, bias=qkv_bias, **factory)
        self.k = nn.Linear(in_features, in_features, bias=qkv_bias, **factory)
        self.v = nn.Linear(in_features, in_features, bias=qkv_bias, **factory)
        self.proj = nn.Linear(in_features, out_features, **factory) if out_features else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated normal projections and positions of std `in_features ** -0.5` (timm's)."""
        if self.pos_embed.is_meta:
            return
        std = self.in_features**-0.5
        for linear in (self.q, self.k, self.v):
            trunc_normal_(linear.weight, std=std)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)
        trunc_normal_(self.pos_embed, std=std)

    def positions(self, size: tuple[int, int]) -> torch.Tensor:
        """(1 + H * W, C) position embeddings for an H x W map: the query token's, then the grid's."""
        if size == self.feat_size:
            return self.pos_embed
        return resample_pos_embed(self.pos_embed[None], 1, self.feat_size, size)[0]

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, C, H, W) -> (B, out_features); with `pre_logits`, (B, C) before the projection."""
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positions((height, width)).to(tokens.dtype)

        def heads(linear: nn.Linear) -> torch.Tensor:  # (B, heads, 1 + HW, C / heads)
            split = linear(tokens).reshape(batch, -1, self.num_heads, channels // self.num_heads)
            return split.transpose(1, 2)

        attended = F.scaled_dot_product_attention(heads(self.q), heads(self.k), heads(self.v))
        pooled = attended[:, :, 0].reshape(batch, channels)  # the query token's output
        return pooled if pre_logits else self.proj(pooled)
