"""MobileNetV4's blocks: the universal inverted residual, the fused inverted residual and the
mobile attention block, with an optional layer scale.

Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024.
https://arxiv.org/abs/2404.10518

- `uir`, universal inverted residual (UIB): an optional depthwise conv on the input
  (`start_kernel_size`), pointwise expansion, an optional depthwise conv on the expanded map
  (`kernel_size`), pointwise projection. With both depthwise convs it is an "extra
  depthwise" block, with the middle one only an inverted residual, with the first one only a
  ConvNeXt-like block, with neither a feed-forward network. The stride is on the middle conv
  if there is one, else on the first.
- `er`, fused inverted residual (FusedIB, EfficientNet-EdgeTPU's edge residual): a full conv
  expands, a pointwise conv projects.
- `mqa`, mobile attention: BatchNorm, then an attention over the positions of the map (the
  `map` attention kind: MobileNetV4's multi-query attention), in a residual.

Each conv is followed by BatchNorm and, but for the projections, the block's activation. A
strided block may anti-alias: its conv runs at stride 1 and a low-pass pooling downsamples
after the norm (`plugins.layers.antialias`). A block with stride 1 and unchanged width adds
its input, the branch first scaled per channel by a learned `LayerScale2d` where the network
has one, and dropped by stochastic depth while training. Module names follow timm's
`_efficientnet_blocks`, so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.attention import MapAttention

from .activations import Activation
from .antialias import AntiAlias, anti_alias
from .conv import BatchNormAct2d, make_divisible
from .drop import DropPath

__all__ = ["ConvBnAct", "EdgeResidual", "LayerScale2d", "MobileAttention", "UniversalInvertedResidual"]


class LayerScale2d(nn.Module):
    """A learned per-channel scale of a (B, C, H, W) map, `gamma` starting at `init_value`."""

    def __init__(self, channels: int, init_value: float, *, device=None, dtype=None) -> None:
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((channels,), init_value, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


def layer_scale(channels: int, init_value: float | None, **factory) -> nn.Module:
    return nn.Identity() if init_value is None else LayerScale2d(channels, init_value, **factory)


class ConvBnAct(nn.Module):
    """A conv without bias (groups: depthwise if `groups` is its width), BatchNorm with an
    optional activation, and, if strided with `aa`, anti-aliased: timm's `ConvNormAct`
    (`conv`, `bn`)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        act: Activation | None = None,
        aa: AntiAlias | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        aliased = aa is not None and stride > 1
        self.conv = nn.Conv2d(
            in_chs,
            out_chs,
            kernel_size,
            stride=1 if aliased else stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
            **factory,
        )
        self.bn = BatchNormAct2d(out_chs, act=act, **factory)
        self.aa = anti_alias(aa, out_chs, stride=stride, **factory) if aliased else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aa(self.bn(self.conv(x)))


class UniversalInvertedResidual(nn.Module):
    """Optional depthwise conv, expand, optional depthwise conv, project: the `uir` block."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        start_kernel_size: int,
        kernel_size: int,
        stride: int,
        exp_ratio: float,
        act: Activation,
        aa: AntiAlias | None = None,
        layer_scale_init: float | None = None,
        drop_path: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = stride == 1 and in_chs == out_chs
        mid_chs = make_divisible(in_chs * exp_ratio, 8, round_limit=0.9)
        if start_kernel_size:
            start_stride = 1 if kernel_size else stride
            self.dw_start = ConvBnAct(
                in_chs, in_chs, start_kernel_size, stride=start_stride, groups=in_chs, aa=aa, **factory
            )
        else:
            self.dw_start = nn.Identity()
        self.pw_exp = ConvBnAct(in_chs, mid_chs, 1, act=act, **factory)
        if kernel_size:
            self.dw_mid = ConvBnAct(
                mid_chs, mid_chs, kernel_size, stride=stride, groups=mid_chs, act=act, aa=aa, **factory
            )
        else:
            self.dw_mid = nn.Identity()
        self.pw_proj = ConvBnAct(mid_chs, out_chs, 1, **factory)  # linear: no activation
        self.layer_scale = layer_scale(out_chs, layer_scale_init, **factory)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.pw_exp(self.dw_start(x))  # (B, mid, H, W)
        x = self.pw_proj(self.dw_mid(x))  # (B, out, H / stride, W / stride)
        x = self.layer_scale(x)
        return self.drop_path(x) + shortcut if self.has_skip else x


class EdgeResidual(nn.Module):
    """A full conv expanding (strided), a pointwise conv projecting: the `er` block."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        kernel_size: int,
        stride: int,
        exp_ratio: float,
        act: Activation,
        aa: AntiAlias | None = None,
        drop_path: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = stride == 1 and in_chs == out_chs
        mid_chs = make_divisible(in_chs * exp_ratio, 8, round_limit=0.9)
        aliased = aa is not None and stride > 1
        self.conv_exp = nn.Conv2d(
            in_chs, mid_chs, kernel_size, 1 if aliased else stride, kernel_size // 2, bias=False, **factory
        )
        self.bn1 = BatchNormAct2d(mid_chs, act=act, **factory)
        self.aa = anti_alias(aa, mid_chs, stride=stride, **factory) if aliased else nn.Identity()
        self.conv_pwl = nn.Conv2d(mid_chs, out_chs, 1, bias=False, **factory)
        self.bn2 = BatchNormAct2d(out_chs, **factory)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.aa(self.bn1(self.conv_exp(x)))  # (B, mid, H / stride, W / stride)
        x = self.bn2(self.conv_pwl(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class MobileAttention(nn.Module):
    """BatchNorm, then an attention over the map's positions: the `mqa` block. `attn` is the
    network's `map` attention, given the block's heads, widths and key-value downsampling."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        attn: MapAttention,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        kv_stride: int,
        kernel_size: int,
        layer_scale_init: float | None = None,
        drop_path: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = in_chs == out_chs
        self.norm = BatchNormAct2d(in_chs, **factory)
        self.attn = attn.build(
            in_chs,
            out_dim=out_chs,
            num_heads=num_heads,
            key_dim=key_dim,
            value_dim=value_dim,
            kv_stride=kv_stride,
            kv_kernel_size=kernel_size,
            **factory,
        )
        self.layer_scale = layer_scale(out_chs, layer_scale_init, **factory)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.layer_scale(self.attn(self.norm(x)))
        return self.drop_path(x) + shortcut if self.has_skip else x
