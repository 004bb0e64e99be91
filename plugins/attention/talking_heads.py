"""Talking-heads attention: multi-head self-attention with the heads mixed around the softmax.

Shazeer et al., "Talking-Heads Attention", 2020. https://arxiv.org/abs/2003.02436
Used in CaiT: Touvron et al., "Going deeper with Image Transformers", ICCV 2021.
https://arxiv.org/abs/2103.17239

    logits  = Q K^T / sqrt(d_head)                  (B, heads, N, N)
    weights = P_w softmax(P_l logits)               P_l, P_w: (heads x heads) over the head axis
    out     = concat_heads(weights V) W_o

The mixing across heads rules out a fused kernel, so attention is computed step by step;
each step is marked with `zoo.attention.flop_term`, so that `zoo flops` shows the mixing as a
term of its own beside QK^T, softmax and AV.
Names `qkv`, `proj_l`, `proj_w`, `proj` match timm.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.attention import ATTENTION_AV, ATTENTION_QK, ATTENTION_SOFTMAX, flop_term

__all__ = ["TalkingHeadsAttention"]

HEAD_MIXING = "attention head mixing"
"""The `zoo flops` row of the two (heads x heads) maps: N^2 * heads^2 multiply-adds each."""


def _mix_heads(linear: nn.Linear, attention: torch.Tensor) -> torch.Tensor:
    """Apply a (heads -> heads) linear map across the head axis of (B, heads, N, N)."""
    return linear(attention.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class TalkingHeadsAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias, **factory)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, **factory)
        self.proj_l = nn.Linear(num_heads, num_heads, **factory)
        self.proj_w = nn.Linear(num_heads, num_heads, **factory)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, N, hd)

        with flop_term(ATTENTION_QK):
            logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, nh, N, N)
        with flop_term(HEAD_MIXING):
            logits = _mix_heads(self.proj_l, logits)
        with flop_term(ATTENTION_SOFTMAX):
            weights = logits.softmax(dim=-1)
        with flop_term(HEAD_MIXING):
            weights = _mix_heads(self.proj_w, weights)
        with flop_term(ATTENTION_AV):
            x = self.attn_drop(weights) @ v  # (B, nh, N, hd)

        x = x.transpose(1, 2).reshape(batch, tokens, dim)
        x = self.proj_drop(self.proj(x))
        return (x, weights) if need_weights else x
