"""Tokens and attention over an (h, w) grid, as maps."""

from __future__ import annotations

import torch

__all__ = ["attention_received", "tokens_as_grid"]


def tokens_as_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, h*w, D) -> (B, D, h, w)."""
    return tokens.reshape(tokens.shape[0], height, width, -1).permute(0, 3, 1, 2).contiguous()


def attention_received(weights: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The mean attention each position of an (h, w) map receives, over heads and queries:
    (B, heads, h * w, h * w) weights -> (B, h, w), summing to 1 over the map."""
    return weights.mean(dim=(1, 2)).reshape(weights.shape[0], height, width)
