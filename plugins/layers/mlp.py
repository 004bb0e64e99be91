"""The transformers' position-wise feed-forward networks: the plain MLP and the gated ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from .activations import Activation, activation

__all__ = ["GluMlp", "Mlp", "MlpLayer", "SwiGLU", "mlp_layer"]

MlpLayer = Literal["mlp", "swiglu", "glu"]
"""The feed-forward networks a config may name: `Mlp`, `SwiGLU`, `GluMlp`."""

NormFactory = Callable[..., nn.Module]


def _hidden_norm(norm: NormFactory | None, width: int, **factory) -> nn.Module:
    """NormFormer's norm of the hidden activations (`norm`), when asked for."""
    return norm(width, **factory) if norm is not None else nn.Identity()


class Mlp(nn.Module):
    """Position-wise feed-forward: Linear, activation (GELU unless `act_layer` names another),
    Linear, each Linear followed by dropout (timm's `fc1`, `fc2`). With `norm` (a factory of
    norms), the hidden activations are normed before `fc2` (NormFormer, as BEiT-3 does)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        drop: float,
        act_layer: Activation = "gelu",
        *,
        bias: bool = True,
        norm: NormFactory | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.fc1 = nn.Linear(dim, hidden, bias=bias, **factory)
        self.act = activation(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.norm = _hidden_norm(norm, hidden, **factory)
        self.fc2 = nn.Linear(hidden, dim, bias=bias, **factory)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class SwiGLU(nn.Module):
    """Gated feed-forward (Shazeer 2020, https://arxiv.org/abs/2002.05202):
    fc2(act(fc1_g(x)) * fc1_x(x)), SiLU unless `act_layer` names another; the gate and the
    value are two Linears of width `hidden` each (timm's `SwiGLU`, as AIMv2 has it)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        drop: float,
        act_layer: Activation = "silu",
        *,
        bias: bool = True,
        norm: NormFactory | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.fc1_g = nn.Linear(dim, hidden, bias=bias, **factory)
        self.fc1_x = nn.Linear(dim, hidden, bias=bias, **factory)
        self.act = activation(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.norm = _hidden_norm(norm, hidden, **factory)
        self.fc2 = nn.Linear(hidden, dim, bias=bias, **factory)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1_g(x)) * self.fc1_x(x)
        return self.drop2(self.fc2(self.norm(self.drop1(x))))


class GluMlp(nn.Module):
    """Gated feed-forward with one fused first Linear (`fc1`, width `hidden`): its first half
    activated gates its second, fc2(act(a) * b) over the `hidden / 2` products (timm's
    `GluMlp` with `gate_last=False`, as DINOv2-giant's SwiGLU is stored)."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        drop: float,
        act_layer: Activation = "silu",
        *,
        bias: bool = True,
        norm: NormFactory | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if hidden % 2:
            raise ValueError(f"a GLU's hidden width {hidden} is not even")
        factory = {"device": device, "dtype": dtype}
        self.fc1 = nn.Linear(dim, hidden, bias=bias, **factory)
        self.act = activation(act_layer)
        self.drop1 = nn.Dropout(drop)
        self.norm = _hidden_norm(norm, hidden // 2, **factory)
        self.fc2 = nn.Linear(hidden // 2, dim, bias=bias, **factory)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc1(x).chunk(2, dim=-1)
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(gate) * value))))


MLP_LAYERS: dict[str, type[nn.Module]] = {"mlp": Mlp, "swiglu": SwiGLU, "glu": GluMlp}


def mlp_layer(name: MlpLayer) -> type[nn.Module]:
    """The feed-forward class called `name` (see `MlpLayer`); all take the same arguments."""
    return MLP_LAYERS[name]
