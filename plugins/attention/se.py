"""Squeeze-and-Excitation channel attention.

Hu, Shen and Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
https://arxiv.org/abs/1709.01507

Squeeze: global average pooling gives one descriptor per channel. Excite: a bottleneck MLP
(reduced width `rd_channels`) with an activation, then a gate in [0, 1] that scales each
channel. The MLP is a pair of 1x1 convs with bias.

One variant covers the forms published checkpoints use; the options say which:

- width: a slot may fix the reduced width (`rd_channels`, as EfficientNet, MobileNetV3 and
  RegNet do, each by its own rule); otherwise it is `channels * rd_ratio` rounded to a
  multiple of `rd_divisor` (timm's `seresnet`: 1/16, multiples of 8);
- `act`: the activation between the convs (ReLU in the paper and in ResNet, RegNet and
  MobileNetV3; SiLU in EfficientNet);
- `gate`: sigmoid, or MobileNetV3's hard sigmoid `relu6(x + 3) / 6`;
- `tensor_names`: the names of the two convs, `fc1`/`fc2` (timm's ResNet and RegNet) or
  `conv_reduce`/`conv_expand` (timm's EfficientNet and MobileNetV3), so that either kind of
  checkpoint loads unchanged.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from ..layers import Activation, activation, make_divisible

__all__ = ["SqueezeExcite", "TENSOR_NAMES"]

TENSOR_NAMES = {"fc1/fc2": ("fc1", "fc2"), "conv_reduce/conv_expand": ("conv_reduce", "conv_expand")}
"""The published names of the reducing and the expanding conv, by `tensor_names` option."""


class SqueezeExcite(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,
        rd_ratio: Annotated[float, Field(gt=0.0)] = 1 / 16,
        rd_divisor: Annotated[int, Field(ge=1)] = 1,
        act: Activation = "relu",
        gate: Literal["sigmoid", "hard_sigmoid"] = "sigmoid",
        tensor_names: Literal["fc1/fc2", "conv_reduce/conv_expand"] = "fc1/fc2",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden = rd_channels if rd_channels is not None else make_divisible(channels * rd_ratio, rd_divisor)
        self.names = TENSOR_NAMES[tensor_names]
        reduce, expand = self.names
        self.add_module(reduce, nn.Conv2d(channels, hidden, kernel_size=1, bias=True, **factory))
        self.act = activation(act, inplace=True)
        self.add_module(expand, nn.Conv2d(hidden, channels, kernel_size=1, bias=True, **factory))
        self.gate_fn = activation(gate)

    @property
    def reduce(self) -> nn.Conv2d:
        """The conv from `channels` to the reduced width (`fc1` or `conv_reduce`)."""
        return self._modules[self.names[0]]

    @property
    def expand(self) -> nn.Conv2d:
        """The conv back to `channels` (`fc2` or `conv_expand`)."""
        return self._modules[self.names[1]]

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in [0, 1]: (B, C, H, W) -> (B, C, 1, 1)."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return self.gate_fn(self.expand(self.act(self.reduce(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
