"""Soft attention pooling: learned scores, a softmax over the sequence, a weighted sum.

Yang et al., "Hierarchical Attention Networks for Document Classification", NAACL 2016.
https://aclanthology.org/N16-1174/
Raffel and Ellis, "Feed-Forward Networks with Attention Can Solve Some Long-Term Memory
Problems", 2015. https://arxiv.org/abs/1512.08756

    e_n = w^T tanh(W x_n + b),   a = softmax(e) over the real elements,   out = sum_n a_n x_n

Padding is masked out (weight 0); a sequence with no real element pools to zeros.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from .functional import Pooled, masked_softmax

__all__ = ["AttentionScorer", "SoftAttentionPooling", "weighted_sum"]

Hidden = Annotated[int, Field(gt=0)]


def weighted_sum(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, N) weights, (B, N, D) elements -> (B, D)."""
    return (weights.unsqueeze(1) @ x).squeeze(1)


class AttentionScorer(nn.Module):
    """One score per element: a one-hidden-layer tanh MLP, (B, N, dim) -> (B, N)."""

    def __init__(self, dim: int, hidden: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.context = nn.Linear(hidden, 1, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.context(torch.tanh(self.proj(x))).squeeze(-1)


class SoftAttentionPooling(nn.Module):
    def __init__(
        self,
        dim: int,
        *,
        hidden: Hidden | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.score = AttentionScorer(dim, dim if hidden is None else hidden, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Pooled:
        """(B, N, dim), mask (B, N) True at real elements -> Pooled((B, dim), (B, N), None)."""
        weights = masked_softmax(self.score(x), mask)
        return Pooled(weighted_sum(weights, x), weights, None)
