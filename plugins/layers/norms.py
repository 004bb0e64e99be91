"""Token norms by name, as configs name them: LayerNorm, or RMSNorm (no centring, no bias)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Literal

from torch import nn

__all__ = ["NormFactory", "NormLayer", "norm_factory"]

NormLayer = Literal["layernorm", "rmsnorm"]
"""The token norms a config may name."""

NormFactory = Callable[..., nn.Module]
"""`factory(width, device=None, dtype=None)` -> a norm over the last dimension."""


def norm_factory(name: NormLayer, eps: float) -> NormFactory:
    """The norm called `name` with this eps, as a factory of modules of any width.

    RMSNorm (Zhang and Sennrich 2019, https://arxiv.org/abs/1910.07467) scales by the root
    mean square alone: x / sqrt(mean(x^2) + eps) * weight.
    """
    if name == "rmsnorm":
        return partial(nn.RMSNorm, eps=eps)
    return partial(nn.LayerNorm, eps=eps)
