"""Structural re-parameterisation: parallel conv-and-BatchNorm branches summed into one conv.

Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021.
https://arxiv.org/abs/2101.03697

In evaluation mode a conv followed by BatchNorm is one conv with a bias; branches of the
same stride and groups add up to one conv of the largest kernel (a 1x1 kernel centred in
it, the identity as a centred one-hot kernel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conv import ConvNormAct

__all__ = ["fused_conv"]


def _folded(kernel: torch.Tensor, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """`kernel` then `norm` (BatchNorm, in evaluation mode) as a kernel and a bias."""
    if not isinstance(norm, nn.BatchNorm2d):
        raise ValueError(f"only BatchNorm folds into a conv, not {type(norm).__name__}")
    scale = norm.weight / (norm.running_var + norm.eps).sqrt()
    return kernel * scale.reshape(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


def _identity_kernel(like: torch.Tensor, groups: int) -> torch.Tensor:
    """The kernel of shape `like` (out, in / groups, k, k) that copies its input."""
    channels, per_group, size = like.shape[0], like.shape[1], like.shape[-1]
    kernel = torch.zeros_like(like)
    index = torch.arange(channels, device=like.device)
    kernel[index, index % per_group, size // 2, size // 2] = 1
    return kernel


def fused_conv(branches: Sequence[ConvNormAct], identity: nn.Module | None = None) -> nn.Conv2d:
    """One conv with a bias that gives the sum of `branches` (convs with BatchNorm, without
    activation, of one stride and groups) and of `identity` (BatchNorm of the input, or None)."""
    widest = max(branches, key=lambda branch: branch.conv.kernel_size[0]).conv
    size = widest.kernel_size[0]
    kernel = torch.zeros_like(widest.weight)
    bias = torch.zeros(widest.out_channels, device=kernel.device, dtype=kernel.dtype)
    for branch in branches:
        if getattr(branch, "aa", None) is not None:
            raise ValueError("a branch that pools after its norm does not fold into one conv")
        pad = (size - branch.conv.kernel_size[0]) // 2
        part_kernel, part_bias = _folded(F.pad(branch.conv.weight, [pad] * 4), branch.bn)
        kernel, bias = kernel + part_kernel, bias + part_bias
    if identity is not None:
        part_kernel, part_bias = _folded(_identity_kernel(kernel, widest.groups), identity)
        kernel, bias = kernel + part_kernel, bias + part_bias
    conv = nn.Conv2d(
        widest.in_channels,
        widest.out_channels,
        size,
        stride=widest.stride,
        padding=widest.padding,
        dilation=widest.dilation,
        groups=widest.groups,
        bias=True,
        device=kernel.device,
        dtype=kernel.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
    return conv
