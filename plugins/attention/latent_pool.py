"""Multihead attention pooling (MAP): a learned query attends over the tokens, as a head.

Lee et al., "Set Transformer", ICML 2019 (pooling by multihead attention),
https://arxiv.org/abs/1810.00825; as SigLIP's image tower pools (Zhai et al., "Sigmoid Loss
for Language Image Pre-Training", ICCV 2023, https://arxiv.org/abs/2303.15343).

A learned latent token is projected to a query (`q`), the tokens to keys and values (`kv`),
and one multi-head attention gathers them into a single vector; a projection (`proj`) and a
pre-norm residual MLP (`norm`, `mlp`) follow, as in a transformer block without the first
residual. Names match timm's `AttentionPoolLatent`, so its checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..layers import Activation, Mlp, trunc_normal_
from .functional import scaled_dot_product_attention

__all__ = ["MultiheadAttentionPooling"]


class MultiheadAttentionPooling(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        mlp_ratio: float,
        act_layer: Activation,
        norm_layer: Callable[..., nn.Module],
        qkv_bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim, **factory))
        self.q = nn.Linear(dim, dim, bias=qkv_bias, **factory)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias, **factory)
        self.proj = nn.Linear(dim, dim, **factory)
        self.norm = norm_layer(dim, **factory)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), 0.0, act_layer, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The latent query as timm draws it: truncated normal, std dim ** -0.5."""
        dim = self.latent.shape[-1]
        trunc_normal_(self.latent, std=dim**-0.5, a=-2.0 * dim**-0.5, b=2.0 * dim**-0.5)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, N, dim) -> (B, dim); with `need_weights`, also the weights (B, heads, N)."""
        batch, tokens, dim = x.shape
        q = self.q(self.latent).expand(batch, -1, -1).reshape(batch, 1, self.num_heads, self.head_dim)
        kv = self.kv(x).reshape(batch, tokens, 2, self.num_heads, self.head_dim)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        result = scaled_dot_product_attention(q.transpose(1, 2), k, v, need_weights=need_weights)
        pooled, weights = result if need_weights else (result, None)
        pooled = self.proj(pooled.transpose(1, 2).reshape(batch, dim))
        pooled = pooled + self.mlp(self.norm(pooled))
        return (pooled, weights[:, :, 0]) if need_weights else pooled
