"""Split attention: a grouped conv's radix splits, mixed per channel (ResNeSt).

Zhang et al., "ResNeSt: Split-Attention Networks", CVPR 2022 workshops.
https://arxiv.org/abs/2004.08955

One 3x3 conv with `radix * groups` groups gives `radix` splits of the output (BN, ReLU).
Their sum is pooled and squeezed (1x1 conv, BN, ReLU), then expanded to one logit per split
and channel; a softmax over the splits (a sigmoid for radix 1) gives each channel's mix:

    out = sum_r softmax_r(fc2(fc1(pool(sum_s split_s)))) * split_r

With `avd` ("average down") a strided slot convolves at stride 1 and average-pools 3x3 after
the attention, as ResNeSt-D does (with `avd_first`, before the conv, as the published
ResNeSt-50d 1s4x24d and 4s2x40d do). Tensor names follow timm's `SplitAttn` (`conv`, `bn0`,
`fc1`, `bn1`, `fc2`), so timm's ResNeSt checkpoints load unchanged.

Attention kind `conv`: the module is a block's spatial conv with its norm and activation.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import make_divisible

__all__ = ["SplitAttention"]


class SplitAttention(nn.Module):
    """Split attention (ResNeSt): the radix splits of a grouped conv, mixed per channel.

    Attention kind `conv`: (B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int,
        feat_size: tuple[int, int] | None = None,
        device=None,
        dtype=None,
        radix: int = 2,
        groups: int = 1,
        rd_ratio: float = 0.25,
        rd_divisor: int = 8,
        avd: bool = False,
        avd_first: bool = False,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.radix, self.groups = radix, groups
        splits = out_channels * radix
        rd_channels = make_divisible(
            in_channels * radix * rd_ratio, rd_divisor, min_value=32, round_limit=0.9
        )
        conv_stride = 1 if avd else stride
        self.conv = nn.Conv2d(
            in_channels, splits, 3, conv_stride, 1, groups=groups * radix, bias=False, **factory
        )
        self.bn0 = nn.BatchNorm2d(splits, **factory)
        self.act0 = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, rd_channels, 1, groups=groups, **factory)
        self.bn1 = nn.BatchNorm2d(rd_channels, **factory)
        self.act1 = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, splits, 1, groups=groups, **factory)
        pool = nn.AvgPool2d(3, stride, padding=1) if avd and stride > 1 else nn.Identity()
        self.avd_first = pool if avd_first else nn.Identity()
        self.avd = nn.Identity() if avd_first else pool

    def split_weights(self, splits: torch.Tensor) -> torch.Tensor:
        """(B, radix, C, H, W) splits -> their per-channel weights (B, radix, C, 1, 1)."""
        batch = splits.shape[0]
        pooled = splits.sum(1).mean((2, 3), keepdim=True)
        logits = self.fc2(self.act1(self.bn1(self.fc1(pooled))))  # (B, groups * radix * C/groups, 1, 1)
        if self.radix == 1:
            return logits.sigmoid().reshape(batch, 1, -1, 1, 1)
        # channels are ordered (group, split, channel): the softmax runs across the splits
        logits = logits.reshape(batch, self.groups, self.radix, -1).transpose(1, 2).softmax(dim=1)
        return logits.reshape(batch, self.radix, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.bn0(self.conv(self.avd_first(x))))
        splits = x.reshape(x.shape[0], self.radix, -1, *x.shape[-2:])
        out = (splits * self.split_weights(splits)).sum(dim=1)
        return self.avd(out)
