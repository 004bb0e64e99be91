"""Anti-aliased downsampling: low-pass filter, then subsample.

Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
https://arxiv.org/abs/1904.11486

A strided conv or pool aliases: it samples the map without filtering it first. Here the
stride moves into a filter that follows the (now stride-1) layer: a binomial blur
(`BlurPool2d`) or a plain average pool (timm's `aa_layer=AvgPool2d`).
"""

from __future__ import annotations

from math import comb
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AntiAlias", "BlurPool2d", "anti_alias_pool"]

AntiAlias = Literal["avg", "blur"]
"""The filters of anti-aliased downsampling: a `stride`-sized average pool, or a 3x3 blur."""


class BlurPool2d(nn.Module):
    """Blur each channel with a binomial filter (1 2 1 for size 3), then keep every
    `stride`-th pixel; the map is reflection-padded so that its size divides by `stride`.
    The filter is a non-persistent buffer: checkpoints do not hold it (timm's `filt`)."""

    def __init__(
        self, channels: int, *, filt_size: int = 3, stride: int = 2, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        self.padding = [(stride - 1 + filt_size - 1) // 2] * 4
        coefficients = torch.tensor([comb(filt_size - 1, k) for k in range(filt_size)], dtype=torch.float32)
        coefficients = coefficients / coefficients.sum()
        kernel = (coefficients[:, None] * coefficients[None, :]).repeat(channels, 1, 1, 1)
        self.register_buffer("filt", kernel.to(device=device, dtype=dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)


def anti_alias_pool(kind: AntiAlias, channels: int, stride: int = 2, **factory) -> nn.Module:
    """The filter that downsamples by `stride` after a layer made stride 1."""
    if kind == "blur":
        return BlurPool2d(channels, stride=stride, **factory)
    return nn.AvgPool2d(stride)
