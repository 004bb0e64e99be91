"""Conditionally parameterised convolution (CondConv): a conv whose kernel is a per-sample
mixture of expert kernels.

Yang et al., "CondConv: Conditionally Parameterized Convolutions for Efficient Inference",
NeurIPS 2019. https://arxiv.org/abs/1904.04971

Each sample's kernel is `sum_i r_i W_i` over `num_experts` kernels, with routing weights
`r` the block computes from its pooled input. The experts are stored flattened, one row
each (`weight`: `(num_experts, out * in / groups * k * k)`), as in timm's checkpoints. The
batch runs as one grouped conv: samples are folded into the channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .padding import Padding, pad_same, statically_same

__all__ = ["CondConv2d"]


class CondConv2d(nn.Module):
    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        *,
        num_experts: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        padding: Padding = "symmetric",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_chs, out_chs, groups
        self.kernel_size, self.stride, self.dilation = (kernel_size,) * 2, (stride,) * 2, (dilation,) * 2
        self.num_experts = num_experts
        self.dynamic_padding = padding == "tf_same" and not statically_same(kernel_size, stride, dilation)
        self.padding = 0 if self.dynamic_padding else ((stride - 1) + dilation * (kernel_size - 1)) // 2
        self.expert_shape = (out_chs, in_chs // groups, kernel_size, kernel_size)
        self.weight = nn.Parameter(
            torch.empty(num_experts, math.prod(self.expert_shape), device=device, dtype=dtype)
        )

    def reset_parameters(self) -> None:
        """Each expert as `init_fan_out` initialises a conv: normal, std sqrt(2 / fan-out per group)."""
        fan_out = self.kernel_size[0] * self.kernel_size[1] * self.out_channels // self.groups
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / fan_out))

    def forward(self, x: torch.Tensor, routing_weights: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) with routing weights (B, num_experts) -> (B, out, H', W')."""
        batch, channels, height, width = x.shape
        kernels = (routing_weights @ self.weight).view(batch * self.out_channels, *self.expert_shape[1:])
        x = x.reshape(1, batch * channels, height, width)  # each sample its own group of channels
        if self.dynamic_padding:
            x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        out = F.conv2d(x, kernels, None, self.stride, self.padding, self.dilation, self.groups * batch)
        return out.view(batch, self.out_channels, *out.shape[-2:])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"num_experts={self.num_experts}, stride={self.stride}, groups={self.groups}"
        )
