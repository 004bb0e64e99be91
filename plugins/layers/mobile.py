"""Mobile inverted bottleneck blocks and the trunk they form: what EfficientNet and
MobileNetV3 share.

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
https://arxiv.org/abs/1801.04381
Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019.
https://arxiv.org/abs/1807.11626

A network is a strided 3x3 stem conv, stages of blocks, and a head of its own. A stage is
written as block definitions (`BlockDef`: kind, repeats, kernel, stride, expansion, output
width, SE ratio, activation); a channel multiplier scales every width (`round_channels`)
and a depth multiplier every stage's repeats (`scale_depth`). Three kinds of block:

- `ds`, depthwise-separable: depthwise conv, BN + act, attention, pointwise conv, BN;
- `ir`, inverted residual (MBConv): pointwise expansion, BN + act, depthwise conv, BN + act,
  attention, pointwise projection, BN (a linear bottleneck);
- `cn`: conv, BN + act.

A `ds` or `ir` block with stride 1 and unchanged width adds its input, the branch dropped
by stochastic depth while training. The attention slot (`se`) holds any channel attention,
where the definition has an SE ratio, at the reduced width the family's rule gives
(`ReducedWidth`). Module names follow timm's `_efficientnet_blocks`, so its checkpoints load
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from zoo.attention import ChannelAttention
from zoo.registry.family import feature_take_indices

from .activations import Activation
from .blocks import run_blocks
from .conv import BatchNormAct2d, make_divisible
from .drop import DropPath
from .init import init_convs

__all__ = [
    "BlockDef",
    "ConvBnAct",
    "DepthwiseSeparable",
    "InvertedResidual",
    "MobileTrunk",
    "ReducedWidth",
    "round_channels",
    "scale_depth",
]


@dataclass(frozen=True)
class BlockDef:
    """`repeats` blocks of one kind; only the first has `stride`. `act` None: the network's."""

    kind: Literal["ds", "ir", "cn"]
    repeats: int
    kernel_size: int
    stride: int
    out_chs: int
    exp_ratio: float = 1.0
    se_ratio: float = 0.0
    act: Activation | None = None


ReducedWidth = Callable[[int, BlockDef], int]
"""A family's rule for its attention's reduced width: (width the attention sees, the block's
definition) -> `rd_channels`."""


def round_channels(channels: float, multiplier: float = 1.0, divisor: int = 8) -> int:
    """A width scaled by the channel multiplier, rounded as timm rounds it: to the nearest
    multiple of `divisor`, and never more than 10% below."""
    return make_divisible(channels * multiplier, divisor, round_limit=0.9)


def expanded_width(in_chs: int, exp_ratio: float) -> int:
    """The width inside an inverted residual: the input's, expanded and rounded to multiples of 8."""
    return make_divisible(in_chs * exp_ratio, 8, round_limit=0.9)


def scale_depth(stage: Sequence[BlockDef], multiplier: float) -> list[BlockDef]:
    """One definition per block of a stage whose repeats are scaled by `multiplier`.

    As in EfficientNet: the stage's total is rounded up, then shared out in proportion from
    the last definition back, so that the first one is the least likely to grow.
    """
    remaining = sum(definition.repeats for definition in stage)
    remaining_scaled = math.ceil(remaining * multiplier)
    repeats = []
    for definition in reversed(stage):
        scaled = max(1, round(definition.repeats / remaining * remaining_scaled))
        repeats.append(scaled)
        remaining -= definition.repeats
        remaining_scaled -= scaled
    return [d for d, count in zip(stage, reversed(repeats), strict=True) for _ in range(count)]


def conv(
    in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1, **factory
) -> nn.Conv2d:
    """A conv without bias, padded to keep the size at stride 1 (timm's symmetric padding)."""
    return nn.Conv2d(
        in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=False, **factory
    )


class DepthwiseSeparable(nn.Module):
    """Depthwise conv, attention, pointwise conv: the `ds` block (MobileNetV1's, and the first
    block of EfficientNet and MobileNetV3)."""

    def __init__(
        self, in_chs, out_chs, *, kernel_size, stride, act, se, drop_path, device=None, dtype=None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = stride == 1 and in_chs == out_chs
        self.conv_dw = conv(in_chs, in_chs, kernel_size, stride, groups=in_chs, **factory)
        self.bn1 = BatchNormAct2d(in_chs, act=act, **factory)
        self.se = se if se is not None else nn.Identity()
        self.conv_pw = conv(in_chs, out_chs, 1, **factory)
        self.bn2 = BatchNormAct2d(out_chs, **factory)
        self.drop_path = DropPath(drop_path)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.se(self.bn1(self.conv_dw(x)))
        x = self.bn2(self.conv_pw(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class InvertedResidual(nn.Module):
    """Expand, depthwise conv, attention, project: the `ir` block (MBConv)."""

    def __init__(
        self, in_chs, mid_chs, out_chs, *, kernel_size, stride, act, se, drop_path, device=None, dtype=None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.has_skip = stride == 1 and in_chs == out_chs
        self.conv_pw = conv(in_chs, mid_chs, 1, **factory)
        self.bn1 = BatchNormAct2d(mid_chs, act=act, **factory)
        self.conv_dw = conv(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs, **factory)
        self.bn2 = BatchNormAct2d(mid_chs, act=act, **factory)
        self.se = se if se is not None else nn.Identity()
        self.conv_pwl = conv(mid_chs, out_chs, 1, **factory)
        self.bn3 = BatchNormAct2d(out_chs, **factory)  # linear bottleneck: no activation
        self.drop_path = DropPath(drop_path)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.bn1(self.conv_pw(x))  # (B, mid, H, W)
        x = self.se(self.bn2(self.conv_dw(x)))  # (B, mid, H / stride, W / stride)
        x = self.bn3(self.conv_pwl(x))
        return self.drop_path(x) + shortcut if self.has_skip else x


class ConvBnAct(nn.Module):
    """Conv, BN + act: the `cn` block (MobileNetV3's last 1x1 stage)."""

    def __init__(self, in_chs, out_chs, *, kernel_size, stride, act, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.conv = conv(in_chs, out_chs, kernel_size, stride, **factory)
        self.bn1 = BatchNormAct2d(out_chs, act=act, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn1(self.conv(x))


@dataclass(frozen=True)
class TrunkSpec:
    """How a family builds its trunk: what its config and its rules fix."""

    in_chans: int
    stem_size: int
    stages: Sequence[Sequence[BlockDef]]
    width: Callable[[int], int]  # a definition's width, scaled by the channel multiplier
    depth_multiplier: float
    act: Activation
    attn: ChannelAttention | None
    reduced_width: ReducedWidth
    drop_path_rate: float


class MobileTrunk(nn.Module):
    """The stem and the stages of an EfficientNet or a MobileNetV3, with what training code
    asks of them (timm's interface); a subclass adds its head.

    `feature_info` is one dict per output stride (timm's `module`, `num_chs`, `reduction`,
    `stage`): each stage output before a stride and the last one.
    """

    classifier_names: tuple[str, ...] = ("classifier",)
    first_conv = "conv_stem"

    def build_trunk(self, spec: TrunkSpec, **factory) -> int:
        """Set `conv_stem`, `bn1`, `blocks` and `feature_info`; return the trunk's output width."""
        self.grad_checkpointing = False
        self.conv_stem = conv(spec.in_chans, spec.stem_size, 3, stride=2, **factory)
        self.bn1 = BatchNormAct2d(spec.stem_size, act=spec.act, **factory)
        stages = [scale_depth(stage, spec.depth_multiplier) for stage in spec.stages]
        total = sum(map(len, stages))
        rates = iter(spec.drop_path_rate * index / total for index in range(total))  # timm's: / total
        width, built = spec.stem_size, []
        for stage in stages:
            blocks = []
            for position, definition in enumerate(stage):
                stride = definition.stride if position == 0 else 1
                blocks.append(self.block(spec, definition, width, stride, next(rates), **factory))
                width = spec.width(definition.out_chs)
            built.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*built)
        self.feature_info: list[dict[str, Any]] = stage_outputs(stages, spec)
        return width

    @staticmethod
    def block(spec: TrunkSpec, definition: BlockDef, in_chs: int, stride: int, drop_path: float, **factory):
        out_chs, act = spec.width(definition.out_chs), definition.act or spec.act
        shape = {"kernel_size": definition.kernel_size, "stride": stride, "act": act}
        if definition.kind == "cn":
            return ConvBnAct(in_chs, out_chs, **shape, **factory)

        def attention(width: int) -> nn.Module | None:
            if spec.attn is None or not definition.se_ratio:
                return None
            return spec.attn.build(width, rd_channels=spec.reduced_width(width, definition), **factory)

        if definition.kind == "ds":
            return DepthwiseSeparable(
                in_chs, out_chs, **shape, se=attention(in_chs), drop_path=drop_path, **factory
            )
        mid_chs = expanded_width(in_chs, definition.exp_ratio)
        return InvertedResidual(
            in_chs, mid_chs, out_chs, **shape, se=attention(mid_chs), drop_path=drop_path, **factory
        )

    def reset_parameters(self) -> None:
        """The initialisation of the TensorFlow reference: convs normal with std
        sqrt(2 / fan_out) (fan_out per group), unit BatchNorm, uniform linear layers."""
        if self.conv_stem.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        init_convs(self, linear=init_linear)

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh model's is, e.g. after a new `num_classes`."""
        if isinstance(self.classifier, nn.Linear):
            init_linear(self.classifier)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def new_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """A freshly initialised classifier where the model's parameters are."""
        if num_classes <= 0:
            return nn.Identity()
        weight = self.conv_stem.weight
        classifier = nn.Linear(in_features, num_classes, device=weight.device, dtype=weight.dtype)
        if not weight.is_meta:
            init_linear(classifier)
        return classifier

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Parameters to exempt from weight decay by name: none. As in timm, optimisers exempt
        norms and biases by their shape (one dimension), which needs no names."""
        return set()

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.blocks for block in stage]

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map (B, width, H/32, W/32)."""
        x = self.bn1(self.conv_stem(x))
        for stage in self.blocks:  # stage by stage: `feature_info` names the stages' outputs
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
        return x

    def finish_features(self, trunk: torch.Tensor) -> torch.Tensor:
        """What `forward_features` applies after the trunk (a subclass's head conv); none here."""
        return trunk

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of `feature_info` at `indices`, (B, C, H, W) each, as timm gives
        them; `norm` does nothing (the trunk has no final norm). With `intermediates_only`
        the stages after the last one asked for are not run.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': this network gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.feature_info), indices)
        wanted = {self.feature_info[index]["module"] for index in take}
        last_stage = self._stage_of(max(take))
        x = self.bn1(self.conv_stem(x))
        intermediates = [x] if "bn1" in wanted else []
        for number, stage in enumerate(self.blocks):
            if intermediates_only and number > last_stage:
                break
            x = run_blocks(stage, x, checkpointed=self.grad_checkpointing)
            if f"blocks.{number}" in wanted:
                intermediates.append(x)
        return intermediates if intermediates_only else (self.finish_features(x), intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the stages up to
        the last one asked for, and no head (`head_names`, the classifier) if `prune_head`."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.blocks = self.blocks[: self._stage_of(max(take)) + 1]
        if prune_head:
            for name in self.head_names:
                setattr(self, name, nn.Identity())
            self.reset_classifier(0)
        return take

    head_names: tuple[str, ...] = ()
    """The modules after the trunk that a subclass's head adds (a head conv and its norm)."""

    def _stage_of(self, feature: int) -> int:
        """The index in `blocks` of the stage whose output is feature `feature` (-1: the stem)."""
        module = self.feature_info[feature]["module"]
        return -1 if module == "bn1" else int(module.removeprefix("blocks."))


def stage_outputs(stages: Sequence[Sequence[BlockDef]], spec: TrunkSpec) -> list[dict[str, Any]]:
    """timm's `feature_info` of a trunk: the output of each stage followed by a stride (the
    stem's, if the first stage strides) and of the last stage."""
    outputs, reduction = [], 2
    if stages[0][0].stride > 1:
        outputs.append({"module": "bn1", "num_chs": spec.stem_size, "reduction": reduction, "stage": 0})
    for number, stage in enumerate(stages):
        reduction *= stage[0].stride
        if number + 1 == len(stages) or stages[number + 1][0].stride > 1:
            module, width = f"blocks.{number}", spec.width(stage[-1].out_chs)
            outputs.append({"module": module, "num_chs": width, "reduction": reduction, "stage": number + 1})
    return outputs


def init_linear(layer: nn.Linear) -> None:
    """Uniform in +-1/sqrt(out_features), zero bias (the TensorFlow reference's classifier)."""
    bound = 1.0 / math.sqrt(layer.weight.shape[0])
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
