"""Global pooling of a CNN's last feature map (or of a grid of tokens)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["GlobalPool", "MapFormat", "PoolType"]

PoolType = Literal["avg", "max", "avgmax", "catavgmax", ""]
"""timm's global poolings of a CNN's last feature map; '' keeps the map."""

MapFormat = Literal["NCHW", "NHWC"]
"""Where a map's channels are: after the batch (CNNs), or last (Swin's grid of tokens)."""


class GlobalPool(nn.Module):
    """Global pooling of a `(B, C, H, W)` map (or `(B, H, W, C)`, `input_fmt="NHWC"`):
    average, max, their mean (`avgmax`), both concatenated (`catavgmax`, 2C channels), or
    none (''); flattened to `(B, C)` if asked."""

    def __init__(
        self, pool_type: PoolType = "avg", *, flatten: bool = True, input_fmt: MapFormat = "NCHW"
    ) -> None:
        super().__init__()
        self.pool_type = pool_type
        self.flatten = flatten and pool_type != ""
        self.input_fmt = input_fmt

    @property
    def feat_mult(self) -> int:
        """How many times the input's channels the output has."""
        return 2 if self.pool_type == "catavgmax" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "":
            return x
        keep = not self.flatten
        spatial, channels = ((2, 3), 1) if self.input_fmt == "NCHW" else ((1, 2), -1)
        if self.pool_type == "avg":
            return x.mean(spatial, keepdim=keep)
        if self.pool_type == "max":
            return x.amax(spatial, keepdim=keep)
        average, maximum = x.mean(spatial, keepdim=keep), x.amax(spatial, keepdim=keep)
        if self.pool_type == "avgmax":
            return 0.5 * (average + maximum)
        return torch.cat((average, maximum), dim=channels)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}, flatten={self.flatten}, input_fmt={self.input_fmt!r}"
