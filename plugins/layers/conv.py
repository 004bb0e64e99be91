"""Convolutions with their norm and activation, and the rounding of their widths."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .activations import Activation, activation

__all__ = ["BatchNormAct2d", "ConvNormAct", "make_divisible"]


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.0
) -> int:
    """Round `value` to the nearest multiple of `divisor`, and to at least `min_value`; if that
    loses more than `1 - round_limit` of `value`, one `divisor` more.

    timm's two roundings, so that widths match published checkpoints: its SE modules keep
    `round_limit=0` (256 channels / 16 -> 16, 64 / 16 rounded to 8 -> 8), its mobile
    networks' channel counts take `round_limit=0.9` (18 -> 16 loses 11%, so 24).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm followed by an activation, one module as in timm: the norm's tensors keep
    their names (`bn1.weight`, ...), the activation has none."""

    def __init__(
        self,
        num_features: int,
        *,
        act: Activation | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, device=device, dtype=dtype)
        self.act = activation(act, inplace=True) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class ConvNormAct(nn.Module):
    """Conv without bias, then BN with an optional ReLU (timm's `conv`/`bn` names); `dilation`
    widens the kernel, padded to keep the size.

    `norm_act`, if given, builds the norm and activation instead (`(channels, act=...)` ->
    module, such as `NormAct`); with `anti_alias`, a strided conv runs at stride 1 and a 2x2
    average pool strides after its norm (the CLIP ResNets' downsampling).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        act: bool = True,
        norm_act: Callable[..., nn.Module] | None = None,
        anti_alias: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        padding = dilation * (kernel_size - 1) // 2
        pooled = anti_alias and stride > 1
        self.conv = nn.Conv2d(
            in_chs,
            out_chs,
            kernel_size,
            1 if pooled else stride,
            padding,
            dilation,
            groups=groups,
            bias=False,
            **factory,
        )
        if norm_act is None:
            self.bn = BatchNormAct2d(out_chs, act="relu" if act else None, **factory)
        else:
            self.bn = norm_act(out_chs, act=act, **factory)
        self.aa = nn.AvgPool2d(stride) if pooled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.aa is None else self.aa(x)
