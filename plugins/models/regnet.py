"""RegNet X, Y, V and Z: ResNet-like bottlenecks with group convs, widths from a linear rule.

Radosavovic et al., "Designing Network Design Spaces", CVPR 2020.
https://arxiv.org/abs/2003.13678
Dollár, Singh and Girshick, "Fast and Accurate Model Scaling", CVPR 2021 (RegNetZ).
https://arxiv.org/abs/2103.06877

Five numbers make a RegNet (`regnet_widths`): block j of `depth` blocks gets the width
`u_j = w0 + wa * j`, snapped to `w0 * wm^round(log(u_j / w0) / log(wm))` and rounded to a
multiple of 8; runs of equal width are the stages (four), each starting with a stride 2.
The widths are then made divisible by the group width `group_size` of the 3x3 convs
(`width_rounding`: to the nearest multiple as pycls does, or as torchvision does, rounding
half up and never losing more than a tenth).

A block (`Bottleneck`): 1x1 conv, BN, activation; 3x3 group conv (strided in a stage's first
block), BN, activation; SE (RegNetY); 1x1 conv, BN; the shortcut (a strided 1x1 conv and BN
where the shape changes) added, then the activation. SE sits on the 3x3 conv's output,
reduced to a quarter (`se_ratio`) of the block's *input* width. Tensor names follow timm's
`regnet` checkpoints, which load unchanged.

The later recipes vary the block:

- RegNetX: no SE (`attn: null`);
- `downsample: avg`: the projection shortcut average-pools 2x2 before an unstrided 1x1 conv
  (as ResNet-D does); `downsample: null` drops the residual of the blocks that change shape;
- `preact` (RegNetV): pre-activation blocks (`PreBottleneck`: BN and activation before each
  conv, the shortcut taken after the first BN, projections without BN), a bare conv as stem
  and an activation after the last stage;
- RegNetZ: an inverted bottleneck (`bottle_ratio` 4), SiLU, no activation after the residual
  sum (`linear_out`, which puts one after the last stage instead) and, optionally, a final
  1x1 conv to `num_features` channels before the head.

The blocks' attention slot (`attn`) takes any channel attention; the default is SE as
RegNetY has it (ReLU, sigmoid, convs named `fc1`/`fc2`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.utils.checkpoint import checkpoint

from zoo.attention import ChannelAttention
from zoo.registry.family import ImageFamily

from ..layers import (
    Activation,
    ClassifierHead,
    ConvNormAct,
    DropPath,
    NormAct,
    PoolType,
    activation,
    drop_path_rates,
    factory_of,
    init_convs,
    init_normal,
    make_divisible,
)

__all__ = ["Bottleneck", "PreBottleneck", "RegNet", "RegNetConfig", "build", "family", "regnet_widths"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]

STAGES = 4
QUANTUM = 8  # block widths are multiples of 8


def regnet_widths(depth: int, w0: int, wa: float, wm: float) -> list[int]:
    """Each block's width from the RegNet rule (computed in float32, as the reference is)."""
    # on the CPU even while a model is built under `torch.device("meta")`: the widths are read
    continuous = torch.arange(depth, dtype=torch.float32, device="cpu") * wa + w0
    exponents = torch.round(torch.log(continuous / w0) / math.log(wm))
    return (torch.round(w0 * torch.pow(wm, exponents) / QUANTUM) * QUANTUM).int().tolist()


def stage_plan(config: RegNetConfig) -> list[tuple[int, int, int]]:
    """(width, depth, group width) of each stage: runs of equal block width, made divisible
    by the group width of the bottleneck (a narrow stage takes its own width as group)."""
    widths = regnet_widths(config.depth, config.w0, config.wa, config.wm)
    plan = []
    for width in sorted(set(widths)):
        bottleneck = int(width * config.bottle_ratio)
        group = min(config.group_size, bottleneck)
        if config.width_rounding == "torchvision":
            bottleneck = make_divisible(bottleneck, group, round_limit=0.9)
        else:
            bottleneck = round(bottleneck / group) * group
        plan.append((int(bottleneck / config.bottle_ratio), widths.count(width), group))
    return plan


class RegNetConfig(BaseModel):
    """Architecture of a RegNet (timm's argument names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: Positive = 21
    w0: Positive = 80
    wa: float = Field(default=42.63, ge=0.0)
    wm: float = Field(default=2.66, gt=1.0)
    group_size: Positive = 24
    bottle_ratio: float = Field(default=1.0, gt=0.0)
    se_ratio: float = Field(
        default=0.25, gt=0.0, description="the attention's reduced width over the block's input's"
    )
    width_rounding: Literal["pycls", "torchvision"] = Field(
        default="pycls", description="how bottleneck widths are rounded to their group width"
    )
    stem_width: Positive = 32
    act_layer: Activation = Field(
        default="relu", description="the activation of stem, blocks and final conv (SE: its own option)"
    )
    preact: bool = Field(default=False, description="pre-activation blocks (RegNetV)")
    downsample: Literal["conv1x1", "avg"] | None = Field(
        default="conv1x1",
        description="a projection shortcut's kind; null: no residual where the shape changes",
    )
    linear_out: bool = Field(default=False, description="no activation after a block's residual sum")
    num_features: int = Field(
        default=0, ge=0, description="width of a final 1x1 conv before the head; 0: none"
    )
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    attn: ChannelAttention | None = Field(default="se", validate_default=True)
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    zero_init_last: bool = True

    @model_validator(mode="after")
    def _four_stages(self) -> RegNetConfig:
        if self.w0 % QUANTUM:
            raise ValueError(f"w0 must be a multiple of {QUANTUM}, not {self.w0}")
        plan = stage_plan(self)
        if len(plan) != STAGES:
            raise ValueError(
                f"depth {self.depth}, w0 {self.w0}, wa {self.wa}, wm {self.wm} give {len(plan)} stages "
                f"of equal width; a RegNet has {STAGES}"
            )
        for width, _, group in plan:
            if round(width * self.bottle_ratio) % group:
                raise ValueError(
                    f"bottle_ratio {self.bottle_ratio} makes a stage's bottleneck "
                    f"{round(width * self.bottle_ratio)} wide, not a multiple of its group width {group}"
                )
        return self

    @property
    def norm_act(self) -> NormAct:
        """BatchNorm and the network's activation, as every norm but a block's last has them."""
        return NormAct(act=self.act_layer)


def conv2d(
    in_chs: int, out_chs: int, kernel_size: int, *, stride: int = 1, groups: int = 1, **factory
) -> nn.Conv2d:
    """A bias-free conv padded to keep the size (a pre-activation block's convs)."""
    padding = (kernel_size - 1) // 2
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False, **factory)


def block_shortcut(
    in_chs: int, out_chs: int, stride: int, config: RegNetConfig, **factory
) -> nn.Module | None:
    """A block's residual path: the identity where the shape holds, else a projection (a
    strided 1x1 conv, or with `downsample: avg` a 2x2 average pool then a 1x1 conv; BN after
    it unless the block is pre-activation), or none at all (`downsample: null`)."""
    if in_chs == out_chs and stride == 1:
        return nn.Identity()
    if config.downsample is None:
        return None
    conv_stride = stride if config.downsample == "conv1x1" else 1
    if config.preact:
        project = conv2d(in_chs, out_chs, 1, stride=conv_stride, **factory)
    else:
        project = ConvNormAct(in_chs, out_chs, 1, stride=conv_stride, act=False, **factory)
    if config.downsample == "conv1x1":
        return project
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    return nn.Sequential(pool, project)


def channel_attention(bottleneck: int, in_chs: int, config: RegNetConfig, **factory) -> nn.Module:
    """The attention on the group conv's output, its reduced width from the block's input."""
    if config.attn is None:
        return nn.Identity()
    return config.attn.build(bottleneck, rd_channels=round(in_chs * config.se_ratio), **factory)


class Bottleneck(nn.Module):
    """1x1, 3x3 group conv, attention, 1x1, plus the shortcut (see the module docstring)."""

    def __init__(
        self, in_chs, out_chs, *, stride, config: RegNetConfig, group_size, drop_path, device=None, dtype=None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        bottleneck = round(out_chs * config.bottle_ratio)
        norm_act = config.norm_act
        self.conv1 = ConvNormAct(in_chs, bottleneck, 1, norm_act=norm_act, **factory)
        self.conv2 = ConvNormAct(
            bottleneck,
            bottleneck,
            3,
            stride=stride,
            groups=bottleneck // group_size,
            norm_act=norm_act,
            **factory,
        )
        self.se = channel_attention(bottleneck, in_chs, config, **factory)
        self.conv3 = ConvNormAct(bottleneck, out_chs, 1, act=False, **factory)
        self.downsample = block_shortcut(in_chs, out_chs, stride, config, **factory)
        self.drop_path = DropPath(drop_path)
        self.act3 = nn.Identity() if config.linear_out else activation(config.act_layer, inplace=True)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.conv3.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv3(self.se(self.conv2(self.conv1(x))))
        if self.downsample is not None:  # timm's name for the shortcut, identity or projection
            x = self.drop_path(x) + self.downsample(shortcut)
        return self.act3(x)


class PreBottleneck(nn.Module):
    """The pre-activation bottleneck (RegNetV): BN and activation before each conv; the
    shortcut leaves after the first of them, and nothing follows the residual sum."""

    def __init__(
        self, in_chs, out_chs, *, stride, config: RegNetConfig, group_size, drop_path, device=None, dtype=None
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        bottleneck = round(out_chs * config.bottle_ratio)
        norm_act = config.norm_act
        self.norm1 = norm_act(in_chs, **factory)
        self.conv1 = conv2d(in_chs, bottleneck, 1, **factory)
        self.norm2 = norm_act(bottleneck, **factory)
        self.conv2 = conv2d(
            bottleneck, bottleneck, 3, stride=stride, groups=bottleneck // group_size, **factory
        )
        self.se = channel_attention(bottleneck, in_chs, config, **factory)
        self.norm3 = norm_act(bottleneck, **factory)
        self.conv3 = conv2d(bottleneck, out_chs, 1, **factory)
        self.downsample = block_shortcut(in_chs, out_chs, stride, config, **factory)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = shortcut = self.norm1(x)
        x = self.conv2(self.norm2(self.conv1(x)))
        x = self.conv3(self.norm3(self.se(x)))
        if self.downsample is not None:
            x = self.drop_path(x) + self.downsample(shortcut)
        return x


class RegStage(nn.Module):
    """Blocks `b1`, `b2`, ... of one width; the first one strided."""

    def __init__(self, blocks: list[Bottleneck] | list[PreBottleneck]) -> None:
        super().__init__()
        for number, block in enumerate(blocks, 1):
            self.add_module(f"b{number}", block)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.children():
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def final_conv(width: int, config: RegNetConfig, **factory) -> nn.Module:
    """What follows the last stage: a 1x1 conv, BN and activation to `num_features` if given;
    else the activation the blocks left out (pre-activation or linear-output blocks), or nothing."""
    if config.num_features:
        return ConvNormAct(width, config.num_features, 1, norm_act=config.norm_act, **factory)
    if config.preact or config.linear_out:
        return activation(config.act_layer)
    return nn.Identity()


class RegNet(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    classifier_names = ("head.fc",)

    def __init__(self, config: RegNetConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        if config.preact:  # the first block's BN and activation follow
            self.stem = conv2d(config.in_chans, config.stem_width, 3, stride=2, **factory)
        else:
            self.stem = ConvNormAct(
                config.in_chans, config.stem_width, 3, stride=2, norm_act=config.norm_act, **factory
            )
        self.feature_info: list[dict[str, Any]] = [
            {"module": "stem", "num_chs": config.stem_width, "reduction": 2}
        ]
        plan = stage_plan(config)
        rates = iter(drop_path_rates(config.drop_path_rate, sum(depth for _, depth, _ in plan)))
        width, reduction = config.stem_width, 2
        block_type = PreBottleneck if config.preact else Bottleneck
        self.stage_names = []
        for number, (out_chs, depth, group_size) in enumerate(plan, 1):
            blocks = []
            for index in range(depth):
                blocks.append(
                    block_type(
                        width if index == 0 else out_chs,
                        out_chs,
                        stride=2 if index == 0 else 1,
                        config=config,
                        group_size=group_size,
                        drop_path=next(rates),
                        **factory,
                    )
                )
            width, reduction = out_chs, reduction * 2
            self.stage_names.append(f"s{number}")
            self.add_module(self.stage_names[-1], RegStage(blocks))
            self.feature_info.append({"module": f"s{number}", "num_chs": width, "reduction": reduction})

        self.final_conv = final_conv(width, config, **factory)
        self.num_features = self.head_hidden_size = config.num_features or width
        self.head = ClassifierHead(
            self.num_features, config.num_classes, config.global_pool, config.drop_rate, **factory
        )
        self.reset_parameters()

    @property
    def first_conv(self) -> str:
        return "stem" if self.config.preact else "stem.conv"

    def reset_parameters(self) -> None:
        """Convs normal with std sqrt(2 / fan_out) (fan_out per group), unit BatchNorm, the
        classifier normal with std 0.01; each block's last BN zeroed if asked (a pre-activation
        block ends with a conv: nothing to zero)."""
        if self.get_submodule(self.first_conv).weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        init_convs(self)
        self.init_classifier()
        if self.config.zero_init_last and not self.config.preact:
            for block in self.blocks_in_order():
                nn.init.zeros_(block.last_norm.weight)

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh model's is, e.g. after a new `num_classes`."""
        init_normal(self.head.fc, std=0.01)

    def stages(self) -> list[RegStage]:
        return [getattr(self, name) for name in self.stage_names]

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.stages() for block in stage.children()]

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another pooling if given."""
        self.head.reset(num_classes, global_pool, **factory_of(self))
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        for stage in self.stages():
            stage.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Parameters to exempt from weight decay by name: none. As in timm, optimisers exempt
        norms and biases by their shape (one dimension), which needs no names."""
        return set()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's map (B, num_features, H/32, W/32)."""
        x = self.stem(x)
        for stage in self.stages():
            x = stage(x)
        return self.final_conv(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class RegNetFamily(ImageFamily):
    """Family `regnet`: RegNets from the width rule, with any channel attention in their
    blocks (RegNetY: SE; `attn: null` gives RegNetX's blocks), pre-activation (RegNetV) or
    linear-output inverted (RegNetZ) blocks."""

    config = RegNetConfig
    test_args: ClassVar[dict[str, Any]] = {
        "depth": 6,
        "w0": 16,
        "wa": 16.0,
        "wm": 2.0,
        "group_size": 8,
        "num_classes": 10,
    }

    def build(self, config: RegNetConfig, *, device=None, dtype=None) -> RegNet:
        return RegNet(config, device=device, dtype=dtype)


family = RegNetFamily()
build = family.build
