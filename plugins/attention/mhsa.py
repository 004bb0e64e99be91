"""Multi-head self-attention with a fused qkv projection, as in ViT blocks.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head)) V,   per head, heads concatenated.

The scale 1 / sqrt(d_head) may be overridden (`qk_scale`), as the original timm and DeiT
code allowed; the fused path passes it on as `scale=`. The output projection may go without
its bias (`proj_bias`, as AIMv2's), and the heads' output may be normed before it
(`scale_norm_eps`: a LayerNorm of that eps, NormFormer's extra norm, as BEiT-3 has it).

Attention itself is the zoo's `functional.scaled_dot_product_attention`: the fused
`torch.nn.functional.scaled_dot_product_attention` (flash or memory-efficient kernels where
available), or the eager path that computes the same thing step by step when the attention
weights are asked for (or `fused=False`). Names `qkv`/`proj` match timm.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from .functional import scaled_dot_product_attention

__all__ = ["MultiHeadSelfAttention"]


class MultiHeadSelfAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused: bool = True,
        qk_scale: Annotated[float, Field(gt=0)] | None = None,
        proj_bias: bool = True,
        scale_norm_eps: Annotated[float, Field(gt=0)] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5 if qk_scale is None else qk_scale
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias, **factory)
        self.attn_drop = nn.Dropout(attn_drop)
        if scale_norm_eps is not None:
            self.norm = nn.LayerNorm(dim, eps=scale_norm_eps, **factory)
        else:
            self.norm = nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=proj_bias, **factory)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, N, hd)

        dropout = self.attn_drop.p if self.training else 0.0
        eager = need_weights or not self.fused
        result = scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, need_weights=eager, scale=self.scale
        )
        x, weights = result if eager else (result, None)  # (B, nh, N, hd), (B, nh, N, N)

        x = self.norm(x.transpose(1, 2).reshape(batch, tokens, dim))
        x = self.proj_drop(self.proj(x))
        return (x, weights) if need_weights else x
