"""Anti-aliased downsampling: low-pass filter, then subsample.

Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
https://arxiv.org/abs/1904.11486

A strided conv or pool aliases: it samples the map without filtering it first. Here the
stride moves into a filter that follows the (now stride-1) layer, by the names timm gives
them: `avg`, a `stride`-sized average pool; `blur`, a 3x3 binomial blur ([1, 2, 1] / 4 in each
direction) over a reflection-padded map; `blurpc`, the same blur over a zero-padded map.
"""

from __future__ import annotations

from math import comb
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AntiAlias", "BlurPool2d", "anti_alias"]

AntiAlias = Literal["avg", "blur", "blurpc"]
"""The anti-aliasing filters a config may name."""


class BlurPool2d(nn.Module):
    """Blur each channel with a binomial filter (1 2 1 for size 3), then keep every
    `stride`-th pixel; the map is padded (`reflect` or zero, `constant`) so that its size
    divides by `stride`. The filter is a non-persistent buffer: checkpoints do not hold it
    (timm's `filt`)."""

    def __init__(
        self,
        channels: int,
        *,
        filt_size: int = 3,
        stride: int = 2,
        pad_mode: Literal["reflect", "constant"] = "reflect",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.channels, self.stride, self.pad_mode = channels, stride, pad_mode
        self.padding = [(stride - 1 + filt_size - 1) // 2] * 4
        shape = (channels, 1, filt_size, filt_size)
        self.register_buffer("filt", torch.empty(shape, device=device, dtype=dtype), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.filt.is_meta:
            return
        size = self.filt.shape[-1]
        binomial = torch.tensor([comb(size - 1, k) for k in range(size)], dtype=torch.float32)
        binomial = binomial / binomial.sum()
        self.filt.copy_((binomial[:, None] * binomial[None, :]).expand_as(self.filt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode=self.pad_mode)
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=self.channels)


def anti_alias(kind: AntiAlias, channels: int, *, stride: int = 2, device=None, dtype=None) -> nn.Module:
    """The low-pass pooling of stride `stride` called `kind`, for a map of `channels`."""
    if kind == "avg":
        return nn.AvgPool2d(stride)
    pad_mode = "constant" if kind == "blurpc" else "reflect"
    return BlurPool2d(channels, stride=stride, pad_mode=pad_mode, device=device, dtype=dtype)
