"""Convolutions and pooling padded as TensorFlow pads them ("SAME"), for ported weights.

TensorFlow's "SAME" padding gives an output of `ceil(size / stride)` and puts any odd pixel
of padding after the input (bottom, right); PyTorch pads both sides alike. Where the two
agree (stride 1, odd kernel) the layers pad statically as usual; elsewhere they pad each
input as its size asks, so that weights trained in TensorFlow (timm's `tf_` ports) give the
same outputs. The layers keep `nn.Conv2d`'s and `nn.MaxPool2d`'s tensor names.

`Padding` names the two rules a config may choose: `symmetric` (PyTorch's `k // 2`, timm's
default) or `tf_same`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv2dSame", "MaxPool2dSame", "Padding", "conv2d", "pad_same", "same_padding", "statically_same"]

Padding = Literal["symmetric", "tf_same"]
"""How a conv is padded: `k // 2` on each side, or as TensorFlow's "SAME"."""


def same_padding(size: int, kernel_size: int, stride: int, dilation: int = 1) -> int:
    """The total padding TensorFlow's "SAME" adds along a dimension of `size` pixels."""
    reach = (kernel_size - 1) * dilation + 1
    return max((math.ceil(size / stride) - 1) * stride + reach - size, 0)


def pad_same(
    x: torch.Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> torch.Tensor:
    """`x` (B, C, H, W) padded as "SAME" pads it: half before, the rest (one more) after."""
    pad_h = same_padding(x.shape[-2], kernel_size[0], stride[0], dilation[0])
    pad_w = same_padding(x.shape[-1], kernel_size[1], stride[1], dilation[1])
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=value)


class Conv2dSame(nn.Conv2d):
    """A conv padded per input as TensorFlow's "SAME" (its own `padding` is 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MaxPool2dSame(nn.MaxPool2d):
    """Max pooling padded per input as TensorFlow's "SAME" (with -inf, so padding never wins)."""

    def __init__(
        self, kernel_size: int, stride: int | None = None, dilation: int = 1, ceil_mode: bool = False
    ):
        super().__init__(kernel_size, stride, 0, dilation, ceil_mode=ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pair = nn.modules.utils._pair
        x = pad_same(x, pair(self.kernel_size), pair(self.stride), pair(self.dilation), value=-math.inf)
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation, self.ceil_mode)


def statically_same(kernel_size: int, stride: int, dilation: int) -> bool:
    """Whether "SAME" pads every input alike (symmetrically): stride 1 and an odd reach."""
    return stride == 1 and (dilation * (kernel_size - 1)) % 2 == 0


def conv2d(
    in_chs: int,
    out_chs: int,
    kernel_size: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    bias: bool = False,
    padding: Padding = "symmetric",
    device=None,
    dtype=None,
) -> nn.Conv2d:
    """A conv padded by `padding`'s rule: `nn.Conv2d` with static padding where that is exact,
    else `Conv2dSame`. Symmetric padding is timm's `((stride - 1) + dilation * (k - 1)) // 2`."""
    factory = {"device": device, "dtype": dtype}
    shape = {"stride": stride, "dilation": dilation, "groups": groups, "bias": bias}
    if padding == "tf_same" and not statically_same(kernel_size, stride, dilation):
        return Conv2dSame(in_chs, out_chs, kernel_size, padding=0, **shape, **factory)
    symmetric = ((stride - 1) + dilation * (kernel_size - 1)) // 2
    return nn.Conv2d(in_chs, out_chs, kernel_size, padding=symmetric, **shape, **factory)
