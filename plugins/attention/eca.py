"""Efficient Channel Attention (ECA).

Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020. https://arxiv.org/abs/1910.03151

SE without the bottleneck: the pooled channel descriptor goes through a 1-D convolution
across neighbouring channels, whose odd kernel size grows with log2(C). The module is named
`se.conv` inside timm's `ecaresnet` blocks. Having no reduced width, it accepts the
`rd_channels` a slot may pass (EfficientNet's, MobileNetV3's, RegNet's) and ignores it.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import AfterValidator, Field
from torch import nn

__all__ = ["EfficientChannelAttention", "adaptive_kernel_size"]


def adaptive_kernel_size(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """psi(C) = |(log2(C) + b) / gamma|, made odd (upwards) and at least 3."""
    k = int(abs(math.log2(channels) + beta) / gamma)
    return max(k if k % 2 else k + 1, 3)


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("the kernel size must be odd, so the output keeps one value per channel")
    return value


OddKernel = Annotated[int, Field(ge=1), AfterValidator(_odd)]


class EfficientChannelAttention(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,  # no bottleneck: ignored
        kernel_size: OddKernel | None = None,
        gamma: int = 2,
        beta: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if kernel_size is None:
            kernel_size = adaptive_kernel_size(channels, gamma, beta)
        self.conv = nn.Conv1d(
            1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False, device=device, dtype=dtype
        )

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in [0, 1]: (B, C, H, W) -> (B, C, 1, 1)."""
        batch, channels = x.shape[:2]
        descriptor = x.mean(dim=(2, 3)).view(batch, 1, channels)  # channels as a 1-D signal
        return torch.sigmoid(self.conv(descriptor)).view(batch, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
