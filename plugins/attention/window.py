"""Window multi-head self-attention with a relative position bias (Swin's W-MSA and SW-MSA).

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
ICCV 2021. https://arxiv.org/abs/2103.14030

Within each window of Wh x Ww tokens, per head:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + B + M) V

B[h, i, j] = table[index(i, j), h] is a learned bias for the offset between tokens i and j,
one row per offset (dy, dx) in [-(Wh-1), Wh-1] x [-(Ww-1), Ww-1]: a (2Wh-1)(2Ww-1) x heads
table. M is the optional mask of shifted windows, the same for every image. The fused path
hands B + M to `torch.nn.functional.scaled_dot_product_attention` as its float `attn_mask`;
the eager path (`need_weights=True` or `fused=False`) computes the same step by step and
returns the weights. Names (`qkv`, `proj`, `relative_position_bias_table`) match timm.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import trunc_normal_
from .functional import scaled_dot_product_attention

__all__ = ["WindowSelfAttention", "relative_position_index"]


def relative_position_index(height: int, width: int, *, device=None) -> torch.Tensor:
    """(N, N) with N = height * width: the table row of the offset from token i to token j,
    tokens in row-major order."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    ).flatten(1)  # (2, N)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2), dy and dx
    dy, dx = offsets[..., 0] + height - 1, offsets[..., 1] + width - 1
    return dy * (2 * width - 1) + dx


class WindowSelfAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        window_size: tuple[int, int],
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
        height, width = self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fused = fused
        offsets = (2 * height - 1) * (2 * width - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(offsets, num_heads, **factory))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias, **factory)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **factory)
        self.proj_drop = nn.Dropout(proj_drop)
        if not self.relative_position_bias_table.is_meta:
            trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, N, N): the bias B of every head, read from the table."""
        table = self.relative_position_bias_table
        # Computed on the fly rather than kept as a buffer: a model built on `meta` gets only
        # the checkpoint's tensors, and the index is cheap next to the attention itself.
        index = relative_position_index(*self.window_size, device=table.device)
        return table[index].permute(2, 0, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        windows, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B*nW, nh, N, hd)

        bias = self.relative_position_bias().unsqueeze(0).to(q.dtype)  # (1, nh, N, N)
        if mask is not None:
            per_image = mask.shape[0]
            bias = (bias.unsqueeze(0) + mask[None, :, None].to(q.dtype)).expand(
                windows // per_image, -1, -1, -1, -1
            )  # (B, nW, nh, N, N)
            bias = bias.reshape(windows, self.num_heads, tokens, tokens)

        dropout = self.attn_drop.p if self.training else 0.0
        eager = need_weights or not self.fused
        result = scaled_dot_product_attention(q, k, v, dropout_p=dropout, need_weights=eager, bias=bias)
        x, weights = result if eager else (result, None)  # (B*nW, nh, N, hd), (B*nW, nh, N, N)

        x = x.transpose(1, 2).reshape(windows, tokens, dim)
        x = self.proj_drop(self.proj(x))
        return (x, weights) if need_weights else x
