"""The transformers' position-wise feed-forward network."""

from __future__ import annotations

import torch
from torch import nn

from .activations import Activation, activation

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """Position-wise feed-forward: Linear, activation (GELU unless `act_layer` names another),
    Linear, each Linear followed by dropout (timm's `fc1`, `fc2`)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        drop: float,
        act_layer: Activation = "gelu",
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.act = activation(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
