"""Small layers shared by several model families."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

import torch
from pydantic import BaseModel, ValidationError
from torch import nn
from torch.utils.checkpoint import checkpoint

from zoo.registry.family import reset_to_defaults

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BatchNormAct2d",
    "ConvNormAct",
    "DropPath",
    "GlobalPool",
    "LSTMEncoder",
    "PoolType",
    "activation",
    "attention_received",
    "drop_path_rates",
    "factory_of",
    "init_fan_out",
    "init_linears",
    "init_submodules",
    "make_divisible",
    "reconfigured",
    "run_blocks",
    "tokens_as_grid",
]

Config = TypeVar("Config", bound=BaseModel)


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.0
) -> int:
    """Round `value` to the nearest multiple of `divisor`, and to at least `min_value`; if that
    loses more than `1 - round_limit` of `value`, one `divisor` more.

    timm's two roundings, so that widths match published checkpoints: its SE modules keep
    `round_limit=0` (256 channels / 16 -> 16, 64 / 16 rounded to 8 -> 8), its mobile
    networks' channel counts take `round_limit=0.9` (18 -> 16 loses 11%, so 24).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


Activation = Literal["relu", "relu6", "silu", "hard_swish", "gelu", "sigmoid", "hard_sigmoid"]
"""The activations a config may name (timm's names)."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,  # also called swish
    "hard_swish": nn.Hardswish,  # x * relu6(x + 3) / 6
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,  # relu6(x + 3) / 6
}


def activation(name: str, *, inplace: bool = False) -> nn.Module:
    """The activation module called `name` (see `ACTIVATIONS`), in place where it can be."""
    cls = ACTIVATIONS[name]
    return cls(inplace=True) if inplace and cls not in (nn.GELU, nn.Sigmoid) else cls()


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm followed by an activation, one module as in timm: the norm's tensors keep
    their names (`bn1.weight`, ...), the activation has none."""

    def __init__(
        self,
        num_features: int,
        *,
        act: str | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, device=device, dtype=dtype)
        self.act = activation(act, inplace=True) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


PoolType = Literal["avg", "max", "avgmax", "catavgmax", ""]
"""timm's global poolings of a CNN's last feature map; '' keeps the map."""


class GlobalPool(nn.Module):
    """Global pooling of a `(B, C, H, W)` map: average, max, their mean (`avgmax`), both
    concatenated (`catavgmax`, 2C channels), or none (''); flattened to `(B, C)` if asked."""

    def __init__(self, pool_type: PoolType = "avg", *, flatten: bool = True) -> None:
        super().__init__()
        self.pool_type = pool_type
        self.flatten = flatten and pool_type != ""

    @property
    def feat_mult(self) -> int:
        """How many times the input's channels the output has."""
        return 2 if self.pool_type == "catavgmax" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "":
            return x
        keep = not self.flatten
        if self.pool_type == "avg":
            return x.mean((2, 3), keepdim=keep)
        if self.pool_type == "max":
            return x.amax((2, 3), keepdim=keep)
        average, maximum = x.mean((2, 3), keepdim=keep), x.amax((2, 3), keepdim=keep)
        if self.pool_type == "avgmax":
            return 0.5 * (average + maximum)
        return torch.cat((average, maximum), dim=1)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}, flatten={self.flatten}"


def init_fan_out(conv: nn.Conv2d) -> None:
    """He-normal over the fan-out counted per group (std sqrt(2 / (k * k * out / groups))),
    zero bias: how the TensorFlow mobile networks and RegNet initialise their convs."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def drop_path_rates(total_rate: float, num_blocks: int) -> list[float]:
    """Stochastic-depth rates rising linearly from 0 to `total_rate` over the blocks."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [total_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def run_blocks(blocks: Iterable[nn.Module], x: torch.Tensor, *, checkpointed: bool) -> torch.Tensor:
    """Run blocks in order; `checkpointed` (and gradients on), each through
    `torch.utils.checkpoint`: its activations are recomputed in the backward pass rather
    than kept."""
    recompute = checkpointed and torch.is_grad_enabled()
    if not recompute and isinstance(blocks, nn.Module):
        return blocks(x)  # called as a module, so that its hooks (and module-level counts) see it
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
    return x


def tokens_as_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, h*w, D) -> (B, D, h, w)."""
    return tokens.reshape(tokens.shape[0], height, width, -1).permute(0, 3, 1, 2).contiguous()


def attention_received(weights: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The mean attention each position of an (h, w) map receives, over heads and queries:
    (B, heads, h * w, h * w) weights -> (B, h, w), summing to 1 over the map."""
    return weights.mean(dim=(1, 2)).reshape(weights.shape[0], height, width)


def reconfigured(config: Config, **changes: Any) -> Config:
    """A frozen config with `changes`, checked as the config checks itself.

    Raises:
        ValueError: The changes do not fit the config, in one line.
    """
    try:
        return type(config).model_validate({**dict(config), **changes})
    except ValidationError as error:
        reasons = "; ".join(item["msg"].removeprefix("Value error, ") for item in error.errors())
        raise ValueError(reasons) from None


def factory_of(model: nn.Module) -> dict[str, Any]:
    """`device` and `dtype` of a model's parameters, for modules made to replace its own."""
    first = next(model.parameters())
    return {"device": first.device, "dtype": first.dtype}


def init_linears(root: nn.Module) -> None:
    """timm's initialisation of a transformer's linear layers: truncated normal weights (std
    0.02), zero biases."""
    for module in root.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


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


class ConvNormAct(nn.Module):
    """Conv without bias, then BN with an optional ReLU (timm's `conv`/`bn` names); `dilation`
    widens the kernel, padded to keep the size."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        act: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride, padding, dilation, groups=groups, bias=False, **factory
        )
        self.bn = BatchNormAct2d(out_chs, act="relu" if act else None, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples while training.

    Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    https://arxiv.org/abs/1603.09382
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(mask_shape).bernoulli_(keep_prob)
        return x * mask / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class LSTMEncoder(nn.Module):
    """An LSTM over a padded batch: `(B, T, F)` and lengths -> every step's output and the
    final states.

    Padded steps are skipped (packed sequences), so a backward LSTM starts at each
    sequence's own last element; their outputs are zeros. Outputs are `(B, T, output_size)`
    with `output_size = hidden_size * (2 if bidirectional else 1)`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.output_size = hidden_size * (2 if bidirectional else 1)
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            device=device,
            dtype=dtype,
        )

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """-> outputs (B, T, output_size), (h_n, c_n) each (layers * directions, B, hidden_size)."""
        if lengths is None:
            return self.lstm(x)
        # packing needs lengths on the CPU and at least one step; empty sequences are masked later
        lengths = torch.as_tensor(lengths).to("cpu", torch.int64).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, state = self.lstm(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
        return outputs, state
