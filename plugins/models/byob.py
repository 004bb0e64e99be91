"""Bring-your-own-blocks networks (timm's `byob`), as far as BoTNet needs them.

Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021.
https://arxiv.org/abs/2101.11605

A network is a stem and stages of blocks written out one spec at a time (`BlockSpec`: its
`type`, `d` repeats of `c` output channels, the stage's stride `s`, the bottleneck ratio
`br`). A stage is one spec, or several run one after another (BoTNet's third stage: a
bottleneck, then a self-attention block). Two block types:

- `bottle`: 1x1 conv, 3x3 conv (strided in a stage's first block), 1x1 conv, each with BN
  (ReLU but for the last), plus the shortcut (a strided 1x1 conv and BN where the shape
  changes), then ReLU;
- `self_attn`: the same with the 3x3 conv replaced by multi-head self-attention with
  relative position logits over the whole map (`zoo_plugins.attention.bot`), then BN and
  ReLU (`post_attn`); a stride is a 2x2 average pool after the attention.

The tiered stem (ResNet-T) is three 3x3 convs of 3/8, 1/2 and all of `stem_chs`, the first
strided, then a max pool: the stages start at a quarter of the image.

Self-attention's position tables fix the size of the map each block sees (`feat_size`: the
*input* of the block, which shrinks after each stage's first, strided, block), so a network
with self-attention blocks takes images of its `img_size` only.

Tensor names follow timm's `byobnet` checkpoints (`stem.conv1.conv`, `stages.2.1.self_attn.
qkv`, `shortcut.conv`, `head.fc`), which load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo.errors import AttentionMapError
from zoo.registry.family import ImageFamily, feature_take_indices, image_size

from ..attention.bot import BottleneckAttention
from ..layers import (
    BatchNormAct2d,
    ClassifierHead,
    ConvNormAct,
    DropPath,
    PoolType,
    attention_received,
    drop_path_rates,
    factory_of,
    init_convs,
    init_normal,
    init_submodules,
    make_divisible,
    run_blocks,
)

__all__ = ["BlockSpec", "ByobConfig", "ByobNet", "BottleneckBlock", "SelfAttnBlock", "build", "family"]

Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[int, Field(gt=0)]

STEM_STRIDE = 4  # tiered stem: a strided conv, then a max pool
ATTENTION_OPTIONS = ("num_heads", "dim_head", "qk_ratio", "qkv_bias", "scale_pos_embed")


def channels(value: float) -> int:
    """timm's rounding of byob widths: to a multiple of 8, at least 90% of `value`."""
    return make_divisible(value, 8, round_limit=0.9)


class BlockSpec(BaseModel):
    """`d` blocks of one `type` (timm's `ByoBlockCfg` names); the attention options apply to
    `self_attn` blocks only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["bottle", "self_attn"]
    d: Positive = Field(description="how many blocks")
    c: Positive = Field(description="their output channels (before width_factor)")
    s: Literal[1, 2] = Field(default=2, description="the stride of the stage's first block")
    gs: int = Field(default=0, ge=0, description="group width of the 3x3 conv; 0: one group")
    br: float = Field(default=1.0, gt=0.0, description="bottleneck width over c")
    num_heads: Positive = 4
    dim_head: Positive | None = Field(default=None, description="query/key width per head; None: timm's rule")
    qk_ratio: float = Field(default=1.0, gt=0.0)
    qkv_bias: bool = False
    scale_pos_embed: bool = False

    @model_validator(mode="after")
    def _options_for_attention_only(self) -> BlockSpec:
        misplaced = sorted(set(ATTENTION_OPTIONS) & self.model_fields_set)
        if self.type != "self_attn" and misplaced:
            raise ValueError(
                f"{', '.join(misplaced)} apply to self_attn blocks, not to a '{self.type}' block"
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


@dataclass(frozen=True)
class BlockPlan:
    """One block as the network builds it."""

    spec: BlockSpec
    in_chs: int
    out_chs: int
    stride: int
    feat_size: tuple[int, int]  # (H, W) of the block's input
    drop_path: float

    @property
    def mid_chs(self) -> int:
        return channels(self.out_chs * self.spec.br)

    @property
    def groups(self) -> int:
        return self.mid_chs // self.spec.gs if self.spec.gs else 1


def stage_specs(stage: Stage) -> tuple[BlockSpec, ...]:
    return stage if isinstance(stage, tuple) else (stage,)


def stem_widths(config: ByobConfig) -> tuple[int, int, int]:
    """The tiered stem's three conv widths."""
    width = round(config.stem_chs * config.width_factor)
    return (3 * width // 8, width // 2, width)


def block_plan(config: ByobConfig) -> list[list[BlockPlan]]:
    """Every block of every stage: widths, stride, input size and drop-path rate."""
    height, width = image_size(config)
    size = (height // STEM_STRIDE, width // STEM_STRIDE)
    in_chs = stem_widths(config)[-1]
    repeats = [[spec for spec in stage_specs(stage) for _ in range(spec.d)] for stage in config.blocks]
    rates = iter(drop_path_rates(config.drop_path_rate, sum(map(len, repeats))))
    plan = []
    for specs in repeats:
        stride, blocks = specs[0].s, []
        for index, spec in enumerate(specs):
            out_chs = channels(spec.c * config.width_factor)
            step = stride if index == 0 else 1
            blocks.append(BlockPlan(spec, in_chs, out_chs, step, size, next(rates)))
            in_chs, size = out_chs, (size[0] // step, size[1] // step)
        plan.append(blocks)
    return plan


class ByobConfig(BaseModel):
    """Architecture of a byob network (timm's argument names); defaults: BoTNet-26T at 256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: tuple[Stage, ...] = Field(default=BOTNET26T, min_length=1)
    stem_type: Literal["tiered"] = "tiered"
    stem_chs: Positive = 64
    stem_pool: Literal["maxpool"] = "maxpool"
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

    @model_validator(mode="after")
    def _fits(self) -> ByobConfig:
        if not self.global_pool and self.num_classes:
            raise ValueError("global_pool '' leaves the feature map unpooled: it takes num_classes=0")
        for stage in self.blocks:
            if len({spec.s for spec in stage_specs(stage)}) > 1:
                raise ValueError("the specs of one stage share its stride 's'")
        stride = STEM_STRIDE
        for stage in self.blocks:
            stride *= stage_specs(stage)[0].s
        size = image_size(self)
        if self.fixed_input_size and (size[0] % stride or size[1] % stride):
            raise ValueError(
                f"img_size {size[0]}x{size[1]} must be a multiple of {stride}, the network's stride, "
                "as its self-attention sees fixed map sizes"
            )
        for block in (block for stage in block_plan(self) for block in stage):
            self._check_block(block)
        return self

    @staticmethod
    def _check_block(block: BlockPlan) -> None:
        if block.spec.gs and block.mid_chs % block.spec.gs:
            raise ValueError(
                f"a {block.mid_chs}-channel bottleneck does not split into groups of {block.spec.gs}"
            )
        if block.spec.type == "self_attn" and block.mid_chs % block.spec.num_heads:
            raise ValueError(
                f"a {block.mid_chs}-channel self-attention does not split into {block.spec.num_heads} heads"
            )


def shortcut(block: BlockPlan, **factory) -> nn.Module:
    """A strided 1x1 conv and BN where the shape changes (`shortcut.conv`, `shortcut.bn`)."""
    if block.in_chs == block.out_chs and block.stride == 1:
        return nn.Identity()
    return ConvNormAct(block.in_chs, block.out_chs, 1, stride=block.stride, act=False, **factory)


class BottleneckBlock(nn.Module):
    """1x1, 3x3 (strided), 1x1, plus the shortcut, then ReLU (timm's `bottle`)."""

    def __init__(self, block: BlockPlan, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        mid = block.mid_chs
        self.shortcut = shortcut(block, **factory)
        self.conv1_1x1 = ConvNormAct(block.in_chs, mid, 1, **factory)
        self.conv2_kxk = ConvNormAct(mid, mid, 3, stride=block.stride, groups=block.groups, **factory)
        self.conv3_1x1 = ConvNormAct(mid, block.out_chs, 1, act=False, **factory)
        self.drop_path = DropPath(block.drop_path)
        self.act = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.conv3_1x1.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv3_1x1(self.conv2_kxk(self.conv1_1x1(x)))
        return self.act(self.drop_path(branch) + self.shortcut(x))


class SelfAttnBlock(nn.Module):
    """1x1, self-attention (strided by pooling), BN and ReLU, 1x1, plus the shortcut, then
    ReLU (timm's `self_attn`). The attention sees the block's input size."""

    def __init__(self, block: BlockPlan, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        mid = block.mid_chs
        self.feat_size = block.feat_size
        self.shortcut = shortcut(block, **factory)
        self.conv1_1x1 = ConvNormAct(block.in_chs, mid, 1, **factory)
        self.self_attn = BottleneckAttention(
            mid,
            mid,
            feat_size=block.feat_size,
            stride=block.stride,
            **block.spec.attention_options(),
            **factory,
        )
        self.post_attn = BatchNormAct2d(mid, act="relu", **factory)
        self.conv3_1x1 = ConvNormAct(mid, block.out_chs, 1, act=False, **factory)
        self.drop_path = DropPath(block.drop_path)
        self.act = nn.ReLU(inplace=True)

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        return self.conv3_1x1.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.self_attn(self.conv1_1x1(x))
        branch = self.conv3_1x1(self.post_attn(branch))
        return self.act(self.drop_path(branch) + self.shortcut(x))


BLOCKS: dict[str, type[BottleneckBlock] | type[SelfAttnBlock]] = {
    "bottle": BottleneckBlock,
    "self_attn": SelfAttnBlock,
}


class Stages(nn.Sequential):
    """The stages (timm's `stages.N` names). Called without an input it lists them: the
    families' `model.stages()`, which the module of that name would otherwise hide."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            return list(self)
        return super().__call__(*args, **kwargs)


class ByobNet(nn.Module):
    # What the loader asks to adapt pretrained weights (see `zoo.weights.adaptation`).
    classifier_names = ("head.fc",)
    first_conv = "stem.conv1.conv"

    def __init__(self, config: ByobConfig, *, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        self.grad_checkpointing = False
        self.stem = self._stem(config, **factory)
        plan = block_plan(config)
        self.stages = Stages(
            *(nn.Sequential(*(BLOCKS[b.spec.type](b, **factory) for b in blocks)) for blocks in plan)
        )
        width = plan[-1][-1].out_chs
        if config.num_features:
            self.num_features = round(config.width_factor * config.num_features)
            self.final_conv = ConvNormAct(width, self.num_features, 1, **factory)
        else:
            self.num_features, self.final_conv = width, nn.Identity()
        self.head_hidden_size = self.num_features
        self.feature_info = self._feature_info(plan)
        self.head = ClassifierHead(
            self.num_features, config.num_classes, config.global_pool, config.drop_rate, **factory
        )
        self.reset_parameters()

    @staticmethod
    def _stem(config: ByobConfig, **factory) -> nn.Sequential:
        """Tiered: three 3x3 convs, the first strided, then a 3x3 max pool of stride 2."""
        stem, in_chs = nn.Sequential(), config.in_chans
        for number, width in enumerate(stem_widths(config), 1):
            stem.add_module(
                f"conv{number}", ConvNormAct(in_chs, width, 3, stride=2 if number == 1 else 1, **factory)
            )
            in_chs = width
        stem.add_module("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        return stem

    def _feature_info(self, plan: list[list[BlockPlan]]) -> list[dict[str, Any]]:
        """timm's: the stem before its pool, each stage but the last, then `final_conv` (the
        last stage's output, through the final conv if there is one)."""
        info = [{"module": "stem.conv3", "num_chs": stem_widths(self.config)[-1], "reduction": 2}]
        reduction = STEM_STRIDE
        for index, blocks in enumerate(plan):
            reduction *= blocks[0].stride
            info.append({"module": f"stages.{index}", "num_chs": blocks[-1].out_chs, "reduction": reduction})
        info[-1] = {"module": "final_conv", "num_chs": self.num_features, "reduction": reduction}
        return info

    def reset_parameters(self) -> None:
        """timm's byob initialisation (see `_init_weights`); nothing on `meta`."""
        if self.stem.conv1.conv.weight.is_meta:
            return  # nothing to initialise: weights are about to be assigned
        self._init_weights(self)

    def init_modules(self, names: Sequence[str]) -> None:
        """Initialise these submodules as building the model does: the loader's hook for the
        modules a checkpoint lacks."""
        init_submodules(self, names, self._init_weights)

    def _init_weights(self, root: nn.Module) -> None:
        """Convs normal with std sqrt(2 / fan_out) (fan_out per group), unit BatchNorm, linears
        normal with std 0.01; then the attentions' own initialisation (truncated normal), and
        each block's last BN zeroed if asked."""
        init_convs(root, linear=partial(init_normal, std=0.01))
        for module in root.modules():
            if isinstance(module, BottleneckAttention):
                module.reset_parameters()
            if self.config.zero_init_last and isinstance(module, (BottleneckBlock, SelfAttnBlock)):
                nn.init.zeros_(module.last_norm.weight)

    def init_classifier(self) -> None:
        """Initialise the classifier as a fresh model's is, e.g. after a new `num_classes`."""
        init_normal(self.head.fc, std=0.01)

    def blocks_in_order(self) -> list[nn.Module]:
        return [block for stage in self.stages() for block in stage]

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: PoolType | None = None) -> None:
        """A new, freshly initialised classifier for `num_classes` (0: none), and another pooling if given."""
        self.head.reset(num_classes, global_pool, **factory_of(self))
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
        """The feature maps of `feature_info`, as timm gives them: the stem's before its pool,
        each stage's, the last through `final_conv`. `norm` does nothing (no final norm);
        with `intermediates_only` the stages after the last one asked for are not run.

        Returns:
            `(forward_features(x), intermediates)`, or `intermediates` alone.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt '{output_fmt}': a byob network gives 'NCHW' feature maps")
        take = feature_take_indices(len(self.feature_info), indices)
        self._check_size(x)
        intermediates = []
        for name, layer in self.stem.named_children():
            x = layer(x)
            if name == "conv3" and 0 in take:  # before the pool, as timm's stem gives it
                intermediates.append(x)
        stages = self.stages()
        for index, stage in enumerate(stages, 1):
            if intermediates_only and index > max(take):
                break
            x = self._run_stage(stage, x)
            if index == len(stages):
                x = self.final_conv(x)
            if index in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Keep only what `forward_intermediates(indices=...)` needs (timm's): the stages up
        to the last one asked for, `final_conv` only with the last, no head if `prune_head`."""
        take = feature_take_indices(len(self.feature_info), indices)
        self.stages = Stages(*self.stages()[: max(take)])
        if max(take) < len(self.feature_info) - 1:
            self.final_conv = nn.Identity()
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
    """Family `byob`: bring-your-own-blocks networks of bottleneck and self-attention blocks
    (BoTNet)."""

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
