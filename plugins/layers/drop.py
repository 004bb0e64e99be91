"""Stochastic depth: residual branches dropped for whole samples while training."""

from __future__ import annotations

from collections.abc import Sequence

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


def drop_path_rates(total_rate: float, num_blocks: int) -> Sequence[float]:
    """Stochastic-depth rates rising linearly from 0 to `total_rate` over the blocks.

    Computed as they are read, so that a model of absurd depth is refused by the limits on
    building it (`zoo.memory.build_limits`) rather than by a list of its rates."""
    return _LinearRates(total_rate, num_blocks, range(num_blocks))


class _LinearRates(Sequence[float]):
    def __init__(self, total_rate: float, num_blocks: int, indices: range) -> None:
        self.total_rate = total_rate
        self.num_blocks = num_blocks
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key):  # an index, or a slice of the blocks' rates
        if isinstance(key, slice):
            return _LinearRates(self.total_rate, self.num_blocks, self.indices[key])
        if self.num_blocks <= 1:
            return 0.0 * self.indices[key]
        return self.total_rate * self.indices[key] / (self.num_blocks - 1)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented
