"""Norms with their activation, one module each, in place of a CNN's BatchNorm + act.

BatchNorm's is `conv.BatchNormAct2d`; here the batch-independent ones timm's networks use,
tensors named as timm's (`weight`, `bias`, EvoNorm's `v`):

- `GroupNormAct`: GroupNorm over groups of `group_size` channels, then the activation;
- `LayerNormAct2d`: LayerNorm over the channels at each position, then the activation;
- `EvoNorm2dS0`, `EvoNorm2dS0a`: Liu et al., "Evolving Normalization-Activation Layers",
  NeurIPS 2020 (https://arxiv.org/abs/2004.02967): `x * sigmoid(v * x) / group_std(x) * weight
  + bias`, their own activation (the network's is not used). Without one, S0 is only the affine
  map and S0a still divides by the group's standard deviation.

`norm_act` builds any of them, BatchNorm included, by `NormLayer` name; `NormAct` is a network's
choice of one, called per conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .activations import Activation, activation
from .conv import BatchNormAct2d

__all__ = [
    "EvoNorm2dS0",
    "EvoNorm2dS0a",
    "GroupNormAct",
    "LayerNormAct2d",
    "NormAct",
    "NormLayer",
    "norm_act",
]

NormLayer = Literal["batchnorm", "groupnorm", "layernorm", "evonorm_s0", "evonorm_s0a"]
"""The norms a config may name (timm's names)."""


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


class _EvoNorm(nn.Module):
    """EvoNorm's parameters and group statistics; the two variants differ in `forward`."""

    def __init__(self, channels: int, *, group_size: int, apply_act: bool = True, eps: float = 1e-5,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        if channels % group_size:
            raise ValueError(f"{channels} channels do not split into groups of {group_size}")
        factory = {"device": device, "dtype": dtype}
        self.groups, self.eps = channels // group_size, eps
        self.weight = nn.Parameter(torch.ones(channels, **factory))
        self.bias = nn.Parameter(torch.zeros(channels, **factory))
        self.v = nn.Parameter(torch.ones(channels, **factory)) if apply_act else None

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        if self.v is not None:
            nn.init.ones_(self.v)

    def group_std(self, x: torch.Tensor) -> torch.Tensor:
        """Each group's standard deviation over its channels and positions, per channel."""
        batch, channels, height, width = x.shape
        grouped = x.reshape(batch, self.groups, channels // self.groups, height, width)
        std = grouped.float().var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(self.eps).sqrt()
        return std.to(x.dtype).expand(grouped.shape).reshape(x.shape)

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        return x * self.weight.view(shape).to(x.dtype) + self.bias.view(shape).to(x.dtype)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return x * (x * self.v.view(1, -1, 1, 1).to(x.dtype)).sigmoid()


class EvoNorm2dS0(_EvoNorm):
    """timm's `EvoNorm2dS0`: gated and divided by the group's deviation only with `v`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is not None:
            x = self.gate(x) / self.group_std(x)
        return self.affine(x)


class EvoNorm2dS0a(_EvoNorm):
    """timm's `EvoNorm2dS0a` (default eps 1e-3): always divided by the input's group deviation."""

    def __init__(self, channels: int, *, group_size: int = 16, apply_act: bool = True, eps: float = 1e-3,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(
            channels, group_size=group_size, apply_act=apply_act, eps=eps, device=device, dtype=dtype
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = self.group_std(x)  # of the input, before the gate
        if self.v is not None:
            x = self.gate(x)
        return self.affine(x / std)


def norm_act(
    kind: NormLayer,
    channels: int,
    act: Activation | None = None,
    *,
    eps: float | None = None,
    group_size: int = 8,
    device=None,
    dtype=None,
) -> nn.Module:
    """The norm `kind` over `channels` followed by `act` (None: none); `group_size` for the
    grouped ones; `eps` None: the norm's own default (1e-5, EvoNorm-S0a's 1e-3)."""
    factory = {"device": device, "dtype": dtype}
    if kind == "evonorm_s0a":
        eps = 1e-3 if eps is None else eps
        return EvoNorm2dS0a(channels, group_size=group_size, apply_act=act is not None, eps=eps, **factory)
    eps = 1e-5 if eps is None else eps
    if kind == "batchnorm":
        return BatchNormAct2d(channels, act=act, eps=eps, **factory)
    if kind == "groupnorm":
        return GroupNormAct(channels, group_size=group_size, act=act, eps=eps, **factory)
    if kind == "layernorm":
        return LayerNormAct2d(channels, act=act, eps=eps, **factory)
    return EvoNorm2dS0(channels, group_size=group_size, apply_act=act is not None, eps=eps, **factory)


@dataclass(frozen=True)
class NormAct:
    """How a network normalises and activates after its convs: its norm, the activation the
    norm is followed by (EvoNorm is its own), and `group_size` channels per group of statistics."""

    norm: NormLayer = "batchnorm"
    act: Activation = "relu"
    group_size: int = 16

    def __call__(self, channels: int, *, act: bool = True, device=None, dtype=None) -> nn.Module:
        activated = self.act if act else None
        return norm_act(
            self.norm, channels, activated, group_size=self.group_size, device=device, dtype=dtype
        )
