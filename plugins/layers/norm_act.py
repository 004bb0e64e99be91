"""A network's choice of normalisation and activation, and EvoNorm.

Liu et al., "Evolving Normalization-Activation Layers", NeurIPS 2020.
https://arxiv.org/abs/2004.02967
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .activations import Activation
from .conv import BatchNormAct2d

__all__ = ["EvoNorm2dS0a", "NormAct", "NormLayer"]

NormLayer = Literal["batchnorm", "evonorm_s0a"]
"""The norms a config may name (timm's names)."""


class EvoNorm2dS0a(nn.Module):
    """EvoNorm-S0 as timm's `EvoNorm2dS0a`: `x * sigmoid(v * x) / std(x)` per group of channels,
    then an affine map; the norm is its own activation (`v`; none without `apply_act`)."""

    def __init__(
        self,
        num_features: int,
        *,
        group_size: int = 16,
        apply_act: bool = True,
        eps: float = 1e-3,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if num_features % group_size:
            raise ValueError(f"{num_features} channels do not split into groups of {group_size}")
        factory = {"device": device, "dtype": dtype}
        self.groups = num_features // group_size
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features, **factory))
        self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        self.v = nn.Parameter(torch.ones(num_features, **factory)) if apply_act else None

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        if self.v is not None:
            nn.init.ones_(self.v)

    def group_std(self, x: torch.Tensor) -> torch.Tensor:
        """The standard deviation over each group's channels and positions, per channel."""
        batch, channels, height, width = x.shape
        grouped = x.reshape(batch, self.groups, channels // self.groups, height, width)
        std = grouped.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(self.eps).sqrt()
        return std.to(x.dtype).expand(grouped.shape).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        std = self.group_std(x)  # of the input, before the gate (S0a)
        if self.v is not None:
            x = x * (x * self.v.view(shape).to(x.dtype)).sigmoid()
        return (x / std) * self.weight.view(shape).to(x.dtype) + self.bias.view(shape).to(x.dtype)


@dataclass(frozen=True)
class NormAct:
    """How a network normalises and activates after its convs: BatchNorm and `act`, or EvoNorm
    (its own activation, `group_size` channels per group of statistics)."""

    norm: NormLayer = "batchnorm"
    act: Activation = "relu"
    group_size: int = 16

    def __call__(self, channels: int, *, act: bool = True, device=None, dtype=None) -> nn.Module:
        if self.norm == "evonorm_s0a":
            return EvoNorm2dS0a(
                channels, group_size=self.group_size, apply_act=act, device=device, dtype=dtype
            )
        return BatchNormAct2d(channels, act=self.act if act else None, device=device, dtype=dtype)
