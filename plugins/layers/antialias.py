"""Anti-aliased downsampling: a strided conv becomes a stride-1 conv followed by a low-pass
pooling of stride 2.

Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
https://arxiv.org/abs/1904.11486

Two low-pass filters, by the names timm gives them: `avg`, a 2x2 average pooling, and
`blurpc`, a 3x3 binomial blur ([1, 2, 1] / 4 in each direction) over a zero-padded map.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AntiAlias", "BlurPool2d", "anti_alias"]

AntiAlias = Literal["avg", "blurpc"]
"""The anti-aliasing filters a config may name."""


class BlurPool2d(nn.Module):
    """A depthwise 3x3 binomial blur with stride 2 over a zero-padded map. The filter is a
    fixed, unsaved buffer: checkpoints hold nothing of it."""

    def __init__(self, channels: int, *, stride: int = 2, device=None, dtype=None) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        self.register_buffer(
            "filt", torch.empty(channels, 1, 3, 3, device=device, dtype=dtype), persistent=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.filt.is_meta:
            return
        binomial = torch.tensor([1.0, 2.0, 1.0]) / 4
        self.filt.copy_((binomial[:, None] * binomial[None, :]).expand_as(self.filt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1))
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)


def anti_alias(kind: AntiAlias, channels: int, *, stride: int = 2, device=None, dtype=None) -> nn.Module:
    """The low-pass pooling of stride `stride` called `kind`, for a map of `channels`."""
    if kind == "avg":
        return nn.AvgPool2d(stride)
    return BlurPool2d(channels, stride=stride, device=device, dtype=dtype)
