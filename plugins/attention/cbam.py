"""Convolutional Block Attention Module (CBAM).

Woo, Park, Lee and Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018.
https://arxiv.org/abs/1807.06521

Channel attention, then spatial attention, each a gate in [0, 1]:
    M_c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))        shared MLP, (B, C, 1, 1)
    M_s(F) = sigmoid(conv_kxk([mean_c(F); max_c(F)]))           k in {3, 7}, (B, 1, H, W)
    F' = M_c(F) * F,  F'' = M_s(F') * F'
As in the authors' code, the spatial conv has no bias and is followed by BatchNorm. The
MLP's hidden width is the slot's `rd_channels` where it gives one, else
`channels * rd_ratio` rounded to a multiple of `rd_divisor`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..layers import make_divisible

__all__ = ["CBAM", "ChannelGate", "SpatialGate"]


class ChannelGate(nn.Module):
    """Which channels matter: a shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, *, hidden: int, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True, **factory)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True, **factory)

    def mlp(self, descriptor: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(descriptor)))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, 1, 1) in [0, 1]."""
        average = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        maximum = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(average + maximum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SpatialGate(nn.Module):
    """Where to look: a k x k conv over the channel-wise mean and max maps."""

    def __init__(self, *, kernel_size: int, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False, **factory)
        self.bn = nn.BatchNorm2d(1, **factory)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) in [0, 1]."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.bn(self.conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class CBAM(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,
        rd_ratio: float = 1 / 16,
        rd_divisor: int = 1,
        kernel_size: Literal[3, 7] = 7,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError(f"CBAM's spatial kernel is 3 or 7, not {kernel_size}")
        hidden = rd_channels if rd_channels is not None else make_divisible(channels * rd_ratio, rd_divisor)
        self.channel = ChannelGate(channels, hidden=hidden, device=device, dtype=dtype)
        self.spatial = SpatialGate(kernel_size=kernel_size, device=device, dtype=dtype)

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gate M_s applied to `x` (after the channel gate): (B, 1, H, W) in [0, 1]."""
        return self.spatial.gate(self.channel(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
