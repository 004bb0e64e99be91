"""Differential attention: the difference of two softmax attentions, as a token attention.

Ye et al., "Differential Transformer", ICLR 2025. https://arxiv.org/abs/2410.05258

Each head splits its queries and keys in two halves and attends twice over the same values:

    DiffAttn(X) = (softmax(Q1 K1^T / sqrt(d)) - lambda * softmax(Q2 K2^T / sqrt(d))) V,

with lambda = exp(lambda_q1 . lambda_k1) - exp(lambda_q2 . lambda_k2) + lambda_init, learned
per layer, and lambda_init = 0.8 - 0.6 exp(-0.3 l) fixed by the block's index l (the
`block_index` a token slot passes). Each head's output is RMS-normed (`sub_norm`) and scaled
by 1 - lambda_init before the projection. Subtracting cancels the attention both maps give to
irrelevant tokens, as a differential amplifier cancels common-mode noise. Names match timm's
`DiffAttention` (`qkv`, `proj`, `lambda_*`, `sub_norm`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .functional import scaled_dot_product_attention

__all__ = [
    "DifferentialAttention",
    "add_differential_parts",
    "attend_differentially",
    "differential_attention",
    "differential_lambda_init",
]


def differential_lambda_init(block_index: int) -> float:
    """The paper's lambda_init of the block at this index (from 0): 0.2, rising to 0.8."""
    return 0.8 - 0.6 * math.exp(-0.3 * block_index)


def differential_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lambda_full: torch.Tensor,
    *,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(softmax(q1 k1^T) - lambda softmax(q2 k2^T)) v, scaled by each half's head width.

    Args:
        q, k: `(B, 2 * heads, N, d)`: each head's two halves, head by head.
        v: `(B, heads, N, 2 * d)`.
        lambda_full: The scalar lambda.

    Returns:
        `(B, heads, N, 2 * d)`, and the weights `(B, heads, N, N)` (the difference of the two
        maps) when asked for, else None.
    """
    batch, double_heads, tokens, width = q.shape
    q1, q2 = q.reshape(batch, double_heads // 2, 2, tokens, width).unbind(2)
    k1, k2 = k.reshape(batch, double_heads // 2, 2, tokens, width).unbind(2)
    first = scaled_dot_product_attention(q1, k1, v, dropout_p=dropout_p, need_weights=need_weights)
    second = scaled_dot_product_attention(q2, k2, v, dropout_p=dropout_p, need_weights=need_weights)
    if not need_weights:
        return first - lambda_full * second, None
    return first[0] - lambda_full * second[0], first[1] - lambda_full * second[1]


def init_lambdas(module: nn.Module) -> None:
    """The paper's initialisation of the lambda vectors: normal, std 0.1 (on `meta`, nothing
    to draw: drawing there runs decompositions that import the compiler)."""
    for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
        vector = getattr(module, name)
        if not vector.is_meta:
            nn.init.normal_(vector, mean=0.0, std=0.1)


def lambda_of(module: nn.Module) -> torch.Tensor:
    """lambda = exp(lambda_q1 . lambda_k1) - exp(lambda_q2 . lambda_k2) + lambda_init."""
    first = torch.exp(torch.sum(module.lambda_q1 * module.lambda_k1, dim=-1).float())
    second = torch.exp(torch.sum(module.lambda_q2 * module.lambda_k2, dim=-1).float())
    return first - second + module.lambda_init


def add_lambdas(module: nn.Module, head_dim: int, device=None) -> None:
    """The four learned lambda vectors (float32, as the paper keeps them), one per half-head width."""
    for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
        module.register_parameter(
            name, nn.Parameter(torch.empty(head_dim, dtype=torch.float32, device=device))
        )


def add_differential_parts(
    module: nn.Module, dim: int, num_heads: int, block_index: int, *, device=None, dtype=None
) -> None:
    """What differential attention adds to the module that computes it (`attend_differentially`):
    the width of each half of a head (`head_dim`), the block's `lambda_init`, the four learned
    lambda vectors and the per-head RMSNorm (`sub_norm`)."""
    module.head_dim = dim // num_heads // 2
    module.lambda_init = differential_lambda_init(block_index)
    add_lambdas(module, module.head_dim, device=device)
    module.sub_norm = nn.RMSNorm(2 * module.head_dim, eps=1e-5, device=device, dtype=dtype)


def attend_differentially(
    module: nn.Module,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    dropout_p: float,
    need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`module`'s differential attention (`num_heads` heads, the parts `add_differential_parts`
    added) of (B, N, dim) q, k, v -> (B, N, dim), each head RMS-normed and scaled by
    1 - lambda_init; and the weights (B, heads, N, N) when asked for, else None."""
    batch, tokens, dim = q.shape
    heads, width = module.num_heads, module.head_dim
    q = q.reshape(batch, tokens, 2 * heads, width).transpose(1, 2)
    k = k.reshape(batch, tokens, 2 * heads, width).transpose(1, 2)
    v = v.reshape(batch, tokens, heads, 2 * width).transpose(1, 2)
    x, weights = differential_attention(
        q, k, v, lambda_of(module).type_as(q), dropout_p=dropout_p, need_weights=need_weights
    )
    x = module.sub_norm(x) * (1 - module.lambda_init)
    return x.transpose(1, 2).reshape(batch, tokens, dim), weights


class DifferentialAttention(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        block_index: int | None = None,
        proj_bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dim % (2 * num_heads):
            raise ValueError(f"dim {dim} is not divisible by twice num_heads {num_heads}")
        factory = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias, **factory)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, bias=proj_bias, **factory)
        self.proj_drop = nn.Dropout(proj_drop)
        add_differential_parts(self, dim, num_heads, block_index or 0, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_lambdas(self)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        dropout = self.attn_drop.p if self.training else 0.0
        x, weights = attend_differentially(self, q, k, v, dropout_p=dropout, need_weights=need_weights)
        x = self.proj_drop(self.proj(x))
        return (x, weights) if need_weights else x
