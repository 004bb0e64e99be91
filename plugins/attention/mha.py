"""Multi-head attention for sequences: masked self- and cross-attention, and a single head.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762

    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V),   MultiHead(Q, K, V) = [head_1; ...; head_h] W^O

Query, key and value may come with different widths (`embed_dim`, `kdim`, `vdim`: cross-
attention from a decoder over an encoder), and the output has its own width (`out_dim`).
Each head has `dk` query/key and `dv` value features, `embed_dim // num_heads` by default.
Masks follow `functional`: boolean True = may attend, or additive float, broadcast against
the `(B, heads, Lq, Lk)` scores. With `kdim = vdim = out_dim = embed_dim` and default head
sizes this is `torch.nn.MultiheadAttention` (batch first): `from_torch` copies one over.
`project_kv` and `attend` split `forward` for a decoder's key-value cache.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from .functional import scaled_dot_product_attention

__all__ = ["MultiHeadAttention", "SelfAttention"]

HeadSize = Annotated[int, Field(gt=0)]


class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        *,
        num_heads: int,
        kdim: int | None = None,
        vdim: int | None = None,
        out_dim: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        dk: HeadSize | None = None,
        dv: HeadSize | None = None,
        fused: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if (dk is None or dv is None) and embed_dim % num_heads:
            raise ValueError(
                f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}; give dk and dv"
            )
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.out_dim = embed_dim if out_dim is None else out_dim
        self.dk = embed_dim // num_heads if dk is None else dk
        self.dv = embed_dim // num_heads if dv is None else dv
        self.dropout = dropout
        self.fused = fused
        self.q_proj = nn.Linear(embed_dim, num_heads * self.dk, bias=bias, **factory)
        self.k_proj = nn.Linear(self.kdim, num_heads * self.dk, bias=bias, **factory)
        self.v_proj = nn.Linear(self.vdim, num_heads * self.dv, bias=bias, **factory)
        self.out_proj = nn.Linear(num_heads * self.dv, self.out_dim, bias=bias, **factory)

    def _heads(self, x: torch.Tensor, size: int) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, size).transpose(1, 2)  # (B, nh, L, size)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, Lq, embed_dim), (B, Lk, kdim), (B, Lk, vdim) -> (B, Lq, out_dim).

        Args:
            mask: Broadcastable to `(B, heads, Lq, Lk)`: `(Lq, Lk)`, `(B, 1, 1, Lk)`, ...
            need_weights: Also return the weights `(B, heads, Lq, Lk)` (eager path).
        """
        return self.attend(query, *self.project_kv(key, value), mask, need_weights)

    def project_kv(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Lk, kdim), (B, Lk, vdim) -> the heads' keys (B, nh, Lk, dk) and values (B, nh, Lk, dv):
        what a decoder caches, appending each step's along dim -2."""
        return self._heads(self.k_proj(key), self.dk), self._heads(self.v_proj(value), self.dv)

    def attend(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """`forward` over keys and values already projected by `project_kv`."""
        if mask is not None and mask.ndim == 3:
            raise ValueError(
                f"a 3-D mask {tuple(mask.shape)} is ambiguous; give (B, 1, Lq, Lk) for a per-sample "
                "mask or (Lq, Lk) for one shared by the batch"
            )
        q = self._heads(self.q_proj(query), self.dk)  # (B, nh, Lq, dk)
        dropout = self.dropout if self.training else 0.0
        eager = need_weights or not self.fused
        result = scaled_dot_product_attention(q, keys, values, mask, dropout_p=dropout, need_weights=eager)
        attended, weights = result if eager else (result, None)
        batch, length = query.shape[:2]
        output = self.out_proj(attended.transpose(1, 2).reshape(batch, length, self.num_heads * self.dv))
        return (output, weights) if need_weights else output

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of a `torch.nn.MultiheadAttention`, on its device and dtype.

        Masks keep this module's convention (True = may attend), the opposite of torch's.
        """
        if module.bias_k is not None:
            raise ValueError("nn.MultiheadAttention with add_bias_kv=True has no counterpart here")
        if module.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_zero_attn=True has no counterpart here")
        weight = module.out_proj.weight
        copy = cls(
            module.embed_dim,
            num_heads=module.num_heads,
            kdim=module.kdim,
            vdim=module.vdim,
            dropout=module.dropout,
            bias=module.in_proj_bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        if module.in_proj_weight is not None:
            weights = module.in_proj_weight.chunk(3)
        else:
            weights = (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight)
        biases = module.in_proj_bias.chunk(3) if module.in_proj_bias is not None else (None,) * 3
        with torch.no_grad():
            for projection, w, b in zip(
                (copy.q_proj, copy.k_proj, copy.v_proj), weights, biases, strict=True
            ):
                projection.weight.copy_(w)
                if b is not None:
                    projection.bias.copy_(b)
            copy.out_proj.weight.copy_(module.out_proj.weight)
            if copy.out_proj.bias is not None:
                copy.out_proj.bias.copy_(module.out_proj.bias)
        return copy.train(module.training)


class SelfAttention(nn.Module):
    """One head of self-attention with its own key and value widths:
    `softmax((x W_q)(x W_k)^T / sqrt(dk)) (x W_v)`, `(B, N, dim) -> (B, N, dv)`."""

    def __init__(
        self,
        dim: int,
        *,
        dk: int,
        dv: int,
        bias: bool = False,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dk, bias=bias, **factory)
        self.k_proj = nn.Linear(dim, dk, bias=bias, **factory)
        self.v_proj = nn.Linear(dim, dv, bias=bias, **factory)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, N, dim) -> (B, N, dv); with `need_weights`, also the weights (B, N, N).

        `mask` broadcasts to `(B, N, N)`: `(N, N)` causal, `(B, 1, N)` padding, ...
        """
        dropout = self.dropout if self.training else 0.0
        return scaled_dot_product_attention(
            self.q_proj(x), self.k_proj(x), self.v_proj(x), mask, dropout_p=dropout, need_weights=need_weights
        )
