"""Mixed convolution: the channels split into groups, each with its own kernel size.

Tan and Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019.
https://arxiv.org/abs/1907.09595

MixNet's depthwise convs mix kernels (3x3 on the first channels, 5x5 on the next, ...); its
"grouped" pointwise convs are the same layer with 1x1 kernels (two dense 1x1 convs, each on
its half of the channels). The channels split evenly, the first group taking what is left
over; the convs are named `0`, `1`, ... as in timm's checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .padding import Padding, conv2d

__all__ = ["MixedConv2d", "split_channels"]


def split_channels(channels: int, groups: int) -> list[int]:
    """`channels` in `groups` even parts, the remainder on the first."""
    split = [channels // groups] * groups
    split[0] += channels - sum(split)
    return split


class MixedConv2d(nn.ModuleDict):
    """One conv per kernel size, each on its share of the channels; `depthwise` makes each a
    depthwise conv (its share of inputs, as many outputs)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_sizes: Sequence[int],
        *,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
        padding: Padding = "symmetric",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.splits = split_channels(in_chs, len(kernel_sizes))
        out_splits = split_channels(out_chs, len(kernel_sizes))
        self.in_channels, self.out_channels = in_chs, out_chs
        for index, (kernel, ins, outs) in enumerate(zip(kernel_sizes, self.splits, out_splits, strict=True)):
            conv = conv2d(
                ins,
                outs,
                kernel,
                stride=stride,
                dilation=dilation,
                groups=ins if depthwise else 1,
                padding=padding,
                device=device,
                dtype=dtype,
            )
            self.add_module(str(index), conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, dim=1)
        return torch.cat([conv(part) for conv, part in zip(self.values(), parts, strict=True)], dim=1)
