"""Stochastic depth: residual branches dropped for whole samples while training."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path_rates"]


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples while training.

    Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    https://arxiv.org/abs/1603.09382
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(mask_shape).bernoulli_(keep_prob)
        return x * mask / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def drop_path_rates(total_rate: float, num_blocks: int) -> list[float]:
    """Stochastic-depth rates rising linearly from 0 to `total_rate` over the blocks."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [total_rate * i / (num_blocks - 1) for i in range(num_blocks)]
