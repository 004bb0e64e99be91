"""Coordinate attention.

Hou, Zhou and Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.
https://arxiv.org/abs/2103.02907

Where SE pools the whole map into one number per channel, coordinate attention pools along
each axis separately, so the gates keep the position along the other one:
    z_h = mean over width   (B, C, H, 1)        z_w = mean over height   (B, C, 1, W)
    f = act(bn(conv1x1([z_h; z_w])))            shared transform, C -> hidden
    g_h = sigmoid(conv_h(f_h)),  g_w = sigmoid(conv_w(f_w))
    y = x * g_h * g_w
The hidden width is the `rd_channels` of the slot where it gives one (EfficientNet's and
MobileNetV3's blocks do), else `max(min_hidden, C // reduction)` as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CoordinateAttention"]


class CoordinateAttention(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,
        reduction: int = 32,
        min_hidden: int = 8,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden = rd_channels if rd_channels is not None else max(min_hidden, channels // reduction)
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size=1, **factory)
        self.bn1 = nn.BatchNorm2d(hidden, **factory)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(hidden, channels, kernel_size=1, **factory)
        self.conv_w = nn.Conv2d(hidden, channels, kernel_size=1, **factory)

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gates in [0, 1] along the height (B, C, H, 1) and along the width (B, C, 1, W)."""
        height, width = x.shape[-2:]
        along_h = x.mean(dim=3, keepdim=True)  # (B, C, H, 1)
        along_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        shared = self.act(self.bn1(self.conv1(torch.cat([along_h, along_w], dim=2))))
        shared_h, shared_w = torch.split(shared, [height, width], dim=2)
        gate_h = torch.sigmoid(self.conv_h(shared_h))
        gate_w = torch.sigmoid(self.conv_w(shared_w.transpose(2, 3)))
        return gate_h, gate_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_h, gate_w = self.gates(x)
        return x * gate_h * gate_w
