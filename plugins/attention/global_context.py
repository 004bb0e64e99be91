"""Global context attention (GCNet), a channel attention.

Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
ICCVW 2019. https://arxiv.org/abs/1904.11492

Context modelling: a 1x1 conv scores every position (`conv_attn`), a softmax over the map
turns the scores into weights, and the weighted sum of the positions is one context vector
per image (where SE takes the plain mean). Transform: a bottleneck MLP of 1x1 convs with
LayerNorm and ReLU in between. Fusion: the transformed context is added to every position
(`fuse="add"`, the paper's choice, `mlp_add`), multiplies it through a sigmoid gate
(`"scale"`, `mlp_scale`), or both. The names are timm's (its `gca` is the additive form).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from ..layers import Activation, activation, make_divisible
from ..layers.norm_act import LayerNormAct2d

__all__ = ["ContextMlp", "GlobalContext"]


class ContextMlp(nn.Module):
    """1x1 conv to the reduced width, LayerNorm, activation, 1x1 conv back (`fc1`, `norm`, `fc2`)."""

    def __init__(self, channels: int, hidden: int, act: Activation, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, **factory)
        self.norm = LayerNormAct2d(hidden, eps=1e-6, **factory)
        self.act = activation(act, inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class GlobalContext(nn.Module):
    def __init__(
        self,
        channels: int,
        *,
        rd_channels: int | None = None,
        fuse: Literal["add", "scale", "both"] = "add",
        rd_ratio: Annotated[float, Field(gt=0.0)] = 1 / 8,
        rd_divisor: Annotated[int, Field(ge=1)] = 1,
        act: Activation = "relu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        hidden = rd_channels if rd_channels is not None else make_divisible(channels * rd_ratio, rd_divisor)
        self.conv_attn = nn.Conv2d(channels, 1, kernel_size=1, **factory)
        self.mlp_add = ContextMlp(channels, hidden, act, **factory) if fuse in ("add", "both") else None
        self.mlp_scale = ContextMlp(channels, hidden, act, **factory) if fuse in ("scale", "both") else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal position scores (fan in); the additive transform starts at zero, so that
        the block starts as it would without it (timm's)."""
        if self.conv_attn.weight.is_meta:
            return
        nn.init.kaiming_normal_(self.conv_attn.weight, mode="fan_in", nonlinearity="relu")
        if self.mlp_add is not None:
            nn.init.zeros_(self.mlp_add.fc2.weight)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """The attention-weighted mean of the positions: (B, C, H, W) -> (B, C, 1, 1)."""
        batch, channels, height, width = x.shape
        weights = self.conv_attn(x).reshape(batch, 1, height * width, 1).softmax(dim=2)
        return (x.reshape(batch, 1, channels, height * width) @ weights).view(batch, channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.context(x)
        if self.mlp_scale is not None:
            x = x * torch.sigmoid(self.mlp_scale(context))
        if self.mlp_add is not None:
            x = x + self.mlp_add(context)
        return x
