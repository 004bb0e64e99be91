"""The families' initialisations, and the hook that applies one to chosen submodules."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from zoo.registry.family import reset_to_defaults

__all__ = [
    "bare_conv2d",
    "init_convs",
    "init_fan_out",
    "init_linears",
    "init_normal",
    "init_submodules",
    "trunc_normal_",
]


def init_fan_out(conv: nn.Conv2d) -> None:
    """He-normal over the fan-out counted per group (std sqrt(2 / (k * k * out / groups))),
    zero bias: how the TensorFlow mobile networks and RegNet initialise their convs."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def init_convs(root: nn.Module, *, linear: Callable[[nn.Linear], None] | None = None) -> None:
    """The CNN families' initialisation, module by module: convs by `init_fan_out`, BatchNorms
    the identity (unit weight, zero bias), linear layers by `linear` if given."""
    for module in root.modules():
        if isinstance(module, nn.Conv2d):
            init_fan_out(module)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif linear is not None and isinstance(module, nn.Linear):
            linear(module)


def bare_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    device=None,
    dtype=None,
) -> nn.Conv2d:
    """A bias-free `nn.Conv2d` whose weight is left unset for the family's own initialisation,
    which a family building with it runs right after: PyTorch's default one would draw every
    value only for it to be drawn again (a sixth of a second for ResNet-50's convs on a CPU).

    The weight is registered as any parameter is, so a hook that puts parameters elsewhere as
    they are registered (a model built to load a checkpoint) sees it.
    """
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        groups=groups,
        bias=False,
        device="meta",
        dtype=dtype,
    )
    conv.weight = nn.Parameter(torch.empty(conv.weight.shape, device=device, dtype=conv.weight.dtype))
    return conv


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> torch.Tensor:
    """`torch.nn.init.trunc_normal_` around 0, the same values drawn in one pass where it can be.

    Bounds 10 std or more from the mean, as timm's (std 0.02, bounds +-2), are never crossed
    (the chance is below 1e-23 a value), so the rejection sampling torch runs draws exactly
    `normal_`'s values, after several passes over the tensor that cost more than the draw.
    """
    if min(-a, b) >= 10 * std:
        with torch.no_grad():
            return tensor.normal_(0.0, std)
    return nn.init.trunc_normal_(tensor, std=std, a=a, b=b)


def init_linears(root: nn.Module) -> None:
    """timm's initialisation of a transformer's linear layers: truncated normal weights (std
    0.02), zero biases."""
    for module in root.modules():
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def init_normal(layer: nn.Module, std: float) -> None:
    """Normal weights of `std` and a zero bias for a linear layer (timm's CNN classifiers take
    0.01); anything else, or a layer on `meta`, is left as it is."""
    if isinstance(layer, nn.Linear) and not layer.weight.is_meta:
        nn.init.normal_(layer.weight, 0.0, std)
        nn.init.zeros_(layer.bias)


def init_submodules(model: nn.Module, names: Sequence[str], init: Callable[[nn.Module], None]) -> None:
    """The families' `init_modules` hook (`zoo.registry.family.InitialisesModules`): each
    named submodule of `model` gets PyTorch's initialisation, then the family's (`init`,
    applied to the submodule as `reset_parameters` applies it to the model)."""
    for name in names:
        module = model.get_submodule(name)
        left = reset_to_defaults(module)
        if left:
            raise ValueError(f"{name}: no initialisation is known for {', '.join(left[:3])}")
        init(module)
