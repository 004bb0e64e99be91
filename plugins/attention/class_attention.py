"""Class attention: only the class token queries; keys and values come from every token.

Touvron et al., "Going deeper with Image Transformers", ICCV 2021.
https://arxiv.org/abs/2103.17239

    z = [x_class, x_patches]
    out = softmax(q(x_class) k(z)^T / sqrt(d_head)) v(z) W_o,   per head, heads concatenated.

The patch tokens are not updated, so a class-attention block costs O(N) rather than O(N^2).
Attention is the zoo's `functional.scaled_dot_product_attention` (fused unless the weights
are asked for, or `fused=False`). Names `q`, `k`, `v`, `proj` match timm.
"""

from __future__ import annotations

import torch
from torch import nn

from .functional import scaled_dot_product_attention

__all__ = ["MultiHeadClassAttention"]


class MultiHeadClassAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fused = fused
        self.q = nn.Linear(dim, dim, bias=qkv_bias, **factory)
        self.k = nn.Linear(dim, dim, bias=qkv_bias, **factory)
        self.v = nn.Linear(dim, dim, bias=qkv_bias, **factory)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **factory)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, dim) -> (B, nh, L, hd)."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch, _, dim = x.shape
        q = self._heads(self.q(x[:, :1]))  # (B, nh, 1, hd)
        k, v = self._heads(self.k(x)), self._heads(self.v(x))  # (B, nh, N, hd)

        dropout = self.attn_drop.p if self.training else 0.0
        eager = need_weights or not self.fused
        result = scaled_dot_product_attention(q, k, v, dropout_p=dropout, need_weights=eager)
        x, weights = result if eager else (result, None)  # (B, nh, 1, hd), (B, nh, 1, N)

        x = x.transpose(1, 2).reshape(batch, 1, dim)
        x = self.proj_drop(self.proj(x))
        return (x, weights) if need_weights else x
