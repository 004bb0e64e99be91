"""Norms with their activation, one module each, in place of a CNN's BatchNorm + act.

BatchNorm's is `conv.BatchNormAct2d`; here the batch-independent ones timm's EfficientNet
tests with, tensors named as timm's (`weight`, `bias`, EvoNorm's `v`):

- `GroupNormAct`: GroupNorm over groups of `group_size` channels, then the activation;
- `LayerNormAct2d`: LayerNorm over the channels at each position, then the activation;
- `EvoNorm2dS0`: Liu et al., "Evolving Normalization-Activation Layers", NeurIPS 2020
  (https://arxiv.org/abs/2004.02967): `x * sigmoid(v * x) / group_std(x) * weight + bias`,
  its own activation (the network's is not used); without one, only the affine map.

`norm_act` builds any of them, BatchNorm included, by `NormLayer` name.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .activations import Activation, activation
from .conv import BatchNormAct2d

__all__ = ["EvoNorm2dS0", "GroupNormAct", "LayerNormAct2d", "NormLayer", "norm_act"]

NormLayer = Literal["batchnorm", "groupnorm", "layernorm", "evonorm_s0"]


def _activation(act: Activation | None) -> nn.Module:
    return activation(act, inplace=True) if act is not None else nn.Identity()


class GroupNormAct(nn.GroupNorm):
    def __init__(self, channels: int, *, group_size: int, act: Activation | None = None, eps: float = 1e-5,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(channels // group_size, channels, eps=eps, device=device, dtype=dtype)
        self.act = _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class LayerNormAct2d(nn.LayerNorm):
    def __init__(self, channels: int, *, act: Activation | None = None, eps: float = 1e-5, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(channels, eps=eps, device=device, dtype=dtype)
        self.act = _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return self.act(x.permute(0, 3, 1, 2))


class EvoNorm2dS0(nn.Module):
    def __init__(self, channels: int, *, group_size: int, apply_act: bool = True, eps: float = 1e-5,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.groups, self.eps = channels // group_size, eps
        self.weight = nn.Parameter(torch.ones(channels, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(channels, device=device, dtype=dtype))
        self.v = nn.Parameter(torch.ones(channels, device=device, dtype=dtype)) if apply_act else None

    def group_std(self, x: torch.Tensor) -> torch.Tensor:
        """Each group's standard deviation over its channels and positions, per channel."""
        batch, channels, height, width = x.shape
        grouped = x.reshape(batch, self.groups, channels // self.groups, height, width)
        std = grouped.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(self.eps).sqrt()
        return std.to(x.dtype).expand(grouped.shape).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is not None:
            x = x * (x * self.v.view(1, -1, 1, 1)).sigmoid() / self.group_std(x)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def norm_act(
    kind: NormLayer,
    channels: int,
    act: Activation | None = None,
    *,
    eps: float = 1e-5,
    group_size: int = 8,
    device=None,
    dtype=None,
) -> nn.Module:
    """The norm `kind` over `channels` followed by `act` (None: none); `group_size` for the
    grouped ones."""
    factory = {"device": device, "dtype": dtype}
    if kind == "batchnorm":
        return BatchNormAct2d(channels, act=act, eps=eps, **factory)
    if kind == "groupnorm":
        return GroupNormAct(channels, group_size=group_size, act=act, eps=eps, **factory)
    if kind == "layernorm":
        return LayerNormAct2d(channels, act=act, eps=eps, **factory)
    return EvoNorm2dS0(channels, group_size=group_size, apply_act=act is not None, eps=eps, **factory)
