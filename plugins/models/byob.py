"""Bring-your-own-blocks networks (timm's `byobnet`): ResNets of many blocks, RepVGG,
MobileOne, GENet, RegNetZ, BoTNet and CLIP's ResNets, each written out as data.

Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021.
https://arxiv.org/abs/2101.11605
Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021.
https://arxiv.org/abs/2101.03697
Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023.
https://arxiv.org/abs/2206.04040
Lin et al., "Neural Architecture Design for GPU-Efficient Networks" (GENet), 2020.
https://arxiv.org/abs/2006.14090
Radford et al., "Learning Transferable Visual Models From Natural Language Supervision"
(CLIP's ResNets), ICML 2021. https://arxiv.org/abs/2103.00020

A network is a stem and stages of blocks written out one spec at a time (`BlockSpec`: its
`type`, `d` repeats of `c` output channels, the stage's stride `s`, the group width `gs`, the
bottleneck ratio `br`). A stage is one spec, or several run one after another (BoTNet's third
stage: a bottleneck, then a self-attention block). The block types (timm's names):

- `basic`: 3x3 (strided) and 3x3 convs;
- `bottle`: 1x1, 3x3 (strided, grouped by `gs`; with `extra_conv` a second 3x3), 1x1;
- `dark`: 1x1, then a strided 3x3; `edge`: a strided 3x3, then 1x1;
- `self_attn`: a bottleneck whose 3x3 conv is multi-head self-attention with relative position
  logits over the whole map (`zoo_plugins.attention.bot`), then a norm; a stride is a 2x2
  average pool after the attention;
- `rep` (RepVGG): a 3x3 conv, a 1x1 conv and (where the shape stays) a BatchNorm of the input,
  summed; `alternate_groups` splits every second block's convs into groups;
- `mobileone` (MobileOne): each repeat a depthwise block (3x3 convs `num_conv_branches` times,
  a 1x1 conv and the identity's BatchNorm, summed) and a pointwise one (1x1 convs and the
  identity), each its own entry of the stage.

The residual blocks add a shortcut (a strided 1x1 conv and norm where the shape changes, or a
2x2 average pool then the 1x1 conv: `downsample: avg`) and end in the activation (none with
`linear_out`). Any channel attention (`attn`: SE, ECA, global context, ...) sits where timm's
blocks have it: after the bottleneck's 3x3 conv, after the last conv of the basic and dark
blocks, after the edge block's 3x3, on the sum of the RepVGG and MobileOne branches (and in
their stems); a spec's own `attn` replaces the network's for its blocks. RepVGG and MobileOne
blocks fold their branches into one conv for inference (`ByobNet.reparameterize`).

Stems: `tiered` (3x3 convs of 3/8, 1/2 and all of `stem_chs`), `deep` (three of `stem_chs`),
`quad` (four, widths halving backwards; `quad2`: the first two bare convs), `3x3` (one conv,
or one per width of a `stem_chs` list), each first conv strided, then `stem_pool` (a 3x3 max
pool, or a 2x2 average pool: `avg2`), or without a pool the last conv strided too; `rep` and
`mobileone` are one block of that type of stride 2. The convs use `norm_layer` (BatchNorm or
EvoNorm-S0) and `act_layer`; with `aa_layer: avg` the strided convs of the stages run at
stride 1 and pool 2x2 after their norm (CLIP's). The head is global pooling and a classifier,
or an attention pooling of the last map (`attn_pool`, CLIP's), projected to `proj_dim`.

Self-attention's position tables fix the size of the map each block sees (`feat_size`: the
*input* of the block, which shrinks after each stage's first, strided, block), so a network
with self-attention blocks takes images of its `img_size` only.

Tensor names follow timm's `byobnet` checkpoints (`stem.conv1.conv`, `stages.2.1.self_attn.
qkv`, `shortcut.conv`, `head.fc`), which load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from math import prod
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.attention import ChannelAttention, MapPoolingAttention
from zoo.errors import AttentionMapError
from zoo.registry.family import ImageFamily, feature_take_indices, image_size

from ..attention.bot import BottleneckAttention
from ..layers import (
    Activation,
    ClassifierHead,
    ConvNormAct,
    DropPath,
    NormAct,
    NormLayer,
    PoolType,
    activation,
    attention_received,
    drop_path_rates,
    factory_of,
    fused_conv,
    init_convs,
    init_normal,
    init_submodules,
    make_divisible,
    run_blocks,
)

__all__ = [
    "BlockSpec",
    "ByobConfig",
    "ByobNet",
    "BasicBlock",
    "BottleneckBlock",
    "DarkBlock",
    "EdgeBlock",
    "MobileOneBlock",
    "RepVggBlock",
    "SelfAttnBlock",
    "build",
    "family",
]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]

BlockType = Literal["basic", "bottle", "dark", "edge", "self_attn", "rep", "mobileone"]
StemType = Literal["tiered", "deep", "quad", "quad2", "3x3", "rep", "mobileone"]
BLOCK_STEMS = ("rep", "mobileone")  # a stem that is one block, of stride 2
ATTENTION_OPTIONS = ("num_heads", "dim_head", "qk_ratio", "qkv_bias", "scale_pos_embed")
TYPE_OPTIONS = {
    "self_attn": ATTENTION_OPTIONS,
    "rep": ("alternate_groups",),
    "mobileone": ("num_conv_branches",),
}
"""The spec fields that apply to one block type only."""


def channels(value: float) -> int:
    """timm's rounding of byob widths: to a multiple of 8, at least 90% of `value`."""
    return make_divisible(value, 8, round_limit=0.9)


class BlockSpec(BaseModel):
    """`d` blocks of one `type` (timm's `ByoBlockCfg` names); the options named in
    `TYPE_OPTIONS` apply to their block type only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: BlockType
    d: Positive = Field(description="how many blocks (mobileone: depthwise-pointwise pairs)")
    c: Positive = Field(description="their output channels (before width_factor)")
    s: Literal[1, 2] = Field(default=2, description="the stride of the stage's first block")
    gs: int = Field(default=0, ge=0, description="group width of the 3x3 conv; 0: one group")
    br: float = Field(default=1.0, gt=0.0, description="bottleneck width over c")
    attn: ChannelAttention | None = Field(default=None, description="these blocks' channel attention")
    alternate_groups: int = Field(default=0, ge=0, description="groups of every second block; 0: as gs")
    num_conv_branches: Positive = Field(default=1, description="parallel 3x3 (or 1x1) convs")
    num_heads: Positive = 4
    dim_head: Positive | None = Field(default=None, description="query/key width per head; None: timm's rule")
    qk_ratio: float = Field(default=1.0, gt=0.0)
    qkv_bias: bool = False
    scale_pos_embed: bool = False

    @model_validator(mode="after")
    def _options_for_their_type(self) -> BlockSpec:
        for block_type, options in TYPE_OPTIONS.items():
            misplaced = sorted(set(options) & self.model_fields_set)
            if self.type != block_type and misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)} apply to {block_type} blocks, not to a '{self.type}' block"
                )
        return self

    def attention_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ATTENTION_OPTIONS}


Stage = BlockSpec | tuple[BlockSpec, ...]

BOTNET26T = (
    BlockSpec(type="bottle", d=2, c=256, s=1, br=0.25),
    BlockSpec(type="bottle", d=2, c=512, s=2, br=0.25),
    (
        BlockSpec(type="bottle", d=1, c=1024, s=2, br=0.25),
        BlockSpec(type="self_attn", d=1, c=1024, s=2, br=0.25),
    ),
    BlockSpec(type="self_attn", d=2, c=2048, s=2, br=0.25),
)


class ByobConfig(BaseModel):
    """Architecture of a byob network (timm's argument names); defaults: BoTNet-26T at 256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: tuple[Stage, ...] = Field(default=BOTNET26T, min_length=1)
    stem_type: StemType = "tiered"
    stem_chs: Positive | tuple[Positive, ...] = 64
    """The stem's width (its last conv's), or one width per conv (a `3x3` stem)."""
    stem_pool: Literal["maxpool", "avg2", ""] = "maxpool"
    downsample: Literal["conv1x1", "avg", ""] = "conv1x1"
    """The shortcut where the shape changes: a strided 1x1 conv, a 2x2 average pool and a 1x1
    conv, or none: such a block is its branch alone (RegNetZ)."""
    act_layer: Activation = "relu"
    norm_layer: NormLayer = "batchnorm"
    norm_group_size: Positive = 16
    """EvoNorm's channels per group of statistics."""
    aa_layer: Literal["", "avg"] = ""
    """`avg`: the stages' strided convs run at stride 1, then pool 2x2 after their norm."""
    attn: ChannelAttention | None = None
    """Every block's channel attention (where its type has one), unless its spec names its own."""
    bottle_in: bool = False
    """Bottleneck widths from the block's input width, not its output's (RegNetZ)."""
    linear_out: bool = False
    """No activation after a residual block's sum (RegNetZ)."""
    extra_conv: bool = False
    """A second 3x3 conv in each bottleneck (the q-nets)."""
    attn_pool: MapPoolingAttention | None = None
    """An attention pooling of the last map as the head (CLIP's), in place of global pooling."""
    proj_dim: Positive | None = None
    """The attention pooling's output projection (an embedding, CLIP's); None: to num_classes."""
    img_size: Positive | tuple[Positive, Positive] = 256
    in_chans: Positive = 3
    num_classes: int = Field(default=1000, ge=0)
    global_pool: PoolType = "avg"
    drop_rate: Rate = 0.0
    drop_path_rate: Rate = 0.0
    zero_init_last: bool = True
    num_features: int = Field(default=0, ge=0, description="width of a final 1x1 conv; 0: none")
    width_factor: float = Field(default=1.0, gt=0.0)

    @property
    def fixed_input_size(self) -> bool:
        """Whether self-attention ties the model to `img_size`."""
        return any(spec.type == "self_attn" for stage in self.blocks for spec in stage_specs(stage))

    @property
    def stride(self) -> int:
        """The network's: the stem's, then each stage's."""
        return stem_stride(self) * prod(stage_specs(stage)[0].s for stage in self.blocks)

    @model_validator(mode="after")
    def _fits(self) -> ByobConfig:
        if not self.global_pool and self.num_classes:
            raise ValueError("global_pool '' leaves the feature map unpooled: it takes num_classes=0")
        if self.attn_pool is not None and self.proj_dim and self.num_classes:
            raise ValueError("the attention pooling projects to proj_dim or to num_classes, not to both")
        if self.stem_type in BLOCK_STEMS and self.stem_pool:
            raise ValueError(f"a '{self.stem_type}' stem is one block of stride 2: it takes stem_pool ''")
        if isinstance(self.stem_chs, tuple) and self.stem_type != "3x3":
            raise ValueError(f"a '{self.stem_type}' stem has one stem_chs: a list is for a 3x3 stem")
        for stage in self.blocks:
            if len({spec.s for spec in stage_specs(stage)}) > 1:
                raise ValueError("the specs of one stage share its stride 's'")
        size = image_size(self)
        if (self.fixed_input_size or self.attn_pool is not None) and (
            size[0] % self.stride or size[1] % self.stride
        ):
            raise ValueError(
                f"img_size {size[0]}x{size[1]} must be a multiple of {self.stride}, the network's stride, "
                "as its attention sees fixed map sizes"
            )
        for block in (block for stage in block_plan(self) for block in stage):
            self._check_block(block)
        return self

    @staticmethod
    def _check_block(block: BlockPlan) -> None:
        grouped = GROUPED_CONV[block.spec.type](block)
        if any(width % block.groups for width in grouped):
            width = block.spec.gs or block.spec.alternate_groups
            raise ValueError(
                f"a {grouped[0]}-channel '{block.spec.type}' conv does not split into groups of {width}"
            )
        if block.spec.type == "self_attn" and block.mid_chs % block.spec.num_heads:
            raise ValueError(
                f"a {block.mid_chs}-channel self-attention does not split into {block.spec.num_heads} heads"
            )


def stage_specs(stage: Stage) -> tuple[BlockSpec, ...]:
    return stage if isinstance(stage, tuple) else (stage,)


def is_block_stem(config: ByobConfig) -> bool:
    """A stem that is one conv or one block (stride 2), rather than a stack of convs (stride 4)."""
    return config.stem_type in BLOCK_STEMS or (
        config.stem_type == "3x3" and not isinstance(config.stem_chs, tuple) and not config.stem_pool
    )


def stem_stride(config: ByobConfig) -> int:
    return 2 if is_block_stem(config) else 4


def stem_width(layer: nn.Module) -> int:
    """A stem conv's output width (a bare conv, or one with its norm)."""
    return (layer.conv if isinstance(layer, ConvNormAct) else layer).out_channels


def stem_widths(config: ByobConfig) -> tuple[int, ...]:
    """The width of each of the stem's convs (a block stem's: its output)."""
    if isinstance(config.stem_chs, tuple):
        return tuple(round(width * config.width_factor) for width in config.stem_chs)
    width = round(config.stem_chs * config.width_factor)
    if config.stem_type == "tiered":
        return (3 * width // 8, width // 2, width)
    if config.stem_type == "deep":
        return (width, width, width)
    if config.stem_type in ("quad", "quad2"):
        return tuple(round(width / 2**i) for i in (3, 2, 1, 0))
    return (width,)


@dataclass(frozen=True)
class BlockPlan:
    """One block as the network builds it."""

    spec: BlockSpec
    in_chs: int
    out_chs: int
    mid_chs: int
    groups: int
    kernel_size: int
    stride: int
    feat_size: tuple[int, int]  # (H, W) of the block's input
    drop_path: float
    attn: ChannelAttention | None


def stage_blocks(stage: Stage) -> list[tuple[BlockSpec, str]]:
    """Each block of a stage: its spec and its part (a mobileone repeat is two blocks)."""
    blocks = []
    for spec in stage_specs(stage):
        parts = ("depthwise", "pointwise") if spec.type == "mobileone" else ("",)
        blocks += [(spec, part) for _ in range(spec.d) for part in parts]
    return blocks


GROUPED_CONV = {
    "basic": lambda b: (b.mid_chs, b.out_chs),
    "bottle": lambda b: (b.mid_chs, b.mid_chs),
    "self_attn": lambda b: (b.mid_chs, b.mid_chs),
    "dark": lambda b: (b.mid_chs, b.out_chs),
    "edge": lambda b: (b.in_chs, b.mid_chs),
    "rep": lambda b: (b.in_chs, b.out_chs),
    "mobileone": lambda b: (b.in_chs, b.out_chs),
}
"""The input and output widths of each block type's grouped conv."""


def groups_of(width: int, group_width: int) -> int:
    return width // group_width if group_width else 1


def block_plan(config: ByobConfig) -> list[list[BlockPlan]]:
    """Every block of every stage: widths, groups, stride, input size and drop-path rate."""
    height, width = image_size(config)
    size = (height // stem_stride(config), width // stem_stride(config))
    in_chs = stem_widths(config)[-1]
    stages = [stage_blocks(stage) for stage in config.blocks]
    rates = iter(drop_path_rates(config.drop_path_rate, sum(map(len, stages))))
    plan = []
    for blocks in stages:
        stride, planned = blocks[0][0].s, []
        for index, (spec, part) in enumerate(blocks):
            step = stride if index == 0 else 1
            out_chs = in_chs if part == "depthwise" else channels(spec.c * config.width_factor)
            bottle_in = config.bottle_in and spec.type in ("bottle", "self_attn")
            mid_chs = channels((in_chs if bottle_in else out_chs) * spec.br)
            kernel_size = 1 if part == "pointwise" else 3
            if part:
                groups = in_chs if part == "depthwise" else 1
            elif spec.type == "rep":
                groups = (
                    spec.alternate_groups
                    if spec.alternate_groups and index % 2
                    else groups_of(in_chs, spec.gs)
                )
            else:
                groups = groups_of(mid_chs, spec.gs)
            attn = spec.attn if spec.attn is not None else config.attn
            planned.append(
                BlockPlan(spec, in_chs, out_chs, mid_chs, groups, kernel_size, step, size, next(rates), attn)
            )
            in_chs, size = out_chs, (size[0] // step, size[1] // step)
        plan.append(planned)
    return plan


# ---------------------------------------------------------------------------------------------
# Blocks


@dataclass(frozen=True)
class Layers:
    """The network's choices every block builds with: norm and activation, anti-aliased
    strides, the shortcut, and the bottleneck's options."""

    norm_act: NormAct
    anti_alias: bool = False
    downsample: str = "conv1x1"
    linear_out: bool = False
    extra_conv: bool = False

    @classmethod
    def of(cls, config: ByobConfig) -> Layers:
        norm_act = NormAct(config.norm_layer, config.act_layer, config.norm_group_size)
        return cls(
            norm_act, config.aa_layer == "avg", config.downsample, config.linear_out, config.extra_conv
        )

    def conv(
        self, in_chs: int, out_chs: int, kernel_size: int, *, act: bool = True, **options
    ) -> ConvNormAct:
        """A conv with the network's norm and (unless `act=False`) activation."""
        return ConvNormAct(
            in_chs,
            out_chs,
            kernel_size,
            act=act,
            norm_act=self.norm_act,
            anti_alias=self.anti_alias,
            **options,
        )

    def norm(self, chs: int, *, act: bool = True, **factory) -> nn.Module:
        return self.norm_act(chs, act=act, **factory)

    def act(self) -> nn.Module:
        return activation(self.norm_act.act, inplace=True)

    def out_act(self) -> nn.Module:
        """What ends a residual block: the activation, or nothing (`linear_out`)."""
        return nn.Identity() if self.linear_out else self.act()


def channel_attention(spec: ChannelAttention | None, chs: int, **factory) -> nn.Module:
    return spec.build(chs, **factory) if spec is not None else nn.Identity()


class AvgDownsample(nn.Module):
    """A 2x2 average pool (where strided), then a 1x1 conv and norm (ResNet-D's shortcut)."""

    def __init__(self, block: BlockPlan, layers: Layers, **factory) -> None:
        super().__init__()
        self.pool = (
            nn.AvgPool2d(2, block.stride, ceil_mode=True, count_include_pad=False)
            if block.stride > 1
            else nn.Identity()
        )
        self.conv = layers.conv(block.in_chs, block.out_chs, 1, act=False, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def shortcut(block: BlockPlan, layers: Layers, **factory) -> nn.Module | None:
    """The identity, or where the shape changes a strided 1x1 conv and norm (`shortcut.conv`,
    `shortcut.bn`), an average pool and one (`downsample: avg`), or none (`downsample: ""`)."""
    if block.in_chs == block.out_chs and block.stride == 1:
        return nn.Identity()
    if not layers.downsample:
        return None
    if layers.downsample == "avg":
        return AvgDownsample(block, layers, **factory)
    return layers.conv(block.in_chs, block.out_chs, 1, stride=block.stride, act=False, **factory)


class ResidualBlock(nn.Module):
    """A branch of convs plus the shortcut, then the activation; `branch` and `last_norm`
    (zeroed at initialisation) are each block type's."""

    def __init__(self, block: BlockPlan, layers: Layers, **factory) -> None:
        super().__init__()
        self.shortcut = shortcut(block, layers, **factory)
        self.drop_path = DropPath(block.drop_path)
        self.act = layers.out_act()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def last_norm(self) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop_path(self.branch(x))
        return self.act(out if self.shortcut is None else out + self.shortcut(x))


class BasicBlock(ResidualBlock):
    """3x3 (strided), 3x3, then the channel attention (timm's `basic`)."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(block, layers, **factory)
        self.conv1_kxk = layers.conv(block.in_chs, block.mid_chs, 3, stride=block.stride, **factory)
        self.conv2_kxk = layers.conv(
            block.mid_chs, block.out_chs, 3, groups=block.groups, act=False, **factory
        )
        self.attn_last = channel_attention(block.attn, block.out_chs, **factory)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv2_kxk.bn

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn_last(self.conv2_kxk(self.conv1_kxk(x)))


class BottleneckBlock(ResidualBlock):
    """1x1, 3x3 (strided; with `extra_conv` another), the channel attention, 1x1 (timm's `bottle`)."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(block, layers, **factory)
        mid = block.mid_chs
        self.conv1_1x1 = layers.conv(block.in_chs, mid, 1, **factory)
        self.conv2_kxk = layers.conv(mid, mid, 3, stride=block.stride, groups=block.groups, **factory)
        self.conv2b_kxk = (
            layers.conv(mid, mid, 3, groups=block.groups, **factory) if layers.extra_conv else nn.Identity()
        )
        self.attn = channel_attention(block.attn, mid, **factory)
        self.conv3_1x1 = layers.conv(mid, block.out_chs, 1, act=False, **factory)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv3_1x1.bn

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2b_kxk(self.conv2_kxk(self.conv1_1x1(x)))
        return self.conv3_1x1(self.attn(x))


class DarkBlock(ResidualBlock):
    """1x1, 3x3 (strided), then the channel attention (timm's `dark`, as in DarkNet)."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(block, layers, **factory)
        self.conv1_1x1 = layers.conv(block.in_chs, block.mid_chs, 1, **factory)
        self.conv2_kxk = layers.conv(
            block.mid_chs, block.out_chs, 3, stride=block.stride, groups=block.groups, act=False, **factory
        )
        self.attn_last = channel_attention(block.attn, block.out_chs, **factory)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv2_kxk.bn

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn_last(self.conv2_kxk(self.conv1_1x1(x)))


class EdgeBlock(ResidualBlock):
    """3x3 (strided), the channel attention, 1x1 (timm's `edge`, as EfficientNet's edge residual)."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(block, layers, **factory)
        self.conv1_kxk = layers.conv(
            block.in_chs, block.mid_chs, 3, stride=block.stride, groups=block.groups, **factory
        )
        self.attn = channel_attention(block.attn, block.mid_chs, **factory)
        self.conv2_1x1 = layers.conv(block.mid_chs, block.out_chs, 1, act=False, **factory)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv2_1x1.bn

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2_1x1(self.attn(self.conv1_kxk(x)))


class SelfAttnBlock(ResidualBlock):
    """1x1, self-attention (strided by pooling), norm and activation, 1x1, plus the shortcut,
    then the activation (timm's `self_attn`). The attention sees the block's input size."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        super().__init__(block, layers, **factory)
        mid = block.mid_chs
        self.feat_size = block.feat_size
        self.conv1_1x1 = layers.conv(block.in_chs, mid, 1, **factory)
        self.self_attn = BottleneckAttention(
            mid,
            mid,
            feat_size=block.feat_size,
            stride=block.stride,
            **block.spec.attention_options(),
            **factory,
        )
        self.post_attn = layers.norm(mid, **factory)
        self.conv3_1x1 = layers.conv(mid, block.out_chs, 1, act=False, **factory)

    @property
    def last_norm(self) -> nn.Module:
        return self.conv3_1x1.bn

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        x = self.self_attn(self.conv1_1x1(x))
        return self.conv3_1x1(self.post_attn(x))


class ReparameterizableBlock(nn.Module):
    """Parallel conv-and-norm branches and (where the shape stays) a norm of the input,
    summed, then the channel attention and the activation. `reparameterize` folds the
    branches into one conv (`reparam_conv`) that gives the same outputs in evaluation mode."""

    def __init__(
        self, block: BlockPlan, layers: Layers, branches: dict[str, nn.Module | None], **factory
    ) -> None:
        super().__init__()
        keeps_shape = block.in_chs == block.out_chs and block.stride == 1
        self.identity = layers.norm(block.out_chs, act=False, **factory) if keeps_shape else None
        self.branch_names = tuple(branches)
        for name, branch in branches.items():
            setattr(self, name, branch)
        self.drop_path = DropPath(block.drop_path if keeps_shape else 0.0)
        self.attn = channel_attention(block.attn, block.out_chs, **factory)
        self.act = layers.act()
        self.reparam_conv: nn.Conv2d | None = None

    def branches(self) -> list[ConvNormAct]:
        """The branches, in the order they are summed."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam_conv is not None:
            return self.act(self.attn(self.reparam_conv(x)))
        out = sum(branch(x) for branch in self.branches())
        if self.identity is not None:
            out = self.drop_path(out) + self.identity(x)
        return self.act(self.attn(out))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the branches and the identity into `reparam_conv` (once; BatchNorm only)."""
        if self.reparam_conv is not None:
            return
        self.reparam_conv = fused_conv(self.branches(), self.identity)
        for name in self.branch_names:
            delattr(self, name)
        self.identity = None


class RepVggBlock(ReparameterizableBlock):
    """3x3 conv, 1x1 conv and the identity, each with BatchNorm, summed (timm's `rep`)."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        options = {"stride": block.stride, "groups": block.groups, "act": False, **factory}
        branches = {
            "conv_kxk": layers.conv(block.in_chs, block.out_chs, block.kernel_size, **options),
            "conv_1x1": layers.conv(block.in_chs, block.out_chs, 1, **options),
        }
        super().__init__(block, layers, branches, **factory)

    def branches(self) -> list[ConvNormAct]:
        return [self.conv_1x1, self.conv_kxk]


class MobileOneBlock(ReparameterizableBlock):
    """`num_conv_branches` kxk convs, a 1x1 conv (for k > 1) and the identity, each with
    BatchNorm, summed (timm's `one`): MobileOne's depthwise (3x3) or pointwise (1x1) block."""

    def __init__(self, block: BlockPlan, layers: Layers, *, device=None, dtype=None) -> None:
        factory = {"device": device, "dtype": dtype}
        options = {"stride": block.stride, "groups": block.groups, "act": False, **factory}
        convs = (
            layers.conv(block.in_chs, block.out_chs, block.kernel_size, **options)
            for _ in range(block.spec.num_conv_branches)
        )
        scale = layers.conv(block.in_chs, block.out_chs, 1, **options) if block.kernel_size > 1 else None
        super().__init__(block, layers, {"conv_kxk": nn.ModuleList(convs), "conv_scale": scale}, **factory)

    def branches(self) -> list[ConvNormAct]:
        scale = [self.conv_scale] if self.conv_scale is not None else []
        return [*scale, *self.conv_kxk]


BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock,
    "bottle": BottleneckBlock,
    "dark": DarkBlock,
    "edge": EdgeBlock,
    "self_attn": SelfAttnBlock,
    "rep": RepVggBlock,
    "mobileone": MobileOneBlock,
}


# ---------------------------------------------------------------------------------------------
# Stem


class Stem(nn.Sequential):
    """A stack of 3x3 convs (`conv1`, ...), the first strided, then a pool (`pool`) or the last
    conv strided too: stride 4. `tap` names the layer whose output is the stem's feature map
    of stride 2 (timm's), the one before the second stride."""

    def __init__(self, config: ByobConfig, layers: Layers, **factory) -> None:
        super().__init__()
        widths = stem_widths(config)
        strides = [2] + [1] * (len(widths) - 1)
        if not config.stem_pool:
            strides[-1] = 2
        bare = 2 if config.stem_type == "quad2" else 0  # quad2: the first two convs without norm
        in_chs = config.in_chans
        for number, (width, stride) in enumerate(zip(widths, strides, strict=True), 1):
            if number <= bare:
                conv = nn.Conv2d(in_chs, width, 3, stride, padding=1, bias=False, **factory)
            else:
                conv = layers.conv(in_chs, width, 3, stride=stride, **factory)
            self.add_module(f"conv{number}", conv)
            in_chs = width
        if config.stem_pool == "maxpool":
            self.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        elif config.stem_pool == "avg2":
            self.add_module("pool", nn.AvgPool2d(2))
        self.tap = f"conv{len(widths) - 1 if not config.stem_pool else len(widths)}"

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stem's output and its map of stride 2."""
        tapped = x
        for name, layer in self.named_children():
            x = layer(x)
            if name == self.tap:
                tapped = x
        return x, tapped

    def prune_to_tap(self) -> None:
        """Drop the layers after the tap: the stem then ends in its map of stride 2."""
        names = list(self._modules)
        for name in names[names.index(self.tap) + 1 :]:
            delattr(self, name)


def build_stem(config: ByobConfig, layers: Layers, **factory) -> nn.Module:
    """The stem: a stack of convs (`Stem`), or one conv or one block of stride 2."""
    if not is_block_stem(config):
        return Stem(config, layers, **factory)
    width = stem_widths(config)[-1]
    if config.stem_type == "3x3":
        return layers.conv(config.in_chans, width, 3, stride=2, **factory)
    spec = BlockSpec(type=config.stem_type, d=1, c=width)
    block = BlockPlan(spec, config.in_chans, width, width, 1, 3, 2, (0, 0), 0.0, config.attn)
    return BLOCKS[config.stem_type](block, layers, **factory)


# ---------------------------------------------------------------------------------------------
# The network


class Stages(nn.Sequential):
    """The stages (timm's `stages.N` names). Called without an input it lists them: the
    families' `model.stages()`, which the module of that name would otherwise hide."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            return list(self)
        return super().__call__(*args, **kwargs)


class ByobNet(nn.Module):
    def __init__(self, config: ByobConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        self.grad_checkpointing = False
        layers = Layers.of(config)
        self.stem = build_stem(config, replace(layers, anti_alias=False), **factory)
        plan = block_plan(config)
        self.stages = Stages(
            *(nn.Sequential(*(BLOCKS[b.spec.type](b, layers, **factory) for b in blocks)) for blocks in plan)
        )
        width = plan[-1][-1].out_chs
        if config.num_features:
            self.num_features = round(config.width_factor * config.num_features)
            self.final_conv = layers.conv(width, self.num_features, 1, **factory)
        else:
            self.num_features, self.final_conv = width, nn.Identity()
        self.head_hidden_size = self.num_features
        self.feature_info = self._feature_info(plan)
        self.head = self._head(config, **factory)
        self.reset_parameters()

    @property
    def first_conv(self) -> str:
        """The first conv's name (a stem's first conv, or a stem block's kxk branch)."""
        return next(name for name, module in self.named_modules() if isinstance(module, nn.Conv2d))

    @property
    def classifier_names(self) -> tuple[str, ...]:
        """What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`)."""
        return ("head.proj",) if hasattr(self.head, "proj") else ("head.fc",)

    def _head(self, config: ByobConfig, **factory) -> nn.Module:
        """Global pooling and the classifier, or the attention pooling projected to `proj_dim`
        (or to the classes) for the last map of `img_size` images."""
        if config.attn_pool is None:
            return ClassifierHead(
                self.num_features, config.num_classes, config.global_pool, config.drop_rate, **factory
            )
        height, width = image_size(config)
        feat_size = (height // config.stride, width // config.stride)
        out_features = config.proj_dim or config.num_classes
        return config.attn_pool.build(
            self.num_features, out_features=out_features, feat_size=feat_size, **factory
        )

    def _feature_info(self, plan: list[list[BlockPlan]]) -> list[dict[str, Any]]:
        """timm's: the stem's map of stride 2, the output of each stage that a stride follows,
        then `final_conv` (the last stage's output, through the final conv if there is one).
        `stage` counts the stem as 0 and the stages from 1."""
        if isinstance(self.stem, Stem):
            tapped = getattr(self.stem, self.stem.tap)
            info = [
                {"module": f"stem.{self.stem.tap}", "num_chs": stem_width(tapped), "reduction": 2, "stage": 0}
            ]
            previous = None  # the stem's output is never a feature: its stride 4 is the first stage's input
        else:
            info, previous = (
                [],
                {"module": "stem", "num_chs": stem_widths(self.config)[-1], "reduction": 2, "stage": 0},
            )
        reduction = stem_stride(self.config)
        for index, blocks in enumerate(plan):
            if blocks[0].stride > 1 and previous is not None:
                info.append(previous)
            reduction *= blocks[0].stride
            previous = {"module": f"stages.{index}", "num_chs": blocks[-1].out_chs, "reduction": reduction}
            previous["stage"] = index + 1
        info.append(
            {"module": "final_conv", "num_chs": self.num_features, "reduction": reduction, "stage": len(plan)}
        )
        return info

    def reset_parameters(self) -> None:
        """timm's byob initialisation (see `_init_weights`); nothing on `meta`."""
        if next(self.parameters()).is_meta:
            return  # nothing to initialise: weights are about to be assigned
        self._init_weights(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks."""
        init_submodules(self, names, self._init_weights)

    def _init_weights(self, root: nn.Module) -> None:
        """Convs normal with std sqrt(2 / fan_out) (fan_out per group), unit BatchNorm, linears
        normal with std 0.01; then the attentions' and norms' own initialisations, the RepVGG
        blocks' random norms, and each residual block's last norm zeroed if asked."""
        init_convs(root, linear=partial(init_normal, std=0.01))
        plain = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm, ByobNet)
        for module in root.modules():
            if hasattr(module, "reset_parameters") and not isinstance(module, plain):
                module.reset_parameters()  # attention variants, EvoNorm
            if isinstance(module, RepVggBlock):
                for norm in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
                    nn.init.normal_(norm.weight, 0.1, 0.1)
                    nn.init.normal_(norm.bias, 0.0, 0.1)
            if (
                self.config.zero_init_last
                and isinstance(module, ResidualBlock)
                and module.shortcut is not None
            ):
                nn.init.zeros_(module.last_norm.weight)

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh model's is, e.g. after a new `num_classes`."""
        init_normal(self.get_classifier(), std=0.01)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold every RepVGG and MobileOne block's branches into one conv: the inference form,
        with the same outputs in evaluation mode. The training-time checkpoints then no longer
        load into it."""
        for module in list(self.modules()):
            if isinstance(module, ReparameterizableBlock):
                module.reparameterize()

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.stages() for block in stage]

    def get_classifier(self) -> nn.Module:
        return self.head.proj if hasattr(self.head, "proj") else self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another pooling
        if given (in place of an attention pooling, if there is one)."""
        factory = factory_of(self)
        if hasattr(self.head, "proj") and global_pool is None:
            width = self.head.in_features
            self.head.proj = nn.Linear(width, num_classes, **factory) if num_classes else nn.Identity()
        elif hasattr(self.head, "proj"):
            self.head = ClassifierHead(self.num_features, num_classes, global_pool, **factory)
        else:
            self.head.reset(num_classes, global_pool, **factory)
        self.init_classifier()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """None by name, as timm's byob: optimisers exempt norms, biases and (by their two
        dimensions, not at all) the position tables as they exempt any weight."""
        return set()

    def _check_size(self, x: torch.Tensor) -> None:
        size = tuple(x.shape[-2:])
        if self.config.fixed_input_size and size != image_size(self.config):
            (h, w), (eh, ew) = size, image_size(self.config)
            raise ValueError(
                f"this network's self-attention takes {eh}x{ew} images (img_size), not {h}x{w}: "
                "build it for that img_size"
            )

    def _run_stage(self, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return run_blocks(stage, x, checkpointed=self.grad_checkpointing)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last map (B, num_features, H/32, W/32)."""
        self._check_size(x)
        x = self.stem(x)
        for stage in self.stages():
            x = self._run_stage(stage, x)
        return self.final_conv(x)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW"] = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps of `feature_info`, as timm gives them: the stem's of stride 2, the
        stages', the last through `final_conv`. `norm` does nothing (no final norm); with
        `intermediates_only` the stages after the last one asked for are not run.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': a byob network gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.feature_info), indices)
        stages_taken = {self.feature_info[index]["stage"] for index in take}
        self._check_size(x)
        intermediates = []
        if isinstance(self.stem, Stem):
            x, tapped = self.stem.forward_intermediates(x)
        else:
            x = tapped = self.stem(x)
        if 0 in stages_taken:
            intermediates.append(tapped)
        stages = self.stages()
        for number, stage in enumerate(stages, 1):
            if intermediates_only and number > max(stages_taken):
                break
            x = self._run_stage(stage, x)
            if number == len(stages):
                x = self.final_conv(x)
            if number in stages_taken:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the stages up
        to the last one asked for, `final_conv` only with the last, no head if `prune_head`."""
        take = feature_take_indices(len(self.feature_info), indices)
        last = self.feature_info[max(take)]["stage"]
        self.stages = Stages(*self.stages()[:last])
        if max(take) < len(self.feature_info) - 1:
            self.final_conv = nn.Identity()
        if last == 0 and isinstance(self.stem, Stem):
            self.stem.prune_to_tap()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Where each self-attention stage's last block looks, deepest first (the zoo's
        attention-map protocol, see `zoo.maps`): `"stage4"`, `"stage3"`, ..., each (B, h, w),
        the mean attention each position of the block's input receives over heads and queries.
        """
        captured: dict[str, torch.Tensor] = {}
        hooks = []
        for number, stage in enumerate(self.stages(), 1):
            block = stage[-1]
            if not isinstance(block, SelfAttnBlock):
                continue

            def capture(module: nn.Module, args: tuple[torch.Tensor, ...], key=f"stage{number}") -> None:
                captured[key] = attention_received(module.attention_weights(args[0]), *module.feat_size)

            hooks.append(block.self_attn.register_forward_pre_hook(capture))
        if not hooks:
            raise AttentionMapError(
                "this byob network ends no stage in a self_attn block, so has no attention map"
            )
        try:
            self.forward_features(x)
        finally:
            for hook in hooks:
                hook.remove()
        return dict(reversed(captured.items()))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ByobFamily(ImageFamily):
    """Family `byob`: bring-your-own-blocks networks (BoTNet, RepVGG, MobileOne, GENet,
    RegNetZ, the ResNet-T/-TS and q-nets, CLIP's ResNets)."""

    config = ByobConfig
    test_args: ClassVar[dict[str, Any]] = {
        "img_size": 64,
        "stem_chs": 16,
        "num_classes": 10,
        "blocks": (
            {"type": "bottle", "d": 1, "c": 32, "s": 1, "br": 0.25},
            {"type": "bottle", "d": 1, "c": 64, "s": 2, "br": 0.25},
            {"type": "self_attn", "d": 1, "c": 128, "s": 2, "br": 0.25},
            {"type": "self_attn", "d": 1, "c": 256, "s": 2, "br": 0.25},
        ),
    }

    def build(self, config: ByobConfig, *, device=None, dtype=None) -> ByobNet:
        return ByobNet(config, device=device, dtype=dtype)


family = ByobFamily()
build = family.build
