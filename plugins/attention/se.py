"""Squeeze-and-Excitation channel attention.

Hu, Shen and Sun, "Squeeze-and-Excitation Networks", CVPR 2018.
https://arxiv.org/abs/1709.01507

Squeeze: global average pooling gives one descriptor per channel. Excite: a bottleneck MLP
(reduction `1 / rd_ratio`) and a sigmoid turn it into a gate in [0, 1] that scales each
channel. The MLP is a pair of 1x1 convs with bias named `fc1`/`fc2`, the layout of timm's
`seresnet` checkpoints (which use `rd_divisor=8`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import make_divisible

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1 / 16,
        rd_divisor: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden = make_divisible(channels * rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True, **factory)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True, **factory)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in [0, 1]: (B, C, H, W) -> (B, C, 1, 1)."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(self.act(self.fc1(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
