"""Additive (Bahdanau) attention: align a decoder state with the encoder outputs.

Bahdanau, Cho and Bengio, "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR 2015. https://arxiv.org/abs/1409.0473

    e_j = v^T tanh(W s + U h_j),   a = softmax(e) over the real source positions,
    context = sum_j a_j h_j

`s` is the decoder state before the step `(B, query_dim)`, `h` the encoder outputs
`(B, S, key_dim)`; the context has the width of `h`.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from .functional import masked_softmax
from .soft import weighted_sum

__all__ = ["AdditiveAttention"]


class AdditiveAttention(nn.Module):
    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        *,
        attn_dim: Annotated[int, Field(gt=0)] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        attn_dim = query_dim if attn_dim is None else attn_dim
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False, **factory)  # W
        self.key_proj = nn.Linear(key_dim, attn_dim, **factory)  # U (and the bias)
        self.v = nn.Linear(attn_dim, 1, bias=False, **factory)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, query_dim), (B, S, key_dim), mask (B, S) -> context (B, key_dim), weights (B, S)."""
        energies = torch.tanh(self.query_proj(query).unsqueeze(1) + self.key_proj(memory))  # (B, S, A)
        weights = masked_softmax(self.v(energies).squeeze(-1), mask)
        return weighted_sum(weights, memory), weights
