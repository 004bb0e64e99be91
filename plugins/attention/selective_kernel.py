"""Selective Kernel convolution: branches of different receptive fields, mixed per channel.

Li, Wang, Hu and Yang, "Selective Kernel Networks", CVPR 2019. https://arxiv.org/abs/1903.06586

Each path is a 3x3 conv with BN and ReLU; path i is dilated by i + 1, so the second sees as
far as a 5x5 kernel. The paths' outputs are summed, pooled and squeezed to `rd` channels
(conv, BN, ReLU), then expanded to one logit per path and channel; a softmax over the paths
gives each channel's mix:

    out = sum_i softmax_i(select(reduce(pool(sum_j path_j(x))))) * path_i(x)

With `split_input` (timm's ResNets), path i sees only the i-th slice of the input channels,
which keeps the parameters of a basic block's conv near those of one 3x3 conv. With
`groups`, each path's conv is grouped (SK-ResNeXt). Tensor names follow timm's
`SelectiveKernel` (`paths.N.conv`, `paths.N.bn`, `attn.fc_reduce`, `attn.bn`, `attn.fc_select`),
so timm's SKNet checkpoints load unchanged.

Attention kind `conv`: the module is a block's spatial conv with its norm and activation.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvNormAct, make_divisible

__all__ = ["SelectiveKernel", "SelectiveKernelAttn"]


class SelectiveKernelAttn(nn.Module):
    """The paths' mix: (B, paths, C, H, W) -> per-channel path weights (B, paths, C, 1, 1)."""

    def __init__(self, channels: int, num_paths: int, rd_channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_paths = num_paths
        self.fc_reduce = nn.Conv2d(channels, rd_channels, 1, bias=False, **factory)
        self.bn = nn.BatchNorm2d(rd_channels, **factory)
        self.act = nn.ReLU(inplace=True)
        self.fc_select = nn.Conv2d(rd_channels, channels * num_paths, 1, bias=False, **factory)

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        pooled = paths.sum(1).mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        logits = self.fc_select(self.act(self.bn(self.fc_reduce(pooled))))
        return logits.reshape(paths.shape[0], self.num_paths, -1, 1, 1).softmax(dim=1)


class SelectiveKernel(nn.Module):
    """Selective Kernel convolution: 3x3 and dilated 3x3 paths, mixed per channel.

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
        num_paths: int = 2,
        split_input: bool = True,
        groups: int = 1,
        rd_ratio: float = 1 / 16,
        rd_divisor: int = 8,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        if split_input and in_channels % num_paths:
            raise ValueError(
                f"selective kernel: {in_channels} input channels do not split into {num_paths} paths"
            )
        self.split_input = split_input
        path_in = in_channels // num_paths if split_input else in_channels
        self.paths = nn.ModuleList(
            ConvNormAct(path_in, out_channels, 3, stride=stride, groups=groups, dilation=index + 1, **factory)
            for index in range(num_paths)
        )
        rd_channels = make_divisible(out_channels * rd_ratio, rd_divisor, round_limit=0.9)
        self.attn = SelectiveKernelAttn(out_channels, num_paths, rd_channels, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.chunk(len(self.paths), dim=1) if self.split_input else [x] * len(self.paths)
        paths = torch.stack([path(part) for path, part in zip(self.paths, inputs, strict=True)], dim=1)
        return (paths * self.attn(paths)).sum(dim=1)
