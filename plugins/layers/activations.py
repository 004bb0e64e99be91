"""Activations by name, as configs name them (timm's names)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "Activation", "GELUTanh", "QuickGELU", "activation"]


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU, x * sigmoid(1.702 x): the OpenAI weights were
    trained with it, and exact GELU shifts their outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class GELUTanh(nn.GELU):
    """GELU by its tanh approximation, as the big_vision models (SigLIP) were trained."""

    def __init__(self) -> None:
        super().__init__(approximate="tanh")


Activation = Literal[
    "relu", "relu6", "silu", "hard_swish", "gelu", "quick_gelu", "sigmoid", "hard_sigmoid", "gelu_tanh"
]
"""The activations a config may name (timm's names)."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,  # also called swish
    "hard_swish": nn.Hardswish,  # x * relu6(x + 3) / 6
    "gelu": nn.GELU,
    "quick_gelu": QuickGELU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6
    "gelu_tanh": GELUTanh,
}

_NEVER_IN_PLACE = (nn.GELU, QuickGELU, nn.Sigmoid)  # GELUTanh is a GELU


def activation(name: Activation, *, inplace: bool = False) -> nn.Module:
    """The activation module called `name` (see `ACTIVATIONS`), in place where it can be."""
    cls = ACTIVATIONS[name]
    return cls(inplace=True) if inplace and cls not in _NEVER_IN_PLACE else cls()
