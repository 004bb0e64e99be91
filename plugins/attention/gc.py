"""Global context attention: SE whose squeeze is an attention-weighted sum over positions.

Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", ICCV
Workshops 2019. https://arxiv.org/abs/1904.11492

Context modelling: a 1x1 conv scores every position, a softmax over positions weights them,
and their weighted sum is one context vector per image. Transform: a bottleneck MLP of 1x1
convs (reduced width `rd_channels`) with LayerNorm and an activation between them; a gate
in [0, 1] scales each channel of the input by it (GCNet's "scale" fusion, as timm's
`GlobalContext` builds it by default). Tensor names follow timm's (`conv_attn`,
`mlp_scale.fc1`, `mlp_scale.norm`, `mlp_scale.fc2`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from ..layers import Activation, activation, make_divisible
from ..layers.norm_act import LayerNormAct2d

__all__ = ["GlobalContext"]


class ContextMlp(nn.Module):
    """1x1 conv, LayerNorm over channels, activation, 1x1 conv (timm's `ConvMlp`)."""

    def __init__(self, channels: int, hidden: int, act: Activation, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True, **factory)
        self.norm = LayerNormAct2d(hidden, eps=1e-6, **factory)
        self.act = activation(act)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,
        rd_ratio: Annotated[float, Field(gt=0.0)] = 1 / 8,
        act: Activation = "relu",
        gate: Literal["sigmoid", "hard_sigmoid"] = "sigmoid",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden = rd_channels if rd_channels is not None else make_divisible(channels * rd_ratio, 1)
        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1, bias=True, **factory)
        self.mlp_scale = ContextMlp(channels, hidden, act, **factory)
        self.gate = activation(gate)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, 1, 1): the positions summed, weighted by a softmax of their scores."""
        batch, channels, height, width = x.shape
        weights = self.conv_attn(x).reshape(batch, 1, height * width).softmax(dim=-1).unsqueeze(3)
        return (x.reshape(batch, 1, channels, height * width) @ weights).view(batch, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.mlp_scale(self.context(x)))
