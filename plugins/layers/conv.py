"""Convolutions with their norm and activation, and the rounding of their widths."""

from __future__ import annotations

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
    widens the kernel, padded to keep the size."""

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
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride, padding, dilation, groups=groups, bias=False, **factory
        )
        self.bn = BatchNormAct2d(out_chs, act="relu" if act else None, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))
